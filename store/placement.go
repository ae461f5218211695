package store

import "fmt"

// Placements (docs/pools.md): the catalog records, once, the pool each
// queue (and topic: their project key is their scope) lives on. A
// placement is kept when its queue is deleted, so a queue name always
// comes back to the pool that held it and a node's cached placement can
// only go stale when a pool is deleted, which is refused while the pool
// holds queues. Deleting a pool drops its placements.

func placementKey(project, queue string) []byte {
	return appendString(appendString([]byte{spacePlacement}, project), queue)
}

func placedPrefix(pool string) []byte { return appendString([]byte{spacePlaced}, pool) }

func placedKey(pool, project, queue string) []byte {
	return appendString(appendString(placedPrefix(pool), project), queue)
}

// A placement record is one byte, placedHere if the pool is the catalog
// pool's own group (this store's) and placedAway otherwise, then the
// pool's name.
const (
	placedAway byte = 0
	placedHere byte = 1
)

// placement returns the pool the queue is placed on; ok is false if it has
// no placement.
func (r reader) placement(project, queue string) (pool string, ok bool, err error) {
	v, ok, err := r.get(placementKey(project, queue))
	if err != nil || !ok {
		return "", ok, err
	}
	if len(v) == 0 {
		return "", false, fmt.Errorf("store: empty placement record for %q", queue)
	}
	return string(v[1:]), true, nil
}

// Misplaced reports whether creating the queue in this store would put it
// where the catalog does not place it: it does not exist here and the
// catalog, which lives in this store in the catalog pool, places it on
// another pool. Every apply that creates a queue (PUT, a post, a
// subscription) checks it, so a node that routed a request with a stale
// view of the pools cannot create a queue in the wrong pool: in the
// catalog pool the placement and the queue are in one store and the check
// is part of the same apply. Other pools' stores hold no placements.
func (t *Txn) Misplaced(project, queue string) bool {
	if q := must(t.r.queue(project, queue)); q != nil {
		return false
	}
	v, ok := must2(t.r.get(placementKey(project, queue)))
	return ok && len(v) > 0 && v[0] != placedHere
}

// Placement returns the pool the queue is placed on; ok is false if the
// catalog has no placement for it.
func (v *View) Placement(project, queue string) (pool string, ok bool, err error) {
	return v.r.placement(project, queue)
}

// PlacementCount counts the placements naming pool, up to limit.
func (v *View) PlacementCount(pool string, limit int) (int, error) {
	p := placedPrefix(pool)
	it, err := v.r.iter(p, prefixEnd(p))
	if err != nil {
		return 0, err
	}
	defer it.Close()
	n := 0
	for ok := it.First(); ok && n < limit; ok = it.Next() {
		n++
	}
	return n, it.Error()
}

// HoldsQueues reports whether this store holds any queue or topic.
func (v *View) HoldsQueues() (bool, error) {
	p := []byte{spaceQueue}
	it, err := v.r.iter(p, prefixEnd(p))
	if err != nil {
		return false, err
	}
	defer it.Close()
	return it.First(), it.Error()
}

// PlaceQueue places the queue on pool unless it has a placement already,
// and returns the placement it has afterwards. A queue this store holds
// already (created before pools were registered, in the catalog pool) is
// placed on catalogPool instead: it stays where its messages are. ""
// names the catalog pool when it is not registered under a name.
func (t *Txn) PlaceQueue(project, queue, pool, catalogPool string) string {
	if p, ok := mustOK(t.r.placement(project, queue)); ok {
		return p
	}
	if q := must(t.r.queue(project, queue)); q != nil {
		pool = catalogPool
	}
	flag := placedAway
	if pool == catalogPool {
		flag = placedHere
	}
	t.set(placementKey(project, queue), append([]byte{flag}, pool...))
	t.set(placedKey(pool, project, queue), nil)
	return pool
}

// dropPlacements removes every placement naming pool.
func (t *Txn) dropPlacements(pool string) {
	p := placedPrefix(pool)
	it := must(t.r.iter(p, prefixEnd(p)))
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		project, rest, ok1 := readString(it.Key()[len(p):])
		queue, _, ok2 := readString(rest)
		if !ok1 || !ok2 {
			panic(fmt.Sprintf("store: corrupt placement key %x", it.Key()))
		}
		t.del(placementKey(project, queue))
	}
	if err := it.Error(); err != nil {
		panic(fmt.Sprintf("store: scan placements: %v", err))
	}
	t.delPrefix(p)
}

func mustOK(s string, ok bool, err error) (string, bool) {
	if err != nil {
		panic(fmt.Sprintf("store: read inside apply: %v", err))
	}
	return s, ok
}
