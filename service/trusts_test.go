package service

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zaqar-raft/zaqar/auth"
	"github.com/zaqar-raft/zaqar/fsm"
	"github.com/zaqar-raft/zaqar/notify"
	"github.com/zaqar-raft/zaqar/raftnode"
	"github.com/zaqar-raft/zaqar/store"
	"github.com/zaqar-raft/zaqar/testkit/fsmnode"
)

// fakeTrustMaker records the trusts the service asks Keystone for.
type fakeTrustMaker struct {
	mu       sync.Mutex
	requests []auth.TrustRequest
	deleted  []string
	err      error // returned by CreateTrust when set
}

func (f *fakeTrustMaker) CreateTrust(_ context.Context, r auth.TrustRequest) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return "", f.err
	}
	f.requests = append(f.requests, r)
	return fmt.Sprintf("trust-%d", len(f.requests)), nil
}

func (f *fakeTrustMaker) DeleteTrust(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deleted = append(f.deleted, id)
	return nil
}

// keystoneTrusts is the notifier's side of Keystone, for the registry's
// check that trust subscribers can be served.
type keystoneTrusts struct{}

func (keystoneTrusts) TrustToken(context.Context, string) (string, error) { return "", nil }
func (keystoneTrusts) ForgetTrustToken(string)                            {}
func (keystoneTrusts) DeleteTrust(context.Context, string) error          { return nil }

// failingNode fails the next proposals with err, then proposes through
// the fsmnode.
type failingNode struct {
	*fsmnode.Node
	mu    sync.Mutex
	fails int
	err   error
}

func (n *failingNode) Propose(ctx context.Context, cmds ...fsm.Command) (*fsm.EntryResult, error) {
	n.mu.Lock()
	fail := n.fails > 0
	if fail {
		n.fails--
	}
	n.mu.Unlock()
	if fail {
		return nil, n.err
	}
	return n.Node.Propose(ctx, cmds...)
}

// trustFixture is a service in Keystone mode over a one-replica node.
type trustFixture struct {
	svc    *Service
	node   *failingNode
	st     *store.Store
	trusts *fakeTrustMaker
	alice  Caller
}

func newTrustFixture(t *testing.T) *trustFixture {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{CacheBytes: 8 << 20})
	must(t, err)
	t.Cleanup(func() { st.Close() })
	fn, err := fsmnode.New(st)
	must(t, err)
	node := &failingNode{Node: fn}
	trusts := &fakeTrustMaker{}
	svc := New(node, st, Config{
		Subscribers: notify.NewRegistry(notify.Config{Trusts: keystoneTrusts{}}), Trusts: trusts, AuthRequired: true,
	})
	alice := Caller{Project: "pid-alpha", UserID: "uid-alice", Token: "alice-token", Roles: []string{"member", "reader"}, ClientID: "c"}
	return &trustFixture{svc: svc, node: node, st: st, trusts: trusts, alice: alice}
}

func (f *trustFixture) subscription(t *testing.T, id string) *store.Subscription {
	t.Helper()
	v := f.st.View()
	defer v.Close()
	s, err := v.Subscription("pid-alpha", "q", id, time.Now().UnixNano())
	must(t, err)
	if s == nil {
		t.Fatalf("no subscription %s", id)
	}
	return s
}

func (f *trustFixture) retired(t *testing.T) []string {
	t.Helper()
	v := f.st.View()
	defer v.Close()
	ids, err := v.RetiredTrusts(100)
	must(t, err)
	return ids
}

func body(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

func TestTrustSubscription_TheCallerDelegatesTheirRolesAndTheTrustIsNeverShown(t *testing.T) {
	f := newTrustFixture(t)
	ctx := context.Background()
	res, e := f.svc.CreateSubscription(ctx, f.alice, "q", body(map[string]any{
		"subscriber": "trust+https://mistral.example.com/v2/executions", "ttl": 3600,
		"options": map[string]any{"post_data": `{"input": "$zaqar_message$"}`, "trust_id": "named-by-the-client"},
	}))
	if e != nil {
		t.Fatalf("subscribe: %v", e)
	}
	if want := []auth.TrustRequest{{Token: "alice-token", UserID: "uid-alice", ProjectID: "pid-alpha", Roles: []string{"member", "reader"}}}; !slices.EqualFunc(f.trusts.requests, want, func(a, b auth.TrustRequest) bool {
		return a.Token == b.Token && a.UserID == b.UserID && a.ProjectID == b.ProjectID && slices.Equal(a.Roles, b.Roles)
	}) {
		t.Fatalf("trust requests %+v, want %+v", f.trusts.requests, want)
	}
	if got := f.subscription(t, res.ID).TrustID; got != "trust-1" {
		t.Fatalf("the subscription holds %q, want the trust Keystone made (not one named in the options)", got)
	}
	shown, e := f.svc.GetSubscription(ctx, f.alice, "q", res.ID)
	if e != nil {
		t.Fatal(e)
	}
	list, e := f.svc.ListSubscriptions(ctx, f.alice, "q", "", nil)
	if e != nil {
		t.Fatal(e)
	}
	for _, s := range append(list.Subscriptions, shown) {
		if b := body(s); strings.Contains(string(b), "trust-1") {
			t.Fatalf("the trust shows: %s", b)
		}
	}
}

func TestTrustSubscription_TrustsFollowSubscribesPatchesAndDeletes(t *testing.T) {
	f := newTrustFixture(t)
	ctx := context.Background()
	sub := map[string]any{"subscriber": "trust+http://hooks.example.com/a"}
	first, e := f.svc.CreateSubscription(ctx, f.alice, "q", body(sub))
	if e != nil {
		t.Fatal(e)
	}
	// A duplicate of the unconfirmed subscription answers its id and does
	// not take the trust made for it.
	dup, e := f.svc.CreateSubscription(ctx, f.alice, "q", body(sub))
	if e != nil || dup.ID != first.ID || !dup.Existing {
		t.Fatalf("duplicate: %+v %v", dup, e)
	}
	if f.subscription(t, first.ID).TrustID != "trust-1" || !slices.Equal(f.retired(t), []string{"trust-2"}) {
		t.Fatalf("after the duplicate: held %q, retired %v", f.subscription(t, first.ID).TrustID, f.retired(t))
	}
	steps := []struct {
		name    string
		patch   map[string]any
		held    string
		retired []string
	}{
		{"new options and ttl keep the trust", map[string]any{"ttl": 7200, "options": map[string]any{"post_headers": map[string]string{"X-A": "1"}}}, "trust-1", nil},
		{"the trust subscriber restated gets a new trust from the caller", map[string]any{"subscriber": "trust+http://hooks.example.com/a", "ttl": 3600}, "trust-3", []string{"trust-1"}},
		{"another trust subscriber gets a new trust", map[string]any{"subscriber": "trust+https://hooks.example.com/b"}, "trust-4", []string{"trust-3"}},
		{"a plain webhook ends the trust", map[string]any{"subscriber": "https://hooks.example.com/c"}, "", []string{"trust-4"}},
		{"a trust subscriber again gets a trust", map[string]any{"subscriber": "trust+https://hooks.example.com/d"}, "trust-5", nil},
	}
	retired := []string{"trust-2"}
	for _, st := range steps {
		if e := f.svc.UpdateSubscription(ctx, f.alice, "q", first.ID, body(st.patch)); e != nil {
			t.Fatalf("%s: %v", st.name, e)
		}
		retired = append(retired, st.retired...)
		slices.Sort(retired)
		if got := f.subscription(t, first.ID).TrustID; got != st.held {
			t.Fatalf("%s: holds %q, want %q", st.name, got, st.held)
		}
		if got := f.retired(t); !slices.Equal(got, retired) {
			t.Fatalf("%s: retired %v, want %v", st.name, got, retired)
		}
	}
	// A PATCH of a missing subscription retires the trust made for it.
	if e := f.svc.UpdateSubscription(ctx, f.alice, "q", "nope", body(map[string]any{"subscriber": "trust+https://h/x"})); e == nil || e.Status != http.StatusNotFound {
		t.Fatalf("PATCH of a missing subscription: %v", e)
	}
	if got := f.retired(t); !slices.Contains(got, "trust-6") {
		t.Fatalf("the missing subscription's trust is not retired: %v", got)
	}
	if e := f.svc.DeleteSubscription(ctx, f.alice, "q", first.ID); e != nil {
		t.Fatal(e)
	}
	if got := f.retired(t); !slices.Contains(got, "trust-5") {
		t.Fatalf("the deleted subscription's trust is not retired: %v", got)
	}
}

func TestTrustSubscription_RefusalsNeedAKeystoneTokenAndSayWhy(t *testing.T) {
	ctx := context.Background()
	trustBody := body(map[string]any{"subscriber": "trust+https://hooks.example.com/a"})

	f := newTrustFixture(t)
	signed := f.alice
	signed.Token, signed.UserID = "", "" // a pre-signed URL's caller
	if _, e := f.svc.CreateSubscription(ctx, signed, "q", trustBody); e == nil || e.Status != http.StatusForbidden || !strings.Contains(e.Description, "Keystone token") {
		t.Fatalf("without a token: %v, want 403 naming the token", e)
	}
	f.trusts.err = &auth.TrustRefusal{Status: http.StatusForbidden, Message: "Redelegation allowed for delegated by trust only"}
	if _, e := f.svc.CreateSubscription(ctx, f.alice, "q", trustBody); e == nil || e.Status != http.StatusForbidden || !strings.Contains(e.Description, "Redelegation") {
		t.Fatalf("Keystone refusing: %v, want 403 with Keystone's reason", e)
	}
	f.trusts.err = fmt.Errorf("%w: down", auth.ErrUnavailable)
	if _, e := f.svc.CreateSubscription(ctx, f.alice, "q", trustBody); e == nil || e.Status != http.StatusServiceUnavailable {
		t.Fatalf("Keystone down: %v, want 503", e)
	}
	if _, e := f.svc.CreateSubscription(ctx, f.alice, "q", body(map[string]any{"subscriber": "https://h/", "options": map[string]any{"post_data": map[string]any{"a": 1}}})); e == nil || e.Status != http.StatusBadRequest {
		t.Fatalf("post_data that is not a string: %v, want 400", e)
	}
	if len(f.retired(t)) != 0 || len(f.trusts.requests) != 0 {
		t.Fatalf("refused subscriptions left trusts behind: %v %v", f.retired(t), f.trusts.requests)
	}

	// Without Keystone (no-auth): 400, as before.
	noauth, _, _ := newLocalService(t, DefaultLimits())
	_, e := noauth.CreateSubscription(ctx, Caller{Project: "p", ClientID: "c"}, "q", trustBody)
	if e == nil || e.Status != http.StatusBadRequest || !strings.Contains(e.Description, "need Keystone") {
		t.Fatalf("no-auth: %v, want 400 naming Keystone", e)
	}
}

func TestTrustSubscription_AnEntryThatFailsDoesNotLeakItsTrust(t *testing.T) {
	ctx := context.Background()
	trustBody := body(map[string]any{"subscriber": "trust+https://hooks.example.com/a"})

	// Refused by the command gate: never proposed, deleted at once.
	f := newTrustFixture(t)
	f.node.fails, f.node.err = 1, fmt.Errorf("%w: node3 (level 18)", raftnode.ErrUpgradeInProgress)
	if _, e := f.svc.CreateSubscription(ctx, f.alice, "q", trustBody); e == nil || e.Status != http.StatusServiceUnavailable || !strings.Contains(e.Description, "upgrade") {
		t.Fatalf("during an upgrade: %v, want 503 naming the upgrade", e)
	}
	if !slices.Equal(f.trusts.deleted, []string{"trust-1"}) {
		t.Fatalf("deleted %v, want the trust made for the refused entry", f.trusts.deleted)
	}

	// An unknown outcome: HoldTrust is proposed again, which retires the
	// trust since the subscription does not exist.
	f = newTrustFixture(t)
	f.node.fails, f.node.err = 1, raftnode.ErrUnknownOutcome
	if _, e := f.svc.CreateSubscription(ctx, f.alice, "q", trustBody); e == nil {
		t.Fatal("the failed entry succeeded")
	}
	if got := f.retired(t); !slices.Equal(got, []string{"trust-1"}) || len(f.trusts.deleted) != 0 {
		t.Fatalf("retired %v (deleted %v), want the trust retired for the leader to delete", got, f.trusts.deleted)
	}
}
