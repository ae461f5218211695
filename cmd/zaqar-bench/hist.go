package main

import (
	"math/bits"
	"time"
)

// histogram records latencies in log-linear buckets, HDR style: each power
// of two of nanoseconds is split into 64 linear sub-buckets, so any value is
// known within about 1.6%, in a fixed table whatever the range.
type histogram struct {
	counts [64 * 64]uint64
	n      uint64
	max    time.Duration
	sum    time.Duration
}

// Values below 128 ns get a bucket each; above, the top 7 bits of the value
// select one of 64 sub-buckets of its power of two.
const subBuckets = 64

func bucketOf(d time.Duration) int {
	v := uint64(d)
	if v < 2*subBuckets {
		return int(v)
	}
	exp := bits.Len64(v) - 7
	return 2*subBuckets + (exp-1)*subBuckets + int(v>>uint(exp)) - subBuckets
}

// valueOf returns the lower edge of bucket b.
func valueOf(b int) time.Duration {
	if b < 2*subBuckets {
		return time.Duration(b)
	}
	exp := (b-2*subBuckets)/subBuckets + 1
	sub := (b-2*subBuckets)%subBuckets + subBuckets
	return time.Duration(uint64(sub) << uint(exp))
}

func (h *histogram) record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	b := bucketOf(d)
	if b >= len(h.counts) {
		b = len(h.counts) - 1
	}
	h.counts[b]++
	h.n++
	h.sum += d
	if d > h.max {
		h.max = d
	}
}

// quantile returns the value at q (0..1), the upper edge of its bucket.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.5)
	if rank == 0 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			v := valueOf(i + 1)
			if v > h.max {
				v = h.max
			}
			return v
		}
	}
	return h.max
}

func (h *histogram) mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return h.sum / time.Duration(h.n)
}
