package wsapi_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/zaqar-raft/zaqar/testkit/testcluster"
	"github.com/zaqar-raft/zaqar/wsapi"
)

// A claim_create with "wait" on a follower's connection holds its answer
// until a message posted through the leader's connection can be claimed;
// the wait is 20 s, and an answer of 201 proves the wake-up (a wait that
// runs out answers 204 without claiming again).
func TestLongPollClaim_AWaitingClaimCreateOnAFollowerIsWokenByAPostThroughTheLeader(t *testing.T) {
	c := testcluster.Start(t, 3)
	follower := c.Followers()[0]
	ws := dial(t, follower, "follower", wsapi.JSON)
	poster := dial(t, c.Leader(), "leader", wsapi.MsgPack).inProject(ws.project).as(ws.clientID)
	ws.expect(http.StatusCreated, "queue_create", `{"queue_name": "lp"}`)

	start := time.Now()
	ws.sendJSON(ws.frame("claim_create", `{"queue_name": "lp", "limit": 1, "wait": 20}`, nil))
	c.Eventually(10*time.Second, func() bool { return follower.Server.Service().ClaimWaiters() == 1 },
		"the follower holds no waiting claim")
	poster.expect(http.StatusCreated, "message_post", `{"queue_name": "lp", "messages": [{"body": "wake"}]}`)
	r := ws.recv("waiting claim_create").status(http.StatusCreated)
	if msgs := r.messages(); len(msgs) != 1 || string(msgs[0].Body) != `"wake"` {
		t.Fatalf("the waiting claim took %s, want the posted message", r.Body)
	}
	if d := time.Since(start); d >= 20*time.Second {
		t.Fatalf("the claim answered after %s: not woken before its 20 s deadline", d)
	}
	c.Eventually(10*time.Second, func() bool { return follower.Server.Service().ClaimWaiters() == 0 },
		"the answered claim still waits")
	// The connection answers its next frames as before.
	ws.expect(http.StatusNoContent, "claim_create", `{"queue_name": "lp", "wait": 0}`)
	ws.expect(http.StatusBadRequest, "claim_create", `{"queue_name": "lp", "wait": 21}`).
		apiError("Invalid parameter", `The "wait" parameter is invalid. The value must be an integer from 0 to 20.`)
}

// A connection that closes while its claim waits releases the waiter.
func TestLongPollClaim_AConnectionThatClosesReleasesItsWaitingClaim(t *testing.T) {
	c := testcluster.Start(t, 1)
	n := c.Leader()
	ws := dial(t, n, "leader", wsapi.JSON)
	ws.sendJSON(ws.frame("claim_create", `{"queue_name": "lp", "wait": 20}`, nil))
	c.Eventually(10*time.Second, func() bool { return n.Server.Service().ClaimWaiters() == 1 }, "no waiting claim")
	_ = ws.conn.CloseNow()
	c.Eventually(10*time.Second, func() bool { return n.Server.Service().ClaimWaiters() == 0 },
		"the closed connection's claim still waits")
}
