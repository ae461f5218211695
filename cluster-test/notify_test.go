package clustertest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"
	"time"
)

// hookLog is a webhook receiver: it records the message body id and the
// arrival time of every notification it gets and answers 204.
type hookLog struct {
	mu       sync.Mutex
	arrivals map[string][]time.Time // body id → arrival times
	total    int
	bad      []string // requests that were not a notification of this test
}

func (h *hookLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var p struct {
		Body struct {
			ID string `json:"id"`
		} `json:"body"`
		QueueName   string `json:"queue_name"`
		MessageType string `json:"Message_Type"`
		TTL         int    `json:"ttl"`
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.total++
	if json.Unmarshal(b, &p) != nil || p.Body.ID == "" || p.QueueName != "notified" || p.MessageType != "Notification" || p.TTL != 3600 ||
		r.Header.Get("Content-Type") != "application/json" || r.Header.Get("X-Test") != "notify" {
		h.bad = append(h.bad, string(b))
	} else {
		h.arrivals[p.Body.ID] = append(h.arrivals[p.Body.ID], time.Now())
	}
	w.WriteHeader(http.StatusNoContent)
}

// missingFrom returns the acknowledged posts that have not arrived yet.
func (h *hookLog) missingFrom(acked []ackedPost) []ackedPost {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []ackedPost
	for _, a := range acked {
		if len(h.arrivals[a.BodyID]) == 0 {
			out = append(out, a)
		}
	}
	return out
}

func TestNotifications_EveryAcknowledgedPostIsDeliveredAcrossALeaderKill(t *testing.T) {
	c := startCluster(t, 3)
	const queue = "notified"
	const project = "p-notify"
	ctx := context.Background()
	hook := &hookLog{arrivals: map[string][]time.Time{}}
	srv := httptest.NewServer(hook)
	t.Cleanup(srv.Close)

	setup := newRESTClient(c.Followers()[0], "5b0e7c3a-1f2d-4e6a-9b8c-7d6e5f4a3b2c", project)
	r, err := setup.do(ctx, http.MethodPost, "/v2/queues/"+queue+"/subscriptions", map[string]any{
		"subscriber": srv.URL + "/hook", "ttl": 3600,
		"options": map[string]any{"post_headers": map[string]string{"X-Test": "notify"}},
	})
	if err != nil || r.Status != http.StatusCreated {
		t.Fatalf("subscribe through a follower: %v %v", r, err)
	}

	ledger := newPostLedger()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	const writers = 4
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			clients := make([]*restClient, len(c.Nodes))
			for i, p := range c.Nodes {
				clients[i] = newRESTClient(p, fmt.Sprintf("00000000-0000-4000-8000-%012d", w+1), project)
				clients[i].http.Timeout = 5 * time.Second
			}
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				i := (w + n) % len(c.Nodes)
				id := fmt.Sprintf("w%d-%d", w, n)
				ledger.attempt(id)
				started := time.Now()
				ids, err := clients[i].postMessages(ctx, queue, map[string]any{"id": id})
				if err != nil {
					ledger.fail(c.Nodes[i].ID, err)
					time.Sleep(10 * time.Millisecond) // a dead node refuses at once
					continue
				}
				ledger.ack(ackedPost{BodyID: id, MessageID: ids[0], Node: c.Nodes[i].ID, Started: started, Acked: time.Now()})
			}
		}(w)
	}
	stopWriters := func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}
	t.Cleanup(stopWriters)

	// Mid-stream: once posts went through every node and notifications
	// flow, SIGKILL the leader (the one node that delivers).
	c.waitUntil(60*time.Second, "posts acknowledged through every node and delivered", func() (bool, string) {
		per := map[string]int{}
		for _, a := range ledger.snapshot() {
			per[a.Node]++
		}
		hook.mu.Lock()
		delivered := len(hook.arrivals)
		hook.mu.Unlock()
		return len(per) == len(c.Nodes) && len(ledger.snapshot()) >= 200 && delivered >= 100,
			fmt.Sprintf("acknowledged per node %v, %d delivered", per, delivered)
	})
	victim := c.Leader()
	before := len(ledger.snapshot())
	killedAt := time.Now()
	c.Kill(victim)
	t.Logf("SIGKILLed leader %s after %d acknowledged posts", victim.ID, before)

	// Writes continue through the survivors.
	c.waitUntil(30*time.Second, "100 posts sent after the kill to be acknowledged", func() (bool, string) {
		n := 0
		for _, a := range ledger.snapshot() {
			if a.Started.After(killedAt) {
				n++
			}
		}
		return n >= 100, fmt.Sprintf("%d acknowledged since the kill", n)
	})
	stopWriters()
	newLeader := c.Leader()
	acked := ledger.snapshot()

	// Every acknowledged post is delivered at least once; stragglers (the
	// new leader redelivers from the last recorded cursor) get a deadline.
	deadline := time.Now().Add(90 * time.Second)
	var missing []ackedPost
	for {
		missing = hook.missingFrom(acked)
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}

	hook.mu.Lock()
	var dupBodies, extra int
	var lags []time.Duration
	for _, a := range acked {
		times := hook.arrivals[a.BodyID]
		if len(times) == 0 {
			continue
		}
		if len(times) > 1 {
			dupBodies++
			extra += len(times) - 1
		}
		lags = append(lags, max(0, times[0].Sub(a.Started)))
	}
	var phantoms []string
	ledger.mu.Lock()
	for id := range hook.arrivals {
		if !ledger.attempted[id] {
			phantoms = append(phantoms, id)
		}
	}
	ledger.mu.Unlock()
	total, bad := hook.total, hook.bad
	hook.mu.Unlock()
	sort.Slice(lags, func(i, j int) bool { return lags[i] < lags[j] })
	q := func(p float64) time.Duration {
		if len(lags) == 0 {
			return 0
		}
		return lags[int(p*float64(len(lags)-1))].Round(time.Millisecond)
	}
	ledger.mu.Lock()
	t.Logf("posts: %d attempted, %d acknowledged (%d before the kill); failures per node %v; new leader %s",
		len(ledger.attempted), len(acked), before, ledger.failures, newLeader.ID)
	ledger.mu.Unlock()
	t.Logf("notifications: %d received; %d acknowledged messages delivered more than once (%d extra copies)", total, dupBodies, extra)
	t.Logf("delivery lag from sending the post to its first notification: p50 %s, p90 %s, p99 %s, max %s", q(0.5), q(0.9), q(0.99), q(1))

	if len(bad) > 0 {
		t.Errorf("%d requests were not this test's notifications, e.g. %q", len(bad), bad[0])
	}
	if len(missing) > 0 {
		var ids []string
		for _, m := range missing[:min(20, len(missing))] {
			ids = append(ids, fmt.Sprintf("%s (acked by %s %s after the kill)", m.BodyID, m.Node, m.Acked.Sub(killedAt).Round(time.Millisecond)))
		}
		t.Errorf("%d acknowledged posts were never delivered within 90 s: %v", len(missing), ids)
	}
	if len(phantoms) > 0 {
		t.Errorf("notifications of %d bodies no writer posted, e.g. %q", len(phantoms), phantoms[0])
	}
	if v, err := metric(ctx, newLeader, "zaqar_notify_subscriptions"); err != nil || v != 1 {
		t.Errorf("zaqar_notify_subscriptions on the new leader %s: %v %v, want 1", newLeader.ID, v, err)
	}
}
