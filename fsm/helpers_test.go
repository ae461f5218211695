package fsm_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/zaqar-raft/zaqar/fsm"
	"github.com/zaqar-raft/zaqar/store"
)

// Times are unix nanoseconds.
const (
	t0  int64 = 1_700_000_000 * 1e9
	sec int64 = 1e9
)

// node is an FSM over a real Pebble store in a temporary directory.
type node struct {
	t   *testing.T
	dir string
	st  *store.Store
	fsm *fsm.FSM
}

func newNode(t *testing.T) *node {
	t.Helper()
	n := &node{t: t, dir: t.TempDir()}
	n.open()
	t.Cleanup(func() { _ = n.st.Close() }) // whichever store is open at the end
	return n
}

func (n *node) open() {
	n.t.Helper()
	st, err := store.Open(n.dir, store.Options{CacheBytes: 8 << 20})
	if err != nil {
		n.t.Fatalf("open store: %v", err)
	}
	f, err := fsm.New(st)
	if err != nil {
		n.t.Fatalf("new FSM: %v", err)
	}
	n.st, n.fsm = st, f
}

// restart closes the store and opens it again under a new FSM, as a
// process restart does.
func (n *node) restart() {
	n.t.Helper()
	if err := n.st.Close(); err != nil {
		n.t.Fatalf("close store: %v", err)
	}
	n.open()
}

func (n *node) digest() [32]byte {
	n.t.Helper()
	d, err := n.st.Digest()
	if err != nil {
		n.t.Fatalf("digest: %v", err)
	}
	return d
}

// view runs fn on a fresh store view.
func (n *node) view(fn func(v *store.View) error) {
	n.t.Helper()
	v := n.st.View()
	defer v.Close()
	if err := fn(v); err != nil {
		n.t.Fatalf("view: %v", err)
	}
}

func (n *node) listAll(project, queue string, now int64) []*store.Message {
	n.t.Helper()
	var out []*store.Message
	n.view(func(v *store.View) (err error) {
		out, err = v.ListMessages(project, queue, now, store.ListOptions{Limit: 1000, Echo: true, IncludeClaimed: true, IncludeDelayed: true})
		return
	})
	return out
}

// snapshotBytes takes an FSM snapshot and persists it into memory.
func (n *node) snapshotBytes() []byte {
	n.t.Helper()
	snap, err := n.fsm.Snapshot()
	if err != nil {
		n.t.Fatalf("snapshot: %v", err)
	}
	defer snap.Release()
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		n.t.Fatalf("persist: %v", err)
	}
	if !sink.closed || sink.canceled {
		n.t.Fatalf("persist left the sink closed=%v canceled=%v", sink.closed, sink.canceled)
	}
	return sink.Bytes()
}

// memSink is a raft.SnapshotSink in memory; failAfter > 0 makes writes
// fail once that many bytes were written.
type memSink struct {
	bytes.Buffer
	failAfter int
	closed    bool
	canceled  bool
}

func (s *memSink) Write(p []byte) (int, error) {
	if s.failAfter > 0 && s.Len()+len(p) > s.failAfter {
		return 0, errors.New("disk full")
	}
	return s.Buffer.Write(p)
}
func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Close() error  { s.closed = true; return nil }
func (s *memSink) Cancel() error { s.canceled = true; return nil }

var _ raft.SnapshotSink = (*memSink)(nil)

// cmdLog is a command log entry at index with timestamp now.
func cmdLog(index uint64, now int64, cmds ...fsm.Command) *raft.Log {
	return &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: fsm.EncodeEntry(now, cmds...)}
}

// entryResult asserts that out is an *fsm.EntryResult.
func entryResult(t *testing.T, out interface{}) *fsm.EntryResult {
	t.Helper()
	r, ok := out.(*fsm.EntryResult)
	if !ok {
		t.Fatalf("apply returned %T (%v), want *fsm.EntryResult", out, out)
	}
	return r
}

// mid returns the n-th test message id; cid the n-th claim id.
func mid(n int) string { return fmt.Sprintf("%032x", n) }
func cid(n int) string { return fmt.Sprintf("c%031x", n) }

func newMsg(id string, ttl int64) store.NewMessage {
	return store.NewMessage{ID: id, TTL: ttl, Delay: -1, Body: []byte(`{"id":"` + id + `"}`)}
}

func msgIDs(msgs []*store.Message) []string {
	out := []string{}
	for _, m := range msgs {
		out = append(out, m.ID)
	}
	return out
}
