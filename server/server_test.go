package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zaqar-raft/zaqar/server"
	"github.com/zaqar-raft/zaqar/service"
	"github.com/zaqar-raft/zaqar/testkit/testcluster"
)

// post posts n messages to queue q through node and fails the test on error.
func post(t *testing.T, node *testcluster.Node, q string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		body := fmt.Sprintf(`{"messages":[{"body":{"i":%d}}]}`, i)
		code, out := request(t, node, http.MethodPost, "/v2/queues/"+q+"/messages", body, nil)
		if code != http.StatusCreated {
			t.Fatalf("post to %s: %d %s", node.ID, code, out)
		}
	}
}

func request(t *testing.T, node *testcluster.Node, method, path, body string, hdr map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, node.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Client-ID", "6f0b2a4c-0d6e-4b53-9a77-5b2d1b3b7e01")
	req.Header.Set("X-Project-ID", "restart")
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s on %s: %v", method, path, node.ID, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// total returns the queue's message total as node sees it locally.
func total(t *testing.T, node *testcluster.Node, q string) string {
	t.Helper()
	_, out := request(t, node, http.MethodGet, "/v2/queues/"+q+"/stats", "", map[string]string{"X-Read-Consistency": "stale"})
	return out
}

func TestRestart_FollowerResumesFromItsStoreWithoutReplayingTheLog(t *testing.T) {
	c := testcluster.Start(t, 3)
	leader := c.Leader()
	post(t, leader, "r", 60)
	f := c.Followers()[0]
	c.WaitConverged(10 * time.Second)
	appliedBefore := f.Server.Node().FSM().AppliedIndex()
	c.Stop(f)

	post(t, leader, "r", 15)
	c.Restart(f)
	if got := f.Server.Node().FSM().AppliedIndex(); got < appliedBefore {
		t.Fatalf("restarted node resumed at index %d, below the %d its store had applied", got, appliedBefore)
	}
	c.WaitConverged(10 * time.Second)
	// Only what it missed (15 posts plus a few GC/config entries) is
	// applied after the restart; the 60 posts before it are skipped.
	if n := f.Server.Node().FSM().EntriesApplied(); n < 15 || n >= 60 {
		t.Fatalf("restarted node applied %d entries; want the ~15 it missed, not a replay of the log", n)
	}
	if a, b := total(t, f, "r"), total(t, leader, "r"); a != b || !strings.Contains(a, `"total":75`) {
		t.Fatalf("restarted follower stats %s, leader %s; want total 75 on both", a, b)
	}
}

func TestRestart_StoreBehindSnapshotIsRestoredFromIt(t *testing.T) {
	c := testcluster.Start(t, 3)
	leader := c.Leader()
	post(t, leader, "s", 40)
	c.WaitConverged(10 * time.Second)
	f := c.Followers()[0]
	if err := f.Server.Node().Raft().Snapshot().Error(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	c.Stop(f)
	// Losing the store entirely is the extreme case of a store behind the
	// newest snapshot (e.g. unsynced Pebble writes cut off by a crash).
	if err := os.RemoveAll(filepath.Join(f.Dir, "pebble")); err != nil {
		t.Fatal(err)
	}
	post(t, leader, "s", 5)
	c.Restart(f)
	digest := c.WaitConverged(15 * time.Second)
	if digest == ([32]byte{}) {
		t.Fatal("empty digest")
	}
	if out := total(t, f, "s"); !strings.Contains(out, `"total":45`) {
		t.Fatalf("restored follower stats %s; want total 45", out)
	}
}

func TestMembership_NodeJoinsThenIsRemoved(t *testing.T) {
	c := testcluster.Start(t, 3)
	post(t, c.Leader(), "m", 10)
	n4 := c.AddNode()
	c.WaitConverged(15 * time.Second)
	if out := total(t, n4, "m"); !strings.Contains(out, `"total":10`) {
		t.Fatalf("joined node stats %s; want total 10", out)
	}
	// Remove it through the admin API of a node that is not the leader.
	via := c.Followers()[0]
	if via == n4 {
		via = c.Followers()[1]
	}
	code, out := request(t, via, http.MethodPost, "/admin/cluster/remove", `{"id":"`+n4.ID+`"}`, map[string]string{"X-Roles": "admin"})
	if code != http.StatusNoContent {
		t.Fatalf("remove: %d %s", code, out)
	}
	c.Eventually(10*time.Second, func() bool { return len(c.Leader().Server.Node().Members()) == 3 }, "member count did not drop to 3")
	c.Stop(n4)
	post(t, c.Leader(), "m", 1)
}

func TestAdmin_RequiresAdminRole(t *testing.T) {
	c := testcluster.Start(t, 3)
	code, _ := request(t, c.Followers()[0], http.MethodGet, "/admin/cluster", "", nil)
	if code != http.StatusForbidden {
		t.Fatalf("status without admin role: %d, want 403", code)
	}
	code, out := request(t, c.Followers()[0], http.MethodGet, "/admin/cluster", "", map[string]string{"X-Roles": "admin"})
	if code != http.StatusOK || strings.Count(out, `"applied_index"`) != 3 {
		t.Fatalf("status: %d %s", code, out)
	}
}

func TestShutdown_LeaderHandsOverLeadershipBeforeStopping(t *testing.T) {
	c := testcluster.Start(t, 3)
	old := c.Leader()
	termBefore := old.Server.Node().Raft().CurrentTerm()
	c.Stop(old)
	// A transfer elects the new leader at once; a crash would need an
	// election timeout first. Either way writes must work again.
	start := time.Now()
	next := c.Leader()
	if next == old {
		t.Fatal("stopped node is still leader")
	}
	post(t, next, "h", 1)
	if term := next.Server.Node().Raft().CurrentTerm(); term <= termBefore {
		t.Fatalf("term did not advance: %d <= %d", term, termBefore)
	}
	t.Logf("new leader %s serving writes %s after the old leader stopped", next.ID, time.Since(start))
}

func TestTransferLeadership_ThroughAdminAPI(t *testing.T) {
	c := testcluster.Start(t, 3)
	old := c.Leader()
	target := c.Followers()[0]
	code, out := request(t, target, http.MethodPost, "/admin/cluster/transfer-leadership", `{"id":"`+target.ID+`"}`, map[string]string{"X-Roles": "admin"})
	if code != http.StatusNoContent {
		t.Fatalf("transfer: %d %s", code, out)
	}
	c.Eventually(10*time.Second, func() bool { return target.Server.Node().IsLeader() }, "leadership did not move from %s to %s", old.ID, target.ID)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := old.Server.Node().ReadBarrier(ctx); err != nil {
		t.Fatalf("read barrier on old leader after transfer: %v", err)
	}
}

// TestWebsocketPush_ASubscriptionOfAConnectionThatIsGoneEnds checks the
// chain from the notifier to this node's websocket connections: the
// server's adapter reports a connection the websocket server does not hold
// as gone, and the notifier then ends its subscription instead of
// retrying it.
func TestWebsocketPush_ASubscriptionOfAConnectionThatIsGoneEnds(t *testing.T) {
	c := testcluster.Start(t, 1)
	node := c.Leader()
	svc := node.Server.Service()
	caller := service.Caller{Project: "restart", ClientID: "6f0b2a4c0d6e4b539a775b2d1b3b7e01"}
	ctx := context.Background()
	sub, e := svc.SubscribeConnection(ctx, caller, "gone", node.ID, "no-such-connection", nil)
	if e != nil {
		t.Fatal(e)
	}
	post(t, node, "gone", 1)
	c.Eventually(10*time.Second, func() bool {
		_, e := svc.GetSubscription(ctx, caller, "gone", sub.ID)
		return e != nil && e.Status == http.StatusNotFound
	}, "the subscription of a connection that does not exist was not ended")
}

func TestSubscriberTypes_StartRefusesASchemeNoTransportServesAndTheServiceEnforcesTheList(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	for _, types := range [][]string{{"https", "gopher"}, {"wsconn"}} {
		_, err := server.Start(server.Config{NodeID: "node1", DataDir: dir, SubscriberTypes: types, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err == nil || !strings.Contains(err.Error(), "subscriber types") {
			t.Fatalf("Start with subscriber types %q: %v, want a refusal", types, err)
		}
		if _, statErr := os.Stat(dir); !os.IsNotExist(statErr) {
			t.Fatalf("a refused start created its data directory: %v", statErr)
		}
	}

	c := testcluster.Start(t, 1, testcluster.WithConfig(func(cfg *server.Config) { cfg.SubscriberTypes = []string{"https"} }))
	code, out := request(t, c.Leader(), http.MethodPost, "/v2/queues/q/subscriptions", `{"subscriber": "http://127.0.0.1:9/hook"}`, nil)
	want := `"The subscriber type of subscription must be supported in the list ['https']."`
	if code != http.StatusBadRequest || !strings.Contains(out, want) {
		t.Fatalf("http subscriber with only https allowed: %d %s", code, out)
	}
	if code, out := request(t, c.Leader(), http.MethodPost, "/v2/queues/q/subscriptions", `{"subscriber": "https://example.com/hook"}`, nil); code != http.StatusCreated {
		t.Fatalf("https subscriber: %d %s", code, out)
	}
}
