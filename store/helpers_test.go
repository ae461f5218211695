package store_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/zaqar-raft/zaqar/store"
)

// Times are unix nanoseconds, as the store takes them.
const (
	t0  int64 = 1_700_000_000 * 1e9
	sec int64 = 1e9
)

// proj is the project most tests use.
const proj = "p"

// testStore is a real Pebble store in a temporary directory, with each
// mutation applied as its own committed transaction at the next index.
type testStore struct {
	t     *testing.T
	st    *store.Store
	dir   string
	index uint64
}

func openTestStore(t *testing.T) *testStore {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(dir, store.Options{CacheBytes: 8 << 20})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	s := &testStore{t: t, st: st, dir: dir}
	t.Cleanup(func() { _ = s.st.Close() }) // the store open at the end
	return s
}

// apply runs fn in one transaction at the next Raft index and commits it.
func (s *testStore) apply(fn func(tx *store.Txn)) uint64 {
	s.t.Helper()
	s.index++
	tx := s.st.Begin(s.index)
	fn(tx)
	if err := tx.Commit(s.index, 1); err != nil {
		s.t.Fatalf("commit index %d: %v", s.index, err)
	}
	return s.index
}

// read runs fn on a fresh view.
func (s *testStore) read(fn func(v *store.View) error) {
	s.t.Helper()
	v := s.st.View()
	defer v.Close()
	if err := fn(v); err != nil {
		s.t.Fatalf("read: %v", err)
	}
}

func (s *testStore) digest() [32]byte {
	s.t.Helper()
	d, err := s.st.Digest()
	if err != nil {
		s.t.Fatalf("digest: %v", err)
	}
	return d
}

func (s *testStore) createQueue(project, name string, now int64, settings store.QueueSettings) {
	s.t.Helper()
	s.apply(func(tx *store.Txn) {
		if !tx.CreateQueue(project, name, now, settings, nil) {
			s.t.Fatalf("CreateQueue(%q, %q) reported an existing queue", project, name)
		}
	})
}

// post posts msgs to project/queue as client at now with a one-hour
// cluster default TTL.
func (s *testStore) post(project, queue, client string, now int64, msgs ...store.NewMessage) {
	s.t.Helper()
	s.apply(func(tx *store.Txn) { tx.PostMessages(project, queue, client, now, 3600, msgs) })
}

func (s *testStore) claim(project, queue, claimID string, ttl, grace int64, limit int, now int64) []*store.Message {
	s.t.Helper()
	var out []*store.Message
	s.apply(func(tx *store.Txn) { out = tx.CreateClaim(project, queue, claimID, ttl, grace, limit, now) })
	return out
}

func (s *testStore) queue(project, name string) *store.Queue {
	s.t.Helper()
	var q *store.Queue
	s.read(func(v *store.View) (err error) { q, err = v.Queue(project, name); return })
	return q
}

func (s *testStore) queueNames(project, marker string, limit int, keep func(*store.Queue) bool) []string {
	s.t.Helper()
	var qs []*store.Queue
	s.read(func(v *store.View) (err error) { qs, err = v.ListQueues(project, marker, limit, keep); return })
	names := []string{}
	for _, q := range qs {
		names = append(names, q.Name)
	}
	return names
}

func (s *testStore) queueCount(project string) uint64 {
	s.t.Helper()
	var n uint64
	s.read(func(v *store.View) (err error) { n, err = v.QueueCount(project); return })
	return n
}

func (s *testStore) list(project, queue string, now int64, o store.ListOptions) []*store.Message {
	s.t.Helper()
	if o.Limit == 0 {
		o.Limit = 100
	}
	var out []*store.Message
	s.read(func(v *store.View) (err error) { out, err = v.ListMessages(project, queue, now, o); return })
	return out
}

// listAll lists every unexpired message, claimed, delayed and own included.
func (s *testStore) listAll(project, queue string, now int64) []*store.Message {
	s.t.Helper()
	return s.list(project, queue, now, store.ListOptions{Echo: true, IncludeClaimed: true, IncludeDelayed: true})
}

func (s *testStore) message(project, queue, id string, now int64) *store.Message {
	s.t.Helper()
	var m *store.Message
	s.read(func(v *store.View) (err error) { m, err = v.Message(project, queue, id, now); return })
	return m
}

func (s *testStore) getClaim(project, queue, claimID string, now int64) (*store.Claim, []*store.Message) {
	s.t.Helper()
	var (
		c    *store.Claim
		msgs []*store.Message
	)
	s.read(func(v *store.View) (err error) { c, msgs, err = v.Claim(project, queue, claimID, now); return })
	return c, msgs
}

func (s *testStore) stats(project, queue string, now int64) store.Stats {
	s.t.Helper()
	var st store.Stats
	s.read(func(v *store.View) (err error) { st, err = v.QueueStats(project, queue, now); return })
	return st
}

func (s *testStore) pending(now int64) bool {
	s.t.Helper()
	var p bool
	s.read(func(v *store.View) (err error) { p, err = v.Pending(now); return })
	return p
}

func (s *testStore) snapshot() []byte {
	s.t.Helper()
	sn, err := s.st.Snapshot()
	if err != nil {
		s.t.Fatalf("snapshot: %v", err)
	}
	defer sn.Close()
	var buf bytes.Buffer
	if _, err := sn.WriteTo(&buf); err != nil {
		s.t.Fatalf("write snapshot: %v", err)
	}
	return buf.Bytes()
}

// mid returns the n-th test message id (32 hex digits, like ids.New).
func mid(n int) string { return fmt.Sprintf("%032x", n) }

// cid returns the n-th test claim id; disjoint from mid's.
func cid(n int) string { return fmt.Sprintf("c%031x", n) }

// msg is a message with its own TTL (0: defaults) and no delay given.
func msg(id string, ttl int64) store.NewMessage {
	return store.NewMessage{ID: id, TTL: ttl, Delay: -1, Body: []byte(`{"id":"` + id + `"}`)}
}

// msgIDs returns the ids of msgs in order.
func msgIDs(msgs []*store.Message) []string {
	out := []string{}
	for _, m := range msgs {
		out = append(out, m.ID)
	}
	return out
}
