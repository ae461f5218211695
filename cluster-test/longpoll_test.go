package clustertest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// TestLongPoll_AClaimWaitingOnAFollowerIsWokenByAPostThroughAnotherNode
// starts three real processes, sends a claim with ?wait=20 to a follower
// and, once the follower reports it waiting (zaqar_claim_waiters), posts
// one message through another node. The claim must come back 201 with
// that message: a wait that runs out answers 204 without claiming again,
// so 201 shows the follower's own apply woke it.
func TestLongPoll_AClaimWaitingOnAFollowerIsWokenByAPostThroughAnotherNode(t *testing.T) {
	c := startCluster(t, 3)
	leader := c.Leader()
	followers := c.Followers()
	waiter, poster := followers[0], leader
	if len(followers) > 1 {
		poster = followers[1] // forwarded to the leader, applied everywhere
	}
	ctx := context.Background()
	consumer := newRESTClient(waiter, "9c6b5a3e-8d52-4b8f-9f6e-1a2b3c4d5e60", "longpoll")
	consumer.http = waiter.httpClient(60 * time.Second)
	producer := newRESTClient(poster, "9c6b5a3e-8d52-4b8f-9f6e-1a2b3c4d5e61", "longpoll")
	if r, err := producer.do(ctx, http.MethodPut, "/v2/queues/jobs", nil); err != nil || r.Status != http.StatusCreated {
		t.Fatalf("create queue: %v %v", r, err)
	}

	type answer struct {
		r   *response
		err error
	}
	start := time.Now()
	got := make(chan answer, 1)
	go func() {
		r, err := consumer.do(ctx, http.MethodPost, "/v2/queues/jobs/claims?limit=1&wait=20", map[string]int{"ttl": 60, "grace": 60})
		got <- answer{r, err}
	}()
	c.waitUntil(20*time.Second, "the follower to report the waiting claim", func() (bool, string) {
		v := opsScrapeNode(t, waiter).samples["zaqar_claim_waiters"]
		return v == 1, fmt.Sprintf("zaqar_claim_waiters on %s = %v", waiter.ID, v)
	})
	if _, err := producer.postMessages(ctx, "jobs", map[string]any{"job": "wake"}); err != nil {
		t.Fatalf("post through %s: %v", poster.ID, err)
	}
	a := <-got
	if a.err != nil || a.r.Status != http.StatusCreated {
		t.Fatalf("the waiting claim on %s answered %v (%v), want 201 with the message posted through %s", waiter.ID, a.r, a.err, poster.ID)
	}
	var doc struct {
		Messages []struct {
			Body map[string]string `json:"body"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(a.r.Body, &doc); err != nil || len(doc.Messages) != 1 || doc.Messages[0].Body["job"] != "wake" {
		t.Fatalf("the waiting claim took %s, want the posted message", a.r.Body)
	}
	if d := time.Since(start); d >= 20*time.Second {
		t.Fatalf("the claim answered after %s, not before its 20 s deadline", d)
	}
	c.waitUntil(20*time.Second, "the answered claim to stop waiting", func() (bool, string) {
		v := opsScrapeNode(t, waiter).samples["zaqar_claim_waiters"]
		return v == 0, fmt.Sprintf("zaqar_claim_waiters on %s = %v", waiter.ID, v)
	})
}
