package store_test

import (
	"reflect"
	"testing"

	"github.com/zaqar-raft/zaqar/store"
)

func (s *testStore) catalogPools() map[string]store.Pool {
	s.t.Helper()
	out := map[string]store.Pool{}
	s.read(func(v *store.View) error {
		ps, err := v.ListPools("", 1000)
		for _, p := range ps {
			out[p.Name] = *p
		}
		return err
	})
	return out
}

func (s *testStore) createPool(name string, weight uint64, addrs ...string) (store.CatalogOutcome, string) {
	var (
		o     store.CatalogOutcome
		other string
	)
	s.apply(func(tx *store.Txn) {
		o, other = tx.CreatePool(store.Pool{Name: name, URI: "zaqar+raft://" + addrs[0], Addresses: addrs, Weight: weight, Options: []byte(`{}`)}, t0)
	})
	return o, other
}

func TestCatalog_CreatePoolRefusesAnExistingNameAndATakenAddress(t *testing.T) {
	s := openTestStore(t)
	if o, _ := s.createPool("a", 100, "n1:7001", "n2:7001"); o != store.CatalogDone {
		t.Fatalf("create a: %v", o)
	}
	s.read(func(v *store.View) error {
		o, other, err := v.CheckCreatePool(store.Pool{Name: "b", Addresses: []string{"n2:7001"}})
		if o != store.CatalogAddressTaken || other != "a" {
			t.Fatalf("CheckCreatePool of b on a's address: %v %q", o, other)
		}
		return err
	})
	before := s.digest()
	if o, _ := s.createPool("a", 5, "n9:7001"); o != store.CatalogExists {
		t.Fatalf("create a again: %v, want CatalogExists", o)
	}
	if o, other := s.createPool("b", 5, "n3:7001", "n2:7001"); o != store.CatalogAddressTaken || other != "a" {
		t.Fatalf("create b on a's address: %v %q, want CatalogAddressTaken by a", o, other)
	}
	if s.digest() != before {
		t.Fatal("a refused create changed the store")
	}
	got := s.catalogPools()["a"]
	want := store.Pool{Name: "a", URI: "zaqar+raft://n1:7001", Addresses: []string{"n1:7001", "n2:7001"}, Weight: 100, Options: []byte(`{}`), CreatedAt: t0}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("pool a = %+v, want %+v", got, want)
	}
}

func TestCatalog_UpdatePoolChangesOnlyTheFieldsGiven(t *testing.T) {
	s := openTestStore(t)
	s.createPool("a", 100, "n1:7001")
	s.createPool("b", 100, "n2:7001")
	var o store.CatalogOutcome
	w := uint64(0)
	s.apply(func(tx *store.Txn) { o, _ = tx.UpdatePool("a", store.PoolChange{Weight: &w}) })
	if p := s.catalogPools()["a"]; o != store.CatalogDone || p.Weight != 0 || p.URI != "zaqar+raft://n1:7001" {
		t.Fatalf("after weight 0: %v %+v", o, p)
	}
	uri := "zaqar+raft://n2:7001"
	var other string
	s.apply(func(tx *store.Txn) {
		o, other = tx.UpdatePool("a", store.PoolChange{URI: &uri, Addresses: []string{"n2:7001"}})
	})
	if o != store.CatalogAddressTaken || other != "b" {
		t.Fatalf("moving a onto b's address: %v %q", o, other)
	}
	s.apply(func(tx *store.Txn) { o, _ = tx.UpdatePool("zz", store.PoolChange{Weight: &w}) })
	if o != store.CatalogNotFound {
		t.Fatalf("update of a missing pool: %v", o)
	}
}

func TestCatalog_FlavorPoolListMovesPoolsAndProtectsThemFromDeletion(t *testing.T) {
	s := openTestStore(t)
	for i, name := range []string{"a", "b", "c"} {
		s.createPool(name, 10, string(rune('1'+i))+":7001")
	}
	put := func(pools []string, mustExist bool) (o store.CatalogOutcome, arg string) {
		s.apply(func(tx *store.Txn) {
			o, arg = tx.PutFlavor(store.Flavor{Project: "p", Name: "fast", Capabilities: []byte(`{}`)}, pools, mustExist, t0)
		})
		return o, arg
	}
	if o, _ := put([]string{"a"}, true); o != store.CatalogNotFound {
		t.Fatalf("update of a missing flavor: %v", o)
	}
	if o, missing := put([]string{"a", "nope"}, false); o != store.CatalogNotFound || missing != "nope" {
		t.Fatalf("flavor naming a missing pool: %v %q", o, missing)
	}
	if got := s.catalogPools()["a"].Flavor; got != "" {
		t.Fatalf("a refused flavor put set a's flavor to %q", got)
	}
	if o, _ := put([]string{"a", "b"}, false); o != store.CatalogDone {
		t.Fatalf("create flavor: %v", o)
	}
	if o, _ := put([]string{"b", "c"}, true); o != store.CatalogDone {
		t.Fatalf("update flavor: %v", o)
	}
	pools := s.catalogPools()
	if pools["a"].Flavor != "" || pools["b"].Flavor != "fast" || pools["c"].Flavor != "fast" {
		t.Fatalf("flavors after update: a=%q b=%q c=%q", pools["a"].Flavor, pools["b"].Flavor, pools["c"].Flavor)
	}
	s.read(func(v *store.View) error {
		of, err := v.PoolsOfFlavor("fast")
		if len(of) != 2 || of[0].Name != "b" || of[1].Name != "c" {
			t.Fatalf("PoolsOfFlavor = %v", of)
		}
		return err
	})

	var o store.CatalogOutcome
	var flavor string
	s.read(func(v *store.View) (err error) {
		if o, flavor, err = v.CheckDeletePool("b"); o != store.CatalogInFlavor || flavor != "fast" {
			t.Fatalf("CheckDeletePool of a pool in a flavor: %v %q", o, flavor)
		}
		return err
	})
	s.apply(func(tx *store.Txn) { o, flavor = tx.DeletePool("b") })
	if o != store.CatalogInFlavor || flavor != "fast" {
		t.Fatalf("delete of a pool in a flavor: %v %q", o, flavor)
	}
	s.apply(func(tx *store.Txn) { o = tx.DeleteFlavor("p", "fast") })
	if o != store.CatalogDone || s.catalogPools()["b"].Flavor != "" {
		t.Fatalf("delete flavor: %v, b's flavor %q", o, s.catalogPools()["b"].Flavor)
	}
	s.apply(func(tx *store.Txn) { o, _ = tx.DeletePool("b") })
	if _, still := s.catalogPools()["b"]; o != store.CatalogDone || still {
		t.Fatalf("delete of a free pool: %v, still listed %v", o, still)
	}
	s.apply(func(tx *store.Txn) { o, _ = tx.DeletePool("b") })
	if o != store.CatalogNotFound {
		t.Fatalf("second delete: %v", o)
	}
}

func TestCatalog_ListingsPageByNameAndFlavorsAreScopedToTheirProject(t *testing.T) {
	s := openTestStore(t)
	for i, name := range []string{"c", "a", "b"} {
		s.createPool(name, 1, string(rune('1'+i))+":7001")
	}
	s.apply(func(tx *store.Txn) {
		tx.PutFlavor(store.Flavor{Project: "p", Name: "f1"}, nil, false, t0)
		tx.PutFlavor(store.Flavor{Project: "p", Name: "f2"}, nil, false, t0)
		tx.PutFlavor(store.Flavor{Project: "p2", Name: "f0"}, nil, false, t0)
	})
	s.read(func(v *store.View) error {
		ps, err := v.ListPools("a", 1)
		if err != nil || len(ps) != 1 || ps[0].Name != "b" {
			t.Fatalf("ListPools after a, limit 1 = %v, %v", ps, err)
		}
		fs, err := v.ListFlavors("p", "", 10)
		if err != nil || len(fs) != 2 || fs[0].Name != "f1" || fs[1].Name != "f2" {
			t.Fatalf("ListFlavors(p) = %v, %v", fs, err)
		}
		fs, err = v.ListFlavors("p", "f1", 10)
		if err != nil || len(fs) != 1 || fs[0].Name != "f2" {
			t.Fatalf("ListFlavors(p) after f1 = %v, %v", fs, err)
		}
		if f, err := v.Flavor("p2", "f1"); f != nil || err != nil {
			t.Fatalf("p2 sees p's flavor: %v %v", f, err)
		}
		return nil
	})
}
