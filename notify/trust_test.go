package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zaqar-raft/zaqar/auth"
	"github.com/zaqar-raft/zaqar/fsm"
	"github.com/zaqar-raft/zaqar/store"
)

// fakeTrusts is a Keystone of trusts: it issues numbered tokens for the
// trusts it knows, refuses the others as told, and records what it is
// asked.
type fakeTrusts struct {
	mu        sync.Mutex
	known     map[string]bool
	refusal   map[string]int // trust id → status Keystone refuses it with
	outage    bool           // every call fails as Keystone unavailable
	issued    int
	cached    map[string]string // trust id → token
	asked     []string          // TrustToken calls that reached "Keystone"
	deleted   []string
	forgotten []string
}

func newFakeTrusts(known ...string) *fakeTrusts {
	f := &fakeTrusts{known: map[string]bool{}, refusal: map[string]int{}, cached: map[string]string{}}
	for _, id := range known {
		f.known[id] = true
	}
	return f
}

func (f *fakeTrusts) TrustToken(_ context.Context, id string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if tok, ok := f.cached[id]; ok {
		return tok, nil
	}
	f.asked = append(f.asked, id)
	switch {
	case f.outage:
		return "", fmt.Errorf("%w: induced", auth.ErrUnavailable)
	case f.refusal[id] != 0:
		return "", &auth.TrustRefusal{Status: f.refusal[id], Message: "induced refusal"}
	case !f.known[id]:
		return "", &auth.TrustRefusal{Status: http.StatusNotFound, Message: "Could not find trust"}
	}
	f.issued++
	f.cached[id] = fmt.Sprintf("token-%d-of-%s", f.issued, id)
	return f.cached[id], nil
}

func (f *fakeTrusts) ForgetTrustToken(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.cached, id)
	f.forgotten = append(f.forgotten, id)
}

func (f *fakeTrusts) DeleteTrust(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.outage:
		return fmt.Errorf("%w: induced", auth.ErrUnavailable)
	case f.refusal[id] == http.StatusForbidden:
		return &auth.TrustRefusal{Status: http.StatusForbidden, Message: "trustor disabled"}
	}
	delete(f.known, id)
	delete(f.cached, id)
	f.deleted = append(f.deleted, id)
	return nil
}

func (f *fakeTrusts) with(fn func(f *fakeTrusts)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// logBuffer is a logger writing into a buffer the test can read.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.buf.String(), s)
}

func (l *logBuffer) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

// request is what a hook server saw.
type request struct {
	path   string
	header http.Header
	body   string
}

// recordingHook is a webhook endpoint recording every request and
// answering with status(n) for the n-th (from 1).
func recordingHook(t *testing.T, status func(n int) int) (*hookServer, func() []request) {
	var mu sync.Mutex
	var seen []request
	h := newHookServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, request{r.URL.Path, r.Header.Clone(), string(b)})
		n := len(seen)
		mu.Unlock()
		w.WriteHeader(status(n))
	})
	return h, func() []request {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seen)
	}
}

func TestTrustDeliverer_PostsToTheURLWithoutTrustWithTheTrustsToken(t *testing.T) {
	hook, seen := recordingHook(t, func(int) int { return http.StatusNoContent })
	trusts := newFakeTrusts("t1")
	f := newWorkerFixture(t, Config{Trusts: trusts}, store.Subscription{
		ID: "s1", Subscriber: "trust+" + hook.URL + "/workflows/run", TTL: 3600, TrustID: "t1",
		Options: []byte(`{"post_data": "{\"input\": {\"n\": \"$zaqar_message$\"}}", "post_headers": {"X-Auth-Token": "forged", "X-Project-ID": "alpha", "Content-Type": "application/vnd.test+json"}}`),
	})
	for i := 0; i < 3; i++ {
		if !f.w.deliverNow(context.Background(), note(time.Hour)) {
			t.Fatal("not handled")
		}
	}
	got := seen()
	if len(got) != 3 {
		t.Fatalf("%d requests, want 3", len(got))
	}
	for _, r := range got {
		if r.path != "/workflows/run" {
			t.Errorf("path %q", r.path)
		}
		if tok := r.header.Get("X-Auth-Token"); tok != "token-1-of-t1" {
			t.Errorf("X-Auth-Token %q, want the trust's token (post_headers cannot replace it)", tok)
		}
		if r.header.Get("X-Project-ID") != "alpha" || r.header.Get("Content-Type") != "application/vnd.test+json" {
			t.Errorf("post_headers not sent: %v", r.header)
		}
		if want := `{"input": {"n": ` + string(note(0).Payload) + `}}`; r.body != want {
			t.Errorf("body %s, want %s", r.body, want)
		}
	}
	if len(trusts.asked) != 1 {
		t.Fatalf("Keystone asked %d times for three deliveries, want once (the token is cached)", len(trusts.asked))
	}
	if got := f.count(t, "zaqar_notify_deliveries_total", map[string]string{"scheme": "trust+http", "outcome": "delivered"}); got != 3 {
		t.Fatalf("delivered %v, want 3", got)
	}
}

func TestTrustDeliverer_ARefusedTrustStopsItsSubscriptionWithOneLogLineAndACount(t *testing.T) {
	hook, seen := recordingHook(t, func(int) int { return http.StatusNoContent })
	trusts := newFakeTrusts() // t1 is unknown: deleted, revoked or expired
	var logs logBuffer
	f := newWorkerFixture(t, Config{Trusts: trusts, Logger: logs.logger()}, store.Subscription{
		ID: "s1", Subscriber: "trust+" + hook.URL + "/", TTL: 3600, TrustID: "t1",
	})
	for i := 0; i < 20; i++ {
		if !f.w.deliverNow(context.Background(), note(time.Hour)) {
			t.Fatal("a stopped notification must count as handled")
		}
	}
	if n := len(seen()); n != 0 {
		t.Fatalf("%d requests reached the receiver", n)
	}
	if n := len(trusts.asked); n != 1 {
		t.Fatalf("Keystone asked %d times for 20 notifications, want once (no retry storm)", n)
	}
	if n := logs.count("trust subscription stopped"); n != 1 {
		t.Fatalf("%d log lines, want one:\n%s", n, logs.buf.String())
	}
	if n := logs.count("notification not delivered"); n != 0 {
		t.Fatalf("%d per-notification log lines, want none", n)
	}
	if got := f.count(t, "zaqar_notify_trust_refusals_total", map[string]string{"reason": "not_found"}); got != 1 {
		t.Fatalf("trust refusals %v, want 1", got)
	}
	if got := f.count(t, "zaqar_notify_deliveries_total", map[string]string{"outcome": "stopped"}); got != 20 {
		t.Fatalf("stopped %v, want 20", got)
	}
	if got := f.count(t, "zaqar_notify_attempts_total", nil); got != 20 {
		t.Fatalf("attempts %v, want 20 (one each, no retries)", got)
	}

	// Keystone is asked again after trustRecheck: a trust it accepts
	// again resumes deliveries.
	trusts.with(func(f *fakeTrusts) { f.known["t1"] = true })
	f.n.trust.mu.Lock()
	r := f.n.trust.refused["t1"]
	r.until = time.Now()
	f.n.trust.refused["t1"] = r
	f.n.trust.mu.Unlock()
	if !f.w.deliverNow(context.Background(), note(time.Hour)) || len(seen()) != 1 {
		t.Fatalf("after the recheck: %d requests, want 1", len(seen()))
	}
	if logs.count("trust subscription resumed") != 1 {
		t.Fatalf("no resume line:\n%s", logs.buf.String())
	}

	// A subscription given a new trust (a PATCH) resumes at once.
	trusts.with(func(f *fakeTrusts) { f.refusal["t1"] = http.StatusForbidden; delete(f.cached, "t1") })
	f.w.deliverNow(context.Background(), note(time.Hour))
	if got := f.count(t, "zaqar_notify_trust_refusals_total", map[string]string{"reason": "forbidden"}); got != 1 {
		t.Fatalf("forbidden refusals %v, want 1", got)
	}
	trusts.with(func(f *fakeTrusts) { f.known["t2"] = true })
	tx := f.st.Begin(2)
	if !tx.HoldTrust("p", "q", "s1", "trust+"+hook.URL+"/", "t2", time.Now().UnixNano()) {
		t.Fatal("HoldTrust")
	}
	if err := tx.Commit(2, 1); err != nil {
		t.Fatal(err)
	}
	if !f.w.deliverNow(context.Background(), note(time.Hour)) || len(seen()) != 2 || seen()[1].header.Get("X-Auth-Token") == "" {
		t.Fatalf("after a new trust: %d requests, want 2", len(seen()))
	}
}

func TestTrustDeliverer_AReceiverRefusingTheTokenGetsANewOne(t *testing.T) {
	hook, seen := recordingHook(t, func(n int) int {
		if n == 1 {
			return http.StatusUnauthorized
		}
		return http.StatusNoContent
	})
	trusts := newFakeTrusts("t1")
	f := newWorkerFixture(t, Config{Trusts: trusts}, store.Subscription{
		ID: "s1", Subscriber: "trust+" + hook.URL + "/", TTL: 3600, TrustID: "t1",
	})
	if !f.w.deliverNow(context.Background(), note(time.Hour)) {
		t.Fatal("not handled")
	}
	got := seen()
	if len(got) != 2 || got[0].header.Get("X-Auth-Token") == got[1].header.Get("X-Auth-Token") {
		t.Fatalf("requests %v: want a retry with a new token after the 401", got)
	}
	if d := f.count(t, "zaqar_notify_deliveries_total", map[string]string{"outcome": "delivered"}); d != 1 {
		t.Fatalf("delivered %v", d)
	}
}

func TestTrustDeliverer_KeystoneOutagesAreRetriedAndNothingIsStopped(t *testing.T) {
	hook, seen := recordingHook(t, func(int) int { return http.StatusNoContent })
	trusts := newFakeTrusts("t1")
	trusts.outage = true
	f := newWorkerFixture(t, Config{Trusts: trusts}, store.Subscription{
		ID: "s1", Subscriber: "trust+" + hook.URL + "/", TTL: 3600, TrustID: "t1",
		Options: []byte(`{"_retry_policy": {"retries_with_no_delay": 2, "minimum_delay": 1, "maximum_delay": 11}}`),
	})
	go func() {
		time.Sleep(300 * time.Millisecond)
		trusts.with(func(f *fakeTrusts) { f.outage = false })
	}()
	if !f.w.deliverNow(context.Background(), note(time.Minute)) || len(seen()) != 1 {
		t.Fatalf("%d requests after Keystone came back, want 1", len(seen()))
	}
	if got := f.count(t, "zaqar_notify_trust_refusals_total", nil); got != 0 {
		t.Fatalf("an outage counted %v refusals", got)
	}
}

func TestTrustDeliverer_ASubscriptionWithoutATrustIsStoppedAndSaidOnce(t *testing.T) {
	var logs logBuffer
	for _, tc := range []struct {
		name   string
		trusts Trusts
		reason string
	}{
		{"no trust", newFakeTrusts(), "no_trust"},
		{"no Keystone", nil, "no_keystone"},
	} {
		f := newWorkerFixture(t, Config{Trusts: tc.trusts, Logger: logs.logger()}, store.Subscription{
			ID: "s-" + tc.reason, Subscriber: "trust+http://127.0.0.1:9/", TTL: 3600,
		})
		for i := 0; i < 3; i++ {
			if !f.w.deliverNow(context.Background(), note(time.Hour)) {
				t.Fatalf("%s: not handled", tc.name)
			}
		}
		if got := f.count(t, "zaqar_notify_trust_refusals_total", map[string]string{"reason": tc.reason}); got != 1 {
			t.Errorf("%s: %s count %v, want 1", tc.name, tc.reason, got)
		}
		if got := f.count(t, "zaqar_notify_deliveries_total", map[string]string{"outcome": "stopped"}); got != 3 {
			t.Errorf("%s: stopped %v, want 3", tc.name, got)
		}
	}
	if n := logs.count("trust subscription stopped"); n != 2 {
		t.Fatalf("%d log lines, want one per subscription:\n%s", n, logs.buf.String())
	}
}

func TestTrustDeliverer_CheckNeedsKeystoneAndJudgesTheURLAsAWebhook(t *testing.T) {
	without := NewRegistry(Config{})
	if err := without.CheckSubscriber("trust+https://hooks.example.com/x"); err == nil || !strings.Contains(err.Error(), "need Keystone") {
		t.Fatalf("without Keystone: %v, want a refusal naming Keystone", err)
	}
	with := NewRegistry(Config{Trusts: newFakeTrusts()})
	for subscriber, ok := range map[string]bool{
		"trust+https://hooks.example.com/x": true,
		"trust+http://10.0.0.5:8989/v2/":    true,
		"trust+http://169.254.169.254/":     false, // link-local, as for webhooks
		"trust+http://":                     false,
		"trust+https:nohost":                false,
	} {
		if err := with.CheckSubscriber(subscriber); (err == nil) != ok {
			t.Errorf("Check(%q) = %v, want ok=%v", subscriber, err, ok)
		}
	}
	if !IsTrustSubscriber("trust+http://h/") || !IsTrustSubscriber("trust+https://h/") || IsTrustSubscriber("https://h/") || IsTrustSubscriber("trust+mailto:a@b") {
		t.Fatal("IsTrustSubscriber")
	}
}

// recordingNode is a leading Node that records proposals.
type recordingNode struct {
	stubNode
	mu       sync.Mutex
	proposed []fsm.Command
	fail     bool
}

func (r *recordingNode) Propose(_ context.Context, cmds ...fsm.Command) (*fsm.EntryResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail {
		return nil, errors.New("induced")
	}
	r.proposed = append(r.proposed, cmds...)
	return &fsm.EntryResult{}, nil
}

func TestCleanTrusts_DeletesRetiredTrustsAndForgetsThoseDealtWith(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	tx := st.Begin(1)
	now := time.Now().UnixNano()
	for _, id := range []string{"a", "b", "c"} {
		tx.HoldTrust("p", "q", "missing", "trust+http://h/", id, now) // retired at once
	}
	if err := tx.Commit(1, 1); err != nil {
		t.Fatal(err)
	}
	trusts := newFakeTrusts("a", "b", "c")
	trusts.refusal["b"] = http.StatusForbidden // a disabled trustor: cannot be deleted
	node := &recordingNode{}
	n := New(Config{Store: st, Node: node, Trusts: trusts})
	n.deleteRetiredTrusts(context.Background())
	if !slices.Equal(trusts.deleted, []string{"a", "c"}) {
		t.Fatalf("deleted %v, want a and c", trusts.deleted)
	}
	if len(node.proposed) != 1 || !slices.Equal(node.proposed[0].(*fsm.ForgetTrusts).TrustIDs, []string{"a", "b", "c"}) {
		t.Fatalf("proposed %#v, want one ForgetTrusts of a, b and c (b cannot ever be deleted)", node.proposed)
	}

	// An outage: nothing is forgotten, the next run tries again.
	node.proposed = nil
	trusts.with(func(f *fakeTrusts) { f.outage = true; f.deleted = nil })
	n.deleteRetiredTrusts(context.Background())
	if len(node.proposed) != 0 {
		t.Fatalf("proposed %#v during an outage", node.proposed)
	}
	// Without Keystone nothing can be done either.
	New(Config{Store: st, Node: node}).deleteRetiredTrusts(context.Background())
	if len(node.proposed) != 0 {
		t.Fatalf("proposed %#v without Keystone", node.proposed)
	}
}

func TestCheckWebhookOptions_PostDataIsAStringAndPostHeadersCanBeSent(t *testing.T) {
	for options, ok := range map[string]bool{
		`{}`: true,
		`{"post_data": "{\"m\": \"$zaqar_message$\"}"}`:                true,
		`{"post_data": null, "post_headers": null}`:                    true,
		`{"post_headers": {"X-Token": "s3cr3t", "Host": "h.example"}}`: true,
		`{"post_headers": {}}`:                                         true,
		`{"subject": 5, "_retry_policy": {}}`:                          true,
		`{"post_data": {"m": "$zaqar_message$"}}`:                      false,
		`{"post_data": 1}`:                                             false,
		`{"post_headers": ["X-Token"]}`:                                false,
		`{"post_headers": "X-Token: 1"}`:                               false,
		`{"post_headers": {"X-Count": 5}}`:                             false,
		`{"post_headers": {"Bad Name": "x"}}`:                          false,
		`{"post_headers": {"X-Injected": "a\r\nX-Other: b"}}`:          false,
		`{"post_headers": {"": "x"}}`:                                  false,
	} {
		if err := CheckWebhookOptions([]byte(options)); (err == nil) != ok {
			t.Errorf("CheckWebhookOptions(%s) = %v, want ok=%v", options, err, ok)
		}
	}
}

func TestWebhook_PostHeadersAreSentAndOnesThatCannotBeAreFinal(t *testing.T) {
	hook, seen := recordingHook(t, func(int) int { return http.StatusNoContent })
	client := &http.Client{}
	err := webhook(context.Background(), client, hook.URL+"/x", []byte(`{"post_headers": {"X-Token": "s3cr3t", "Host": "hooks.example", "Content-Type": "text/plain"}, "post_data": "[\"$zaqar_message$\", \"$zaqar_message$\"]"}`), []byte(`{"a":1}`))
	if err != nil {
		t.Fatal(err)
	}
	r := seen()[0]
	if r.header.Get("X-Token") != "s3cr3t" || r.header.Get("Content-Type") != "text/plain" || r.body != `[{"a":1}, {"a":1}]` {
		t.Fatalf("request %+v", r)
	}
	// Stored before options were checked: final, never sent.
	err = webhook(context.Background(), client, hook.URL+"/x", []byte(`{"post_headers": {"X-Bad": "a\nb"}}`), []byte(`{}`))
	if !errors.Is(err, errPermanent) || len(seen()) != 1 {
		t.Fatalf("an unsendable header: %v (%d requests), want a final error and no request", err, len(seen()))
	}
}
