package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/zaqar-raft/zaqar/server"
	"github.com/zaqar-raft/zaqar/testkit/testcluster"
)

// claimAnswer is what a claim request got.
type claimAnswer struct {
	code int
	body string
	err  error
}

// claimWaiting sends a claim with ?wait= through node and returns the
// channel its answer arrives on.
func claimWaiting(ctx context.Context, node *testcluster.Node, q, wait string) <-chan claimAnswer {
	out := make(chan claimAnswer, 1)
	go func() {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, node.URL()+"/v2/queues/"+q+"/claims?limit=1&wait="+wait,
			strings.NewReader(`{"ttl": 60, "grace": 60}`))
		if err != nil {
			out <- claimAnswer{err: err}
			return
		}
		req.Header.Set("Client-ID", "6f0b2a4c-0d6e-4b53-9a77-5b2d1b3b7e02")
		req.Header.Set("X-Project-ID", "restart")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			out <- claimAnswer{err: err}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		out <- claimAnswer{code: resp.StatusCode, body: string(b)}
	}()
	return out
}

// waiters waits until node holds n waiting claims.
func waiters(c *testcluster.Cluster, node *testcluster.Node, n int) {
	c.Eventually(10*time.Second, func() bool { return node.Server.Service().ClaimWaiters() == n },
		"%s holds %d waiting claims, want %d", node.ID, node.Server.Service().ClaimWaiters(), n)
}

// The wait is 20 s; an answer of 201 proves the wake-up, since a wait
// that runs out answers 204 without claiming again.
func wantWokenWithMessage(t *testing.T, ans <-chan claimAnswer, took time.Time) {
	t.Helper()
	a := <-ans
	if a.err != nil || a.code != http.StatusCreated {
		t.Fatalf("waiting claim answered %d %s (%v), want 201 with the posted message", a.code, a.body, a.err)
	}
	var doc struct{ Messages []json.RawMessage }
	if json.Unmarshal([]byte(a.body), &doc) != nil || len(doc.Messages) != 1 {
		t.Fatalf("waiting claim answered %s, want the one posted message", a.body)
	}
	if d := time.Since(took); d >= 20*time.Second {
		t.Fatalf("the claim answered after %s: it was not woken before its 20 s deadline", d)
	}
}

func TestLongPollClaim_AWaiterOnAFollowerOrTheLeaderIsWokenByAPostThroughAnotherNode(t *testing.T) {
	c := testcluster.Start(t, 3)
	leader, follower := c.Leader(), c.Followers()[0]
	for _, tc := range []struct {
		name           string
		waitOn, postTo *testcluster.Node
	}{
		{"waiter on a follower, post through the leader", follower, leader},
		{"waiter on the leader, post through a follower", leader, follower},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := "lp-" + tc.waitOn.ID
			if code, out := request(t, leader, http.MethodPut, "/v2/queues/"+q, "", nil); code != http.StatusCreated {
				t.Fatalf("create queue: %d %s", code, out)
			}
			start := time.Now()
			ans := claimWaiting(context.Background(), tc.waitOn, q, "20")
			waiters(c, tc.waitOn, 1)
			post(t, tc.postTo, q, 1)
			wantWokenWithMessage(t, ans, start)
			waiters(c, tc.waitOn, 0)
		})
	}
}

func TestLongPollClaim_AClaimNobodyFeedsAnswers204WhenItsWaitEnds(t *testing.T) {
	c := testcluster.Start(t, 1)
	n := c.Leader()
	a := <-claimWaiting(context.Background(), n, "lp-empty", "1")
	if a.err != nil || a.code != http.StatusNoContent {
		t.Fatalf("a claim that waited 1 s on an empty queue answered %d %s (%v), want 204", a.code, a.body, a.err)
	}
	waiters(c, n, 0)
}

func TestLongPollClaim_AnotherQueueOrADelayedMessageDoesNotEndTheWait(t *testing.T) {
	c := testcluster.Start(t, 1)
	n := c.Leader()
	ans := claimWaiting(context.Background(), n, "lp-a", "2")
	waiters(c, n, 1)
	post(t, n, "lp-b", 1)
	if code, out := request(t, n, http.MethodPut, "/v2/queues/lp-a", `{"_default_message_delay": 60}`, nil); code != http.StatusCreated {
		t.Fatalf("create a delay queue: %d %s", code, out)
	}
	if code, out := request(t, n, http.MethodPost, "/v2/queues/lp-a/messages", `{"messages":[{"body":1}]}`, nil); code != http.StatusCreated {
		t.Fatalf("post a delayed message: %d %s", code, out)
	}
	if a := <-ans; a.err != nil || a.code != http.StatusNoContent {
		t.Fatalf("the claim answered %d %s (%v); nothing it could claim was posted, want 204", a.code, a.body, a.err)
	}
}

// Time alone makes a delayed message claimable: no apply marks it, so the
// waiter's own timer (from the depth index) must try again then.
func TestLongPollClaim_AWaiterTakesADelayedMessageWhenItsDelayEnds(t *testing.T) {
	c := testcluster.Start(t, 3)
	waitDepthIndexed(t, c)
	leader, follower := c.Leader(), c.Followers()[0]
	if code, out := request(t, leader, http.MethodPut, "/v2/queues/lp-delay", `{"_default_message_delay": 2}`, nil); code != http.StatusCreated {
		t.Fatalf("create a delay queue: %d %s", code, out)
	}
	start := time.Now()
	ans := claimWaiting(context.Background(), follower, "lp-delay", "20")
	waiters(c, follower, 1)
	if code, out := request(t, leader, http.MethodPost, "/v2/queues/lp-delay/messages", `{"messages":[{"body":1}]}`, nil); code != http.StatusCreated {
		t.Fatalf("post a delayed message: %d %s", code, out)
	}
	wantWokenWithMessage(t, ans, start)
	if d := time.Since(start); d < 2*time.Second {
		t.Fatalf("the claim took the message %s after it was posted with a 2 s delay", d)
	}
}

func TestLongPollClaim_AClientThatGoesAwayReleasesItsWaiter(t *testing.T) {
	c := testcluster.Start(t, 1)
	n := c.Leader()
	ctx, cancel := context.WithCancel(context.Background())
	ans := claimWaiting(ctx, n, "lp-gone", "20")
	waiters(c, n, 1)
	cancel()
	<-ans
	waiters(c, n, 0)
}

func TestLongPollClaim_BeyondTheBoundAClaimAnswersAtOnce(t *testing.T) {
	c := testcluster.Start(t, 1, testcluster.WithConfig(func(cfg *server.Config) { cfg.MaxClaimWaiters = 1 }))
	n := c.Leader()
	first := claimWaiting(context.Background(), n, "lp-bound", "20")
	waiters(c, n, 1)
	start := time.Now()
	a := <-claimWaiting(context.Background(), n, "lp-bound", "20")
	if a.err != nil || a.code != http.StatusNoContent {
		t.Fatalf("a claim beyond the bound answered %d %s (%v), want 204", a.code, a.body, a.err)
	}
	select {
	case a := <-first:
		t.Fatalf("the first waiter answered %d before anything was posted", a.code)
	default:
	}
	post(t, n, "lp-bound", 1)
	wantWokenWithMessage(t, first, start)
}

func TestLongPollClaim_DrainAnswersWaitingClaimsAtOnce(t *testing.T) {
	c := testcluster.Start(t, 1)
	n := c.Leader()
	ans := claimWaiting(context.Background(), n, "lp-drain", "20")
	waiters(c, n, 1)
	start := time.Now()
	if err := n.Server.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if a := <-ans; a.err != nil || a.code != http.StatusNoContent {
		t.Fatalf("a waiting claim answered %d %s (%v) on drain, want 204", a.code, a.body, a.err)
	}
	if d := time.Since(start); d >= 20*time.Second {
		t.Fatalf("drain released the waiting claim only after %s, its full wait", d)
	}
}

func TestLongPollClaim_AWaitThatIsNoIntegerFrom0To20Is400(t *testing.T) {
	c := testcluster.Start(t, 1)
	n := c.Leader()
	for wait, want := range map[string]string{
		"21":  "The value must be an integer from 0 to 20.",
		"-1":  "The value must be an integer from 0 to 20.",
		"abc": "The value must be an integer.",
		"1.5": "The value must be an integer.",
	} {
		a := <-claimWaiting(context.Background(), n, "lp-bad", wait)
		if a.err != nil || a.code != http.StatusBadRequest || !strings.Contains(a.body, `"title": "Invalid parameter"`) && !strings.Contains(a.body, `"title":"Invalid parameter"`) ||
			!strings.Contains(a.body, want) {
			t.Errorf("wait=%s answered %d %s (%v), want 400 Invalid parameter %q", wait, a.code, a.body, a.err, want)
		}
	}
	if a := <-claimWaiting(context.Background(), n, "lp-bad", "0"); a.code != http.StatusNoContent {
		t.Errorf("wait=0 answered %d %s, want 204 at once", a.code, a.body)
	}
}
