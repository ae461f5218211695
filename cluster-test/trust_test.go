package clustertest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/trusts"
	"github.com/gophercloud/gophercloud/v2/pagination"
)

// trustReceiver is a webhook receiver guarded by Keystone, as a service
// behind keystonemiddleware is: every X-Auth-Token is validated with
// Keystone (each distinct token once, as keystonemiddleware caches them,
// until forget), must be scoped to a trust, and is answered 401 otherwise.
// It records, per message body id, the trusts whose tokens brought it.
type trustReceiver struct {
	ks *keystone

	mu       sync.Mutex
	checked  map[string]tokenFacts // by token
	arrivals map[string][]string   // body id → trust ids of the valid deliveries
	refused  int                   // requests answered 401
	total    int
	bad      []string // valid tokens with the wrong shape or bodies not of this test
}

// tokenFacts is what Keystone said about a token ("" trust: invalid).
type tokenFacts struct {
	trust, user, project string
	impersonation        bool
}

func (h *trustReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	facts := h.check(r.Header.Get("X-Auth-Token"))
	var p struct {
		Event struct {
			Body struct {
				ID string `json:"id"`
			} `json:"body"`
			QueueName string `json:"queue_name"`
		} `json:"event"`
		Source string `json:"source"`
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.total++
	if facts.trust == "" {
		h.refused++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if json.Unmarshal(b, &p) != nil || p.Event.Body.ID == "" || p.Event.QueueName != "triggers" || p.Source != "zaqar" ||
		r.Header.Get("X-Test") != "trust" || r.URL.Path != "/hook" {
		h.bad = append(h.bad, fmt.Sprintf("%s %s", r.URL.Path, b))
	} else {
		h.arrivals[p.Event.Body.ID] = append(h.arrivals[p.Event.Body.ID], facts.trust)
	}
	w.WriteHeader(http.StatusNoContent)
}

// check validates a token with Keystone (once per token).
func (h *trustReceiver) check(token string) tokenFacts {
	h.mu.Lock()
	facts, ok := h.checked[token]
	h.mu.Unlock()
	if ok || token == "" {
		return facts
	}
	// Not the request's context: a delivery cut short (its node killed)
	// must not make a valid token look invalid.
	vctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res := tokens.Get(vctx, h.ks.identity, token)
	var ext trusts.TokenExt
	switch {
	case res.Err == nil && res.ExtractInto(&ext) == nil:
		facts.trust, facts.impersonation = ext.Trust.ID, ext.Trust.Impersonation
		if u, err := res.ExtractUser(); err == nil {
			facts.user = u.ID
		}
		if p, err := res.ExtractProject(); err == nil && p != nil {
			facts.project = p.ID
		}
	case !gophercloud.ResponseCodeIs(res.Err, http.StatusNotFound):
		return facts // not Keystone's verdict: asked again next time
	}
	h.mu.Lock()
	h.checked[token] = facts
	h.mu.Unlock()
	return facts
}

// forget makes the receiver ask Keystone about every token again.
func (h *trustReceiver) forget() {
	h.mu.Lock()
	h.checked = map[string]tokenFacts{}
	h.mu.Unlock()
}

// tokensSeen returns what Keystone said of every valid token received.
func (h *trustReceiver) tokensSeen() []tokenFacts {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []tokenFacts
	for _, f := range h.checked {
		if f.trust != "" {
			out = append(out, f)
		}
	}
	return out
}

// counts returns the requests received and those refused.
func (h *trustReceiver) counts() (total, refused int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.total, h.refused
}

// userID returns the user id of a token.
func (ks *keystone) userID(t *testing.T, token string) string {
	t.Helper()
	u, err := tokens.Get(context.Background(), ks.identity, token).ExtractUser()
	if err != nil || u == nil {
		t.Fatalf("user of a token: %v", err)
	}
	return u.ID
}

// trustsOf lists the trusts Keystone holds with user as trustor (asked as
// the admin).
func (ks *keystone) trustsOf(t *testing.T, trustor string) []trusts.Trust {
	t.Helper()
	var out []trusts.Trust
	err := trusts.List(ks.identity, trusts.ListOpts{TrustorUserID: trustor}).EachPage(context.Background(), func(_ context.Context, p pagination.Page) (bool, error) {
		ts, err := trusts.ExtractTrusts(p)
		out = append(out, ts...)
		return true, err
	})
	if err != nil {
		t.Fatalf("list trusts of %s: %v", trustor, err)
	}
	return out
}

// clientAs returns an identity client sending token.
func (ks *keystone) clientAs(token string) *gophercloud.ServiceClient {
	provider := &gophercloud.ProviderClient{HTTPClient: http.Client{Timeout: time.Minute}}
	provider.SetToken(token)
	base := ks.URL + "/"
	return &gophercloud.ServiceClient{ProviderClient: provider, Endpoint: base, ResourceBase: base}
}

// leaderOf asks a running node which node leads (Keystone mode).
func leaderOf(t *testing.T, c *cluster, adminToken string) *proc {
	t.Helper()
	var leader *proc
	c.waitUntil(60*time.Second, "an agreed leader", func() (bool, string) {
		for _, p := range c.Running() {
			r, err := withToken(p, adminToken, newClientID()).do(context.Background(), http.MethodGet, "/admin/cluster", nil)
			if err != nil || r.Status != http.StatusOK {
				continue
			}
			var st clusterStatus
			_ = json.Unmarshal(r.Body, &st)
			if l := c.Node(st.Leader); l != nil && l.Running() {
				leader = l
				return true, ""
			}
		}
		return false, "no running node names a running leader"
	})
	return leader
}

// sumMetric sums a sample over the running nodes (delivery counters grow
// on whichever node led).
func sumMetric(t *testing.T, c *cluster, name string) float64 {
	t.Helper()
	total := 0.0
	for _, p := range c.Running() {
		v, err := metric(context.Background(), p, name)
		if err != nil && strings.Contains(err.Error(), "not found in /metrics") {
			continue // a label set a node never counted is not exported
		}
		if err != nil {
			t.Fatalf("%s on %s: %v", name, p.ID, err)
		}
		total += v
	}
	return total
}

// TestTrustSubscriptions_DeliverWithATrustTokenAcrossALeaderKillStopOnRevocationAndDeleteTheirTrust
// runs a three-node cluster of the binary against a real Keystone. A user
// subscribes a trust+http receiver that validates every token with
// Keystone: the subscription creates a trust from the user to the
// service account, notifications arrive with tokens scoped to that trust,
// and keep arriving (every acknowledged post) through a SIGKILL of the
// leader. Revoking the trust in Keystone stops the deliveries with one
// log line and the refusal counted; deleting a subscription deletes its
// trust in Keystone.
func TestTrustSubscriptions_DeliverWithATrustTokenAcrossALeaderKillStopOnRevocationAndDeleteTheirTrust(t *testing.T) {
	ks := sharedKeystone(t)
	c := startKeystoneCluster(t, 3, ks)
	ctx := context.Background()
	admin := ks.token(t, "carol", "alpha")
	erin := ks.token(t, "erin", "epsilon")
	erinID, epsilon := ks.userID(t, erin), ks.projectID(t, "epsilon")
	zaqarID := ks.userID(t, ks.token(t, "zaqar", "service"))
	hook := &trustReceiver{ks: ks, checked: map[string]tokenFacts{}, arrivals: map[string][]string{}}
	srv := httptest.NewServer(hook)
	t.Cleanup(srv.Close)
	if got := ks.trustsOf(t, erinID); len(got) != 0 {
		t.Fatalf("erin has trusts before the test: %+v", got)
	}

	leader := leaderOf(t, c, admin)
	var follower *proc
	for _, p := range c.Nodes {
		if p != leader {
			follower = p
			break
		}
	}
	subscribe := func(p *proc, path string) string {
		t.Helper()
		r, err := withToken(p, erin, newClientID()).do(ctx, http.MethodPost, "/v2/queues/triggers/subscriptions", map[string]any{
			"subscriber": "trust+" + srv.URL + path, "ttl": 3600,
			"options": map[string]any{
				"post_data":    `{"event": "$zaqar_message$", "source": "zaqar"}`,
				"post_headers": map[string]string{"X-Test": "trust"},
			},
		})
		if err != nil || r.Status != http.StatusCreated {
			t.Fatalf("subscribe %s through %s: %v %v", path, p.ID, r, err)
		}
		var out struct {
			ID string `json:"subscription_id"`
		}
		_ = json.Unmarshal(r.Body, &out)
		return out.ID
	}
	subID := subscribe(follower, "/hook")

	// Keystone holds the trust the subscription made: erin's roles in
	// epsilon, delegated to the service account, impersonating.
	made := ks.trustsOf(t, erinID)
	if len(made) != 1 || made[0].TrusteeUserID != zaqarID || made[0].ProjectID != epsilon || !made[0].Impersonation {
		t.Fatalf("erin's trusts after subscribing %+v: want one to %s in %s with impersonation", made, zaqarID, epsilon)
	}
	trustID := made[0].ID
	full, err := trusts.Get(ctx, ks.identity, trustID).Extract()
	if err != nil {
		t.Fatalf("get the trust: %v", err)
	}
	var roleNames []string
	for _, role := range full.Roles {
		roleNames = append(roleNames, role.Name)
	}
	if !slices.Contains(roleNames, "member") {
		t.Fatalf("the trust delegates %v, want erin's member role", roleNames)
	}
	t.Logf("trust %s delegates %v", trustID, roleNames)
	r, err := withToken(leader, erin, newClientID()).do(ctx, http.MethodGet, "/v2/queues/triggers/subscriptions/"+subID, nil)
	if err != nil || r.Status != http.StatusOK || strings.Contains(string(r.Body), trustID) {
		t.Fatalf("GET of the subscription: %v %v (the trust id must not show)", r, err)
	}

	t.Run("every acknowledged post is delivered with a token of the trust, through a leader kill", func(t *testing.T) {
		ledger := newPostLedger()
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := 0; w < 2; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				clients := make([]*restClient, len(c.Nodes))
				for i, p := range c.Nodes {
					clients[i] = withToken(p, erin, fmt.Sprintf("00000000-0000-4000-8000-%012d", w+1))
					clients[i].http.Timeout = 5 * time.Second
				}
				for n := 0; ; n++ {
					select {
					case <-stop:
						return
					case <-time.After(50 * time.Millisecond): // a steady stream: Keystone validates every token
					}
					i := (w + n) % len(c.Nodes)
					id := fmt.Sprintf("w%d-%d", w, n)
					ledger.attempt(id)
					started := time.Now()
					ids, err := clients[i].postMessages(ctx, "triggers", map[string]any{"id": id})
					if err != nil {
						ledger.fail(c.Nodes[i].ID, err)
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
		delivered := func() int {
			hook.mu.Lock()
			defer hook.mu.Unlock()
			return len(hook.arrivals)
		}
		c.waitUntil(90*time.Second, "40 notifications delivered", func() (bool, string) {
			return delivered() >= 40, fmt.Sprintf("%d delivered, %d acknowledged", delivered(), len(ledger.snapshot()))
		})
		victim := leaderOf(t, c, admin)
		killedAt := time.Now()
		c.Kill(victim)
		t.Logf("SIGKILLed leader %s after %d acknowledged posts", victim.ID, len(ledger.snapshot()))
		c.waitUntil(60*time.Second, "40 posts acknowledged after the kill", func() (bool, string) {
			n := 0
			for _, a := range ledger.snapshot() {
				if a.Started.After(killedAt) {
					n++
				}
			}
			return n >= 40, fmt.Sprintf("%d acknowledged since the kill", n)
		})
		stopWriters()
		acked := ledger.snapshot()
		var missing []string
		c.waitUntil(90*time.Second, "every acknowledged post delivered", func() (bool, string) {
			hook.mu.Lock()
			defer hook.mu.Unlock()
			missing = missing[:0]
			for _, a := range acked {
				if len(hook.arrivals[a.BodyID]) == 0 {
					missing = append(missing, a.BodyID)
				}
			}
			return len(missing) == 0, fmt.Sprintf("%d of %d missing, e.g. %v", len(missing), len(acked), missing[:min(5, len(missing))])
		})
		hook.mu.Lock()
		for id, trustsUsed := range hook.arrivals {
			for _, tr := range trustsUsed {
				if tr != trustID {
					t.Errorf("body %s arrived with a token of trust %s, want %s", id, tr, trustID)
				}
			}
		}
		bad := hook.bad
		hook.mu.Unlock()
		if len(bad) > 0 {
			t.Errorf("%d deliveries were not this test's notifications, e.g. %s", len(bad), bad[0])
		}
		seen := hook.tokensSeen()
		for _, f := range seen {
			if f.trust != trustID || f.user != erinID || f.project != epsilon || !f.impersonation {
				t.Errorf("a token Keystone says is %+v; want erin's (impersonated) in epsilon, scoped to %s", f, trustID)
			}
		}
		if len(seen) < 2 {
			t.Errorf("%d distinct tokens; want the old and the new leader's", len(seen))
		}
		total, refused := hook.counts()
		t.Logf("%d acknowledged posts delivered with %d trust tokens; %d requests, %d refused", len(acked), len(seen), total, refused)
	})

	t.Run("a revoked trust stops the deliveries, says so once and counts it", func(t *testing.T) {
		// Keystone answers 401 to a login scoped to a trust it no longer
		// has; the node finds the trust gone and says not_found.
		const refusals = `zaqar_notify_trust_refusals_total{reason="not_found"}`
		const stopped = `zaqar_notify_deliveries_total{outcome="stopped",scheme="trust+http"}`
		before := sumMetric(t, c, refusals)
		if err := trusts.Delete(ctx, ks.clientAs(erin), trustID).ExtractErr(); err != nil {
			t.Fatalf("erin revokes the trust: %v", err)
		}
		hook.forget() // ask Keystone about the cached tokens again
		writer := withToken(c.Running()[0], erin, newClientID())
		if _, err := writer.postMessages(ctx, "triggers", map[string]any{"id": "after-revocation-0"}); err != nil {
			t.Fatal(err)
		}
		c.waitUntil(60*time.Second, "the refusal counted", func() (bool, string) {
			v := sumMetric(t, c, refusals)
			total, refused := hook.counts()
			hook.mu.Lock()
			got := len(hook.arrivals["after-revocation-0"])
			hook.mu.Unlock()
			return v > before, fmt.Sprintf("%s = %v; receiver: %d requests, %d refused, after-revocation-0 delivered %d times", refusals, v, total, refused, got)
		})
		stoppedBefore := sumMetric(t, c, stopped)
		total, _ := hook.counts()
		for i := 1; i <= 5; i++ {
			if _, err := writer.postMessages(ctx, "triggers", map[string]any{"id": fmt.Sprintf("after-revocation-%d", i)}); err != nil {
				t.Fatal(err)
			}
		}
		c.waitUntil(30*time.Second, "five notifications given up", func() (bool, string) {
			v := sumMetric(t, c, stopped)
			return v >= stoppedBefore+5, fmt.Sprintf("%s = %v", stopped, v)
		})
		if after, _ := hook.counts(); after != total {
			t.Fatalf("%d requests reached the receiver after the trust was refused", after-total)
		}
		hook.mu.Lock()
		for i := 0; i <= 5; i++ {
			if n := len(hook.arrivals[fmt.Sprintf("after-revocation-%d", i)]); n != 0 {
				t.Errorf("after-revocation-%d was delivered %d times", i, n)
			}
		}
		hook.mu.Unlock()
		lines := 0
		for _, p := range c.Nodes {
			b, _ := os.ReadFile(p.LogPath)
			lines += strings.Count(string(b), "trust subscription stopped")
		}
		if lines != 1 {
			t.Fatalf("%d log lines say the subscription stopped, want 1", lines)
		}
		if v := sumMetric(t, c, refusals) - before; v > 4 {
			t.Fatalf("%v refusals counted for six notifications: Keystone is being asked again and again", v)
		}
	})

	t.Run("deleting a subscription deletes its trust in Keystone", func(t *testing.T) {
		second := subscribe(leaderOf(t, c, admin), "/hook?second=1")
		var fresh string
		for _, tr := range ks.trustsOf(t, erinID) {
			if tr.ID != trustID {
				fresh = tr.ID
			}
		}
		if fresh == "" {
			t.Fatal("the second subscription made no trust")
		}
		for _, id := range []string{second, subID} {
			r, err := withToken(c.Running()[0], erin, newClientID()).do(ctx, http.MethodDelete, "/v2/queues/triggers/subscriptions/"+id, nil)
			if err != nil || r.Status != http.StatusNoContent {
				t.Fatalf("DELETE subscription: %v %v", r, err)
			}
		}
		c.waitUntil(60*time.Second, "Keystone to no longer list the trust", func() (bool, string) {
			left := ks.trustsOf(t, erinID)
			return len(left) == 0, fmt.Sprintf("erin's trusts: %+v", left)
		})
		// The revoked trust, already gone, counts as deleted too.
		c.waitUntil(30*time.Second, "both trusts counted as deleted", func() (bool, string) {
			v := sumMetric(t, c, `zaqar_notify_trust_deletions_total{outcome="deleted"}`)
			return v >= 2, fmt.Sprintf("deleted %v", v)
		})
		for _, p := range c.Running() {
			if b, _ := os.ReadFile(p.LogPath); strings.Contains(string(b), "could not record deleted trusts") || strings.Contains(string(b), "could not be deleted") {
				t.Fatalf("%s could not delete or forget a trust:\n%s", p.ID, b)
			}
		}
	})
}
