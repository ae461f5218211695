package notify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zaqar-raft/zaqar/fsm"
	"github.com/zaqar-raft/zaqar/store"
)

// stubNode is a Node that leads and accepts every proposal.
type stubNode struct{}

func (stubNode) Propose(context.Context, ...fsm.Command) (*fsm.EntryResult, error) {
	return &fsm.EntryResult{}, nil
}
func (stubNode) IsLeader() bool { return true }
func (stubNode) ID() string     { return "n1" }
func (stubNode) PostToNode(context.Context, string, string, []byte) (int, []byte, error) {
	return 0, nil, errors.New("no such node")
}
func (stubNode) Addr() string { return "n1:7001" }
func (stubNode) CallGroup(context.Context, []string, int, string, []byte) (int, []byte, error) {
	return 0, nil, errors.New("no other pool")
}

// hookServer is a real webhook endpoint answering every request with the
// status status returns, counting requests.
type hookServer struct {
	*httptest.Server
	mu    sync.Mutex
	count int
	seen  chan struct{}
}

func newHookServer(t *testing.T, handle func(w http.ResponseWriter, r *http.Request)) *hookServer {
	h := &hookServer{seen: make(chan struct{}, 100)}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.count++
		h.mu.Unlock()
		h.seen <- struct{}{}
		handle(w, r)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookServer) requests() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.count
}

func answer(status int) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(status) }
}

// workerFixture is a notifier over a real store holding one subscription
// of p/q, and a worker for it.
type workerFixture struct {
	n   *Notifier
	w   *worker
	reg *prometheus.Registry
	st  *store.Store
}

func newWorkerFixture(t *testing.T, cfg Config, sub store.Subscription) *workerFixture {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	tx := st.Begin(1)
	tx.CreateSubscription("p", "q", sub, time.Now().UnixNano())
	if err := tx.Commit(1, 1); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	cfg.Store, cfg.Node, cfg.Registry = st, stubNode{}, reg
	n := New(cfg)
	k := subKey{queueKey{"p", "q"}, sub.ID}
	stored := sub
	w := newWorker(n, k, store.Subscriber{Project: "p", Subscription: &stored}, nil)
	return &workerFixture{n: n, w: w, reg: reg, st: st}
}

// count returns the value of a counter sample with the given labels.
func (f *workerFixture) count(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue next
				}
			}
			total += m.GetCounter().GetValue()
		}
	}
	return total
}

// deliverNow delivers note to the worker's subscription as the store
// holds it now.
func (w *worker) deliverNow(ctx context.Context, note *store.Notification) bool {
	v := w.n.cfg.Store.View()
	sub, queuePolicy := w.current(v)
	v.Close()
	return w.deliver(ctx, note, sub, queuePolicy)
}

func note(expiresIn time.Duration) *store.Notification {
	now := time.Now()
	return &store.Notification{Seq: 1, CreatedAt: now.UnixNano(), ExpiresAt: now.Add(expiresIn).UnixNano(),
		Payload: []byte(`{"body": 1, "ttl": 60, "queue_name": "q", "Message_Type": "Notification"}`)}
}

func TestDeliver_GivesUpWhenTheMessageExpiresEvenDuringARetryWait(t *testing.T) {
	hook := newHookServer(t, answer(http.StatusServiceUnavailable))
	f := newWorkerFixture(t, Config{}, store.Subscription{
		ID: "s1", Subscriber: hook.URL + "/", TTL: 3600,
		// Three immediate retries, then a 20 s wait that the message's
		// expiry cuts short.
		Options: []byte(`{"_retry_policy": {"minimum_delay": 20, "maximum_delay": 40}}`),
	})
	start := time.Now()
	if !f.w.deliverNow(context.Background(), note(1500*time.Millisecond)) {
		t.Fatal("an expired notification must count as handled")
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("giving up took %s; the wait must end at the message's expiry (1.5 s)", took)
	}
	if n := hook.requests(); n != 4 {
		t.Fatalf("%d attempts, want 4 (the first and three immediate retries)", n)
	}
	if got := f.count(t, "zaqar_notify_deliveries_total", map[string]string{"outcome": "expired", "scheme": "http"}); got != 1 {
		t.Fatalf("expired outcomes %v, want 1", got)
	}
	if got := f.count(t, "zaqar_notify_deliveries_total", map[string]string{"outcome": "delivered"}); got != 0 {
		t.Fatalf("delivered outcomes %v", got)
	}
	// A notification that expired before its first attempt is not sent.
	if !f.w.deliverNow(context.Background(), note(-time.Second)) || hook.requests() != 4 {
		t.Fatalf("an already expired notification was attempted (%d requests)", hook.requests())
	}
}

func TestDeliver_AnAttemptCutShortByLostLeadershipIsNotHandled(t *testing.T) {
	release := make(chan struct{})
	hook := newHookServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
		w.WriteHeader(http.StatusNoContent)
	})
	defer close(release)
	f := newWorkerFixture(t, Config{}, store.Subscription{ID: "s1", Subscriber: hook.URL + "/", TTL: 3600})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan bool)
	go func() { done <- f.w.deliverNow(ctx, note(time.Hour)) }()
	<-hook.seen
	cancel() // the notifier stops leading while the attempt is in flight
	select {
	case handled := <-done:
		if handled {
			t.Fatal("an aborted attempt was reported as handled: the next leader would not redeliver it")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("deliver did not return after its context ended")
	}
	for _, outcome := range []string{"delivered", "failed", "expired"} {
		if got := f.count(t, "zaqar_notify_deliveries_total", map[string]string{"outcome": outcome}); got != 0 {
			t.Fatalf("%v %s outcomes for an aborted attempt", got, outcome)
		}
	}
}

func TestDeliver_LostLeadershipDuringARetryWaitIsNotHandled(t *testing.T) {
	hook := newHookServer(t, answer(http.StatusBadGateway))
	f := newWorkerFixture(t, Config{}, store.Subscription{ID: "s1", Subscriber: hook.URL + "/", TTL: 3600,
		Options: []byte(`{"_retry_policy": {"retries_with_no_delay": 1, "minimum_delay": 30, "maximum_delay": 40}}`)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan bool)
	go func() { done <- f.w.deliverNow(ctx, note(time.Hour)) }()
	<-hook.seen
	<-hook.seen // the immediate retry; now it waits 30 s
	cancel()
	select {
	case handled := <-done:
		if handled {
			t.Fatal("a delivery abandoned during its retry wait was reported as handled")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("deliver kept waiting after its context ended")
	}
}

func TestDeliver_ReadsTheSubscriptionAsStoredNow(t *testing.T) {
	hook := newHookServer(t, answer(http.StatusOK))
	f := newWorkerFixture(t, Config{RequireConfirmation: true}, store.Subscription{ID: "s1", Subscriber: hook.URL + "/", TTL: 3600})
	outcome := func(o string) float64 {
		return f.count(t, "zaqar_notify_deliveries_total", map[string]string{"outcome": o})
	}
	if !f.w.deliverNow(context.Background(), note(time.Hour)) || hook.requests() != 0 || outcome("withheld") != 1 {
		t.Fatalf("unconfirmed: %d requests, %v withheld", hook.requests(), outcome("withheld"))
	}
	// Confirmed in the store, while the worker still holds the old record
	// (the resync has not run): the store wins.
	tx := f.st.Begin(2)
	if err := tx.ConfirmSubscription("p", "q", "s1", true, time.Now().UnixNano()); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(2, 1); err != nil {
		t.Fatal(err)
	}
	if !f.w.deliverNow(context.Background(), note(time.Hour)) || hook.requests() != 1 || outcome("delivered") != 1 {
		t.Fatalf("confirmed: %d requests, %v delivered", hook.requests(), outcome("delivered"))
	}
	// Deleted: nothing is sent and the notification is handled.
	tx = f.st.Begin(3)
	tx.DeleteSubscription("p", "q", "s1")
	if err := tx.Commit(3, 1); err != nil {
		t.Fatal(err)
	}
	if !f.w.deliverNow(context.Background(), note(time.Hour)) || hook.requests() != 1 || outcome("unsubscribed") != 1 {
		t.Fatalf("deleted: %d requests, %v unsubscribed", hook.requests(), outcome("unsubscribed"))
	}
}

func TestWorker_CursorPassesOnlyNotificationsHandledInOrder(t *testing.T) {
	w := &worker{cursor: 4, fetched: 7, pending: []uint64{5, 6, 7}}
	steps := []struct {
		handled uint64
		cursor  uint64
	}{{6, 4}, {7, 4}, {5, 7}}
	for _, s := range steps {
		w.handled(s.handled)
		if w.cursor != s.cursor {
			t.Fatalf("after handling %d the cursor is %d, want %d", s.handled, w.cursor, s.cursor)
		}
	}
	if seq, moved := w.progress(); !moved || seq != 7 {
		t.Fatalf("progress %d %v", seq, moved)
	}
	w.proposed(7)
	if _, moved := w.progress(); moved {
		t.Fatal("progress reported again after it was proposed")
	}
}

func TestWebhook_StatusClasses(t *testing.T) {
	cases := []struct {
		status    int
		ok, final bool
	}{
		{200, true, false}, {201, true, false}, {204, true, false}, {302, true, false}, {399, true, false},
		{400, false, true}, {401, false, true}, {404, false, true}, {410, false, true}, {499, false, true},
		{429, false, false}, {500, false, false}, {502, false, false}, {503, false, false}, {599, false, false},
	}
	for _, c := range cases {
		hook := newHookServer(t, func(w http.ResponseWriter, r *http.Request) {
			if c.status == 302 {
				w.Header().Set("Location", "http://127.0.0.1:9/elsewhere")
			}
			w.WriteHeader(c.status)
		})
		client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		err := webhook(context.Background(), client, hook.URL, []byte(`{}`), []byte(`{}`))
		if (err == nil) != c.ok || errors.Is(err, errPermanent) != c.final {
			t.Errorf("status %d: err %v; want ok=%v final=%v", c.status, err, c.ok, c.final)
		}
		if hook.requests() != 1 {
			t.Errorf("status %d: %d requests (redirects must not be followed)", c.status, hook.requests())
		}
	}
	// A transport error is retried; a malformed URL is final.
	if err := webhook(context.Background(), http.DefaultClient, "http://127.0.0.1:1/", nil, []byte(`{}`)); err == nil || errors.Is(err, errPermanent) {
		t.Errorf("connection refused: %v, want a retryable error", err)
	}
	if err := webhook(context.Background(), http.DefaultClient, "http://[::1", nil, []byte(`{}`)); !errors.Is(err, errPermanent) {
		t.Errorf("bad URL: %v, want a final error", err)
	}
}

func TestBuildEmail_AddressSubjectAndSender(t *testing.T) {
	cfg := EmailConfig{From: "default@example.com"}
	cases := []struct {
		subscriber, options string
		want                emailMessage
	}{
		{"mailto:a@example.com", `{}`, emailMessage{From: "default@example.com", To: "a@example.com"}},
		{"mailto:a@example.com?subject=From%20URI", `{"subject": "opt", "from": "x@example.com"}`,
			emailMessage{From: "x@example.com", To: "a@example.com", Subject: "From URI"}},
		{"mailto:a@example.com?cc=b@example.com", `{"subject": "opt"}`, emailMessage{From: "default@example.com", To: "a@example.com", Subject: "opt"}},
		{"mailto:first%2Blast@example.com", `null`, emailMessage{From: "default@example.com", To: "first+last@example.com"}},
	}
	for _, c := range cases {
		got, err := buildEmail(c.subscriber, []byte(c.options), []byte(`{"body": 1}`), cfg)
		c.want.Body = `{"body": 1}`
		if err != nil || got != c.want {
			t.Errorf("%s %s: %+v %v, want %+v", c.subscriber, c.options, got, err, c.want)
		}
	}
	if _, err := buildEmail("mailto:nobody", nil, nil, cfg); !errors.Is(err, errPermanent) {
		t.Errorf("an address without @: %v, want a final error", err)
	}
	// Header injection through the subject is neutralised.
	m := emailMessage{To: "a@example.com", Subject: "hi\r\nBcc: victim@example.com", Body: "x"}
	if got := string(m.bytes()); got != fmt.Sprintf("To: a@example.com\r\nSubject: hi  Bcc: victim@example.com\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\nx\r\n") {
		t.Errorf("email bytes %q", got)
	}
}

func TestPolicy_AbsurdPoliciesAreBounded(t *testing.T) {
	p, ok := ParsePolicy([]byte(`{"retries_with_no_delay": 2000000000, "minimum_delay_retries": 2000000000,
		"minimum_delay": 9000000000, "maximum_delay": 9100000000, "maximum_delay_retries": 2000000000}`))
	if !ok {
		t.Fatal("policy not parsed")
	}
	s := p.Schedule()
	if len(s) > 4*maxPhaseRetries {
		t.Fatalf("schedule of %d retries", len(s))
	}
	for i, d := range s {
		if d < 0 || d > maxDelaySeconds*time.Second {
			t.Fatalf("wait %d is %s", i, d)
		}
	}
	// Ordinary policies are untouched.
	q, _ := ParsePolicy([]byte(`{"retries_with_no_delay": 7, "minimum_delay": 2, "maximum_delay": 600}`))
	if q.RetriesWithNoDelay != 7 || q.MinimumDelay != 2 || q.MaximumDelay != 600 || len(q.backoff()) != 119 {
		t.Fatalf("policy %+v, %d backoff waits", q, len(q.backoff()))
	}
}
