package fsm_test

import (
	"testing"

	"github.com/hashicorp/raft"

	"github.com/zaqar-raft/zaqar/fsm"
	"github.com/zaqar-raft/zaqar/store"
)

func TestPostMessages_AQueueSizeCapIsCheckedWhenThePostApplies(t *testing.T) {
	n := newNode(t)
	post := func(size int64) *fsm.PostMessages {
		return &fsm.PostMessages{Project: "p", Queue: "q", ClientID: "c", DefaultTTL: 3600, BodySize: size,
			Messages: []store.NewMessage{{ID: "00000000000000000000000000000001", Delay: -1, Body: []byte("1")}}}
	}
	// The proposer did not know the cap yet (it was set in the same entry).
	out := n.fsm.ApplyBatch([]*raft.Log{cmdLog(1, t0,
		&fsm.CreateQueue{Project: "p", Queue: "q", Settings: store.QueueSettings{MaxPostSize: 100}, Metadata: []byte(`{"_max_messages_post_size":100}`)},
		post(101), post(100))})
	res := out[0].(*fsm.EntryResult).Results
	if res[1].Status != fsm.StatusTooLarge || res[1].Count != 100 {
		t.Fatalf("a post over the cap: %+v, want too large with the cap 100", res[1])
	}
	if res[2].Status != fsm.StatusOK {
		t.Fatalf("a post at the cap: %+v, want ok", res[2])
	}
	if got := n.listAll("p", "q", t0); len(got) != 1 {
		t.Fatalf("%d messages stored, want only the post at the cap's", len(got))
	}
	// No cap on a queue that does not exist yet (it is created by the post).
	out = n.fsm.ApplyBatch([]*raft.Log{cmdLog(2, t0, &fsm.PostMessages{Project: "p", Queue: "new", DefaultTTL: 3600, BodySize: 1 << 30,
		Messages: []store.NewMessage{{ID: "00000000000000000000000000000002", Delay: -1, Body: []byte("1")}}})})
	if st := out[0].(*fsm.EntryResult).Results[0].Status; st != fsm.StatusOK {
		t.Fatalf("post to a new queue: %v", st)
	}
}
