package store_test

import (
	"reflect"
	"slices"
	"testing"

	"github.com/zaqar-raft/zaqar/store"
)

func TestPostMessages_TTLComesFromMessageThenQueueThenCluster(t *testing.T) {
	tests := []struct {
		name       string
		queueTTL   int64
		messageTTL int64
		wantTTL    int64
	}{
		{"message TTL wins over queue default", 500, 120, 120},
		{"queue default when message has none", 500, 0, 500},
		{"cluster default when neither has one", 0, 0, 3600},
		{"message TTL without queue default", 0, 90, 90},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openTestStore(t)
			s.createQueue(proj, "q", t0, store.QueueSettings{DefaultTTL: tc.queueTTL})
			s.post(proj, "q", "c", t0+sec, msg(mid(1), tc.messageTTL))
			m := s.message(proj, "q", mid(1), t0+sec)
			if m == nil {
				t.Fatal("posted message not found")
			}
			if m.TTL != tc.wantTTL || m.ExpiresAt != t0+sec+tc.wantTTL*sec || m.CreatedAt != t0+sec {
				t.Fatalf("TTL %d, expires %d, created %d; want TTL %d expiring at %d", m.TTL, m.ExpiresAt, m.CreatedAt, tc.wantTTL, t0+sec+tc.wantTTL*sec)
			}
		})
	}
}

func TestPostMessages_DelayAppliesOnlyInDelayedQueues(t *testing.T) {
	tests := []struct {
		name       string
		queueDelay int64
		delay      int64 // -1: not given
		wantDelay  int64
	}{
		{"non-delayed queue ignores a given delay", 0, 30, 0},
		{"non-delayed queue without delay", 0, -1, 0},
		{"delayed queue uses the queue default", 20, -1, 20},
		{"delayed queue takes the message delay", 20, 45, 45},
		{"delayed queue accepts an explicit zero", 20, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openTestStore(t)
			s.createQueue(proj, "q", t0, store.QueueSettings{DefaultDelay: tc.queueDelay})
			nm := msg(mid(1), 300)
			nm.Delay = tc.delay
			s.post(proj, "q", "c", t0, nm)
			m := s.message(proj, "q", mid(1), t0)
			if m == nil {
				t.Fatal("Message does not return a delayed message")
			}
			if m.Delay != tc.wantDelay || m.VisibleAt != t0+tc.wantDelay*sec {
				t.Fatalf("delay %d visible at %d, want delay %d visible at %d", m.Delay, m.VisibleAt, tc.wantDelay, t0+tc.wantDelay*sec)
			}
			hidden := tc.wantDelay > 0
			visible := s.list(proj, "q", t0, store.ListOptions{Echo: true})
			if (len(visible) == 0) != hidden {
				t.Fatalf("listing without include_delayed returned %d messages, want hidden=%v", len(visible), hidden)
			}
			if got := s.list(proj, "q", t0, store.ListOptions{Echo: true, IncludeDelayed: true}); len(got) != 1 {
				t.Fatalf("listing with include_delayed returned %d messages, want 1", len(got))
			}
			if hidden {
				later := t0 + tc.wantDelay*sec
				if got := s.list(proj, "q", later, store.ListOptions{Echo: true}); len(got) != 1 {
					t.Fatalf("message not visible once its delay elapsed")
				}
				if got := s.list(proj, "q", later-1, store.ListOptions{Echo: true}); len(got) != 0 {
					t.Fatalf("message visible 1ns before its delay elapsed")
				}
			}
		})
	}
}

func TestPostMessages_CreatesTheQueueLazily(t *testing.T) {
	s := openTestStore(t)
	s.post(proj, "q", "c", t0, msg(mid(1), 60))
	q := s.queue(proj, "q")
	if q == nil || q.CreatedAt != t0 || string(q.Metadata) != "{}" || q.Settings != (store.QueueSettings{}) {
		t.Fatalf("lazily created queue = %+v", q)
	}
}

func TestPostMessages_AnIDRepeatedWithinOneListIsPostedOnce(t *testing.T) {
	s := openTestStore(t)
	s.post(proj, "q", "c", t0, msg(mid(1), 60), msg(mid(2), 60))
	s.post(proj, "q", "c", t0+sec, msg(mid(3), 600), msg(mid(4), 600), msg(mid(3), 900))
	got := s.listAll(proj, "q", t0+sec)
	if ids := msgIDs(got); !slices.Equal(ids, []string{mid(1), mid(2), mid(3), mid(4)}) {
		t.Fatalf("messages = %q", ids)
	}
	if got[1].TTL != 60 || got[2].TTL != 600 || got[2].Seq != 3 || got[3].Seq != 4 {
		t.Fatalf("messages = %+v; the first post of an id must win and sequences stay dense", got)
	}
	if st := s.stats(proj, "q", t0+sec); st.Total != 4 {
		t.Fatalf("stats total = %d, want 4", st.Total)
	}
}

func TestPostMessages_StoresEveryField(t *testing.T) {
	s := openTestStore(t)
	s.post(proj, "q", "client-1", t0, store.NewMessage{ID: mid(1), TTL: 60, Delay: -1, Body: []byte(`[1,"x"]`), Checksum: "MD5:abc"})
	m := s.message(proj, "q", mid(1), t0)
	want := store.Message{Seq: 1, ID: mid(1), CreatedAt: t0, ExpiresAt: t0 + 60*sec, VisibleAt: t0, TTL: 60, ClientID: "client-1", Checksum: "MD5:abc"}
	got := *m
	got.Body, want.Body = nil, nil
	if !reflect.DeepEqual(got, want) || string(m.Body) != `[1,"x"]` {
		t.Fatalf("message = %+v body %s, want %+v body [1,\"x\"]", got, m.Body, want)
	}
	if m.Age(t0+61*sec+sec/2) != 61 || m.Age(t0-sec) != 0 {
		t.Fatalf("Age = %d, %d; want 61, 0", m.Age(t0+61*sec+sec/2), m.Age(t0-sec))
	}
}

func TestListMessages_FIFOOrderAndMarkers(t *testing.T) {
	s := openTestStore(t)
	s.post(proj, "q", "c", t0, msg(mid(5), 600), msg(mid(3), 600))
	s.post(proj, "q", "c", t0+sec, msg(mid(1), 600), msg(mid(4), 600), msg(mid(2), 600))
	want := []string{mid(5), mid(3), mid(1), mid(4), mid(2)}
	now := t0 + 2*sec
	all := s.listAll(proj, "q", now)
	if got := msgIDs(all); !slices.Equal(got, want) {
		t.Fatalf("listing = %q, want posting order %q", got, want)
	}
	for i, m := range all {
		if m.Seq != uint64(i+1) {
			t.Fatalf("message %d has seq %d, want %d", i, m.Seq, i+1)
		}
	}
	var paged []string
	var after uint64
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		page := s.list(proj, "q", now, store.ListOptions{AfterSeq: after, Limit: 2, Echo: true})
		if len(page) > 2 {
			t.Fatalf("page of %d with limit 2", len(page))
		}
		if len(page) == 0 {
			break
		}
		paged = append(paged, msgIDs(page)...)
		after = page[len(page)-1].Seq
	}
	if !slices.Equal(paged, want) {
		t.Fatalf("paged listing = %q, want %q", paged, want)
	}
	if got := s.list(proj, "q", now, store.ListOptions{AfterSeq: 1000, Echo: true}); len(got) != 0 {
		t.Fatalf("listing after a marker past the end = %q", msgIDs(got))
	}
	if got := s.list(proj, "missing", now, store.ListOptions{Echo: true}); len(got) != 0 {
		t.Fatalf("listing a missing queue = %q", msgIDs(got))
	}
}

func TestListMessages_FiltersEchoClaimedAndDelayed(t *testing.T) {
	s := openTestStore(t)
	s.createQueue(proj, "q", t0, store.QueueSettings{DefaultDelay: 10})
	own := msg(mid(1), 600)
	own.Delay = 0
	s.post(proj, "q", "me", t0, own)
	other := msg(mid(2), 600)
	other.Delay = 0
	claimed := msg(mid(3), 600)
	claimed.Delay = 0
	s.post(proj, "q", "other", t0, other)
	s.post(proj, "q", "other", t0, claimed)
	delayed := msg(mid(4), 600) // queue default delay of 10 s
	s.post(proj, "q", "other", t0, delayed)
	// Leave only mid(3) claimed: cid(2) holds mid(1) and mid(2) while
	// cid(3) takes the next claimable message, then cid(2) is released.
	s.apply(func(tx *store.Txn) {
		tx.CreateClaim(proj, "q", cid(2), 300, 60, 2, t0)
		tx.CreateClaim(proj, "q", cid(3), 300, 60, 1, t0)
		tx.ReleaseClaim(proj, "q", cid(2), t0)
	})
	now := t0 + sec
	if c, msgs := s.getClaim(proj, "q", cid(3), now); c == nil || !slices.Equal(msgIDs(msgs), []string{mid(3)}) {
		t.Fatalf("setup: claim 3 holds %q, want only %s", msgIDs(msgs), mid(3))
	}

	tests := []struct {
		name string
		opts store.ListOptions
		want []string
	}{
		{"defaults hide own, claimed and delayed", store.ListOptions{ClientID: "me"}, []string{mid(2)}},
		{"echo shows own", store.ListOptions{ClientID: "me", Echo: true}, []string{mid(1), mid(2)}},
		{"include claimed", store.ListOptions{ClientID: "me", IncludeClaimed: true}, []string{mid(2), mid(3)}},
		{"include delayed", store.ListOptions{ClientID: "me", IncludeDelayed: true}, []string{mid(2), mid(4)}},
		{"everything", store.ListOptions{ClientID: "me", Echo: true, IncludeClaimed: true, IncludeDelayed: true}, []string{mid(1), mid(2), mid(3), mid(4)}},
		{"another client sees mine but not its own", store.ListOptions{ClientID: "other", IncludeClaimed: true, IncludeDelayed: true}, []string{mid(1)}},
		{"limit counts only kept messages", store.ListOptions{ClientID: "me", Echo: true, IncludeClaimed: true, IncludeDelayed: true, Limit: 3}, []string{mid(1), mid(2), mid(3)}},
		{"marker with filters", store.ListOptions{ClientID: "me", AfterSeq: 2, IncludeClaimed: true, IncludeDelayed: true}, []string{mid(3), mid(4)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := msgIDs(s.list(proj, "q", now, tc.opts)); !slices.Equal(got, tc.want) {
				t.Fatalf("ListMessages = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestExpiredMessages_AreInvisibleAtTheirExpiryWithoutGC(t *testing.T) {
	s := openTestStore(t)
	s.post(proj, "q", "c", t0, msg(mid(1), 60), msg(mid(2), 120))
	expiry := t0 + 60*sec

	if got := msgIDs(s.listAll(proj, "q", expiry-1)); !slices.Equal(got, []string{mid(1), mid(2)}) {
		t.Fatalf("1ns before expiry: listing = %q", got)
	}
	if got := msgIDs(s.listAll(proj, "q", expiry)); !slices.Equal(got, []string{mid(2)}) {
		t.Fatalf("at expiry: listing = %q, want only %s", got, mid(2))
	}
	if m := s.message(proj, "q", mid(1), expiry); m != nil {
		t.Fatal("Message returns an expired message")
	}
	if m := s.message(proj, "q", mid(1), expiry-1); m == nil {
		t.Fatal("Message does not return a message 1ns before it expires")
	}
	if st := s.stats(proj, "q", expiry); st.Total != 1 || st.Oldest == nil || st.Oldest.ID != mid(2) {
		t.Fatalf("stats at expiry = %+v, want 1 message, oldest %s", st, mid(2))
	}
	claimed := s.claim(proj, "q", cid(1), 300, 60, 10, expiry)
	if got := msgIDs(claimed); !slices.Equal(got, []string{mid(2)}) {
		t.Fatalf("claim at expiry took %q, want only %s", got, mid(2))
	}
	if !s.pending(expiry) || s.pending(expiry-1) {
		t.Fatal("Pending must turn true exactly when the first message expires")
	}
}

func TestQueueStats_CountsUnexpiredClaimedAndEdges(t *testing.T) {
	s := openTestStore(t)
	s.createQueue(proj, "q", t0, store.QueueSettings{DefaultDelay: 1000})
	a, b, c, d := msg(mid(1), 100), msg(mid(2), 200), msg(mid(3), 300), msg(mid(4), 400)
	a.Delay, b.Delay, c.Delay = 0, 0, 0 // d keeps the queue's delay
	s.post(proj, "q", "x", t0, a, b, c, d)
	s.claim(proj, "q", cid(1), 150, 60, 2, t0) // mid(1) (extended to 210 s) and mid(2)

	tests := []struct {
		name                   string
		at                     int64
		total, claimed         int64
		oldest, newest         string
		oldestTTL, oldestCount int64
	}{
		{"all alive", t0 + sec, 4, 2, mid(1), mid(4), 210, 1},
		{"claim expired", t0 + 150*sec, 4, 0, mid(1), mid(4), 210, 1},
		{"second expired, extended first alive", t0 + 200*sec, 3, 0, mid(1), mid(4), 210, 1},
		{"extended first expired", t0 + 210*sec, 2, 0, mid(3), mid(4), 300, 0},
		{"three expired", t0 + 300*sec, 1, 0, mid(4), mid(4), 400, 0},
		{"all expired", t0 + 400*sec, 0, 0, "", "", 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := s.stats(proj, "q", tc.at)
			if st.Total != tc.total || st.Claimed != tc.claimed {
				t.Fatalf("total %d claimed %d, want %d and %d", st.Total, st.Claimed, tc.total, tc.claimed)
			}
			if tc.total == 0 {
				if st.Oldest != nil || st.Newest != nil {
					t.Fatalf("empty stats carry edges %+v", st)
				}
				return
			}
			if st.Oldest == nil || st.Newest == nil || st.Oldest.ID != tc.oldest || st.Newest.ID != tc.newest {
				t.Fatalf("edges = %+v / %+v, want %s / %s", st.Oldest, st.Newest, tc.oldest, tc.newest)
			}
			if st.Oldest.TTL != tc.oldestTTL || st.Oldest.ClaimCount != tc.oldestCount {
				t.Fatalf("oldest TTL %d claim count %d, want %d and %d", st.Oldest.TTL, st.Oldest.ClaimCount, tc.oldestTTL, tc.oldestCount)
			}
		})
	}

	t.Run("collecting garbage does not change the answer", func(t *testing.T) {
		at := t0 + 300*sec
		before := s.stats(proj, "q", at)
		s.apply(func(tx *store.Txn) { tx.CollectGarbage(at, 1000) })
		after := s.stats(proj, "q", at)
		if before.Total != after.Total || before.Claimed != after.Claimed || before.Oldest.ID != after.Oldest.ID {
			t.Fatalf("stats before GC %+v, after %+v", before, after)
		}
	})

	t.Run("missing queue", func(t *testing.T) {
		if st := s.stats(proj, "missing", t0); st.Total != 0 || st.Oldest != nil {
			t.Fatalf("stats of a missing queue = %+v", st)
		}
	})
}

func TestQueueStats_DeletedMessagesInsideAClaimAreNotCounted(t *testing.T) {
	s := openTestStore(t)
	s.post(proj, "q", "x", t0, msg(mid(1), 600), msg(mid(2), 600), msg(mid(3), 600))
	s.claim(proj, "q", cid(1), 300, 60, 2, t0)
	s.apply(func(tx *store.Txn) { tx.DeleteMessage(proj, "q", mid(1), cid(1), true, t0) })
	if st := s.stats(proj, "q", t0); st.Total != 2 || st.Claimed != 1 || st.Oldest.ID != mid(2) {
		t.Fatalf("stats = total %d claimed %d oldest %v, want 2, 1, %s", st.Total, st.Claimed, st.Oldest, mid(2))
	}
}

func TestDeleteMessage_FollowsTheClaimRules(t *testing.T) {
	// Contract §6.6. Each case posts mid(1) into a fresh queue and, when
	// claimedBy is set, claims it with cid(1) (TTL 100 s) at t0.
	tests := []struct {
		name         string
		missing      bool
		claimed      bool
		at           int64
		claimID      string
		claimIDValid bool
		want         store.DeleteOutcome
		wantGone     bool
	}{
		{"missing message", true, false, t0, "", false, store.Deleted, true},
		{"missing message with a claim id", true, false, t0, cid(1), true, store.Deleted, true},
		{"expired message", false, false, t0 + 600*sec, "", false, store.Deleted, false},
		{"expired claimed message with another claim id", false, true, t0 + 700*sec, cid(2), true, store.Deleted, false},
		{"not claimed, no claim id", false, false, t0, "", false, store.Deleted, true},
		{"claimed, no claim id", false, true, t0, "", false, store.DeniedClaimed, false},
		{"malformed claim id on a claimed message", false, true, t0, "nope", false, store.DeniedBadClaim, false},
		{"malformed claim id on an unclaimed message", false, false, t0, "nope", false, store.DeniedBadClaim, false},
		{"claim id but message not claimed", false, false, t0, cid(1), true, store.DeniedNotClaimed, false},
		{"claimed by another active claim", false, true, t0, cid(2), true, store.DeniedClaimed, false},
		{"claim id of an expired claim", false, true, t0 + 100*sec, cid(1), true, store.DeniedNotClaimed, false},
		{"expired claim, no claim id", false, true, t0 + 100*sec, "", false, store.Deleted, true},
		{"matching active claim", false, true, t0 + 99*sec, cid(1), true, store.Deleted, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openTestStore(t)
			s.post(proj, "q", "c", t0, msg(mid(2), 600))
			if !tc.missing {
				s.post(proj, "q", "c", t0, msg(mid(1), 600))
			}
			if tc.claimed {
				// limit 2 would also take mid(2); claim mid(1) only by
				// claiming after holding mid(2) under another claim.
				s.claim(proj, "q", cid(9), 1000, 60, 1, t0)
				if got := s.claim(proj, "q", cid(1), 100, 60, 1, t0); len(got) != 1 || got[0].ID != mid(1) {
					t.Fatalf("setup: claim took %q", msgIDs(got))
				}
			}
			before := s.digest()
			var got store.DeleteOutcome
			s.apply(func(tx *store.Txn) { got = tx.DeleteMessage(proj, "q", mid(1), tc.claimID, tc.claimIDValid, tc.at) })
			if got != tc.want {
				t.Fatalf("DeleteMessage = %v, want %v", got, tc.want)
			}
			if got != store.Deleted && s.digest() != before {
				t.Fatal("a refused delete changed the store")
			}
			// Look at the message before it would expire, to see whether it is stored.
			stored := s.message(proj, "q", mid(1), t0) != nil
			if stored == tc.wantGone && !tc.missing {
				t.Fatalf("message stored = %v after the delete, want %v", stored, !tc.wantGone)
			}
			if other := s.message(proj, "q", mid(2), t0); other == nil {
				t.Fatal("deleting one message removed another")
			}
		})
	}
}

func TestDeleteMessage_RemovesTheMessageFromItsClaim(t *testing.T) {
	s := openTestStore(t)
	s.post(proj, "q", "c", t0, msg(mid(1), 600), msg(mid(2), 600))
	s.claim(proj, "q", cid(1), 300, 60, 2, t0)
	s.apply(func(tx *store.Txn) { tx.DeleteMessage(proj, "q", mid(1), cid(1), true, t0) })
	c, msgs := s.getClaim(proj, "q", cid(1), t0)
	if c == nil || !slices.Equal(msgIDs(msgs), []string{mid(2)}) {
		t.Fatalf("claim messages after deleting one = %q, want %s", msgIDs(msgs), mid(2))
	}
	if st := s.stats(proj, "q", t0); st.Total != 1 {
		t.Fatalf("stats total = %d, want 1", st.Total)
	}
}

func TestDeleteMessages_IgnoresClaimsUnlessRequired(t *testing.T) {
	s := openTestStore(t)
	s.post(proj, "q", "c", t0, msg(mid(1), 600), msg(mid(2), 600), msg(mid(3), 600), msg(mid(4), 600))
	s.claim(proj, "q", cid(1), 300, 60, 1, t0)
	var got store.DeleteOutcome
	s.apply(func(tx *store.Txn) {
		got = tx.DeleteMessages(proj, "q", []string{mid(1), mid(3), mid(3), mid(9)}, nil, false, t0)
	})
	if got != store.Deleted {
		t.Fatalf("DeleteMessages = %v, want Deleted", got)
	}
	if ids := msgIDs(s.listAll(proj, "q", t0)); !slices.Equal(ids, []string{mid(2), mid(4)}) {
		t.Fatalf("remaining = %q, want %s and %s", ids, mid(2), mid(4))
	}
	if st := s.stats(proj, "q", t0); st.Total != 2 || st.Claimed != 0 {
		t.Fatalf("stats = %+v, want total 2 (a repeated id is deleted once), none claimed", st)
	}
}

func TestDeleteMessages_RequireClaimsIsAllOrNothing(t *testing.T) {
	setup := func(t *testing.T) *testStore {
		s := openTestStore(t)
		s.post(proj, "q", "c", t0, msg(mid(1), 600), msg(mid(2), 600), msg(mid(3), 600), msg(mid(4), 100))
		s.claim(proj, "q", cid(1), 300, 60, 1, t0) // mid(1)
		s.claim(proj, "q", cid(2), 300, 60, 1, t0) // mid(2)
		return s
	}
	tests := []struct {
		name     string
		ids      []string
		claimIDs []string
		at       int64
		want     store.DeleteOutcome
		left     []string
	}{
		{"all held by listed claims", []string{mid(1), mid(2)}, []string{cid(1), cid(2)}, t0, store.Deleted, []string{mid(3), mid(4)}},
		{"missing ids are ignored", []string{mid(1), mid(8)}, []string{cid(1)}, t0, store.Deleted, []string{mid(2), mid(3), mid(4)}},
		{"one held by an unlisted claim", []string{mid(1), mid(2)}, []string{cid(1)}, t0, store.DeniedClaimed, nil},
		{"one not claimed", []string{mid(1), mid(3)}, []string{cid(1)}, t0, store.DeniedClaimed, nil},
		{"claims expired", []string{mid(1)}, []string{cid(1)}, t0 + 300*sec, store.DeniedClaimed, nil},
		{"expired unclaimed message is skipped", []string{mid(1), mid(4)}, []string{cid(1)}, t0 + 100*sec, store.Deleted, []string{mid(2), mid(3)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := setup(t)
			before := s.digest()
			var got store.DeleteOutcome
			s.apply(func(tx *store.Txn) { got = tx.DeleteMessages(proj, "q", tc.ids, tc.claimIDs, true, tc.at) })
			if got != tc.want {
				t.Fatalf("DeleteMessages = %v, want %v", got, tc.want)
			}
			if got != store.Deleted {
				if s.digest() != before {
					t.Fatal("a refused bulk delete changed the store")
				}
				return
			}
			if ids := msgIDs(s.listAll(proj, "q", tc.at)); !slices.Equal(ids, tc.left) {
				t.Fatalf("remaining = %q, want %q", ids, tc.left)
			}
		})
	}
}

func TestPopMessages_TakesOldestClaimableAndReportsStaleClaims(t *testing.T) {
	s := openTestStore(t)
	s.createQueue(proj, "q", t0, store.QueueSettings{DefaultDelay: 30})
	nm := func(id string, ttl, delay int64) store.NewMessage {
		m := msg(id, ttl)
		m.Delay = delay
		return m
	}
	s.post(proj, "q", "me", t0,
		nm(mid(1), 600, 0),  // claimed below
		nm(mid(2), 600, 0),  // claimed and released: stale claim id
		nm(mid(3), 60, 0),   // expired when popped
		nm(mid(4), 600, -1), // delayed 30 s, visible when popped
		nm(mid(5), 600, 0),
		nm(mid(6), 600, 0),
	)
	s.apply(func(tx *store.Txn) {
		tx.CreateClaim(proj, "q", cid(1), 300, 60, 1, t0) // mid(1)
		tx.CreateClaim(proj, "q", cid(9), 300, 60, 1, t0) // mid(2)
		tx.ReleaseClaim(proj, "q", cid(9), t0)
	})
	now := t0 + 60*sec
	var popped []*store.Message
	s.apply(func(tx *store.Txn) { popped = tx.PopMessages(proj, "q", 2, now) })
	if got := msgIDs(popped); !slices.Equal(got, []string{mid(2), mid(4)}) {
		t.Fatalf("popped %q, want %s and %s", got, mid(2), mid(4))
	}
	if popped[0].ClaimID != cid(9) || popped[0].ClaimCount != 1 || popped[1].ClaimID != "" {
		t.Fatalf("popped claim ids %q / %q, count %d; want the released claim %s reported", popped[0].ClaimID, popped[1].ClaimID, popped[0].ClaimCount, cid(9))
	}
	if got := msgIDs(s.listAll(proj, "q", now)); !slices.Equal(got, []string{mid(1), mid(5), mid(6)}) {
		t.Fatalf("left after pop = %q", got)
	}
	if st := s.stats(proj, "q", now); st.Total != 3 {
		t.Fatalf("stats total = %d, want 3", st.Total)
	}

	// Own messages are popped too (no echo filter); popping more than
	// there is returns what there is.
	s.apply(func(tx *store.Txn) { popped = tx.PopMessages(proj, "q", 20, now) })
	if got := msgIDs(popped); !slices.Equal(got, []string{mid(5), mid(6)}) {
		t.Fatalf("second pop = %q", got)
	}
	// Only a claimed and a delayed message are left: nothing to pop.
	s.post(proj, "q", "me", now, nm(mid(7), 600, -1))
	before := s.digest()
	s.apply(func(tx *store.Txn) { popped = tx.PopMessages(proj, "q", 20, now) })
	if len(popped) != 0 || s.digest() != before {
		t.Fatalf("pop with nothing claimable returned %q or changed the store", msgIDs(popped))
	}
	s.apply(func(tx *store.Txn) { popped = tx.PopMessages(proj, "missing", 5, now) })
	if len(popped) != 0 || s.queue(proj, "missing") != nil {
		t.Fatal("pop of a missing queue returned messages or created it")
	}
}
