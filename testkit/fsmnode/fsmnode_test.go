package fsmnode_test

import (
	"context"
	"testing"
	"time"

	"github.com/zaqar-raft/zaqar/fsm"
	"github.com/zaqar-raft/zaqar/store"
	"github.com/zaqar-raft/zaqar/testkit/fsmnode"
)

func TestPropose_AppliesEachEntryAtOnceInOrder(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{CacheBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	n, err := fsmnode.New(st)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ids := []string{"00000000000000000000000000000001", "00000000000000000000000000000002"}
	for i := 1; i <= 2; i++ {
		post := &fsm.PostMessages{Project: "p", Queue: "q", ClientID: "c", DefaultTTL: 3600,
			Messages: []store.NewMessage{{ID: ids[i-1], Delay: -1, Body: []byte(`"a"`)}}}
		if _, err := n.Propose(ctx, post); err != nil {
			t.Fatalf("proposal %d: %v", i, err)
		}
		if got, _, err := st.Applied(); err != nil || got != uint64(i) {
			t.Fatalf("after proposal %d the store applied index %d (%v)", i, got, err)
		}
	}
	if n.Proposals() != 2 {
		t.Fatalf("Proposals() = %d, want 2", n.Proposals())
	}
	v := st.View()
	defer v.Close()
	stats, err := v.QueueStats("p", "q", time.Now().UnixNano())
	if err != nil {
		t.Fatal(err)
	}
	if stats.Total != 2 {
		t.Fatalf("the queue holds %d messages, want 2 (one per applied post)", stats.Total)
	}
}
