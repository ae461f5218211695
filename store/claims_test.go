package store_test

import (
	"slices"
	"testing"

	"github.com/zaqar-raft/zaqar/store"
)

func TestCreateClaim_TakesTheOldestClaimableMessagesUpToTheLimit(t *testing.T) {
	s := openTestStore(t)
	s.createQueue(proj, "q", t0, store.QueueSettings{DefaultDelay: 100})
	nm := func(id string, ttl, delay int64) store.NewMessage {
		m := msg(id, ttl)
		m.Delay = delay
		return m
	}
	s.post(proj, "q", "me", t0,
		nm(mid(1), 10, 0),   // expired at claim time
		nm(mid(2), 600, 0),  // claimed first by cid(1)
		nm(mid(3), 600, -1), // delayed
		nm(mid(4), 600, 0),
		nm(mid(5), 600, 0),
		nm(mid(6), 600, 0),
	)
	now := t0 + 20*sec
	if got := msgIDs(s.claim(proj, "q", cid(1), 300, 60, 1, now)); !slices.Equal(got, []string{mid(2)}) {
		t.Fatalf("first claim took %q, want %s", got, mid(2))
	}
	got := s.claim(proj, "q", cid(2), 300, 60, 2, now)
	if ids := msgIDs(got); !slices.Equal(ids, []string{mid(4), mid(5)}) {
		t.Fatalf("second claim took %q, want %s and %s (FIFO, skipping expired, claimed and delayed)", ids, mid(4), mid(5))
	}
	for _, m := range got {
		if m.ClaimID != cid(2) || m.ClaimExpiresAt != now+300*sec || m.ClaimCount != 1 || !m.Claimed(now) {
			t.Fatalf("claimed message = %+v, want claim %s expiring at %d, count 1", m, cid(2), now+300*sec)
		}
	}
	c, msgs := s.getClaim(proj, "q", cid(2), now)
	if c == nil {
		t.Fatal("claim not found")
	}
	if c.ID != cid(2) || c.UpdatedAt != now || c.ExpiresAt != now+300*sec || c.TTL != 300 || c.Grace != 60 || len(c.Seqs) != 2 {
		t.Fatalf("claim record = %+v", c)
	}
	if ids := msgIDs(msgs); !slices.Equal(ids, []string{mid(4), mid(5)}) {
		t.Fatalf("claim messages = %q", ids)
	}
	if c.Age(now+61*sec) != 61 {
		t.Fatalf("claim age = %d, want 61", c.Age(now+61*sec))
	}
	// The delayed message becomes claimable once its delay has passed.
	if got := msgIDs(s.claim(proj, "q", cid(3), 300, 60, 5, t0+100*sec)); !slices.Equal(got, []string{mid(3), mid(6)}) {
		t.Fatalf("claim after the delay took %q, want %s and %s", got, mid(3), mid(6))
	}
}

func TestCreateClaim_StoresNoClaimWhenNothingIsClaimable(t *testing.T) {
	s := openTestStore(t)
	before := s.digest()
	if got := s.claim(proj, "missing", cid(1), 300, 60, 10, t0); len(got) != 0 {
		t.Fatalf("claim on a missing queue took %q", msgIDs(got))
	}
	if s.digest() != before || s.queue(proj, "missing") != nil {
		t.Fatal("claim on a missing queue changed the store")
	}

	s.createQueue(proj, "q", t0, store.QueueSettings{})
	before = s.digest()
	if got := s.claim(proj, "q", cid(1), 300, 60, 10, t0); len(got) != 0 {
		t.Fatalf("claim on an empty queue took %q", msgIDs(got))
	}
	if s.digest() != before {
		t.Fatal("claim on an empty queue changed the store")
	}
	if c, _ := s.getClaim(proj, "q", cid(1), t0); c != nil {
		t.Fatal("an empty claim was stored")
	}
}

func TestCreateClaim_ExtendsMessagesThatWouldExpireBeforeTheClaim(t *testing.T) {
	// Contract §7.7: if message expiry < now + claim TTL, expiry becomes
	// now + TTL + grace and the reported TTL becomes TTL + grace.
	tests := []struct {
		name        string
		messageTTL  int64
		age         int64 // seconds between post and claim
		claimTTL    int64
		grace       int64
		wantTTL     int64
		wantExpires int64 // seconds after the post
	}{
		{"short message is extended", 100, 0, 300, 60, 360, 360},
		{"extension counts from the claim, not the post", 400, 200, 300, 60, 360, 200 + 360},
		{"message living exactly as long is untouched", 300, 0, 300, 60, 300, 300},
		{"longer message is untouched", 1000, 0, 300, 60, 1000, 1000},
		{"zero grace", 100, 0, 300, 0, 300, 300},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openTestStore(t)
			s.post(proj, "q", "c", t0, msg(mid(1), tc.messageTTL))
			now := t0 + tc.age*sec
			got := s.claim(proj, "q", cid(1), tc.claimTTL, tc.grace, 1, now)
			if len(got) != 1 {
				t.Fatalf("claim took %d messages", len(got))
			}
			for _, m := range []*store.Message{got[0], s.message(proj, "q", mid(1), now)} {
				if m.TTL != tc.wantTTL || m.ExpiresAt != t0+tc.wantExpires*sec {
					t.Fatalf("message TTL %d expiring at +%ds, want TTL %d at +%ds", m.TTL, (m.ExpiresAt-t0)/sec, tc.wantTTL, tc.wantExpires)
				}
			}
			// The expiry index moved with the message: GC just before the
			// new expiry keeps it, GC at it removes it.
			s.apply(func(tx *store.Txn) { tx.CollectGarbage(t0+tc.wantExpires*sec-1, 100) })
			if s.stats(proj, "q", now).Total != 1 {
				t.Fatal("GC collected an extended message before its new expiry")
			}
			s.apply(func(tx *store.Txn) { tx.CollectGarbage(t0+tc.wantExpires*sec, 100) })
			if s.stats(proj, "q", now).Total != 0 || s.message(proj, "q", mid(1), now) != nil {
				t.Fatal("GC did not collect the message at its new expiry")
			}
		})
	}
}

func TestRenewClaim_RestartsTheClaimAndExtendsMessagesAgain(t *testing.T) {
	s := openTestStore(t)
	s.post(proj, "q", "c", t0, msg(mid(1), 400), msg(mid(2), 5000))
	s.claim(proj, "q", cid(1), 300, 60, 2, t0) // 400 ≥ 300: no extension yet
	renewAt := t0 + 200*sec
	var ok bool
	s.apply(func(tx *store.Txn) { ok = tx.RenewClaim(proj, "q", cid(1), 600, 100, renewAt) })
	if !ok {
		t.Fatal("RenewClaim of an active claim reported false")
	}
	c, msgs := s.getClaim(proj, "q", cid(1), renewAt)
	if c == nil || c.UpdatedAt != renewAt || c.ExpiresAt != renewAt+600*sec || c.TTL != 600 || c.Grace != 100 {
		t.Fatalf("renewed claim = %+v", c)
	}
	if c.Age(renewAt+5*sec) != 5 {
		t.Fatalf("age after renew = %d, want 5", c.Age(renewAt+5*sec))
	}
	if len(msgs) != 2 {
		t.Fatalf("renewed claim holds %d messages", len(msgs))
	}
	// mid(1) expired at +400 < +800: extended to renew + 700 s.
	if m := msgs[0]; m.TTL != 700 || m.ExpiresAt != renewAt+700*sec || m.ClaimExpiresAt != renewAt+600*sec || m.ClaimCount != 1 {
		t.Fatalf("renewed short message = %+v", m)
	}
	if m := msgs[1]; m.TTL != 5000 || m.ExpiresAt != t0+5000*sec || m.ClaimExpiresAt != renewAt+600*sec {
		t.Fatalf("renewed long message = %+v", m)
	}
	// The claim outlives its original expiry.
	if got := s.claim(proj, "q", cid(2), 300, 60, 10, t0+400*sec); len(got) != 0 {
		t.Fatalf("messages of a renewed claim were claimed again: %q", msgIDs(got))
	}
	// The claim's old expiry entry is gone: GC at the old expiry keeps it.
	s.apply(func(tx *store.Txn) { tx.CollectGarbage(t0+500*sec, 100) })
	if c, _ := s.getClaim(proj, "q", cid(1), t0+500*sec); c == nil {
		t.Fatal("GC collected a renewed claim at its old expiry")
	}
}

func TestRenewClaim_RefusesMissingAndExpiredClaims(t *testing.T) {
	s := openTestStore(t)
	s.post(proj, "q", "c", t0, msg(mid(1), 1000))
	s.claim(proj, "q", cid(1), 100, 60, 1, t0)
	tests := []struct {
		name    string
		queue   string
		claimID string
		at      int64
	}{
		{"unknown claim", "q", cid(2), t0},
		{"missing queue", "other", cid(1), t0},
		{"expired claim", "q", cid(1), t0 + 100*sec},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := s.digest()
			var ok bool
			s.apply(func(tx *store.Txn) { ok = tx.RenewClaim(proj, tc.queue, tc.claimID, 300, 60, tc.at) })
			if ok {
				t.Fatal("RenewClaim reported true")
			}
			if s.digest() != before {
				t.Fatal("a refused renew changed the store")
			}
		})
	}
}

func TestReleaseClaim_MakesMessagesClaimableAtOnce(t *testing.T) {
	s := openTestStore(t)
	s.post(proj, "q", "c", t0, msg(mid(1), 100), msg(mid(2), 1000))
	s.claim(proj, "q", cid(1), 300, 60, 2, t0) // extends mid(1) to 360 s
	now := t0 + 10*sec
	s.apply(func(tx *store.Txn) { tx.ReleaseClaim(proj, "q", cid(1), now) })
	if c, _ := s.getClaim(proj, "q", cid(1), now); c != nil {
		t.Fatal("released claim still found")
	}
	if st := s.stats(proj, "q", now); st.Claimed != 0 || st.Total != 2 {
		t.Fatalf("stats after release = %+v", st)
	}
	if got := s.list(proj, "q", now, store.ListOptions{Echo: true}); len(got) != 2 {
		t.Fatalf("released messages listed without include_claimed: %d, want 2", len(got))
	}
	got := s.claim(proj, "q", cid(2), 300, 60, 10, now)
	if ids := msgIDs(got); !slices.Equal(ids, []string{mid(1), mid(2)}) {
		t.Fatalf("claim after release took %q", ids)
	}
	// Extensions already applied stay; claim counts go on.
	if got[0].TTL != 360 || got[0].ClaimCount != 2 {
		t.Fatalf("re-claimed message TTL %d count %d, want 360 and 2", got[0].TTL, got[0].ClaimCount)
	}
	// Releasing an unknown claim, or one whose messages were re-claimed, is harmless.
	before := s.digest()
	s.apply(func(tx *store.Txn) { tx.ReleaseClaim(proj, "q", cid(7), now) })
	if s.digest() != before {
		t.Fatal("releasing an unknown claim changed the store")
	}
}

func TestReleaseClaim_DoesNotTouchMessagesReclaimedByAnotherClaim(t *testing.T) {
	s := openTestStore(t)
	s.post(proj, "q", "c", t0, msg(mid(1), 5000))
	s.claim(proj, "q", cid(1), 100, 60, 1, t0)
	later := t0 + 100*sec // cid(1) expired, not yet collected
	if got := s.claim(proj, "q", cid(2), 300, 60, 1, later); len(got) != 1 {
		t.Fatal("expired claim's message could not be claimed again")
	}
	s.apply(func(tx *store.Txn) { tx.ReleaseClaim(proj, "q", cid(1), later) })
	c, msgs := s.getClaim(proj, "q", cid(2), later)
	if c == nil || len(msgs) != 1 || !msgs[0].Claimed(later) {
		t.Fatal("releasing the old claim released the new claim's message")
	}
}

func TestClaim_ExpiredClaimReleasesMessages(t *testing.T) {
	s := openTestStore(t)
	s.post(proj, "q", "c", t0, msg(mid(1), 5000))
	s.claim(proj, "q", cid(1), 100, 60, 1, t0)
	expiry := t0 + 100*sec
	if c, _ := s.getClaim(proj, "q", cid(1), expiry-1); c == nil {
		t.Fatal("claim missing 1ns before it expires")
	}
	if c, _ := s.getClaim(proj, "q", cid(1), expiry); c != nil {
		t.Fatal("claim still found at its expiry")
	}
	if st := s.stats(proj, "q", expiry); st.Claimed != 0 {
		t.Fatalf("claimed count at claim expiry = %d", st.Claimed)
	}
	if got := s.list(proj, "q", expiry, store.ListOptions{Echo: true}); len(got) != 1 {
		t.Fatal("message of an expired claim is not listed as unclaimed")
	}
}

func TestClaim_WithAllItsMessagesDeleted(t *testing.T) {
	s := openTestStore(t)
	s.post(proj, "q", "c", t0, msg(mid(1), 600), msg(mid(2), 600))
	s.claim(proj, "q", cid(1), 300, 60, 2, t0)
	s.apply(func(tx *store.Txn) {
		tx.DeleteMessage(proj, "q", mid(1), cid(1), true, t0)
		tx.DeleteMessage(proj, "q", mid(2), cid(1), true, t0)
	})
	c, msgs := s.getClaim(proj, "q", cid(1), t0)
	if len(msgs) != 0 {
		t.Fatalf("claim still lists deleted messages %q", msgIDs(msgs))
	}
	if c != nil {
		// Allowed (contract §7.3 Decision): the claim may stay until it
		// expires; then it must be renewable and releasable.
		var ok bool
		s.apply(func(tx *store.Txn) { ok = tx.RenewClaim(proj, "q", cid(1), 300, 60, t0+sec) })
		if !ok {
			t.Fatal("an active claim with no messages could not be renewed")
		}
	}
	s.apply(func(tx *store.Txn) { tx.ReleaseClaim(proj, "q", cid(1), t0+sec) })
	if st := s.stats(proj, "q", t0+sec); st.Total != 0 || st.Claimed != 0 {
		t.Fatalf("stats = %+v, want an empty queue", st)
	}
	if got := s.claim(proj, "q", cid(2), 300, 60, 10, t0+sec); len(got) != 0 {
		t.Fatalf("claim on a queue whose messages were all deleted took %q", msgIDs(got))
	}
}

func TestDeadLetter_MovesMessagesClaimedMaxClaimCountTimes(t *testing.T) {
	s := openTestStore(t)
	settings := store.QueueSettings{MaxClaimCount: 2, DeadLetter: "dlq", DeadLetterTTL: 7000}
	s.createQueue(proj, "q", t0, settings)
	s.post(proj, "q", "poster", t0, msg(mid(1), 1000), msg(mid(2), 1000))
	if s.queue(proj, "dlq") != nil {
		t.Fatal("dead-letter queue exists before the first move")
	}
	now := t0
	claimAndRelease := func(n int) []*store.Message {
		t.Helper()
		got := s.claim(proj, "q", cid(n), 60, 60, 1, now)
		s.apply(func(tx *store.Txn) { tx.ReleaseClaim(proj, "q", cid(n), now) })
		return got
	}
	// mid(1) may be claimed twice.
	for i := 1; i <= 2; i++ {
		now += sec
		if got := claimAndRelease(i); len(got) != 1 || got[0].ID != mid(1) || got[0].ClaimCount != int64(i) {
			t.Fatalf("claim %d = %+v, want %s with claim count %d", i, got, mid(1), i)
		}
	}
	// The third claim selects it again and moves it instead; the claim
	// answers nothing because every selected message moved.
	now += sec
	before := s.queueCount(proj)
	if got := claimAndRelease(3); len(got) != 0 {
		t.Fatalf("claim that moved its only selected message returned %q", msgIDs(got))
	}
	if c, _ := s.getClaim(proj, "q", cid(3), now); c != nil {
		t.Fatal("a claim that claimed nothing was stored")
	}
	if got := msgIDs(s.listAll(proj, "q", now)); !slices.Equal(got, []string{mid(2)}) {
		t.Fatalf("source queue holds %q, want only %s", got, mid(2))
	}
	if s.queue(proj, "dlq") == nil || s.queueCount(proj) != before+1 {
		t.Fatal("dead-letter queue was not created lazily")
	}
	moved := s.listAll(proj, "dlq", now)
	if len(moved) != 1 {
		t.Fatalf("dead-letter queue holds %d messages, want 1", len(moved))
	}
	m := moved[0]
	if m.ID != mid(1) || string(m.Body) != `{"id":"`+mid(1)+`"}` || m.ClaimCount != 2 || m.ClientID != "poster" || m.CreatedAt != t0 {
		t.Fatalf("moved message = %+v, want same id, body, claim count, poster and creation time", m)
	}
	if m.TTL != 7000 || m.ExpiresAt != now+7000*sec || m.VisibleAt != now || m.Claimed(now) || m.Seq != 1 {
		t.Fatalf("moved message = %+v, want TTL 7000 from the move, visible and unclaimed, seq 1", m)
	}
	if st := s.stats(proj, "q", now); st.Total != 1 {
		t.Fatalf("source stats total = %d, want 1", st.Total)
	}
	if st := s.stats(proj, "dlq", now); st.Total != 1 {
		t.Fatalf("dead-letter stats total = %d, want 1", st.Total)
	}
	// The moved message is immediately claimable in the dead-letter queue.
	if got := s.claim(proj, "dlq", cid(4), 60, 60, 1, now); len(got) != 1 || got[0].ID != mid(1) || got[0].ClaimCount != 3 {
		t.Fatalf("claim in the dead-letter queue = %+v", got)
	}
}

func TestDeadLetter_ClaimGetsTheMessagesThatDidNotMove(t *testing.T) {
	s := openTestStore(t)
	s.createQueue(proj, "q", t0, store.QueueSettings{MaxClaimCount: 1, DeadLetter: "dlq"})
	s.post(proj, "q", "c", t0, msg(mid(1), 1000), msg(mid(2), 1000), msg(mid(3), 1000))
	s.claim(proj, "q", cid(1), 60, 60, 1, t0) // mid(1) claimed once, extended to TTL 1000 (no change)
	s.apply(func(tx *store.Txn) { tx.ReleaseClaim(proj, "q", cid(1), t0) })
	now := t0 + 10*sec
	got := s.claim(proj, "q", cid(2), 60, 60, 3, now)
	if ids := msgIDs(got); !slices.Equal(ids, []string{mid(2), mid(3)}) {
		t.Fatalf("claim took %q, want %s and %s", ids, mid(2), mid(3))
	}
	moved := s.listAll(proj, "dlq", now)
	if len(moved) != 1 || moved[0].ID != mid(1) {
		t.Fatalf("dead-letter queue = %q, want %s", msgIDs(moved), mid(1))
	}
	// No dead-letter TTL: the message keeps its TTL, counted from the move.
	if moved[0].TTL != 1000 || moved[0].ExpiresAt != now+1000*sec {
		t.Fatalf("moved message TTL %d expiring at %d, want 1000 from the move", moved[0].TTL, moved[0].ExpiresAt)
	}
}

func TestDeadLetter_InactiveWithoutBothSettingsOrPointingAtItself(t *testing.T) {
	tests := []struct {
		name     string
		settings store.QueueSettings
	}{
		{"no max claim count", store.QueueSettings{DeadLetter: "dlq"}},
		{"no dead-letter queue", store.QueueSettings{MaxClaimCount: 1}},
		{"dead-letter queue is the queue itself", store.QueueSettings{MaxClaimCount: 1, DeadLetter: "q"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openTestStore(t)
			s.createQueue(proj, "q", t0, tc.settings)
			s.post(proj, "q", "c", t0, msg(mid(1), 1000))
			for i := 1; i <= 3; i++ {
				got := s.claim(proj, "q", cid(i), 60, 60, 1, t0)
				if len(got) != 1 || got[0].ClaimCount != int64(i) {
					t.Fatalf("claim %d = %+v, want the message with claim count %d", i, got, i)
				}
				s.apply(func(tx *store.Txn) { tx.ReleaseClaim(proj, "q", cid(i), t0) })
			}
			if s.queue(proj, "dlq") != nil {
				t.Fatal("a dead-letter queue was created")
			}
		})
	}
}

func TestLimits_ZeroTakesNothing(t *testing.T) {
	// The service never proposes a zero limit, but the FSM decoders keep
	// only the low bits of a limit, so 65536 arrives as 0.
	s := openTestStore(t)
	for _, q := range []string{"claim", "pop", "list"} {
		s.post(proj, q, "c", t0, msg(mid(1), 600))
	}
	before := s.digest()
	if got := s.claim(proj, "claim", cid(1), 300, 60, 0, t0); len(got) != 0 {
		t.Errorf("claim with limit 0 took %q", msgIDs(got))
	}
	var popped []*store.Message
	s.apply(func(tx *store.Txn) { popped = tx.PopMessages(proj, "pop", 0, t0) })
	if len(popped) != 0 {
		t.Errorf("pop with limit 0 took %q", msgIDs(popped))
	}
	var listed []*store.Message
	s.read(func(v *store.View) (err error) {
		listed, err = v.ListMessages(proj, "list", t0, store.ListOptions{Limit: 0, Echo: true})
		return
	})
	if len(listed) != 0 {
		t.Errorf("list with limit 0 returned %q", msgIDs(listed))
	}
	if s.digest() != before {
		t.Error("operations with limit 0 changed the store")
	}
}
