package store_test

import (
	"testing"

	"github.com/zaqar-raft/zaqar/store"
)

func TestHeadHint_ClaimsAndPopsStayCorrectAfterTheHeadIsDeleted(t *testing.T) {
	s := openTestStore(t)
	var msgs []store.NewMessage
	for i := 1; i <= 30; i++ {
		msgs = append(msgs, msg(mid(i), 600))
	}
	s.post(proj, "q", "c", t0, msgs...)
	// Claim the first 10 and delete them: the head is now tombstones.
	for _, m := range s.claim(proj, "q", cid(1), 60, 60, 10, t0) {
		s.apply(func(tx *store.Txn) { tx.DeleteMessage(proj, "q", m.ID, cid(1), true, t0) })
	}
	got := s.claim(proj, "q", cid(2), 60, 60, 5, t0)
	if ids := msgIDs(got); len(ids) != 5 || ids[0] != mid(11) || ids[4] != mid(15) {
		t.Fatalf("claim after deleting the head took %q, want m11..m15", ids)
	}
	// Releasing the claim makes m11.. claimable again although the hint
	// moved up to them: the hint only ever skips deleted messages.
	s.apply(func(tx *store.Txn) { tx.ReleaseClaim(proj, "q", cid(2), t0) })
	var popped []*store.Message
	s.apply(func(tx *store.Txn) { popped = tx.PopMessages(proj, "q", 3, t0) })
	if ids := msgIDs(popped); len(ids) != 3 || ids[0] != mid(11) {
		t.Fatalf("pop after release took %q, want m11, m12, m13", ids)
	}
	if st := s.stats(proj, "q", t0); st.Total != 17 || st.Oldest.ID != mid(14) || st.Newest.ID != mid(30) {
		t.Fatalf("stats %d, oldest %s, newest %s; want 17, m14, m30", st.Total, st.Oldest.ID, st.Newest.ID)
	}
	if all := s.listAll(proj, "q", t0); len(all) != 17 || all[0].ID != mid(14) {
		t.Fatalf("listing after the hint moved: %d messages from %s", len(all), all[0].ID)
	}
}

func TestWatermark_AnExpiryBelowItIsStillCollected(t *testing.T) {
	s := openTestStore(t)
	// GC catches up at +1000 s: the watermark is now there.
	if n := s.gc(t0+1000*sec, 100); n != 0 {
		t.Fatalf("GC of an empty store processed %d", n)
	}
	// A leader whose clock is 30 minutes behind posts a message that
	// expires before the watermark.
	s.post(proj, "q", "c", t0-1800*sec, msg(mid(1), 60))
	if !s.pending(t0 + 1001*sec) {
		t.Fatal("an expiry below the watermark is not seen as due")
	}
	if n := s.gc(t0+1001*sec, 100); n != 1 {
		t.Fatalf("GC processed %d entries, want the 1 message below the watermark", n)
	}
	if st := s.stats(proj, "q", t0-1800*sec); st.Total != 0 {
		t.Fatalf("the message below the watermark is still stored: %+v", st)
	}
}
