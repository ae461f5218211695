package store_test

import (
	"math"
	"testing"

	"github.com/zaqar-raft/zaqar/store"
)

// heatTTL is OpenStack Heat's default subscription TTL (about 6983 years).
const heatTTL int64 = 220367260800

func TestDeadline_SaturatesInsteadOfWrapping(t *testing.T) {
	const maxSec int64 = math.MaxInt64 / 1_000_000_000 // 9223372036
	cases := []struct {
		now, seconds, want int64
	}{
		{t0, 60, t0 + 60*sec},
		{t0, 0, t0},
		{t0, -60, t0 - 60*sec},
		{t0, heatTTL, store.Never},
		{t0, math.MaxInt64, store.Never},
		{0, maxSec, maxSec * sec},
		{1, maxSec, maxSec*sec + 1},
		{store.Never - 59*sec, 60, store.Never},
		{store.Never - 60*sec, 60, store.Never},
		{store.Never - 61*sec, 60, store.Never - sec},
		{store.Never, 1, store.Never},
		{t0, maxSec + 1, store.Never},
		// Deadlines before 1970 are 0: already past, and first in the
		// expiry indexes rather than wrapped to the end of them.
		{t0, -t0/sec - 1, 0},
		{t0, math.MinInt64, 0},
		{math.MinInt64, -1, 0},
		{-5 * sec, 10, 5 * sec},
	}
	for _, c := range cases {
		if got := store.Deadline(c.now, c.seconds); got != c.want {
			t.Errorf("Deadline(%d, %d) = %d, want %d", c.now, c.seconds, got, c.want)
		}
	}
}

func TestSubscription_HeatsDefaultTTLNeverExpiresAndKeepsItsTTL(t *testing.T) {
	s := openTestStore(t)
	s.mustSubscribe(proj, "q", sid(1), hook(1), heatTTL, t0)
	sub := s.subscription(proj, "q", sid(1), t0)
	if sub == nil || sub.TTL != heatTTL || sub.ExpiresAt != store.Never {
		t.Fatalf("subscription %+v, want ttl %d expiring at Never", sub, heatTTL)
	}
	// The last instant the clock can tell: still there, and GC leaves it.
	if s.subscription(proj, "q", sid(1), store.Never-1) == nil {
		t.Fatal("the subscription expired before Never")
	}
	if n := s.gc(store.Never-1, 100); n != 0 {
		t.Fatalf("GC just before Never processed %d entries", n)
	}
	if got := s.subscriptionIDs(proj, "q", "", 10, store.Never-1); len(got) != 1 {
		t.Fatalf("listed %v just before Never", got)
	}

	// A PATCH to the same TTL restarts it at Never again; to a short one
	// makes it expire as usual.
	ttl := heatTTL
	s.apply(func(tx *store.Txn) {
		if err := tx.UpdateSubscription(proj, "q", sid(1), store.SubscriptionUpdate{TTL: &ttl}, t0+sec); err != nil {
			t.Fatalf("update: %v", err)
		}
	})
	if sub := s.subscription(proj, "q", sid(1), t0+sec); sub == nil || sub.ExpiresAt != store.Never || sub.TTL != heatTTL {
		t.Fatalf("after a PATCH to Heat's TTL: %+v", sub)
	}
	short := int64(60)
	s.apply(func(tx *store.Txn) {
		if err := tx.UpdateSubscription(proj, "q", sid(1), store.SubscriptionUpdate{TTL: &short}, t0+2*sec); err != nil {
			t.Fatalf("update: %v", err)
		}
	})
	if n := s.gc(t0+62*sec, 100); n != 1 || s.subscription(proj, "q", sid(1), t0) != nil {
		t.Fatalf("GC at the short expiry processed %d entries", n)
	}
}

func TestMessagesAndClaims_FarTTLsSaturateInsteadOfExpiringAtOnce(t *testing.T) {
	s := openTestStore(t)
	far := int64(math.MaxInt64 / 1_000_000_000) // seconds whose nanoseconds still fit
	s.post(proj, "q", "c", t0, msg(mid(1), far), msg(mid(2), 60))
	m := s.message(proj, "q", mid(1), t0)
	if m == nil || m.ExpiresAt != store.Never || m.TTL != far {
		t.Fatalf("far message %+v, want ttl %d expiring at Never", m, far)
	}
	// A claim whose ttl + grace would overflow: the claim ends at Never,
	// the short message is extended to Never with the summed TTL reported.
	claimed := s.claim(proj, "q", cid(1), far, math.MaxInt64, 10, t0+sec)
	if len(claimed) != 2 {
		t.Fatalf("claimed %d messages, want 2", len(claimed))
	}
	c, msgs := s.getClaim(proj, "q", cid(1), store.Never-1)
	if c == nil || c.ExpiresAt != store.Never || len(msgs) != 2 {
		t.Fatalf("claim %+v with %d messages just before Never", c, len(msgs))
	}
	short := s.message(proj, "q", mid(2), store.Never-1)
	if short == nil || short.ExpiresAt != store.Never || short.TTL != math.MaxInt64 {
		t.Fatalf("extended message %+v, want expiry Never and ttl MaxInt64", short)
	}
	if n := s.gc(store.Never-1, 100); n != 0 {
		t.Fatalf("GC just before Never processed %d entries", n)
	}
}
