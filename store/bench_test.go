package store_test

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/zaqar-raft/zaqar/store"
)

func BenchmarkListMessages_20FromADeepQueue(b *testing.B) {
	st, err := store.Open(b.TempDir(), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	txn := st.Begin(1)
	for i := 0; i < 1000; i++ {
		var msgs []store.NewMessage
		for j := 0; j < 10; j++ {
			msgs = append(msgs, store.NewMessage{ID: fmt.Sprintf("%016x%016x", i, j), TTL: 3600, Delay: -1, Body: []byte(`{"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}`)})
		}
		txn.PostMessages("p", "q", "c", t0, 3600, msgs)
	}
	if err := txn.Commit(1, 1); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		v := st.View()
		got, err := v.ListMessages("p", "q", t0, store.ListOptions{Limit: 20, Echo: true, AfterSeq: uint64(i % 9000)})
		v.Close()
		if err != nil || len(got) != 20 {
			b.Fatalf("%d messages, %v", len(got), err)
		}
	}
}

// Depth benchmarks: claim 10 + release, stats, and list 10 (claimed
// excluded) on one queue of N messages of which C are claimed, with the
// depth index (index) and with the scan of earlier builds (scan). Sizes
// come from BENCH_DEPTH_MESSAGES and BENCH_DEPTH_CLAIMED (comma-separated;
// defaults 0,100000,1000000 and 0,100000) and modes from BENCH_DEPTH_MODES
// (default index,scan); a case with more claimed than messages is skipped.
func BenchmarkDepth(b *testing.B) {
	for _, mode := range benchList(b, "BENCH_DEPTH_MODES", "index,scan") {
		for _, n := range benchSizes(b, "BENCH_DEPTH_MESSAGES", "0,100000,1000000") {
			for _, claimed := range benchSizes(b, "BENCH_DEPTH_CLAIMED", "0,100000") {
				if claimed > n || (n == 0 && claimed > 0) {
					continue
				}
				b.Run(fmt.Sprintf("%s/messages=%d/claimed=%d", mode, n, claimed), func(b *testing.B) {
					benchDepth(b, mode == "index", n, claimed)
				})
			}
		}
	}
}

func benchList(b *testing.B, env, def string) []string {
	v := os.Getenv(env)
	if v == "" {
		v = def
	}
	return strings.Split(v, ",")
}

func benchSizes(b *testing.B, env, def string) []int {
	var out []int
	for _, s := range benchList(b, env, def) {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			b.Fatalf("%s: %v", env, err)
		}
		out = append(out, n)
	}
	return out
}

// depthQueue fills a store with n messages in queue p/q, claims the first
// claimed of them for an hour, and returns it with the time to query at.
func depthQueue(b *testing.B, indexed bool, n, claimed int) (*store.Store, int64) {
	b.Helper()
	st, err := store.Open(b.TempDir(), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	index := uint64(1)
	commit := func(fn func(*store.Txn)) {
		index++
		txn := st.Begin(index)
		fn(txn)
		if err := txn.Commit(index, 1); err != nil {
			b.Fatal(err)
		}
	}
	if indexed {
		commit(func(t *store.Txn) { t.BuildDepthIndex(t0) })
	}
	body := []byte(`{"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}`)
	for posted := 0; posted < n; {
		commit(func(t *store.Txn) {
			for i := 0; i < 1000 && posted < n; i++ {
				msgs := make([]store.NewMessage, 0, 10)
				for j := 0; j < 10 && posted < n; j++ {
					msgs = append(msgs, store.NewMessage{ID: fmt.Sprintf("%032x", posted), TTL: 86400, Delay: -1, Body: body})
					posted++
				}
				t.PostMessages("p", "q", "producer", t0, 3600, msgs)
			}
		})
	}
	for c := 0; c < claimed; {
		commit(func(t *store.Txn) {
			for i := 0; i < 500 && c < claimed; i++ {
				got := t.CreateClaim("p", "q", fmt.Sprintf("c%031x", c), 3600, 60, min(20, claimed-c), t0)
				c += len(got)
			}
		})
	}
	return st, t0 + sec
}

func benchDepth(b *testing.B, indexed bool, n, claimed int) {
	st, now := depthQueue(b, indexed, n, claimed)
	defer st.Close()
	index := uint64(1 << 32)
	b.Run("claim10+release", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			id := fmt.Sprintf("b%031x", i)
			index++
			txn := st.Begin(index)
			got := txn.CreateClaim("p", "q", id, 60, 60, 10, now)
			if err := txn.Commit(index, 1); err != nil {
				b.Fatal(err)
			}
			if want := min(10, n-claimed); len(got) != want {
				b.Fatalf("claimed %d, want %d", len(got), want)
			}
			index++
			txn = st.Begin(index)
			txn.ReleaseClaim("p", "q", id, now)
			if err := txn.Commit(index, 1); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("stats", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			v := st.View()
			s, err := v.QueueStats("p", "q", now)
			v.Close()
			if err != nil || s.Claimed != int64(claimed) || s.Total != int64(n) {
				b.Fatalf("stats %d claimed of %d, %v", s.Claimed, s.Total, err)
			}
		}
	})
	b.Run("list10", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			v := st.View()
			// As REST lists a queue without a default delay: delayed
			// messages included, claimed ones not.
			got, err := v.ListMessages("p", "q", now, store.ListOptions{Limit: 10, ClientID: "consumer", IncludeDelayed: true})
			v.Close()
			if want := min(10, n-claimed); err != nil || len(got) != want {
				b.Fatalf("listed %d, want %d: %v", len(got), want, err)
			}
		}
	})
}

// BenchmarkBuildDepthIndex times BuildDepthIndex (one batch, applied once
// in a store's life) on a store of N messages, 10% of them claimed, for
// each N of BENCH_DEPTH_MESSAGES; run it with -benchtime 1x for large N.
func BenchmarkBuildDepthIndex(b *testing.B) {
	for _, n := range benchSizes(b, "BENCH_DEPTH_MESSAGES", "0,100000,1000000") {
		b.Run(fmt.Sprintf("messages=%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				st, now := depthQueue(b, false, n, n/10)
				b.StartTimer()
				index := uint64(1 << 40)
				txn := st.Begin(index)
				if !txn.BuildDepthIndex(now) {
					b.Fatal("the index was already built")
				}
				if err := txn.Commit(index, 1); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				st.Close()
			}
		})
	}
}
