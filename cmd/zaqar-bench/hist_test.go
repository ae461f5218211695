package main

import (
	"math/rand"
	"sort"
	"testing"
	"time"
)

func TestHistogram_QuantilesAreWithinTwoPercentOfExact(t *testing.T) {
	var h histogram
	r := rand.New(rand.NewSource(1))
	var all []time.Duration
	for i := 0; i < 100000; i++ {
		d := time.Duration(r.ExpFloat64() * float64(2*time.Millisecond))
		all = append(all, d)
		h.record(d)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		exact := all[int(q*float64(len(all)))-1]
		got := h.quantile(q)
		if diff := float64(got-exact) / float64(exact); diff < -0.02 || diff > 0.02 {
			t.Errorf("p%v = %v, exact %v (off by %.1f%%)", q*100, got, exact, diff*100)
		}
	}
	if h.quantile(1) != all[len(all)-1] {
		t.Errorf("p100 = %v, want the max %v", h.quantile(1), all[len(all)-1])
	}
}

func TestHistogram_BucketsRoundTrip(t *testing.T) {
	for _, d := range []time.Duration{0, 1, 63, 64, 65, 1000, time.Millisecond, time.Second, time.Minute} {
		b := bucketOf(d)
		if lo, hi := valueOf(b), valueOf(b+1); d < lo || d >= hi {
			t.Errorf("%v in bucket %d = [%v, %v)", d, b, lo, hi)
		}
	}
}
