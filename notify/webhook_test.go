package notify_test

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/zaqar-raft/zaqar/internal/ids"
	"github.com/zaqar-raft/zaqar/server"
	"github.com/zaqar-raft/zaqar/testkit/testcluster"
)

// fastPolicy is a small _retry_policy: one immediate retry, then retries a
// second apart, backing off to at most 11 seconds.
const fastPolicy = `{"retries_with_no_delay": 1, "minimum_delay": 1, "maximum_delay": 11}`

// webhookSuite is one real three-node cluster shared by the webhook
// subtests; each subtest uses its own project.
type webhookSuite struct {
	c *testcluster.Cluster
}

func (s *webhookSuite) run(t *testing.T, name string, fn func(t *testing.T, nodes []*api)) {
	t.Helper()
	t.Run(name, func(t *testing.T) {
		fn(t, clientsOf(t, s.c, "p-"+ids.New()[:12]))
	})
}

// payload returns the §10.2 notification of a message.
func payload(queue, body string, ttl int) string {
	return fmt.Sprintf(`{"body": %s, "ttl": %d, "queue_name": %q, "Message_Type": "Notification"}`, body, ttl, queue)
}

func TestWebhooks(t *testing.T) {
	s := &webhookSuite{c: testcluster.Start(t, 3)}

	s.run(t, "every message posted after subscribing arrives with the exact payload", func(t *testing.T, n []*api) {
		r := newReceiver(t, nil)
		n[0].post("/v2/queues/orders", `{"body": "before"}`)
		n[1].subscribe("/v2/queues/orders", map[string]any{"subscriber": r.URL("/hook?x=1")})
		n[2].post("/v2/queues/orders", `{"body": {"n": 1}, "ttl": 300}`)
		n[0].post("/v2/queues/orders", `{"body": [1, "two"]}`, `{"body": "three", "ttl": 120}`)
		got := r.waitCount(3)

		byBody := map[string]delivery{}
		for _, d := range got {
			byBody[messageBody(d.Body)] = d
			if d.Method != http.MethodPost || d.Path != "/hook" {
				t.Fatalf("request %s %s", d.Method, d.Path)
			}
			if ct := d.Header.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("Content-Type %q", ct)
			}
			if k := keysOf(t, d.Body); !reflect.DeepEqual(k, []string{"Message_Type", "body", "queue_name", "ttl"}) {
				t.Fatalf("payload keys %v in %s", k, d.Body)
			}
		}
		for body, ttl := range map[string]int{`{"n":1}`: 300, `[1,"two"]`: 3600, `"three"`: 120} {
			d, ok := byBody[body]
			if !ok {
				t.Fatalf("no notification of %s among %s", body, summarize(got))
			}
			jsonEqual(t, "payload", d.Body, payload("orders", body, ttl))
		}
		// A sentinel posted last arrives; the message posted before the
		// subscription never does.
		n[1].post("/v2/queues/orders", `{"body": "sentinel"}`)
		got = r.waitBody(`"sentinel"`)
		if len(got) != 4 {
			t.Fatalf("%d notifications, want 4: %s", len(got), summarize(got))
		}
		for _, d := range got {
			if messageBody(d.Body) == `"before"` {
				t.Fatal("a message posted before the subscription was notified")
			}
		}
	})

	s.run(t, "a delayed queue's notifications carry the delay", func(t *testing.T, n []*api) {
		r := newReceiver(t, nil)
		n[0].expect(http.StatusCreated, "PUT", "/v2/queues/later", `{"_default_message_delay": 5}`)
		n[1].subscribe("/v2/queues/later", map[string]any{"subscriber": r.URL("/")})
		n[2].post("/v2/queues/later", `{"body": 1, "ttl": 60}`, `{"body": 2, "ttl": 60, "delay": 0}`, `{"body": 3, "ttl": 60, "delay": 2}`)
		got := r.waitCount(3)
		want := map[string]int{"1": 5, "2": 0, "3": 2}
		for _, d := range got {
			b := messageBody(d.Body)
			jsonEqual(t, "delayed payload", d.Body, fmt.Sprintf(`{"body": %s, "ttl": 60, "delay": %d, "queue_name": "later", "Message_Type": "Notification"}`, b, want[b]))
			delete(want, b)
		}
		if len(want) != 0 {
			t.Fatalf("missing notifications of %v", want)
		}
	})

	s.run(t, "post_headers and the post_data template are applied", func(t *testing.T, n []*api) {
		r := newReceiver(t, nil)
		n[0].subscribe("/v2/queues/shaped", map[string]any{"subscriber": r.URL("/shaped"), "options": map[string]any{
			"post_headers": map[string]string{"X-Token": "s3cr3t", "X-Trace": "abc"},
			"post_data":    `{"event": "$zaqar_message$", "source": "zaqar", "raw": "$zaqar_message"}`,
		}})
		n[1].post("/v2/queues/shaped", `{"body": {"k": "v"}, "ttl": 100}`)
		d := r.waitCount(1)[0]
		if d.Header.Get("X-Token") != "s3cr3t" || d.Header.Get("X-Trace") != "abc" || d.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("headers %v", d.Header)
		}
		jsonEqual(t, "templated body", d.Body,
			`{"event": `+payload("shaped", `{"k": "v"}`, 100)+`, "source": "zaqar", "raw": "$zaqar_message"}`)
	})

	s.run(t, "5xx answers are retried and the delivery counted once", func(t *testing.T, n []*api) {
		r := newReceiver(t, func(i int, _ delivery) int {
			if i < 2 {
				return http.StatusServiceUnavailable
			}
			return http.StatusNoContent
		})
		n[0].subscribe("/v2/queues/flaky", map[string]any{"subscriber": r.URL("/")})
		m := snapshotCounters(t, s.c, attempts("http"), retries("http"), deliveries("http", "delivered"), deliveries("http", "failed"))
		n[1].post("/v2/queues/flaky", `{"body": "once"}`)
		got := r.waitCount(3)
		m.waitDelta(deliveries("http", "delivered"), 1)
		for i, d := range got {
			jsonEqual(t, fmt.Sprintf("attempt %d", i+1), d.Body, payload("flaky", `"once"`, 3600))
		}
		if a, rt, f := m.delta(attempts("http")), m.delta(retries("http")), m.delta(deliveries("http", "failed")); a != 3 || rt != 2 || f != 0 {
			t.Fatalf("metrics: %v attempts, %v retries, %v failed; want 3, 2, 0", a, rt, f)
		}
		n[2].post("/v2/queues/flaky", `{"body": "sentinel"}`)
		if got := r.waitBody(`"sentinel"`); len(got) != 4 {
			t.Fatalf("%d requests, want 3 attempts and the sentinel: %s", len(got), summarize(got))
		}
		// The receiver sees the sentinel before the worker has counted its
		// delivery (it counts once the answer is back): wait for the count.
		m.waitDelta(deliveries("http", "delivered"), 2)
		if d := m.delta(deliveries("http", "delivered")); d != 2 {
			t.Fatalf("%v deliveries, want 2", d)
		}
	})

	s.run(t, "other 4xx answers are final", func(t *testing.T, n []*api) {
		r := newReceiver(t, func(int, delivery) int { return http.StatusBadRequest })
		n[0].subscribe("/v2/queues/refused", map[string]any{"subscriber": r.URL("/")})
		m := snapshotCounters(t, s.c, attempts("http"), retries("http"), deliveries("http", "failed"))
		n[1].post("/v2/queues/refused", `{"body": 1}`, `{"body": 2}`)
		// The failure is recorded after the last attempt.
		m.waitDelta(deliveries("http", "failed"), 2)
		if got := r.deliveries(); len(got) != 2 {
			t.Fatalf("%d requests for 2 messages answered 400: %s", len(got), summarize(got))
		}
		if a, rt := m.delta(attempts("http")), m.delta(retries("http")); a != 2 || rt != 0 {
			t.Fatalf("%v attempts and %v retries, want 2 and 0", a, rt)
		}
	})

	s.run(t, "429 is retried after the queue's retry policy delays", func(t *testing.T, n []*api) {
		r := newReceiver(t, func(i int, _ delivery) int {
			if i < 2 {
				return http.StatusTooManyRequests
			}
			return http.StatusOK
		})
		n[0].expect(http.StatusCreated, "PUT", "/v2/queues/busy", `{"_retry_policy": `+fastPolicy+`}`)
		n[1].subscribe("/v2/queues/busy", map[string]any{"subscriber": r.URL("/")})
		m := snapshotCounters(t, s.c, deliveries("http", "delivered"), retries("http"))
		n[2].post("/v2/queues/busy", `{"body": "slow down"}`)
		got := r.waitCount(3)
		m.waitDelta(deliveries("http", "delivered"), 1)
		// The policy's one immediate retry, then minimum_delay (1 s).
		if gap := got[2].At.Sub(got[1].At); gap < 900*time.Millisecond {
			t.Fatalf("third attempt %s after the second; the queue policy waits 1 s", gap)
		}
		if rt := m.delta(retries("http")); rt != 2 {
			t.Fatalf("%v retries, want 2", rt)
		}
	})

	s.run(t, "refused connections are retried until the subscriber comes up", func(t *testing.T, n []*api) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		n[0].subscribe("/v2/queues/late", map[string]any{
			"subscriber": "http://" + addr + "/late",
			"options":    map[string]any{"_retry_policy": map[string]any{"retries_with_no_delay": 1, "minimum_delay": 1, "maximum_delay": 11}},
		})
		m := snapshotCounters(t, s.c, attempts("http"), retries("http"), deliveries("http", "delivered"))
		posted := time.Now()
		n[1].post("/v2/queues/late", `{"body": "eventually"}`)
		// Two failed attempts, the second one immediate; then the policy
		// waits a second before each of the next.
		m.waitDelta(attempts("http"), 3)
		if time.Since(posted) < 900*time.Millisecond {
			t.Fatalf("three attempts within %s: the policy waits 1 s after the immediate retry", time.Since(posted))
		}
		var ln2 net.Listener
		for i := 0; ; i++ {
			if ln2, err = net.Listen("tcp", addr); err == nil {
				break
			}
			if i == 50 {
				t.Fatalf("cannot listen on %s again: %v", addr, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		r := startReceiver(t, ln2, nil)
		got := r.waitCount(1)
		jsonEqual(t, "late delivery", got[0].Body, payload("late", `"eventually"`, 3600))
		m.waitDelta(deliveries("http", "delivered"), 1)
		if rt := m.delta(retries("http")); rt < 3 {
			t.Fatalf("%v retries recorded, want at least 3", rt)
		}
	})

	s.run(t, "a topic fans out to every subscriber", func(t *testing.T, n []*api) {
		var rs []*receiver
		for i := 0; i < 3; i++ {
			r := newReceiver(t, nil)
			rs = append(rs, r)
			n[i].subscribe("/v2/topics/fan", map[string]any{"subscriber": r.URL(fmt.Sprintf("/r%d", i))})
		}
		// A queue of the same name with its own subscriber hears nothing
		// of the topic.
		q := newReceiver(t, nil)
		n[1].subscribe("/v2/queues/fan", map[string]any{"subscriber": q.URL("/q")})

		var want []string
		for i := 0; i < 6; i++ {
			b := fmt.Sprintf(`{"i": %d}`, i)
			want = append(want, b)
			n[i%3].post("/v2/topics/fan", `{"body": `+b+`, "ttl": 600}`)
		}
		for i, r := range rs {
			got := r.waitCount(len(want))
			for _, b := range want {
				found := false
				for _, d := range got {
					found = found || sameJSON(string(d.Body), payload("fan", b, 600))
				}
				if !found {
					t.Fatalf("receiver %d missed %s: %s", i, b, summarize(got))
				}
			}
		}
		n[2].post("/v2/queues/fan", `{"body": "queue sentinel"}`)
		if got := q.waitBody(`"queue sentinel"`); len(got) != 1 {
			t.Fatalf("the queue's subscriber got topic posts: %s", summarize(got))
		}
	})

	s.run(t, "a deleted subscription receives nothing posted afterwards", func(t *testing.T, n []*api) {
		gone := newReceiver(t, nil)
		stays := newReceiver(t, nil)
		id := n[0].subscribe("/v2/queues/unsub", map[string]any{"subscriber": gone.URL("/")})
		n[1].subscribe("/v2/queues/unsub", map[string]any{"subscriber": stays.URL("/")})
		n[2].post("/v2/queues/unsub", `{"body": "both"}`)
		gone.waitBody(`"both"`)
		stays.waitBody(`"both"`)
		for i := 0; i < 5; i++ {
			n[i%3].expect(http.StatusNoContent, "DELETE", "/v2/queues/unsub/subscriptions/"+id, nil)
			n[(i+1)%3].post("/v2/queues/unsub", fmt.Sprintf(`{"body": "after %d"}`, i))
			stays.waitBody(fmt.Sprintf(`"after %d"`, i))
			if i < 4 {
				id = n[i%3].subscribe("/v2/queues/unsub", map[string]any{"subscriber": gone.URL("/")})
			}
		}
		for _, d := range gone.deliveries() {
			if b := messageBody(d.Body); strings.HasPrefix(b, `"after`) {
				// Each "after i" was posted while gone's subscription
				// was deleted; a resubscription starts after it.
				t.Fatalf("a deleted subscription received %s", b)
			}
		}
	})

	s.run(t, "a redirect is the answer: it is not followed, least of all to a refused address", func(t *testing.T, n []*api) {
		// Dialling 0.0.0.0 reaches a receiver that listens on every
		// interface of this host; the dialer refuses it on any hop.
		ln, err := net.Listen("tcp", ":0")
		if err != nil {
			t.Fatal(err)
		}
		inside := startReceiver(t, ln, nil)
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		outside := newReceiver(t, func(int, delivery) int { return http.StatusTemporaryRedirect })
		outside.redirectTo("http://0.0.0.0:" + port + "/metadata")
		n[0].subscribe("/v2/queues/redirected", map[string]any{"subscriber": outside.URL("/hook")})
		m := snapshotCounters(t, s.c, deliveries("http", "delivered"), deliveries("http", "failed"))
		n[1].post("/v2/queues/redirected", `{"body": "moved"}`)
		outside.waitBody(`"moved"`)
		m.waitDelta(deliveries("http", "delivered"), 1)
		if got := inside.deliveries(); len(got) != 0 {
			t.Fatalf("the redirect was followed to 0.0.0.0: %s", summarize(got))
		}
	})

	s.run(t, "an options PATCH applies to the next delivery", func(t *testing.T, n []*api) {
		r := newReceiver(t, nil)
		id := n[0].subscribe("/v2/queues/patched", map[string]any{"subscriber": r.URL("/"), "options": map[string]any{"post_headers": map[string]string{"X-V": "1"}}})
		n[1].post("/v2/queues/patched", `{"body": 1}`)
		if d := r.waitCount(1)[0]; d.Header.Get("X-V") != "1" {
			t.Fatalf("X-V %q", d.Header.Get("X-V"))
		}
		n[2].expect(http.StatusNoContent, "PATCH", "/v2/queues/patched/subscriptions/"+id, `{"options": {"post_headers": {"X-V": "2"}}}`)
		n[0].post("/v2/queues/patched", `{"body": 2}`)
		if d := r.waitCount(2)[1]; d.Header.Get("X-V") != "2" {
			t.Fatalf("after the PATCH X-V %q, want 2", d.Header.Get("X-V"))
		}
	})
}

func TestWebhooks_OneDeliveryPerSubscriberKeepsPostOrder(t *testing.T) {
	c := testcluster.Start(t, 1, testcluster.WithConfig(func(cfg *server.Config) { cfg.Notify.PerSubscriber = 1 }))
	a := clientsOf(t, c, "p-order")[0]
	// The receiver answers slowly and fails every third request once, so
	// concurrent or out-of-order delivery would show.
	r := newReceiver(t, func(i int, _ delivery) int {
		time.Sleep(time.Duration(i%3) * 5 * time.Millisecond)
		if i%3 == 2 {
			return http.StatusServiceUnavailable
		}
		return http.StatusNoContent
	})
	a.subscribe("/v2/queues/ordered", map[string]any{"subscriber": r.URL("/")})
	var want []string
	for batch := 0; batch < 4; batch++ {
		var msgs []string
		for i := 0; i < 5; i++ {
			b := fmt.Sprintf("%d", batch*5+i)
			want = append(want, b)
			msgs = append(msgs, `{"body": `+b+`}`)
		}
		a.post("/v2/queues/ordered", msgs...)
	}
	got := r.waitFor(deliveryTimeout, "every message delivered", func(ds []delivery) bool {
		ok := 0
		for i := range ds {
			if i%3 != 2 {
				ok++
			}
		}
		return ok >= len(want)
	})
	var order []string
	for i, d := range got {
		if i%3 != 2 { // the answered-503 attempts are retried at once
			order = append(order, messageBody(d.Body))
		}
	}
	if !reflect.DeepEqual(order, want) {
		t.Fatalf("delivery order %v, want %v", order, want)
	}
}

func TestWebhook_FailedDeliveryLogLineHidesTheSubscribersCredentials(t *testing.T) {
	logs := &logBuffer{}
	c := testcluster.Start(t, 1, testcluster.WithConfig(func(cfg *server.Config) { cfg.Logger = logs.logger() }))
	a := clientsOf(t, c, "p-redact")[0]
	r := newReceiver(t, func(int, delivery) int { return http.StatusBadRequest })
	subscriber := strings.Replace(r.URL("/hook"), "http://", "http://hook-user:s3cr3t-pass@", 1)
	a.subscribe("/v2/queues/creds", map[string]any{"subscriber": subscriber})
	a.post("/v2/queues/creds", `{"body": "refused"}`)

	// The credentials are still sent: they are the subscriber's to check.
	if d := r.waitCount(1)[0]; d.Header.Get("Authorization") != "Basic aG9vay11c2VyOnMzY3IzdC1wYXNz" {
		t.Fatalf("Authorization %q, want the URL's credentials", d.Header.Get("Authorization"))
	}
	line := logs.waitLine(t, "notification not delivered")
	host := strings.TrimPrefix(r.URL(""), "http://")
	if !strings.Contains(line, "http://xxxxx@"+host+"/hook") || !strings.Contains(line, "answered 400") {
		t.Fatalf("the log line does not name the subscriber without its credentials: %s", line)
	}
	if all := logs.String(); strings.Contains(all, "s3cr3t-pass") || strings.Contains(all, "hook-user") {
		t.Fatalf("the log shows the subscriber's credentials:\n%s", all)
	}
}

func TestWebhook_DeniedRangesAreRefusedAtSubscriptionAndOnEveryDelivery(t *testing.T) {
	logs := &logBuffer{}
	c := testcluster.Start(t, 1, testcluster.WithConfig(func(cfg *server.Config) {
		cfg.Logger = logs.logger()
		cfg.Notify.DenyCIDRs = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	}))
	a := clientsOf(t, c, "p-deny")[0]
	r := newReceiver(t, nil)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(r.URL(""), "http://"))

	// A literal address in a refused range is a 400 when subscribing.
	for subscriber, why := range map[string]string{
		"http://127.0.0.1:" + port + "/hook":       "127.0.0.1 is in a denied range (127.0.0.0/8)",
		"http://[::1]:" + port + "/hook":           "::1 is in a denied range (::1/128)",
		"https://[::ffff:127.0.0.2]/":              "127.0.0.2 is in a denied range (127.0.0.0/8)",
		"http://169.254.169.254/latest/meta-data/": "169.254.169.254 is a link-local address",
		"http://[fe80::1%25eth0]:8080/":            "fe80::1 is a link-local address",
		"http://0.0.0.0:" + port + "/":             "0.0.0.0 is an unspecified address",
		"http://[::]:" + port + "/":                ":: is an unspecified address",
	} {
		resp := a.expect(http.StatusBadRequest, "POST", "/v2/queues/guarded/subscriptions", map[string]any{"subscriber": subscriber})
		jsonEqual(t, "refusal of "+subscriber, resp.Body, fmt.Sprintf(`{"title": "Invalid API request", "description": "The subscriber's address is refused: %s."}`, why))
	}
	id := a.subscribe("/v2/queues/guarded", map[string]any{"subscriber": "http://localhost:" + port + "/hook"})
	a.expect(http.StatusBadRequest, "PATCH", "/v2/queues/guarded/subscriptions/"+id, map[string]any{"subscriber": "http://127.0.0.1:" + port + "/"})

	// A host name is judged when it is dialled: localhost resolves into
	// the denied ranges, so nothing is sent, and the notification is a
	// failed delivery after one attempt, not retried.
	m := snapshotCounters(t, c, attempts("http"), retries("http"), deliveries("http", "failed"))
	a.post("/v2/queues/guarded", `{"body": "keep out"}`)
	m.waitDelta(deliveries("http", "failed"), 1)
	if at, rt := m.delta(attempts("http")), m.delta(retries("http")); at != 1 || rt != 0 {
		t.Fatalf("%v attempts and %v retries, want 1 and 0", at, rt)
	}
	line := logs.waitLine(t, "the subscriber's address is refused", "http://localhost:"+port+"/hook")
	if !strings.Contains(line, "is in a denied range") {
		t.Fatalf("the log line does not say why: %s", line)
	}
	time.Sleep(200 * time.Millisecond)
	if got := r.deliveries(); len(got) != 0 {
		t.Fatalf("the denied receiver got %s", summarize(got))
	}
}
