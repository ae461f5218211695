package fsm

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/zaqar-raft/zaqar/store"
)

// FSM applies committed Raft log entries to the store. It implements
// raft.BatchingFSM: each batch of entries Raft hands over becomes one store
// transaction, committed together with the index of its last entry.
type FSM struct {
	store *store.Store

	applied atomic.Uint64
	// entries counts command entries this process applied (skipped ones
	// excluded), so tests and metrics can see that a restart did not replay.
	entries atomic.Uint64
	mu      sync.Mutex
	advance chan struct{} // closed and replaced whenever applied moves

	// OnApply, if set, is called after each batch commits with its results
	// (entries skipped on restart are not included). It runs on Raft's FSM
	// goroutine and must not block.
	OnApply func(results []*EntryResult)
	// Observe, if set, receives the number of entries and the duration of
	// each applied batch.
	Observe func(entries int, d time.Duration)
	// ObserveSnapshot, if set, receives the size and the streaming time of
	// each snapshot persisted.
	ObserveSnapshot func(bytes int64, d time.Duration)
}

var (
	_ raft.BatchingFSM = (*FSM)(nil)
)

// New returns an FSM over st, resuming from the index st last applied.
func New(st *store.Store) (*FSM, error) {
	f := &FSM{store: st, advance: make(chan struct{})}
	idx, _, err := st.Applied()
	if err != nil {
		return nil, fmt.Errorf("fsm: read applied index: %w", err)
	}
	f.applied.Store(idx)
	return f, nil
}

// EntriesApplied returns how many command entries this FSM applied since it
// was created (entries skipped because the store already had them are not
// counted).
func (f *FSM) EntriesApplied() uint64 { return f.entries.Load() }

// AppliedIndex returns the index of the last entry whose effects are in the
// store.
func (f *FSM) AppliedIndex() uint64 { return f.applied.Load() }

func (f *FSM) setApplied(idx uint64) {
	f.applied.Store(idx)
	f.mu.Lock()
	close(f.advance)
	f.advance = make(chan struct{})
	f.mu.Unlock()
}

// Advanced returns a channel that is closed the next time the applied
// index moves.
func (f *FSM) Advanced() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.advance
}

// Apply implements raft.FSM.
func (f *FSM) Apply(l *raft.Log) interface{} {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyBatch implements raft.BatchingFSM. Entries at or below the store's
// applied index were applied before a restart and are skipped, which is what
// makes restarting without a snapshot restore safe.
func (f *FSM) ApplyBatch(logs []*raft.Log) []interface{} {
	start := time.Now()
	out := make([]interface{}, len(logs))
	applied := f.applied.Load()
	var (
		txn               *store.Txn
		lastIdx, lastTerm uint64
		results           []*EntryResult
	)
	for i, l := range logs {
		if l.Index <= applied {
			continue
		}
		lastIdx, lastTerm = l.Index, l.Term
		if l.Type != raft.LogCommand {
			continue
		}
		now, cmds, err := DecodeEntry(l.Data)
		if err != nil {
			// Leaders only propose entries that decode; an entry that does
			// not is corruption or a newer build's command. Stop.
			panic(fmt.Sprintf("fsm: entry %d: %v", l.Index, err))
		}
		if txn == nil {
			txn = f.store.Begin(l.Index)
		}
		txn.SetIndex(l.Index)
		res := &EntryResult{Index: l.Index, Now: now, Results: make([]Result, len(cmds)), Commands: cmds}
		for j, c := range cmds {
			if c.Type() > UngatedMax {
				// Every voter knew this type when it was admitted: the
				// gate need not ask again (raftnode's admitEntry).
				txn.RaiseCommandLevel(byte(c.Type()))
			}
			res.Results[j] = c.apply(txn, now)
		}
		out[i] = res
		results = append(results, res)
	}
	if lastIdx == 0 {
		return out
	}
	if txn == nil {
		txn = f.store.Begin(lastIdx)
	}
	if err := txn.Commit(lastIdx, lastTerm); err != nil {
		panic(fmt.Sprintf("fsm: %v", err))
	}
	f.entries.Add(uint64(len(results)))
	f.setApplied(lastIdx)
	if f.Observe != nil {
		f.Observe(len(logs), time.Since(start))
	}
	if f.OnApply != nil && len(results) > 0 {
		f.OnApply(results)
	}
	return out
}

// Snapshot implements raft.FSM. Raft calls it between applies; it makes the
// store durable up to now and pins a Pebble snapshot to stream.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	if err := f.store.Sync(); err != nil {
		return nil, err
	}
	sn, err := f.store.Snapshot()
	if err != nil {
		return nil, err
	}
	return &snapshot{sn: sn, observe: f.ObserveSnapshot}, nil
}

// Restore implements raft.FSM: it replaces the store with the snapshot.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	if err := f.store.Restore(rc); err != nil {
		return fmt.Errorf("fsm: restore: %w", err)
	}
	idx, _, err := f.store.Applied()
	if err != nil {
		return fmt.Errorf("fsm: restore: %w", err)
	}
	f.setApplied(idx)
	return nil
}

type snapshot struct {
	sn      *store.Snapshot
	observe func(int64, time.Duration)
}

func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	start := time.Now()
	n, err := s.sn.WriteTo(sink)
	if err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("fsm: persist snapshot: %w", err)
	}
	if err := sink.Close(); err != nil {
		return err
	}
	if s.observe != nil {
		s.observe(n, time.Since(start))
	}
	return nil
}

func (s *snapshot) Release() { s.sn.Close() }
