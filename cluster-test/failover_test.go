package clustertest

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// ackedPost is a post the cluster answered 201 to.
type ackedPost struct {
	BodyID    string
	MessageID string
	Node      string
	Started   time.Time
	Acked     time.Time
}

// postLedger records what the writers attempted and what was acknowledged.
type postLedger struct {
	mu        sync.Mutex
	attempted map[string]bool
	acked     []ackedPost
	failures  map[string]int
	samples   map[string][]string // a few error texts per node
}

func newPostLedger() *postLedger {
	return &postLedger{attempted: map[string]bool{}, failures: map[string]int{}, samples: map[string][]string{}}
}

func (l *postLedger) attempt(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.attempted[id] = true
}

func (l *postLedger) ack(a ackedPost) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.acked = append(l.acked, a)
}

func (l *postLedger) fail(node string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failures[node]++
	if len(l.samples[node]) < 3 {
		l.samples[node] = append(l.samples[node], err.Error())
	}
}

func (l *postLedger) snapshot() []ackedPost {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.acked)
}

// firstAckStartedAfter returns the earliest acknowledgement of a post that
// was sent after t (a post sent before t may have been committed before).
func (l *postLedger) firstAckStartedAfter(t time.Time) (ackedPost, bool) {
	var best ackedPost
	found := false
	for _, a := range l.snapshot() {
		if a.Started.After(t) && (!found || a.Acked.Before(best.Acked)) {
			best, found = a, true
		}
	}
	return best, found
}

func TestLeaderKill_NoAcknowledgedPostIsLost(t *testing.T) {
	c := startCluster(t, 3)
	const queue = "failover"
	const project = "p-failover"
	leader := c.Leader()
	ctx := context.Background()
	setup := newRESTClient(leader, "7a0c8a1e-2d1b-4c8e-9a56-1f2e3d4c5b6a", project)
	if r, err := setup.do(ctx, http.MethodPut, "/v2/queues/"+queue, map[string]any{}); err != nil || r.Status != http.StatusCreated {
		t.Fatalf("create queue on the leader: %v %v", r, err)
	}

	ledger := newPostLedger()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	const writers = 6
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			clientID := fmt.Sprintf("00000000-0000-4000-8000-%012d", w+1)
			clients := make([]*restClient, len(c.Nodes))
			for i, p := range c.Nodes {
				clients[i] = newRESTClient(p, clientID, project)
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
				ids, err := clients[i].postMessages(ctx, queue, map[string]any{"id": id, "writer": w})
				if err != nil {
					ledger.fail(c.Nodes[i].ID, err)
					// Refused connections to a dead node return at once.
					time.Sleep(10 * time.Millisecond)
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

	// Let the writers run for about two seconds (and at least until some
	// posts went through every node).
	time.Sleep(2 * time.Second)
	c.waitUntil(30*time.Second, "posts acknowledged through every node before the kill", func() (bool, string) {
		per := map[string]int{}
		for _, a := range ledger.snapshot() {
			per[a.Node]++
		}
		return len(per) == len(c.Nodes), fmt.Sprintf("acknowledged per node: %v", per)
	})

	victim := c.Leader()
	before := len(ledger.snapshot())
	killedAt := time.Now()
	c.Kill(victim)
	t.Logf("SIGKILLed leader %s after %d acknowledged posts", victim.ID, before)

	// Writes must resume through the survivors once a new leader is elected.
	const resumeBound = 15 * time.Second
	var resumed ackedPost
	c.waitUntil(resumeBound+5*time.Second, "a post sent after the kill to be acknowledged", func() (bool, string) {
		a, ok := ledger.firstAckStartedAfter(killedAt)
		resumed = a
		return ok, "no post sent after the kill has been acknowledged"
	})
	resumeAfter := resumed.Acked.Sub(killedAt)
	// Keep writing a few more seconds after the kill, and at least a second
	// after writes resumed.
	for time.Since(killedAt) < 4*time.Second || time.Since(resumed.Acked) < time.Second {
		time.Sleep(50 * time.Millisecond)
	}
	stopWriters()

	newLeader := c.Leader()
	acked := ledger.snapshot()
	sort.Slice(acked, func(i, j int) bool { return acked[i].Acked.Before(acked[j].Acked) })
	var gap time.Duration
	var gapFrom, gapTo time.Time
	for i := 1; i < len(acked); i++ {
		if d := acked[i].Acked.Sub(acked[i-1].Acked); d > gap {
			gap, gapFrom, gapTo = d, acked[i-1].Acked, acked[i].Acked
		}
	}
	afterKill := map[string]int{}
	for _, a := range acked {
		if a.Started.After(killedAt) {
			afterKill[a.Node]++
		}
	}
	ledger.mu.Lock()
	t.Logf("posts: %d attempted, %d acknowledged (%d before the kill); failures per node: %v",
		len(ledger.attempted), len(acked), before, ledger.failures)
	for node, s := range ledger.samples {
		t.Logf("sample errors from %s: %q", node, s)
	}
	ledger.mu.Unlock()
	t.Logf("failover: new leader %s; first post sent after the kill was acknowledged %s after the kill (by %s); "+
		"longest gap between acknowledged posts %s (from %s to %s after the kill)",
		newLeader.ID, resumeAfter.Round(time.Millisecond), resumed.Node, gap.Round(time.Millisecond),
		gapFrom.Sub(killedAt).Round(time.Millisecond), gapTo.Sub(killedAt).Round(time.Millisecond))
	t.Logf("acknowledged posts sent after the kill, per node: %v", afterKill)

	if newLeader == victim {
		t.Fatalf("the killed node %s is still the leader", victim.ID)
	}
	if resumeAfter > resumeBound {
		t.Errorf("writes resumed %s after the leader was killed; want under %s", resumeAfter, resumeBound)
	}
	for _, p := range c.Running() {
		if afterKill[p.ID] == 0 {
			t.Errorf("no post sent to survivor %s after the kill was acknowledged", p.ID)
		}
	}
	if afterKill[victim.ID] != 0 {
		t.Errorf("%d posts sent to the killed node %s after the kill were acknowledged", afterKill[victim.ID], victim.ID)
	}

	// Every acknowledged post must be readable from a survivor, exactly once,
	// under the message id the 201 named.
	survivor := c.Running()[0]
	reader := newRESTClient(survivor, "11111111-2222-4333-8444-555555555555", project)
	reader.http.Timeout = 30 * time.Second
	listed, err := reader.listAll(ctx, queue)
	if err != nil {
		t.Fatalf("read back from %s: %v", survivor.ID, err)
	}
	byBody := map[string][]listedMessage{}
	for _, m := range listed {
		id, _ := m.Body["id"].(string)
		byBody[id] = append(byBody[id], m)
	}
	var missing, wrongID []string
	for _, a := range acked {
		ms := byBody[a.BodyID]
		switch {
		case len(ms) == 0:
			missing = append(missing, fmt.Sprintf("%s (acked by %s %s after the kill)", a.BodyID, a.Node, a.Acked.Sub(killedAt).Round(time.Millisecond)))
		case ms[0].ID != a.MessageID:
			wrongID = append(wrongID, fmt.Sprintf("%s: 201 named %s, listed as %s", a.BodyID, a.MessageID, ms[0].ID))
		}
	}
	var dup, phantom []string
	ledger.mu.Lock()
	for id, ms := range byBody {
		if len(ms) > 1 {
			dup = append(dup, fmt.Sprintf("%s x%d", id, len(ms)))
		}
		if !ledger.attempted[id] {
			phantom = append(phantom, id)
		}
	}
	ledger.mu.Unlock()
	t.Logf("read back %d messages from %s: %d acknowledged, %d unacknowledged posts also committed",
		len(listed), survivor.ID, len(acked), len(listed)-len(acked)+len(missing))
	if len(missing) > 0 {
		t.Errorf("%d acknowledged posts are lost: %s", len(missing), firstN(missing, 20))
	}
	if len(wrongID) > 0 {
		t.Errorf("%d acknowledged posts are stored under another message id: %s", len(wrongID), firstN(wrongID, 20))
	}
	if len(dup) > 0 {
		t.Errorf("%d posts were committed more than once: %s", len(dup), firstN(dup, 20))
	}
	if len(phantom) > 0 {
		t.Errorf("%d listed messages were never posted: %s", len(phantom), firstN(phantom, 20))
	}

	// The killed node comes back from its data directory and converges.
	c.Restart(victim)
	if got := countLines(victim.LogOfRun(2), `msg="raft node started"`, "existing_state=true"); got != 1 {
		t.Errorf("restarted %s did not report existing Raft state (%d matching lines)", victim.ID, got)
	}
	applied := c.WaitApplied(60 * time.Second)
	want := messageKeys(listed)
	for _, p := range c.Nodes {
		stale := newRESTClient(p, "11111111-2222-4333-8444-555555555555", project)
		stale.stale = true
		stale.http.Timeout = 30 * time.Second
		got, err := stale.listAll(ctx, queue)
		if err != nil {
			t.Fatalf("stale listing on %s: %v", p.ID, err)
		}
		if g := messageKeys(got); !slices.Equal(g, want) {
			t.Errorf("%s serves %d messages, the reference listing has %d; first difference: %s",
				p.ID, len(g), len(want), firstDifference(g, want))
		}
	}
	t.Logf("after restarting %s every node applied index %d and serves the same %d messages", victim.ID, applied, len(want))

	// The restarted node takes part again: a post through it is visible
	// everywhere.
	through := newRESTClient(victim, "22222222-3333-4444-8555-666666666666", project)
	if _, err := through.postMessages(ctx, queue, map[string]any{"id": "after-restart"}); err != nil {
		t.Fatalf("post through the restarted node %s: %v", victim.ID, err)
	}
	for _, p := range c.Nodes {
		got, err := newRESTClient(p, "11111111-2222-4333-8444-555555555555", project).listAll(ctx, queue)
		if err != nil {
			t.Fatalf("listing on %s: %v", p.ID, err)
		}
		if len(got) != len(want)+1 || got[len(got)-1].Body["id"] != "after-restart" {
			t.Errorf("%s: linearizable listing after a post through %s has %d messages (want %d, the last being after-restart)",
				p.ID, victim.ID, len(got), len(want)+1)
		}
	}
}

// messageKeys renders a listing as "messageID body-id" lines, in order.
func messageKeys(ms []listedMessage) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = fmt.Sprintf("%s %v", m.ID, m.Body["id"])
	}
	return out
}

func firstDifference(got, want []string) string {
	for i := 0; i < len(got) || i < len(want); i++ {
		g, w := "(none)", "(none)"
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			return fmt.Sprintf("at %d got %q want %q", i, g, w)
		}
	}
	return "none"
}

func firstN(s []string, n int) string {
	sort.Strings(s)
	if len(s) > n {
		return strings.Join(s[:n], ", ") + fmt.Sprintf(", ... (%d more)", len(s)-n)
	}
	return strings.Join(s, ", ")
}
