package clustertest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// opsSnapshotArgs make the cluster snapshot and truncate its log often, so
// that nodes added later catch up by receiving a snapshot, not only by
// replaying the log.
var opsSnapshotArgs = []string{"-raft-snapshot-threshold", "300", "-raft-trailing-logs", "100", "-raft-snapshot-interval", "1s"}

// TestOps_GrowThreeToFiveAndShrinkBackUnderLoad follows docs/operations.md
// while clients post and read back through a load balancer: two empty
// nodes are started with -join (the cluster adds them as voters and they
// catch up from a snapshot), then the leader and one original follower are
// retired with zaqarctl drain, zaqarctl remove and SIGTERM. No client
// request may fail, and at the end the three remaining nodes hold every
// acknowledged post.
func TestOps_GrowThreeToFiveAndShrinkBackUnderLoad(t *testing.T) {
	c := opsStartCluster(t, 3, opsSnapshotArgs...)
	original := append([]*proc(nil), c.Nodes...)
	lb := opsNewBalancer(t, c.Nodes...)
	const project = "p-grow"
	load := opsStartLoad(t, lb, project, 4, "grow-a", "grow-b")
	// Enough entries that a snapshot has been taken and the log truncated
	// before the new nodes join.
	load.WaitAcked(t, 400, 90*time.Second)
	opsWaitSnapshot(t, c.Leader())

	// Grow: start node4 and node5 empty with -join.
	for _, id := range []string{"node4", "node5"} {
		start := time.Now()
		p := opsNewProc(t, c, opsBase(c), id, append([]string{"-join", opsRaftAddrs(original), "-raft-log-level", "info"}, opsSnapshotArgs...)...)
		if err := p.start(); err != nil {
			t.Fatal(err)
		}
		c.waitUntil(60*time.Second, id+" to become a voter", func() (bool, string) {
			got, err := opsMembers(original[0])
			if err != nil {
				return false, err.Error()
			}
			return strings.Contains(","+strings.Join(got, ",")+",", ","+id+","), strings.Join(got, ",")
		})
		voter := time.Since(start)
		opsWaitServing(t, p, 60*time.Second)
		lb.Add(p)
		c.waitUntil(30*time.Second, "the balancer to put "+id+" in rotation", func() (bool, string) { return lb.InRotation(p), "" })
		w := load.Window(start, time.Now())
		t.Logf("grow: %s started with -join: a voter after %s, serving (caught up) after %s; clients meanwhile: %d requests ok, p99 %s, max %s, %d client errors so far",
			id, voter.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), w.Requests, w.P99.Round(time.Millisecond), w.MaxLat.Round(time.Millisecond), len(load.Errors()))
	}
	opsWaitVoters(t, c.Running(), c.Running(), 30*time.Second)
	status := opsMustCtl(t, c.Nodes[3], "status")
	if strings.Count(status, "Follower") != 4 || strings.Count(status, "Leader") != 1 {
		t.Errorf("zaqarctl status after growing to 5:\n%s", status)
	}
	t.Logf("zaqarctl status after growing to 5:\n%s", status)
	for _, p := range c.Nodes[3:] {
		opsRequireSnapshotInstalled(t, p)
	}
	load.WaitAcked(t, 100, 60*time.Second)

	// Shrink: retire the leader and one original follower.
	var handoffs []opsHandoff
	leader := c.Leader()
	var retire []*proc
	retire = append(retire, leader)
	for _, p := range original {
		if p != leader {
			retire = append(retire, p)
			break
		}
	}
	for _, p := range retire {
		start := time.Now()
		wasLeader := p == leader
		opsTakeOut(t, lb, p, &handoffs)
		var via *proc
		for _, o := range c.Running() {
			if o != p {
				via = o
				break
			}
		}
		opsMustCtl(t, via, "remove", p.ID)
		c.Stop(p)
		lb.Remove(p)
		w := load.Window(start, time.Now())
		t.Logf("shrink: %s (leader: %v) drained, removed and stopped in %s; clients meanwhile: %d requests ok, p99 %s, max %s, %d client errors so far",
			p.ID, wasLeader, time.Since(start).Round(time.Millisecond), w.Requests, w.P99.Round(time.Millisecond), w.MaxLat.Round(time.Millisecond), len(load.Errors()))
	}
	remaining := c.Running()
	if len(remaining) != 3 {
		t.Fatalf("%d nodes running after the shrink, want 3", len(remaining))
	}
	opsWaitVoters(t, remaining, remaining, 30*time.Second)
	load.WaitAcked(t, 100, 60*time.Second)
	load.Stop()
	t.Logf("grow 3→5 and shrink 5→3 under load: %s", load.Summary())
	opsCheckClientErrors(t, load, handoffs)

	opsWaitConverged(t, remaining, 60*time.Second)
	for _, p := range remaining {
		opsCheckAllPresent(t, p, load, true)
	}
}

// TestOps_ReplaceANodeThatLostItsDisk kills a follower under load and
// deletes its data directory (the disk is gone). The operator removes the
// dead member with zaqarctl remove and starts a replacement with the same
// id on new addresses and an empty disk, with -join. The replacement must
// end up with every acknowledged post and a state identical to the
// others'. The only client errors allowed are requests that were in flight
// on the node at the moment it died.
func TestOps_ReplaceANodeThatLostItsDisk(t *testing.T) {
	c := opsStartCluster(t, 3, opsSnapshotArgs...)
	lb := opsNewBalancer(t, c.Nodes...)
	const project = "p-disk"
	load := opsStartLoad(t, lb, project, 4, "disk-a", "disk-b")
	load.WaitAcked(t, 400, 90*time.Second)
	opsWaitSnapshot(t, c.Leader())

	victim := c.Followers()[0]
	var survivors []*proc
	for _, p := range c.Nodes {
		if p != victim {
			survivors = append(survivors, p)
		}
	}
	killedAt := time.Now()
	c.Kill(victim)
	if err := os.RemoveAll(victim.DataDir); err != nil {
		t.Fatal(err)
	}
	lb.Remove(victim)
	lostID := victim.ID
	victim.ID = lostID + "-lost-disk" // the harness looks nodes up by id; the replacement takes it
	t.Logf("killed %s and deleted its data directory", lostID)
	load.WaitAcked(t, 100, 60*time.Second)

	start := time.Now()
	opsMustCtl(t, survivors[0], "remove", lostID)
	repl := opsNewProc(t, c, opsBase(c), lostID, append([]string{"-join", opsRaftAddrs(survivors), "-raft-log-level", "info"}, opsSnapshotArgs...)...)
	if err := repl.start(); err != nil {
		t.Fatal(err)
	}
	opsWaitVoters(t, survivors, append(append([]*proc(nil), survivors...), repl), 60*time.Second)
	opsWaitServing(t, repl, 60*time.Second)
	lb.Add(repl)
	replaced := time.Since(start)
	w := load.Window(start, time.Now())
	t.Logf("replace: remove + start empty %s with -join until it serves took %s; clients meanwhile: %d requests ok, p99 %s, max %s",
		lostID, replaced.Round(time.Millisecond), w.Requests, w.P99.Round(time.Millisecond), w.MaxLat.Round(time.Millisecond))
	opsRequireSnapshotInstalled(t, repl)
	c.waitUntil(30*time.Second, "the balancer to put the replacement in rotation", func() (bool, string) { return lb.InRotation(repl), "" })
	load.WaitAcked(t, 100, 60*time.Second)
	load.Stop()
	t.Logf("replace a node that lost its disk, under load: %s", load.Summary())

	// Client errors: only requests in flight on the node when it died.
	crashed := 0
	for _, e := range load.Errors() {
		if e.Node == lostID && e.At.After(killedAt.Add(-time.Second)) && e.At.Before(killedAt.Add(5*time.Second)) {
			crashed++
			continue
		}
		t.Errorf("client error not explained by the crash of %s at %s: %s", lostID, killedAt.Format("15:04:05.000"), e)
	}
	t.Logf("%d requests were in flight on %s when it was killed and failed with it", crashed, lostID)

	nodes := append(append([]*proc(nil), survivors...), repl)
	opsWaitConverged(t, nodes, 60*time.Second)
	opsCheckAllPresent(t, repl, load, true)
}

// opsWaitSnapshot waits until p has persisted a Raft snapshot (and so, with
// opsSnapshotArgs, truncated the start of its log).
func opsWaitSnapshot(t *testing.T, p *proc) {
	t.Helper()
	c := &cluster{t: t}
	c.waitUntil(60*time.Second, p.ID+" to take a snapshot", func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n, err := metric(ctx, p, "zaqar_raft_snapshots_total")
		return err == nil && n >= 1, fmt.Sprintf("zaqar_raft_snapshots_total %v %v", n, err)
	})
}

// opsRequireSnapshotInstalled checks that p (started with -raft-log-level
// info) caught up by installing the leader's snapshot.
func opsRequireSnapshotInstalled(t *testing.T, p *proc) {
	t.Helper()
	if !strings.Contains(p.Log(), "Installed remote snapshot") {
		t.Errorf("%s did not install a snapshot from the leader (its log has no \"Installed remote snapshot\")", p.ID)
	}
}
