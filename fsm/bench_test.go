package fsm_test

import (
	"fmt"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/zaqar-raft/zaqar/fsm"
	"github.com/zaqar-raft/zaqar/store"
)

func postOf(n, size int, seq int) *fsm.PostMessages {
	c := &fsm.PostMessages{Project: "bench", Queue: fmt.Sprintf("q%d", seq%4), ClientID: "0123456789abcdef0123456789abcdef", DefaultTTL: 3600}
	body := []byte(fmt.Sprintf(`{"n":%d,"pad":"%0*d"}`, seq, size-20, 0))
	for i := 0; i < n; i++ {
		c.Messages = append(c.Messages, store.NewMessage{ID: fmt.Sprintf("%016x%016x", seq, i), TTL: 3600, Delay: -1, Body: body})
	}
	return c
}

func BenchmarkEncodeEntry_Post10x256B(b *testing.B) {
	c := postOf(10, 256, 1)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_ = fsm.EncodeEntry(t0, c)
	}
}

func BenchmarkDecodeEntry_Post10x256B(b *testing.B) {
	data := fsm.EncodeEntry(t0, postOf(10, 256, 1))
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for i := 0; i < b.N; i++ {
		if _, _, err := fsm.DecodeEntry(data); err != nil {
			b.Fatal(err)
		}
	}
}

// benchFSM returns an FSM over a fresh store with the default options.
func benchFSM(b *testing.B) *fsm.FSM {
	b.Helper()
	st, err := store.Open(b.TempDir(), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	f, err := fsm.New(st)
	if err != nil {
		b.Fatal(err)
	}
	return f
}

// BenchmarkApplyBatch_Posts applies batches of 64 entries, each a post of
// 10 messages of 256 bytes, to a real Pebble store (one op = one batch).
func BenchmarkApplyBatch_Posts(b *testing.B) {
	f := benchFSM(b)
	index := uint64(0)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		logs := make([]*raft.Log, 64)
		for j := range logs {
			index++
			logs[j] = &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: fsm.EncodeEntry(t0, postOf(10, 256, int(index)))}
		}
		b.StartTimer()
		f.ApplyBatch(logs)
	}
	b.ReportMetric(float64(b.N*640)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkApplyBatch_ClaimAndDelete applies the consumer side: each batch
// claims 5 messages and deletes them with the claim.
func BenchmarkApplyBatch_ClaimAndDelete(b *testing.B) {
	f := benchFSM(b)
	index := uint64(0)
	apply := func(cmds ...fsm.Command) *fsm.EntryResult {
		index++
		return f.ApplyBatch([]*raft.Log{{Index: index, Term: 1, Type: raft.LogCommand, Data: fsm.EncodeEntry(t0, cmds...)}})[0].(*fsm.EntryResult)
	}
	for i := 0; i < b.N/2+10; i++ {
		p := postOf(10, 256, i)
		p.Queue = "q"
		apply(p)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cid := fmt.Sprintf("%032x", i)
		res := apply(&fsm.CreateClaim{Project: "bench", Queue: "q", ClaimID: cid, TTL: 60, Grace: 60, Limit: 5})
		var dels []fsm.Command
		for _, m := range res.Results[0].Messages {
			dels = append(dels, &fsm.DeleteMessage{Project: "bench", Queue: "q", ID: m.ID, ClaimID: cid})
		}
		if len(dels) > 0 {
			apply(dels...)
		}
	}
}
