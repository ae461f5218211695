package raftnode

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	raftwal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
)

// Log store kinds (Config.LogStore).
const (
	// LogStoreBolt keeps the Raft log and stable state in one raft-boltdb
	// file, DataDir/raft/raft.db: two fsyncs per append. The default.
	LogStoreBolt = "bolt"
	// LogStoreWAL keeps them in hashicorp/raft-wal segment files under
	// DataDir/raft/wal: one fsync per append. Opt-in: the library calls
	// itself experimental.
	LogStoreWAL = "wal"
)

// logStore is what Raft needs from the log store; both kinds provide it.
type logStore interface {
	raft.LogStore
	raft.StableStore
	Close() error
}

// openLogStore opens the kind of log store the data directory already
// holds, which must be the configured kind: a node never switches stores
// behind the operator's back (the other store would look empty, and the
// node would rejoin as a blank member). An empty directory gets the
// configured kind (bolt when unset).
func openLogStore(dir, kind string, noFsync bool) (logStore, error) {
	if kind == "" {
		kind = LogStoreBolt
	}
	boltPath, walDir := filepath.Join(dir, "raft.db"), filepath.Join(dir, "wal")
	hasBolt, hasWAL := exists(boltPath), exists(walDir)
	switch {
	case kind != LogStoreBolt && kind != LogStoreWAL:
		return nil, fmt.Errorf("raftnode: unknown log store %q (want %q or %q)", kind, LogStoreBolt, LogStoreWAL)
	case kind == LogStoreWAL && hasBolt:
		return nil, fmt.Errorf("raftnode: %s holds a %s log (raft.db) but the %s log store was asked for; switching stores is not supported", dir, LogStoreBolt, LogStoreWAL)
	case kind == LogStoreBolt && hasWAL:
		return nil, fmt.Errorf("raftnode: %s holds a %s log (wal/) but the %s log store was asked for; switching stores is not supported", dir, LogStoreWAL, LogStoreBolt)
	case kind == LogStoreWAL && noFsync:
		return nil, errors.New("raftnode: the wal log store always fsyncs; -unsafe-no-fsync needs the bolt log store")
	}
	if kind == LogStoreBolt {
		s, err := raftboltdb.New(raftboltdb.Options{Path: boltPath, NoSync: noFsync})
		if err != nil {
			return nil, fmt.Errorf("raftnode: open raft log %s: %w", boltPath, err)
		}
		return s, nil
	}
	if err := os.MkdirAll(walDir, 0o755); err != nil {
		return nil, fmt.Errorf("raftnode: create %s: %w", walDir, err)
	}
	// Our own meta store, so that Close can close it: WAL.Close leaves
	// its meta database (a Bolt file) open and locked, and reopening the
	// directory in the same process would wait on that lock for ever.
	meta := &metadb.BoltMetaDB{}
	w, err := raftwal.Open(walDir, raftwal.WithMetaStore(meta))
	if err != nil {
		_ = meta.Close()
		return nil, fmt.Errorf("raftnode: open raft log %s: %w", walDir, err)
	}
	return &walStore{WAL: w, meta: meta}, nil
}

// walStore is a raft-wal log that also closes its meta database.
type walStore struct {
	*raftwal.WAL
	meta *metadb.BoltMetaDB
}

// Close closes the log, then its meta database.
func (s *walStore) Close() error {
	return errors.Join(s.WAL.Close(), s.meta.Close())
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
