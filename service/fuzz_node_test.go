package service

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/zaqar-raft/zaqar/fsm"
	"github.com/zaqar-raft/zaqar/raftnode"
	"github.com/zaqar-raft/zaqar/store"
)

// localNode is a one-replica stand-in for the Raft node: Propose applies
// the entry to the real FSM and store at once, so the service runs its
// real write and read paths without consensus. It counts proposals.
type localNode struct {
	mu        sync.Mutex
	fsm       *fsm.FSM
	index     uint64
	proposals int
}

func (n *localNode) Propose(_ context.Context, cmds ...fsm.Command) (*fsm.EntryResult, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.index++
	n.proposals++
	out := n.fsm.ApplyBatch([]*raft.Log{{Index: n.index, Term: 1, Type: raft.LogCommand, Data: fsm.EncodeEntry(time.Now().UnixNano(), cmds...)}})
	return out[0].(*fsm.EntryResult), nil
}

func (n *localNode) ReadBarrier(context.Context) error               { return nil }
func (n *localNode) IsLeader() bool                                  { return true }
func (n *localNode) ClusterStatus(context.Context) []raftnode.Status { return nil }

// proposed returns how many entries were proposed so far.
func (n *localNode) proposed() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.proposals
}

// mustDigest returns the store's digest.
func mustDigest(t testing.TB, st *store.Store) [32]byte {
	t.Helper()
	d, err := st.Digest()
	must(t, err)
	return d
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// newLocalService returns a service over a fresh store in a temporary
// directory, proposing through a localNode.
func newLocalService(t testing.TB, limits Limits) (*Service, *localNode, *store.Store) {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{CacheBytes: 8 << 20})
	must(t, err)
	t.Cleanup(func() { st.Close() })
	f, err := fsm.New(st)
	must(t, err)
	n := &localNode{fsm: f}
	return New(n, st, Config{Limits: limits, SignedURLSecret: "fuzz-secret"}), n, st
}
