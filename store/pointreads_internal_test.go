package store

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

// TestTxnPointReads_MatchTheBatch drives a Txn with random writes, deletes,
// range deletes and reads over a small key space, and checks every read
// (served from the Txn's remembered reads when it can be) against the
// indexed batch itself. The batch is the truth; the remembered reads are
// only a faster way to the same answer.
func TestTxnPointReads_MatchTheBatch(t *testing.T) {
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	keys := make([][]byte, 24)
	for i := range keys {
		// Shared prefixes so that range deletes cover some keys and not others.
		keys[i] = []byte(fmt.Sprintf("k%d/%d", i%3, i))
	}
	// Some keys exist before the Txn starts.
	seed := s.Begin(1)
	for i := 0; i < len(keys); i += 2 {
		seed.set(keys[i], []byte("old"+string(keys[i])))
	}
	if err := seed.Commit(1, 1); err != nil {
		t.Fatal(err)
	}

	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 20 {
		txn := s.Begin(uint64(round + 2))
		for step := range 400 {
			k := keys[rng.IntN(len(keys))]
			switch op := rng.IntN(10); {
			case op < 5:
				got, gotOK, err := txn.r.get(k)
				if err != nil {
					txn.Abort() // releases the store for Close
					t.Fatal(err)
				}
				want, closer, err := txn.b.Get(k)
				wantOK := err == nil
				if err != nil && !errors.Is(err, pebble.ErrNotFound) {
					txn.Abort()
					t.Fatal(err)
				}
				if gotOK != wantOK || string(got) != string(want) {
					txn.Abort()
					t.Fatalf("round %d step %d: get %q = %q, %v; the batch holds %q, %v", round, step, k, got, gotOK, want, wantOK)
				}
				if closer != nil {
					closer.Close()
				}
				// What a caller does to its copy must not reach the next read.
				if len(got) > 0 {
					got[0] ^= 0xFF
				}
			case op < 8:
				txn.set(k, []byte(fmt.Sprintf("v%d.%d", round, step)))
			case op < 9:
				txn.del(k)
			default:
				txn.delPrefix(k[:2])
			}
		}
		if rng.IntN(2) == 0 {
			txn.Abort()
			continue
		}
		if err := txn.Commit(uint64(round+2), 1); err != nil {
			t.Fatal(err)
		}
	}
}
