package store_test

import (
	"slices"
	"testing"

	"github.com/zaqar-raft/zaqar/store"
)

func (s *testStore) gc(now int64, limit int) int {
	s.t.Helper()
	var n int
	s.apply(func(tx *store.Txn) { n = tx.CollectGarbage(now, limit) })
	return n
}

func TestCollectGarbage_RemovesExpiredMessagesAndClaims(t *testing.T) {
	s := openTestStore(t)
	s.post(proj, "q", "c", t0, msg(mid(1), 60), msg(mid(2), 120), msg(mid(3), 5000))
	s.claim(proj, "q", cid(1), 100, 60, 1, t0+30*sec) // mid(1): extended to +190 s; claim until +130 s

	if n := s.gc(t0+119*sec, 100); n != 0 {
		t.Fatalf("GC before anything is due processed %d entries", n)
	}
	if n := s.gc(t0+130*sec, 100); n != 2 {
		t.Fatalf("GC at +130 s processed %d entries, want 2 (mid(2) and the claim)", n)
	}
	if c, _ := s.getClaim(proj, "q", cid(1), t0); c != nil {
		t.Fatal("expired claim record not collected")
	}
	if m := s.message(proj, "q", mid(2), t0); m != nil {
		t.Fatal("expired message not collected")
	}
	if m := s.message(proj, "q", mid(1), t0+130*sec); m == nil || m.Claimed(t0+130*sec) {
		t.Fatal("message of a collected claim must survive, unclaimed")
	}
	if st := s.stats(proj, "q", t0+130*sec); st.Total != 2 {
		t.Fatalf("stats total = %d, want 2", st.Total)
	}
	if n := s.gc(t0+190*sec, 100); n != 1 {
		t.Fatalf("GC at +190 s processed %d entries, want 1", n)
	}
	if st := s.stats(proj, "q", t0); st.Total != 1 || st.Oldest.ID != mid(3) {
		t.Fatalf("after GC, stats seen at t0 = %+v, want only %s stored", st, mid(3))
	}
	if s.pending(t0 + 4999*sec) {
		t.Fatal("Pending reports work before the last message is due")
	}
	before := s.stats(proj, "q", t0)
	if n := s.gc(t0+4999*sec, 100); n != 0 {
		t.Fatalf("GC with nothing due processed %d entries", n)
	}
	if after := s.stats(proj, "q", t0); after.Total != before.Total || after.Oldest.ID != before.Oldest.ID {
		t.Fatalf("GC with nothing due changed the queue: %+v, then %+v", before, after)
	}
	if n := s.gc(t0+5001*sec, 100); n != 1 {
		t.Fatalf("GC after the watermark moved missed the last message: processed %d", n)
	}
}

func TestCollectGarbage_RespectsTheLimitAndCatchesUp(t *testing.T) {
	s := openTestStore(t)
	var msgs []store.NewMessage
	for i := 0; i < 25; i++ {
		msgs = append(msgs, msg(mid(i), 60+int64(i)))
	}
	s.post(proj, "q", "c", t0, msgs...)
	now := t0 + 1000*sec
	total := 0
	for rounds := 0; ; rounds++ {
		if rounds > 10 {
			t.Fatal("GC does not catch up")
		}
		n := s.gc(now, 10)
		if n > 10 {
			t.Fatalf("GC processed %d entries with limit 10", n)
		}
		total += n
		if n < 10 {
			break
		}
	}
	if total != 25 {
		t.Fatalf("GC processed %d entries in total, want 25", total)
	}
	if s.pending(now) {
		t.Fatal("Pending after GC caught up")
	}
	if st := s.stats(proj, "q", t0); st.Total != 0 {
		t.Fatalf("stored messages after GC = %d, want 0", st.Total)
	}
	// Oldest first: with limit 1, the first expiry goes first.
	s.post(proj, "r", "c", t0, msg(mid(100), 200), msg(mid(101), 100))
	s.gc(now, 1)
	if got := msgIDs(s.listAll(proj, "r", t0)); !slices.Equal(got, []string{mid(100)}) {
		t.Fatalf("after GC with limit 1: %q, want the later-expiring %s kept", got, mid(100))
	}
	if n := s.gc(now, 0); n != 0 {
		t.Fatalf("GC with limit 0 processed %d", n)
	}
}

func TestCollectGarbage_DropsStaleEntriesOfDeletedAndPurgedQueues(t *testing.T) {
	s := openTestStore(t)
	s.post(proj, "deleted", "c", t0, msg(mid(1), 60), msg(mid(2), 60))
	s.claim(proj, "deleted", cid(1), 100, 60, 1, t0)
	s.post(proj, "purged", "c", t0, msg(mid(3), 60))
	s.claim(proj, "purged", cid(2), 100, 60, 1, t0)
	s.apply(func(tx *store.Txn) {
		tx.DeleteQueue(proj, "deleted")
		tx.PurgeQueue(proj, "purged", true, false)
	})
	// What is left of them: expiry entries (stale) and the purged queue.
	now := t0 + 1000*sec
	if !s.pending(now) {
		t.Fatal("stale expiry entries should still be pending")
	}
	if n := s.gc(now, 100); n != 5 {
		t.Fatalf("GC processed %d entries, want 5 (3 messages and 2 claims, all stale)", n)
	}
	if s.pending(now) {
		t.Fatal("stale entries left after GC")
	}
	if s.queue(proj, "purged") == nil || s.queue(proj, "deleted") != nil {
		t.Fatal("GC of stale entries changed which queues exist")
	}
	if st := s.stats(proj, "purged", t0); st.Total != 0 {
		t.Fatalf("purged queue stats = %+v", st)
	}
	// A store holding only the surviving queue: the same as one built
	// without the deleted and purged contents.
	fresh := openTestStore(t)
	fresh.index = 2 // a queue's MetaVersion is its creation index: create it at 3, as in s
	fresh.post(proj, "purged", "c", t0, msg(mid(9), 60))
	// The claim moves the queue's head hint, which is part of the state.
	fresh.claim(proj, "purged", cid(9), 100, 60, 1, t0)
	fresh.apply(func(tx *store.Txn) { tx.PurgeQueue(proj, "purged", true, false) })
	fresh.gc(now, 100)
	if s.digest() != fresh.digest() {
		t.Fatal("GC left residue of deleted and purged queues")
	}
}

func TestCollectGarbage_NeverCollectsARecreatedQueuesNewMessages(t *testing.T) {
	s := openTestStore(t)
	// Old queue: seq 1 and 2 expire at +60 s and +70 s.
	s.post(proj, "q", "c", t0, msg(mid(1), 60), msg(mid(2), 70))
	s.claim(proj, "q", cid(1), 100, 0, 1, t0) // claim expires at +100 s, mid(1) extended to +100 s
	s.apply(func(tx *store.Txn) { tx.DeleteQueue(proj, "q") })
	// New queue of the same name reuses seq 1 and 2 with other ids, and
	// one new message expires at exactly the instant of a stale entry
	// with the same seq.
	s.post(proj, "q", "c", t0+30*sec, msg(mid(3), 200), msg(mid(4), 40)) // +230 s, +70 s
	// And a new claim with the old claim's id (ids are random; make the
	// worst case happen anyway).
	s.claim(proj, "q", cid(1), 500, 0, 1, t0+30*sec) // takes mid(3); claim until +530 s, mid(3) to +530 s

	now := t0 + 120*sec
	s.gc(now, 100)
	if got := msgIDs(s.listAll(proj, "q", t0+30*sec)); !slices.Equal(got, []string{mid(3)}) {
		t.Fatalf("re-created queue after GC = %q, want %s (mid(4) expired at +70 s)", got, mid(3))
	}
	c, msgs := s.getClaim(proj, "q", cid(1), now)
	if c == nil || !slices.Equal(msgIDs(msgs), []string{mid(3)}) {
		t.Fatal("GC of the old queue's stale claim entry removed the new claim")
	}
	if st := s.stats(proj, "q", now); st.Total != 1 || st.Claimed != 1 {
		t.Fatalf("stats = %+v, want one claimed message", st)
	}
}

func TestCollectGarbage_StaleEntryAtTheSameInstantAndSeqIsHarmless(t *testing.T) {
	s := openTestStore(t)
	s.post(proj, "q", "c", t0, msg(mid(1), 60))
	s.apply(func(tx *store.Txn) { tx.DeleteQueue(proj, "q") })
	// Same seq, same expiry instant, other id: the index key is the same.
	s.post(proj, "q", "c", t0, msg(mid(2), 60))
	if st := s.stats(proj, "q", t0+60*sec); st.Total != 0 {
		t.Fatalf("stats at expiry = %+v, want 0", st)
	}
	if st := s.stats(proj, "q", t0); st.Total != 1 {
		t.Fatalf("stats before expiry = %+v, want 1", st)
	}
	s.gc(t0+60*sec, 100)
	if m := s.message(proj, "q", mid(2), t0); m != nil {
		t.Fatal("new message not collected at its expiry")
	}
	if st := s.stats(proj, "q", t0); st.Total != 0 {
		t.Fatalf("stats after GC = %+v, want 0", st)
	}
}

func TestQueueStats_IgnoresStaleEntriesOfAnEarlierQueue(t *testing.T) {
	s := openTestStore(t)
	s.post(proj, "q", "c", t0, msg(mid(1), 60), msg(mid(2), 60))
	s.apply(func(tx *store.Txn) { tx.DeleteQueue(proj, "q") })
	s.post(proj, "q", "c", t0+10*sec, msg(mid(3), 600), msg(mid(4), 600))
	if st := s.stats(proj, "q", t0+100*sec); st.Total != 2 {
		t.Fatalf("stats total = %d, want 2 (stale expired entries must not be subtracted)", st.Total)
	}
}
