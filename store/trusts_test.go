package store_test

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	"github.com/zaqar-raft/zaqar/store"
)

// trustHook returns the n-th test trust subscriber URI.
func trustHook(n int) string { return fmt.Sprintf("trust+http://127.0.0.1:9/hook/%d", n) }

// hold applies HoldTrust and returns whether the trust is held.
func (s *testStore) hold(queue, id, subscriber, trustID string, now int64) (held bool) {
	s.t.Helper()
	s.apply(func(tx *store.Txn) { held = tx.HoldTrust(proj, queue, id, subscriber, trustID, now) })
	return held
}

// retired returns every retired trust.
func (s *testStore) retired() []string {
	s.t.Helper()
	var ids []string
	s.read(func(v *store.View) (err error) { ids, err = v.RetiredTrusts(1000); return })
	if ids == nil {
		ids = []string{}
	}
	return ids
}

func (s *testStore) trustOf(queue, id string, now int64) string {
	s.t.Helper()
	sub := s.subscription(proj, queue, id, now)
	if sub == nil {
		s.t.Fatalf("subscription %s of %s is gone", id, queue)
	}
	return sub.TrustID
}

func TestHoldTrust_OnlyTheSubscriptionItWasMadeForHoldsIt(t *testing.T) {
	s := openTestStore(t)
	s.mustSubscribe(proj, "q", sid(1), trustHook(1), 60, t0)
	s.mustSubscribe(proj, "q", sid(2), trustHook(2), 3600, t0)

	if !s.hold("q", sid(1), trustHook(1), "trust-a", t0) || s.trustOf("q", sid(1), t0) != "trust-a" {
		t.Fatal("the subscription the trust was made for does not hold it")
	}
	if !s.hold("q", sid(1), trustHook(1), "trust-a", t0) || len(s.retired()) != 0 {
		t.Fatalf("holding the same trust again retired %v", s.retired())
	}
	for _, tc := range []struct {
		name, id, subscriber, trust string
		now                         int64
	}{
		{"a missing subscription (a duplicate subscribe)", sid(9), trustHook(1), "trust-b", t0},
		{"another subscriber (a PATCH that lost a conflict)", sid(2), trustHook(1), "trust-c", t0},
		{"an expired subscription", sid(1), trustHook(1), "trust-d", t0 + 60*sec},
	} {
		before := s.trustOf("q", sid(2), t0)
		if s.hold("q", tc.id, tc.subscriber, tc.trust, tc.now) {
			t.Errorf("%s holds %s", tc.name, tc.trust)
		}
		if !slices.Contains(s.retired(), tc.trust) {
			t.Errorf("%s: %s not retired (retired: %v)", tc.name, tc.trust, s.retired())
		}
		if s.trustOf("q", sid(2), t0) != before {
			t.Errorf("%s changed another subscription's trust", tc.name)
		}
	}
	// A new trust for the same subscriber replaces the held one, which is
	// retired.
	if !s.hold("q", sid(1), trustHook(1), "trust-e", t0) || s.trustOf("q", sid(1), t0) != "trust-e" {
		t.Fatal("a new trust did not replace the held one")
	}
	if want := []string{"trust-a", "trust-b", "trust-c", "trust-d"}; !slices.Equal(s.retired(), want) {
		t.Fatalf("retired %v, want %v", s.retired(), want)
	}
	s.apply(func(tx *store.Txn) { tx.ForgetTrusts([]string{"trust-a", "trust-c", "never-retired"}) })
	if want := []string{"trust-b", "trust-d"}; !slices.Equal(s.retired(), want) {
		t.Fatalf("after ForgetTrusts retired %v, want %v", s.retired(), want)
	}
	var page []string
	s.read(func(v *store.View) (err error) { page, err = v.RetiredTrusts(1); return })
	if !slices.Equal(page, []string{"trust-b"}) {
		t.Fatalf("RetiredTrusts(1) = %v", page)
	}
}

func TestHoldTrust_TheTrustGoesWithItsSubscription(t *testing.T) {
	// setup makes q's subscription 1 hold trust "held" and "keep"'s hold
	// "other".
	setup := func(t *testing.T) *testStore {
		s := openTestStore(t)
		s.mustSubscribe(proj, "q", sid(1), trustHook(1), 60, t0)
		s.mustSubscribe(proj, "keep", sid(2), trustHook(1), 3600, t0)
		s.hold("q", sid(1), trustHook(1), "held", t0)
		s.hold("keep", sid(2), trustHook(1), "other", t0)
		return s
	}
	for _, tc := range []struct {
		name   string
		change func(tx *store.Txn)
		retire bool
	}{
		{"deleted", func(tx *store.Txn) { tx.DeleteSubscription(proj, "q", sid(1)) }, true},
		{"expired and collected", func(tx *store.Txn) { tx.CollectGarbage(t0+60*sec, 100) }, true},
		{"expired and replaced by a new subscribe", func(tx *store.Txn) {
			tx.CreateSubscription(proj, "q", store.Subscription{ID: sid(3), Subscriber: trustHook(1), TTL: 60}, t0+60*sec)
		}, true},
		{"queue deleted", func(tx *store.Txn) { tx.DeleteQueue(proj, "q") }, true},
		{"subscriptions purged", func(tx *store.Txn) { tx.PurgeQueue(proj, "q", false, true) }, true},
		{"given another subscriber", func(tx *store.Txn) {
			u := trustHook(7)
			_ = tx.UpdateSubscription(proj, "q", sid(1), store.SubscriptionUpdate{Subscriber: &u}, t0)
		}, true},
		{"messages purged", func(tx *store.Txn) { tx.PurgeQueue(proj, "q", true, false) }, false},
		{"given new options and ttl", func(tx *store.Txn) {
			ttl := int64(120)
			_ = tx.UpdateSubscription(proj, "q", sid(1), store.SubscriptionUpdate{TTL: &ttl, Options: []byte(`{"post_data":"x"}`)}, t0)
		}, false},
		{"given the subscriber it has", func(tx *store.Txn) {
			u := trustHook(1)
			_ = tx.UpdateSubscription(proj, "q", sid(1), store.SubscriptionUpdate{Subscriber: &u}, t0)
		}, false},
		{"confirmed", func(tx *store.Txn) { _ = tx.ConfirmSubscription(proj, "q", sid(1), true, t0) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := setup(t)
			s.apply(tc.change)
			want := []string{}
			if tc.retire {
				want = []string{"held"}
			}
			if got := s.retired(); !slices.Equal(got, want) {
				t.Fatalf("retired %v, want %v", got, want)
			}
			if tc.retire {
				if sub := s.subscription(proj, "q", sid(1), t0); sub != nil && sub.TrustID != "" {
					t.Fatalf("the subscription still holds %q", sub.TrustID)
				}
				return
			}
			if got := s.trustOf("q", sid(1), t0); got != "held" {
				t.Fatalf("the subscription holds %q, want held", got)
			}
		})
	}
}

func TestHoldTrust_TrustsSurviveSnapshotAndRestore(t *testing.T) {
	s := openTestStore(t)
	s.mustSubscribe(proj, "q", sid(1), trustHook(1), 3600, t0)
	s.mustSubscribe(proj, "q", sid(2), hook(2), 3600, t0)
	s.hold("q", sid(1), trustHook(1), "held", t0)
	s.hold("q", sid(9), trustHook(1), "retired", t0)
	snap := s.snapshot()

	other := openTestStore(t)
	if err := other.st.Restore(bytes.NewReader(snap)); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if other.digest() != s.digest() {
		t.Fatal("restored store differs")
	}
	if got := other.trustOf("q", sid(1), t0); got != "held" {
		t.Fatalf("restored trust %q", got)
	}
	if got := other.trustOf("q", sid(2), t0); got != "" {
		t.Fatalf("a webhook subscription holds %q", got)
	}
	if got := other.retired(); !slices.Equal(got, []string{"retired"}) {
		t.Fatalf("restored retired trusts %v", got)
	}
}

func TestRaiseCommandLevel_NeverGoesDown(t *testing.T) {
	s := openTestStore(t)
	level := func() byte {
		var lv byte
		s.read(func(v *store.View) (err error) { lv, err = v.CommandLevel(); return })
		return lv
	}
	if level() != 0 {
		t.Fatal("a new store has a command level")
	}
	for _, tc := range []struct{ raise, want byte }{{19, 19}, {20, 20}, {19, 20}, {20, 20}} {
		s.apply(func(tx *store.Txn) { tx.RaiseCommandLevel(tc.raise) })
		if got := level(); got != tc.want {
			t.Fatalf("after raising to %d: level %d, want %d", tc.raise, got, tc.want)
		}
	}
}
