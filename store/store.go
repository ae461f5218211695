// Package store is the Pebble data model of the service: how queues,
// messages and claims are laid out as keys, the mutations that keep those
// keys consistent with each other, and the queries that read them back.
//
// Mutations run inside a Txn (one Pebble indexed batch) that the FSM opens
// for each batch of Raft log entries and commits together with the applied
// index, so the index on disk always describes exactly the data beside it.
// Queries run on a View, a point-in-time Pebble snapshot.
//
// Nothing here reads the clock or draws random numbers: every time and id
// arrives as an argument, fixed before the command entered the Raft log.
package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
)

// Sentinel errors callers switch on.
var (
	// ErrNotFound means the queue (or other record) does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict means a compare-and-set saw a different version.
	ErrConflict = errors.New("store: version conflict")
)

// Options tune the Pebble instance.
type Options struct {
	// CacheBytes is the block cache size; 0 picks 256 MiB.
	CacheBytes int64
	// Logger receives Pebble's own log lines; nil discards them.
	Logger pebble.Logger

	listener *pebble.EventListener
}

// Store owns one Pebble database. The handle can be replaced as a whole by
// Restore; mu guards it: views, snapshots and transactions hold the read
// lock while they use the database, Restore takes the write lock to swap.
type Store struct {
	mu     sync.RWMutex
	db     *pebble.DB
	dir    string
	opts   Options
	closed bool

	stalls *stallCounter
}

// stallCounter counts Pebble's write stalls (writes delayed because
// flushes or compactions fell behind).
type stallCounter struct {
	count   atomic.Uint64
	nanos   atomic.Int64
	started atomic.Int64 // unix ns of the stall in progress, 0 if none
}

// WriteStalls returns how many write stalls Pebble has had and how long
// they lasted in total.
func (s *Store) WriteStalls() (uint64, time.Duration) {
	return s.stalls.count.Load(), time.Duration(s.stalls.nanos.Load())
}

// Open opens (creating if needed) the Pebble database in dir, first
// finishing or undoing a Restore that a crash interrupted.
func Open(dir string, opts Options) (*Store, error) {
	if err := recoverSwap(dir); err != nil {
		return nil, err
	}
	stalls := &stallCounter{}
	opts.listener = &pebble.EventListener{
		WriteStallBegin: func(pebble.WriteStallBeginInfo) {
			stalls.count.Add(1)
			stalls.started.Store(time.Now().UnixNano())
		},
		WriteStallEnd: func() {
			if t := stalls.started.Swap(0); t != 0 {
				stalls.nanos.Add(time.Now().UnixNano() - t)
			}
		},
	}
	db, err := openPebble(dir, opts)
	if err != nil {
		return nil, err
	}
	return &Store{db: db, dir: dir, opts: opts, stalls: stalls}, nil
}

func openPebble(dir string, opts Options) (*pebble.DB, error) {
	if opts.CacheBytes == 0 {
		opts.CacheBytes = 256 << 20
	}
	cache := pebble.NewCache(opts.CacheBytes)
	defer cache.Unref()
	po := &pebble.Options{
		Cache:                       cache,
		MemTableSize:                32 << 20,
		MemTableStopWritesThreshold: 4,
		L0CompactionThreshold:       4,
		L0StopWritesThreshold:       24,
		Logger:                      opts.Logger,
		EventListener:               opts.listener,
	}
	// Bloom filters on every level: a point read (a message id's seq, a
	// claim, a queue record) then skips the tables that cannot hold its
	// key instead of reading their blocks.
	for i := range po.Levels {
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	if po.Logger == nil {
		po.Logger = quietLogger{}
	}
	db, err := pebble.Open(dir, po)
	if err != nil {
		return nil, fmt.Errorf("store: open pebble at %s: %w", dir, err)
	}
	return db, nil
}

// Close closes the database. Closing twice is a no-op.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// Metrics returns Pebble's metrics for the current database.
func (s *Store) Metrics() *pebble.Metrics {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.db.Metrics()
}

// Applied returns the Raft index and term of the last log entry whose effects
// are in the store (0, 0 for an empty store).
func (s *Store) Applied() (index, term uint64, err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return appliedIn(s.db)
}

func appliedIn(db *pebble.DB) (index, term uint64, err error) {
	v, closer, err := db.Get(keyApplied)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("store: read applied index: %w", err)
	}
	defer closer.Close()
	if len(v) != 16 {
		return 0, 0, fmt.Errorf("store: applied index record of %d bytes", len(v))
	}
	return binary.BigEndian.Uint64(v), binary.BigEndian.Uint64(v[8:]), nil
}

// Sync makes every committed batch durable. The FSM calls it before a Raft
// snapshot is taken, so the store is never behind the newest snapshot.
func (s *Store) Sync() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.db.LogData(nil, pebble.Sync); err != nil {
		return fmt.Errorf("store: sync: %w", err)
	}
	return nil
}

// Begin starts a transaction. index is the Raft index of the first entry it
// applies; SetIndex moves it forward as further entries are applied.
func (s *Store) Begin(index uint64) *Txn {
	s.mu.RLock()
	t := &Txn{b: s.db.NewIndexedBatch(), index: index, release: s.mu.RUnlock, reads: pointReads{}}
	t.r = reader{r: t.b, cache: t.reads}
	return t
}

// View returns a point-in-time view for queries. Close it when done.
func (s *Store) View() *View {
	s.mu.RLock()
	snap := s.db.NewSnapshot()
	return &View{r: reader{r: snap}, snap: snap, release: s.mu.RUnlock}
}

// View is a consistent read-only view of the store. Close it promptly:
// an open view delays a snapshot restore.
type View struct {
	r       reader
	snap    *pebble.Snapshot
	release func()
	once    sync.Once
}

// Close releases the view.
func (v *View) Close() {
	v.once.Do(func() {
		_ = v.snap.Close()
		v.release()
	})
}

// quietLogger drops Pebble's informational lines and keeps errors visible.
type quietLogger struct{}

func (quietLogger) Infof(string, ...interface{})      {}
func (quietLogger) Errorf(f string, a ...interface{}) { fmt.Printf("pebble: "+f+"\n", a...) }
func (quietLogger) Fatalf(f string, a ...interface{}) { panic(fmt.Sprintf("pebble: "+f, a...)) }

// reader holds the read helpers shared by Txn (reading its own batch) and
// View (reading a snapshot). A Txn's reader also remembers the point reads
// it made (cache), which the Txn keeps equal to the batch as it writes.
type reader struct {
	r     pebble.Reader
	cache pointReads
}

// pointReads holds a Txn's point reads by key: the value, or exists false
// for a key that is absent. A Raft batch applies many commands to the same
// few queues, and every one of them reads its queue's record and counters;
// each read that misses this map searches the batch, the memtables and,
// past them, the tables.
type pointReads map[string]*pointRead

type pointRead struct {
	value  []byte
	exists bool
}

func (r reader) get(key []byte) ([]byte, bool, error) {
	if r.cache != nil {
		if pr, ok := r.cache[string(key)]; ok {
			// A copy: callers may keep or change what they get.
			return append([]byte(nil), pr.value...), pr.exists, nil
		}
	}
	v, closer, err := r.r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		if r.cache != nil {
			r.cache[string(key)] = &pointRead{}
		}
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	out := append([]byte(nil), v...)
	closer.Close()
	if r.cache != nil {
		r.cache[string(key)] = &pointRead{value: append([]byte(nil), out...), exists: true}
	}
	return out, true, nil
}

// wrote keeps a remembered read equal to a write of key (v nil: a delete).
// Keys never read are not remembered.
func (c pointReads) wrote(key, v []byte, exists bool) {
	if pr, ok := c[string(key)]; ok {
		pr.value, pr.exists = append(pr.value[:0], v...), exists
	}
}

// wroteRange forgets remembered reads in [lower, upper) (nil upper: no
// bound).
func (c pointReads) wroteRange(lower, upper []byte) {
	for k := range c {
		if k >= string(lower) && (upper == nil || k < string(upper)) {
			delete(c, k)
		}
	}
}

func (r reader) iter(lower, upper []byte) (*pebble.Iterator, error) {
	return r.r.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
}

func (r reader) queue(project, name string) (*Queue, error) {
	v, ok, err := r.get(queueKey(project, name))
	if err != nil || !ok {
		return nil, err
	}
	return decodeQueue(name, v)
}

// gcLow returns the GC watermark (0 before the first complete GC pass).
func (r reader) gcLow() (int64, error) {
	v, ok, err := r.get(keyGCLow)
	if err != nil || !ok || len(v) != 8 {
		return 0, err
	}
	return int64(binary.BigEndian.Uint64(v)), nil
}

func (r reader) counters(project, queue string) (counters, error) {
	v, ok, err := r.get(counterKey(project, queue))
	if err != nil || !ok {
		return counters{NextSeq: 1}, err
	}
	return decodeCounters(v)
}

func (r reader) messageBySeq(project, queue string, seq uint64) (*Message, error) {
	v, ok, err := r.get(messageKey(project, queue, seq))
	if err != nil || !ok {
		return nil, err
	}
	return decodeMessage(seq, v)
}

func (r reader) seqOf(project, queue, id string) (uint64, bool, error) {
	v, ok, err := r.get(messageIDKey(project, queue, id))
	if err != nil || !ok {
		return 0, false, err
	}
	if len(v) != 8 {
		return 0, false, fmt.Errorf("store: message id record of %d bytes", len(v))
	}
	return binary.BigEndian.Uint64(v), true, nil
}

// messageByID returns the stored message with that id, expired or not.
func (r reader) messageByID(project, queue, id string) (*Message, error) {
	seq, ok, err := r.seqOf(project, queue, id)
	if err != nil || !ok {
		return nil, err
	}
	return r.messageBySeq(project, queue, seq)
}

func (r reader) claim(project, queue, id string) (*Claim, error) {
	v, ok, err := r.get(claimKey(project, queue, id))
	if err != nil || !ok {
		return nil, err
	}
	return decodeClaim(id, v)
}

// scanMessages calls fn for each stored message of the queue with a
// sequence number after afterSeq, in FIFO order, until fn returns false.
// keep filters on the raw header before the record is decoded. It starts no
// lower than the queue's head hint, and returns the sequence number of the
// first record it met (0 if none), from which a Txn can move the hint.
func (r reader) scanMessages(project, queue string, afterSeq uint64, keep func(msgHeader) bool, fn func(*Message) bool) (uint64, error) {
	prefix := queueScoped(spaceMessage, project, queue)
	from := afterSeq + 1
	if c, err := r.counters(project, queue); err == nil && c.Head > from {
		from = c.Head
	}
	it, err := r.iter(appendUint64(append([]byte(nil), prefix...), from), prefixEnd(prefix))
	if err != nil {
		return 0, err
	}
	defer it.Close()
	var first uint64
	for ok := it.First(); ok; ok = it.Next() {
		seq := binary.BigEndian.Uint64(it.Key()[len(prefix):])
		if first == 0 {
			first = seq
		}
		v := it.Value()
		if !msgHeader(v).valid() {
			return first, fmt.Errorf("store: corrupt message record at %x", it.Key())
		}
		if keep != nil && !keep(msgHeader(v)) {
			continue
		}
		m, err := decodeMessage(seq, v)
		if err != nil {
			return first, err
		}
		if !fn(m) {
			break
		}
	}
	return first, it.Error()
}
