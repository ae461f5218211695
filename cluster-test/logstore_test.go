package clustertest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLogStoreWAL_KilledLeaderLosesNoAcknowledgedPost runs a cluster on the
// opt-in raft-wal log store (-raft-log-store wal): every node keeps its log
// in raft/wal and none in raft/raft.db; posts acknowledged before the leader
// is SIGKILLed and after survive its restart on every node; the nodes
// converge to one digest; and a node refuses to start its data directory
// with the other kind of log store.
func TestLogStoreWAL_KilledLeaderLosesNoAcknowledgedPost(t *testing.T) {
	c := startCluster(t, 3, "-raft-log-store", "wal")
	for _, p := range c.Running() {
		if _, err := os.Stat(filepath.Join(p.DataDir, "raft", "wal")); err != nil {
			t.Errorf("%s has no raft/wal directory: %v", p.ID, err)
		}
		if _, err := os.Stat(filepath.Join(p.DataDir, "raft", "raft.db")); err == nil {
			t.Errorf("%s has a raft/raft.db beside its wal", p.ID)
		}
	}
	const project, queue = "p-wal", "wal"
	const before, after = 200, 60
	postInParallel(t, c.Running(), project, queue, "before", before)

	leader := c.Leader()
	c.Kill(leader)
	if _, err := c.waitForLeader(15 * time.Second); err != nil {
		t.Fatalf("no new leader after SIGKILL of %s: %v", leader.ID, err)
	}
	postInParallel(t, c.Running(), project, queue, "after", after)

	c.Restart(leader)
	c.WaitApplied(60 * time.Second)
	opsWaitConverged(t, c.Running(), 30*time.Second)
	ctx := context.Background()
	for _, p := range c.Running() {
		ms, err := newRESTClient(p, "55555555-6666-4777-8888-999999999999", project).listAll(ctx, queue)
		if err != nil {
			t.Fatalf("listing on %s: %v", p.ID, err)
		}
		if len(ms) != before+after {
			t.Errorf("%s lists %d messages, want the %d acknowledged", p.ID, len(ms), before+after)
		}
	}

	// The same directory with the other store: refused, not started empty.
	f := c.Followers()[0]
	c.Stop(f)
	f.args = append(f.args, "-raft-log-store", "bolt")
	if err := f.start(); err != nil {
		t.Fatal(err)
	}
	if err := poll(15*time.Second, func() (bool, string) { return !f.Running(), "still running" }); err != nil {
		t.Fatalf("%s started a wal data directory with -raft-log-store bolt: %v", f.ID, err)
	}
	if log := f.LogOfRun(f.starts); !strings.Contains(log, "switching stores is not supported") {
		t.Errorf("%s exited without saying why; its log:\n%s", f.ID, tailLines(log, 10))
	}
}
