package clustertest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestOps_RollingRestartUnderLoadFailsNoClientRequest restarts every node
// of a 3-node cluster in turn while clients post and read back through a
// load balancer, following docs/operations.md: zaqarctl drain, wait until
// the balancer has taken the node out and nothing is in flight to it,
// SIGTERM, start it again, wait until /v2/ping answers 204. The followers
// go first and the leader last. No client request may fail; the only
// retries allowed are 503s from a draining node, which the client repeats
// on another node.
func TestOps_RollingRestartUnderLoadFailsNoClientRequest(t *testing.T) {
	c := opsStartCluster(t, 3)
	opsRollingRestartUnderLoad(t, c, "p-rolling", nil)
}

// opsRollingRestartUnderLoad is the procedure and the checks of
// TestOps_RollingRestartUnderLoadFailsNoClientRequest on cluster c, with
// the load in project. beforeFirst, if not nil, runs once the load is
// going, before the first node is taken out.
func opsRollingRestartUnderLoad(t *testing.T, c *cluster, project string, beforeFirst func()) {
	t.Helper()
	lb := opsNewBalancer(t, c.Nodes...)
	load := opsStartLoad(t, lb, project, 4, "rolling-a", "rolling-b", "rolling-c")
	load.WaitAcked(t, 60, 60*time.Second)
	if beforeFirst != nil {
		beforeFirst()
	}

	leader := c.Leader()
	order := append(c.Followers(), leader)
	began := time.Now()
	var handoffs []opsHandoff
	for i, p := range order {
		wasLeader := p == leader
		stepStart := time.Now()

		// A websocket client on the node is told to go away (1001).
		var ws *websocket.Conn
		if i == 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			conn, err := p.dialWS(ctx)
			cancel()
			if err != nil {
				t.Fatalf("websocket to %s: %v", p.ID, err)
			}
			ws = conn
		}

		drained := opsTakeOut(t, lb, p, &handoffs)
		if ws != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, _, err := ws.Read(ctx)
			cancel()
			if got := websocket.CloseStatus(err); got != websocket.StatusGoingAway {
				t.Errorf("a websocket on drained %s ended with %v (close status %d), want 1001 going away", p.ID, err, got)
			}
			ws.CloseNow()
		}

		stopStart := time.Now()
		c.Stop(p)
		stopped := time.Since(stopStart)
		if !strings.Contains(p.currentRunLog(), "draining") {
			t.Errorf("%s did not log that it was draining", p.ID)
		}

		restartStart := time.Now()
		c.Restart(p)
		opsWaitServing(t, p, 60*time.Second)
		c.waitUntil(30*time.Second, "the balancer to put "+p.ID+" back", func() (bool, string) {
			return lb.InRotation(p), "not in rotation"
		})
		back := time.Since(restartStart)
		if _, draining, err := opsNodeState(p); err != nil || draining {
			t.Fatalf("%s after restart: draining=%v, %v", p.ID, draining, err)
		}
		// Traffic reaches the restarted node again before the next one goes.
		load.WaitAcked(t, 30, 60*time.Second)
		w := load.Window(stepStart, time.Now())
		t.Logf("rolling restart of %s (leader before: %v): drain + out of rotation %s, SIGTERM to exit %s, start to serving and back in rotation %s; whole step %s; clients: %d requests ok, p99 %s, max %s, %d client errors so far",
			p.ID, wasLeader, drained.Round(time.Millisecond), stopped.Round(time.Millisecond), back.Round(time.Millisecond),
			time.Since(stepStart).Round(time.Millisecond), w.Requests, w.P99.Round(time.Millisecond), w.MaxLat.Round(time.Millisecond), len(load.Errors()))
	}
	total := time.Since(began)
	load.Stop()
	t.Logf("rolling restart of 3 nodes took %s; load: %s", total.Round(time.Millisecond), load.Summary())
	opsCheckClientErrors(t, load, handoffs)
	if n := load.refusedRetry.Load(); n != 0 {
		t.Errorf("%d requests hit a refused connection: a node stopped while the balancer still sent it traffic", n)
	}

	// Every acknowledged post is on every node, and the replicas are identical.
	opsWaitConverged(t, c.Nodes, 60*time.Second)
	for _, p := range c.Nodes {
		opsCheckAllPresent(t, p, load, true)
	}
	if st := opsMustCtl(t, c.Nodes[0], "status"); strings.Count(st, "Leader") != 1 || strings.Count(st, "Follower") != 2 {
		t.Errorf("zaqarctl status after the rolling restart:\n%s", st)
	} else {
		t.Logf("zaqarctl status after the rolling restart:\n%s", st)
	}
}
