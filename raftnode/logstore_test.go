package raftnode

import (
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

func TestOpenLogStore_KeepsTheKindADirectoryHolds(t *testing.T) {
	for _, kind := range []string{LogStoreBolt, LogStoreWAL} {
		dir := t.TempDir()
		s, err := openLogStore(dir, kind, false)
		if err != nil {
			t.Fatalf("%s: open an empty directory: %v", kind, err)
		}
		if err := s.StoreLogs([]*raft.Log{{Index: 1, Term: 1, Type: raft.LogCommand, Data: []byte("x")}}); err != nil {
			t.Fatalf("%s: append: %v", kind, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		// Reopened with the same kind, the entry is there.
		s, err = openLogStore(dir, kind, false)
		if err != nil {
			t.Fatalf("%s: reopen: %v", kind, err)
		}
		var l raft.Log
		if err := s.GetLog(1, &l); err != nil || string(l.Data) != "x" {
			t.Fatalf("%s: entry 1 after reopen = %q, %v", kind, l.Data, err)
		}
		s.Close()
		// Asked for the other kind, the directory is refused.
		other := LogStoreWAL
		if kind == LogStoreWAL {
			other = LogStoreBolt
		}
		if _, err := openLogStore(dir, other, false); err == nil || !strings.Contains(err.Error(), "switching stores is not supported") {
			t.Errorf("a %s directory opened as %s: %v", kind, other, err)
		}
	}
}

func TestOpenLogStore_RefusesWhatItCannotHonour(t *testing.T) {
	if _, err := openLogStore(t.TempDir(), "sqlite", false); err == nil {
		t.Error("an unknown log store kind was accepted")
	}
	if _, err := openLogStore(t.TempDir(), LogStoreWAL, true); err == nil {
		t.Error("the wal store was opened without fsync, which it cannot do")
	}
	s, err := openLogStore(t.TempDir(), "", false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, ok := s.(interface{ Sync() error }); !ok {
		t.Errorf("the default log store is %T, want raft-boltdb's", s)
	}
}
