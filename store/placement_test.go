package store_test

import (
	"testing"

	"github.com/zaqar-raft/zaqar/store"
)

func (s *testStore) placement(project, queue string) (string, bool) {
	s.t.Helper()
	var pool string
	var ok bool
	s.read(func(v *store.View) error {
		var err error
		pool, ok, err = v.Placement(project, queue)
		return err
	})
	return pool, ok
}

func TestPlacement_IsDecidedOnceAndKeepsAQueueTheCatalogPoolHolds(t *testing.T) {
	s := openTestStore(t)
	s.createPool("a", 100, "n1:7001")
	s.createPool("b", 100, "n4:7001")
	var first, second string
	s.apply(func(tx *store.Txn) { first = tx.PlaceQueue("p", "q", "b", "a") })
	// A second first request, drawn on another pool, finds the placement.
	s.apply(func(tx *store.Txn) { second = tx.PlaceQueue("p", "q", "a", "a") })
	if first != "b" || second != "b" {
		t.Fatalf("placements = %q then %q, want b both times", first, second)
	}
	if pool, ok := s.placement("p", "q"); !ok || pool != "b" {
		t.Fatalf("Placement = %q %v", pool, ok)
	}
	// A queue the catalog pool already holds stays where its messages are.
	s.apply(func(tx *store.Txn) { tx.CreateQueue("p", "old", t0, store.QueueSettings{}, nil) })
	var old string
	s.apply(func(tx *store.Txn) { old = tx.PlaceQueue("p", "old", "b", "a") })
	if old != "a" {
		t.Fatalf("existing queue placed on %q, want the catalog pool a", old)
	}
}

func TestPlacement_TheCatalogPoolRefusesToCreateAQueuePlacedElsewhere(t *testing.T) {
	s := openTestStore(t)
	s.createPool("a", 100, "n1:7001")
	s.createPool("b", 100, "n4:7001")
	s.apply(func(tx *store.Txn) {
		tx.PlaceQueue("p", "away", "b", "a")
		tx.PlaceQueue("p", "here", "a", "a")
	})
	var away, here, unplaced bool
	s.apply(func(tx *store.Txn) {
		away, here, unplaced = tx.Misplaced("p", "away"), tx.Misplaced("p", "here"), tx.Misplaced("p", "none")
	})
	if !away || here || unplaced {
		t.Fatalf("Misplaced: away=%v here=%v unplaced=%v, want true false false", away, here, unplaced)
	}
}

func TestPlacement_DeletingAPoolDropsItsPlacements(t *testing.T) {
	s := openTestStore(t)
	s.createPool("a", 100, "n1:7001")
	s.createPool("b", 100, "n4:7001")
	s.apply(func(tx *store.Txn) {
		tx.PlaceQueue("p", "q1", "b", "a")
		tx.PlaceQueue("p\x00x", "q2", "b", "a")
		tx.PlaceQueue("p", "q3", "a", "a")
	})
	s.read(func(v *store.View) error {
		n, err := v.PlacementCount("b", 10)
		if n != 2 {
			t.Errorf("PlacementCount(b) = %d, want 2", n)
		}
		return err
	})
	s.apply(func(tx *store.Txn) {
		if o, _ := tx.DeletePool("b"); o != store.CatalogDone {
			t.Fatalf("DeletePool: %v", o)
		}
	})
	for _, q := range [][2]string{{"p", "q1"}, {"p\x00x", "q2"}} {
		if pool, ok := s.placement(q[0], q[1]); ok {
			t.Errorf("placement of %q kept after its pool was deleted: %q", q[1], pool)
		}
	}
	if pool, ok := s.placement("p", "q3"); !ok || pool != "a" {
		t.Errorf("another pool's placement dropped: %q %v", pool, ok)
	}
}
