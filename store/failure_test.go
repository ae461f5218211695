package store_test

import (
	"slices"
	"testing"

	"github.com/zaqar-raft/zaqar/store"
)

// TestFailedMutations_WriteNothingToASharedBatch runs each refused mutation
// in the same transaction as a successful post and compares the result with
// a store where only the post ran: the FSM shares one batch between all the
// commands of a Raft batch, so a refusal must leave no trace in it.
func TestFailedMutations_WriteNothingToASharedBatch(t *testing.T) {
	setup := func(s *testStore) {
		s.apply(func(tx *store.Txn) {
			tx.CreateQueue(proj, "q", t0, store.QueueSettings{MaxClaimCount: 1, DeadLetter: "dlq"}, []byte(`{"a":1}`))
			tx.CreateQueue(proj, "empty", t0, store.QueueSettings{}, nil)
			tx.SetSecretIfAbsent([]byte("s"))
		})
		s.post(proj, "q", "c", t0, msg(mid(1), 600), msg(mid(2), 600), msg(mid(3), 600))
		s.claim(proj, "q", cid(1), 300, 60, 1, t0)       // mid(1)
		s.claim(proj, "q", cid(2), 20, 0, 1, t0)         // mid(2), until +20 s
		s.claim(proj, "q", cid(3), 300, 0, 1, t0+15*sec) // mid(3), until +315 s
	}
	now := t0 + 30*sec // cid(2) expired, cid(1) and cid(3) active
	const queueVersion = 1

	tests := []struct {
		name   string
		refuse func(t *testing.T, tx *store.Txn)
	}{
		{"create an existing queue", func(t *testing.T, tx *store.Txn) {
			if tx.CreateQueue(proj, "q", now, store.QueueSettings{}, []byte(`{"b":2}`)) {
				t.Fatal("CreateQueue reported true")
			}
		}},
		{"set metadata of a missing queue", func(t *testing.T, tx *store.Txn) {
			if tx.SetQueueMetadata(proj, "missing", queueVersion, store.QueueSettings{}, []byte(`{}`)) == nil {
				t.Fatal("SetQueueMetadata succeeded")
			}
		}},
		{"set metadata at a stale version", func(t *testing.T, tx *store.Txn) {
			if tx.SetQueueMetadata(proj, "q", queueVersion+7, store.QueueSettings{}, []byte(`{}`)) == nil {
				t.Fatal("SetQueueMetadata succeeded")
			}
		}},
		{"delete a claimed message without claim id", func(t *testing.T, tx *store.Txn) {
			if o := tx.DeleteMessage(proj, "q", mid(1), "", false, now); o != store.DeniedClaimed {
				t.Fatalf("outcome %v", o)
			}
		}},
		{"delete with a malformed claim id", func(t *testing.T, tx *store.Txn) {
			if o := tx.DeleteMessage(proj, "q", mid(1), "x", false, now); o != store.DeniedBadClaim {
				t.Fatalf("outcome %v", o)
			}
		}},
		{"delete with the id of an expired claim", func(t *testing.T, tx *store.Txn) {
			if o := tx.DeleteMessage(proj, "q", mid(2), cid(2), true, now); o != store.DeniedNotClaimed {
				t.Fatalf("outcome %v", o)
			}
		}},
		{"delete with another claim's id", func(t *testing.T, tx *store.Txn) {
			if o := tx.DeleteMessage(proj, "q", mid(1), cid(3), true, now); o != store.DeniedClaimed {
				t.Fatalf("outcome %v", o)
			}
		}},
		{"bulk delete with a claim missing", func(t *testing.T, tx *store.Txn) {
			if o := tx.DeleteMessages(proj, "q", []string{mid(1), mid(3)}, []string{cid(1)}, true, now); o != store.DeniedClaimed {
				t.Fatalf("outcome %v", o)
			}
		}},
		{"bulk delete with an unclaimed message", func(t *testing.T, tx *store.Txn) {
			if o := tx.DeleteMessages(proj, "q", []string{mid(1), mid(2)}, []string{cid(1), cid(2)}, true, now); o != store.DeniedClaimed {
				t.Fatalf("outcome %v", o)
			}
		}},
		{"renew an expired claim", func(t *testing.T, tx *store.Txn) {
			if tx.RenewClaim(proj, "q", cid(2), 300, 60, now) {
				t.Fatal("RenewClaim reported true")
			}
		}},
		{"renew an unknown claim", func(t *testing.T, tx *store.Txn) {
			if tx.RenewClaim(proj, "q", cid(9), 300, 60, now) {
				t.Fatal("RenewClaim reported true")
			}
		}},
		{"claim in a missing queue", func(t *testing.T, tx *store.Txn) {
			if got := tx.CreateClaim(proj, "missing", cid(9), 300, 60, 10, now); len(got) != 0 {
				t.Fatal("claimed messages")
			}
		}},
		{"claim in an empty queue", func(t *testing.T, tx *store.Txn) {
			if got := tx.CreateClaim(proj, "empty", cid(9), 300, 60, 10, now); len(got) != 0 {
				t.Fatal("claimed messages")
			}
		}},
		{"pop from an empty queue", func(t *testing.T, tx *store.Txn) {
			if got := tx.PopMessages(proj, "empty", 10, now); len(got) != 0 {
				t.Fatal("popped messages")
			}
		}},
		{"set the secret again", func(t *testing.T, tx *store.Txn) {
			if tx.SetSecretIfAbsent([]byte("other")) {
				t.Fatal("SetSecretIfAbsent reported true")
			}
		}},
		{"delete a missing queue", func(t *testing.T, tx *store.Txn) { tx.DeleteQueue(proj, "missing") }},
		{"purge a missing queue", func(t *testing.T, tx *store.Txn) { tx.PurgeQueue(proj, "missing", true, true) }},
		{"release an unknown claim", func(t *testing.T, tx *store.Txn) { tx.ReleaseClaim(proj, "q", cid(9), now) }},
		{"delete a missing message", func(t *testing.T, tx *store.Txn) {
			if o := tx.DeleteMessage(proj, "q", mid(99), "", false, now); o != store.Deleted {
				t.Fatalf("outcome %v", o)
			}
		}},
		// (GC with nothing due is not a refused mutation: it records how far
		// it got, the watermark later scans start from.)
	}

	reference := openTestStore(t)
	setup(reference)
	reference.apply(func(tx *store.Txn) {
		tx.PostMessages(proj, "q", "c", now, 3600, []store.NewMessage{msg(mid(50), 600)})
	})
	want := reference.digest()
	for i, id := range []string{mid(1), "", mid(3)} {
		_, held := reference.getClaim(proj, "q", cid(i+1), now)
		if got := msgIDs(held); (id == "" && len(got) != 0) || (id != "" && !slices.Equal(got, []string{id})) {
			t.Fatalf("setup: claim %s holds %q at now", cid(i+1), got)
		}
	}

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openTestStore(t)
			setup(s)
			s.apply(func(tx *store.Txn) {
				tx.PostMessages(proj, "q", "c", now, 3600, []store.NewMessage{msg(mid(50), 600)})
				tc.refuse(t, tx)
			})
			if s.digest() != want {
				t.Fatal("the refused mutation left writes in the batch")
			}
		})
	}
}
