package service

import (
	"testing"

	"github.com/zaqar-raft/zaqar/store"
	"github.com/zaqar-raft/zaqar/testkit/fsmnode"
)

// mustDigest returns the store's digest.
func mustDigest(t testing.TB, st *store.Store) [32]byte {
	t.Helper()
	d, err := st.Digest()
	must(t, err)
	return d
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// newLocalService returns a service over a fresh store in a temporary
// directory, proposing through a one-replica fsmnode.
func newLocalService(t testing.TB, limits Limits) (*Service, *fsmnode.Node, *store.Store) {
	t.Helper()
	n, st := fsmnode.OpenForTest(t)
	return New(n, st, Config{Limits: limits, SignedURLSecret: "fuzz-secret"}), n, st
}
