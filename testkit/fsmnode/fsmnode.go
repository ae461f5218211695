// Package fsmnode is a one-replica stand-in for raftnode: a proposal is
// applied at once to a real FSM over a real store, with no consensus and no
// network. Fuzz targets use it to drive the whole request path (validation,
// commands, apply, reads) many thousands of times a second in one process;
// every test of replication uses real Raft nodes instead.
package fsmnode

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/zaqar-raft/zaqar/fsm"
	"github.com/zaqar-raft/zaqar/raftnode"
	"github.com/zaqar-raft/zaqar/store"
)

// Node applies each proposal to its FSM as the next log entry, stamped
// with the local clock. It is safe for concurrent use.
type Node struct {
	mu        sync.Mutex
	fsm       *fsm.FSM
	index     uint64
	proposals int
}

// New returns a node applying to st.
func New(st *store.Store) (*Node, error) {
	f, err := fsm.New(st)
	if err != nil {
		return nil, fmt.Errorf("fsmnode: %w", err)
	}
	return &Node{fsm: f}, nil
}

// Propose applies cmds as one entry and returns their results.
func (n *Node) Propose(_ context.Context, cmds ...fsm.Command) (*fsm.EntryResult, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.index++
	n.proposals++
	out := n.fsm.ApplyBatch([]*raft.Log{{Index: n.index, Term: 1, Type: raft.LogCommand, Data: fsm.EncodeEntry(time.Now().UnixNano(), cmds...)}})
	res, ok := out[0].(*fsm.EntryResult)
	if !ok {
		return nil, fmt.Errorf("fsmnode: entry %d applied without a result", n.index)
	}
	return res, nil
}

// Proposals returns how many entries were proposed so far.
func (n *Node) Proposals() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.proposals
}

// ReadBarrier returns at once: the one replica is always up to date.
func (n *Node) ReadBarrier(context.Context) error { return nil }

// IsLeader reports true: the one replica leads.
func (n *Node) IsLeader() bool { return true }

// ClusterStatus returns no statuses.
func (n *Node) ClusterStatus(context.Context) []raftnode.Status { return nil }

// ProbeGroup finds no group: the one replica knows no other pool.
func (n *Node) ProbeGroup(context.Context, []string) (raftnode.GroupIdentity, error) {
	return raftnode.GroupIdentity{}, raftnode.ErrGroupUnreachable
}

// Members returns the one replica.
func (n *Node) Members() []raftnode.Member {
	return []raftnode.Member{{ID: "local", Address: "local:0", Suffrage: "Voter"}}
}

// CallGroup reaches no other pool.
func (n *Node) CallGroup(context.Context, []string, int, string, []byte) (int, []byte, error) {
	return 0, nil, raftnode.ErrGroupUnreachable
}

// LocalStatus describes the one replica as a leader.
func (n *Node) LocalStatus() raftnode.Status { return raftnode.Status{ID: "local", State: "Leader"} }

// Join refuses: the membership is fixed.
func (n *Node) Join(context.Context, string, string) error { return raftnode.ErrUnknownMember }

// Remove refuses: the membership is fixed.
func (n *Node) Remove(context.Context, string) error { return raftnode.ErrUnknownMember }

// TransferLeadership refuses: there is no other member.
func (n *Node) TransferLeadership(context.Context, string) error { return raftnode.ErrUnknownMember }

// Temp is a Node over a store of its own in a temporary directory, for
// callers that open and discard many (a fuzz target starting afresh).
type Temp struct {
	Node  *Node
	Store *store.Store
	dir   string
}

// OpenTemp opens a store with a small cache in a new temporary directory
// named after prefix, and a Node over it.
func OpenTemp(prefix string) (*Temp, error) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return nil, fmt.Errorf("fsmnode: %w", err)
	}
	st, err := store.Open(dir, store.Options{CacheBytes: 8 << 20})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("fsmnode: %w", err)
	}
	n, err := New(st)
	if err != nil {
		st.Close()
		os.RemoveAll(dir)
		return nil, err
	}
	return &Temp{Node: n, Store: st, dir: dir}, nil
}

// Close closes the store and removes its directory.
func (t *Temp) Close() {
	t.Store.Close()
	os.RemoveAll(t.dir)
}

// OpenForTest opens a store with a small cache in t's temporary directory
// and a Node over it; both are closed when t ends, and a failure ends t.
func OpenForTest(t testing.TB) (*Node, *store.Store) {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{CacheBytes: 8 << 20})
	if err != nil {
		t.Fatalf("fsmnode: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	n, err := New(st)
	if err != nil {
		t.Fatal(err)
	}
	return n, st
}
