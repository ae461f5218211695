package clustertest

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

var (
	opsSavedRE    = regexp.MustCompile(`saved .*: (\d+) bytes, state at index (\d+), checksum verified`)
	opsRestoredRE = regexp.MustCompile(`state at index (\d+), digest ([0-9a-f]{64})`)
)

// opsSave runs zaqarctl snapshot save against p and returns the applied
// index the backup holds.
func opsSave(t *testing.T, p *proc, file string) (uint64, time.Duration) {
	t.Helper()
	start := time.Now()
	out := opsMustCtl(t, p, "snapshot", "save", file)
	took := time.Since(start)
	m := opsSavedRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("zaqarctl snapshot save said %q", out)
	}
	idx, _ := strconv.ParseUint(m[2], 10, 64)
	if size, _ := strconv.ParseInt(m[1], 10, 64); size != opsFileSize(file) {
		t.Fatalf("zaqarctl reported %s bytes but %s has %d", m[1], file, opsFileSize(file))
	}
	if _, err := os.Stat(file + ".partial"); err == nil {
		t.Errorf("%s.partial was left behind", file)
	}
	return idx, took
}

// opsRestoredCluster restores file into the empty data directories of
// n new nodes (ids prefix1..prefixN) with zaqarctl snapshot restore, starts
// them without -bootstrap and waits until they serve. It checks that every
// restored store has the digest want (unless want is empty) at index.
func opsRestoredCluster(t *testing.T, file, prefix string, n int, index uint64, want string) *cluster {
	t.Helper()
	c, base := opsNewCluster(t)
	for i := 1; i <= n; i++ {
		opsNewProc(t, c, base, fmt.Sprintf("%s%d", prefix, i))
	}
	peers := opsPeers(c.Nodes)
	for _, p := range c.Nodes {
		out := opsMustCtl(t, nil, "snapshot", "restore", file, p.DataDir, peers)
		m := opsRestoredRE.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("zaqarctl snapshot restore said %q", out)
		}
		if got, _ := strconv.ParseUint(m[1], 10, 64); got != index {
			t.Errorf("restore into %s: state at index %d, want %d", p.ID, got, index)
		}
		if want != "" && m[2] != want {
			t.Errorf("restore into %s: digest %s; the source's digest at index %d is %s", p.ID, m[2], index, want)
		}
		// A second restore into the same directory must be refused.
		if out, err := opsCtl(t, nil, "snapshot", "restore", file, p.DataDir, peers); err == nil {
			t.Errorf("a second restore into %s's data directory succeeded: %s", p.ID, out)
		}
	}
	for _, p := range c.Nodes {
		if err := p.start(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.waitForLeader(60 * time.Second); err != nil {
		t.Fatalf("the restored cluster elected no leader: %v", err)
	}
	for _, p := range c.Nodes {
		opsWaitServing(t, p, 60*time.Second)
	}
	return c
}

// TestOps_BackupUnderLoadAndRestoreIntoANewCluster takes two backups of a
// 3-node cluster with zaqarctl snapshot save (through a follower):
//
//   - during load: restored into a new single-node cluster, it must hold
//     every post acknowledged before the backup began;
//   - after the load stopped and the replicas converged: its index must be
//     the source's applied index, every store restored from it must have
//     the source's digest at that index, and the new 3-node cluster built
//     from it must list exactly the source's messages. That new cluster
//     then grows by an empty node, which must receive the restored data
//     (a snapshot), not just the new cluster's log.
func TestOps_BackupUnderLoadAndRestoreIntoANewCluster(t *testing.T) {
	src := opsStartCluster(t, 3)
	lb := opsNewBalancer(t, src.Nodes...)
	const project = "p-backup"
	load := opsStartLoad(t, lb, project, 4, "backup-a", "backup-b")
	load.WaitAcked(t, 300, 90*time.Second)

	// 1. A backup while clients write.
	follower := src.Followers()[0]
	ackedBefore := load.Acked()
	began := time.Now()
	liveFile := opsTempFile(t, "live.snap")
	liveIndex, took := opsSave(t, follower, liveFile)
	w := load.Window(began, time.Now())
	t.Logf("backup under load through %s: %d bytes at index %d in %s; clients meanwhile: %d requests ok, p99 %s, max %s",
		follower.ID, opsFileSize(liveFile), liveIndex, took.Round(time.Millisecond), w.Requests, w.P99.Round(time.Millisecond), w.MaxLat.Round(time.Millisecond))
	load.WaitAcked(t, 100, 60*time.Second)
	load.Stop()
	t.Logf("load on the source: %s", load.Summary())
	opsCheckClientErrors(t, load, nil)

	// 2. A backup of the quiet, converged cluster, compared with the
	// source's digest at the same index. Maintenance can apply an entry at
	// any moment (GC), so the digest is read before and after the backup
	// and the attempt repeated unless both and the backup agree.
	var quietFile string
	var quiet nodeDigest
	for attempt := 1; ; attempt++ {
		quiet = opsWaitConverged(t, src.Nodes, 60*time.Second)
		quietFile = opsTempFile(t, "quiet.snap")
		idx, took := opsSave(t, follower, quietFile)
		after, err := opsDigest(follower)
		if err != nil {
			t.Fatal(err)
		}
		if idx == quiet.AppliedIndex && *after == quiet {
			t.Logf("backup of the quiet cluster: %d bytes at index %d in %s (source digest %.16s…)", opsFileSize(quietFile), idx, took.Round(time.Millisecond), quiet.Digest)
			break
		}
		if attempt == 3 {
			t.Fatalf("the backup's index %d does not match the converged source (%d before, %d after) in 3 attempts", idx, quiet.AppliedIndex, after.AppliedIndex)
		}
		t.Logf("an entry was applied during attempt %d (index %d before, backup %d, %d after); again", attempt, quiet.AppliedIndex, idx, after.AppliedIndex)
	}
	out := opsMustCtl(t, nil, "snapshot", "verify", quietFile)
	if !strings.Contains(out, fmt.Sprintf("valid, state at index %d", quiet.AppliedIndex)) {
		t.Errorf("zaqarctl snapshot verify said %q", out)
	}
	// A damaged copy is refused.
	damaged := opsTempFile(t, "damaged.snap")
	b, err := os.ReadFile(quietFile)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(damaged, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := opsCtl(t, nil, "snapshot", "verify", damaged); err == nil {
		t.Errorf("zaqarctl snapshot verify accepted a damaged backup: %s", out)
	}
	if out, err := opsCtl(t, nil, "snapshot", "restore", damaged, opsTempFile(t, "never"), "x=127.0.0.1:1"); err == nil {
		t.Errorf("zaqarctl snapshot restore accepted a damaged backup: %s", out)
	}
	// The source's content, to compare the restored cluster with.
	srcCount := opsCheckAllPresent(t, follower, load, false)
	src.killAll()

	// 3. Restore the quiet backup into a new 3-node cluster.
	start := time.Now()
	restored := opsRestoredCluster(t, quietFile, "r", 3, quiet.AppliedIndex, quiet.Digest)
	t.Logf("restore into a new 3-node cluster: restored, started and serving in %s", time.Since(start).Round(time.Millisecond))
	for _, p := range restored.Nodes {
		if n := opsCheckAllPresent(t, p, load, true); n != srcCount {
			t.Errorf("restored %s lists %d messages; the source had %d", p.ID, n, srcCount)
		}
	}
	rd := opsWaitConverged(t, restored.Nodes, 60*time.Second)
	if rd.AppliedIndex < quiet.AppliedIndex {
		t.Errorf("the restored cluster is at index %d, below the backup's %d", rd.AppliedIndex, quiet.AppliedIndex)
	}

	// The new cluster takes writes and grows by an empty node, which gets
	// the restored data from the leader's snapshot.
	rlb := opsNewBalancer(t, restored.Nodes...)
	more := opsStartLoad(t, rlb, project, 2, "backup-c")
	more.WaitAcked(t, 50, 60*time.Second)
	grow := time.Now()
	r4 := opsNewProc(t, restored, opsBase(restored), "r4", "-join", opsRaftAddrs(restored.Nodes), "-raft-log-level", "info")
	if err := r4.start(); err != nil {
		t.Fatal(err)
	}
	opsWaitServing(t, r4, 60*time.Second)
	more.WaitAcked(t, 20, 60*time.Second)
	more.Stop()
	opsCheckClientErrors(t, more, nil)
	opsRequireSnapshotInstalled(t, r4)
	opsWaitConverged(t, restored.Nodes, 60*time.Second)
	if n := opsCheckAllPresent(t, r4, load, true); n != srcCount {
		t.Errorf("the node added to the restored cluster lists %d messages of %s; want the %d restored ones", n, load.queues, srcCount)
	}
	opsCheckAllPresent(t, r4, more, true)
	t.Logf("the restored cluster grew by an empty node in %s", time.Since(grow).Round(time.Millisecond))
	restored.killAll()

	// 4. Restore the backup taken under load into a single-node cluster: it
	// holds everything acknowledged before the backup began.
	start = time.Now()
	single := opsRestoredCluster(t, liveFile, "s", 1, liveIndex, "")
	t.Logf("restore of the backup taken under load into a single node: serving in %s", time.Since(start).Round(time.Millisecond))
	var later []int64
	for _, a := range load.Acked()[len(ackedBefore):] {
		later = append(later, a.N)
	}
	for _, e := range load.Errors() {
		if e.Op == "post" {
			later = append(later, e.N)
		}
	}
	n := opsCheckPresent(t, single.Nodes[0], project, load.queues, ackedBefore, later, false)
	t.Logf("the backup taken under load holds %d messages: the %d acknowledged before it began, plus %d of the %d posted while or after it was taken",
		n, len(ackedBefore), n-len(ackedBefore), len(later))
	if n < len(ackedBefore) {
		t.Errorf("the backup taken under load holds %d messages, fewer than the %d acknowledged before it began", n, len(ackedBefore))
	}
}
