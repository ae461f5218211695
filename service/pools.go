package service

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zaqar-raft/zaqar/fsm"
	"github.com/zaqar-raft/zaqar/raftnode"
	"github.com/zaqar-raft/zaqar/store"
)

// Routing between pools (docs/pools.md). Every node serves every queue: a
// request for a queue placed on another pool is carried to a node of that
// pool. The catalog (pools, flavors, placements) lives in the catalog
// pool's store; nodes of other pools reach it through the pool routes of
// the node channel (PoolRouteCatalog).

// Pool routes: the names under raftnode's pool prefix that the transports
// and the service serve to nodes of every pool.
const (
	PoolRouteCatalog = "catalog" // catalog reads and placements (catalogRequest)
	PoolRouteQueues  = "queues"  // one pool's part of a project-wide listing
	PoolRouteREST    = "rest"    // a carried REST request
	PoolRouteWS      = "ws"      // a carried websocket action
)

// StatusMisdirected answers a carried request for a queue the receiving
// pool does not hold; the sender forgets its route and asks the catalog
// again.
const StatusMisdirected = http.StatusMisdirectedRequest

// HeaderPool names, on every answer about one queue of a deployment with
// pools, the pool that served it.
const HeaderPool = "X-Zaqar-Pool"

// errMisplaced answers a request that this node served as if its queue
// lived here while the catalog had placed it on another pool (the node's
// view of the pools was a moment old): the apply refused to create the
// queue here (store.Txn.Misplaced), nothing changed, and a retry is
// routed to the right pool.
var errMisplaced = &Error{Status: http.StatusServiceUnavailable, Title: TitleServiceUnavailable,
	Description: "The queue was placed on another pool a moment ago. Please try again."}

// Route says where requests on one queue are served.
type Route struct {
	// Pool is the owning pool's registered name ("" for the catalog pool
	// when it is not registered under a name, or without pools).
	Pool string
	// Addrs are the owning pool's node addresses; nil when this node's
	// own pool holds the queue.
	Addrs []string
}

// Local reports whether this node's pool serves the queue.
func (r Route) Local() bool { return r.Addrs == nil }

// poolSet is the catalog's pools as a node last read them.
type poolSet struct {
	pools   map[string][]string // registered name → node addresses
	weights map[string]uint64
	self    string // this node's group's registered name ("" none)
	catalog string // the catalog group's registered name ("" none)
	at      time.Time
}

// poolRouter holds what a node knows about pools: the catalog's address,
// the pools (refreshed at most every poolSetTTL) and a bounded cache of
// placements. Placements never change while their pool is registered
// (store/placement.go), so a cached one is stale only once its pool was
// deleted; the receiving pool catches that (Holds) and the sender forgets
// the route.
type poolRouter struct {
	catalogAddrs []string // nil: this node's group holds the catalog

	mu     sync.Mutex
	set    *poolSet
	routes map[string]string // scope \x00 queue → pool name
	next   atomic.Uint32     // rotates the first node tried in a pool
}

const (
	poolSetTTL    = time.Second
	maxRouteCache = 1 << 16
)

func routeKey(scope, queue string) string { return scope + "\x00" + queue }

// catalogRequest is a call to the catalog pool.
type catalogRequest struct {
	Op      string `json:"op"` // "place", "pools", "secret", "holds"
	Scope   string `json:"scope,omitempty"`
	Queue   string `json:"queue,omitempty"`
	Project string `json:"project,omitempty"`
	Create  bool   `json:"create,omitempty"`
	Flavor  string `json:"flavor,omitempty"`
	// Pool, with Create, places the queue on this pool instead of drawing
	// one ("" with Beside: the catalog pool).
	Pool   string `json:"pool,omitempty"`
	Beside bool   `json:"beside,omitempty"`
}

// catalogAnswer is the catalog pool's answer.
type catalogAnswer struct {
	Pool    string              `json:"pool,omitempty"`
	Placed  bool                `json:"placed,omitempty"`
	Pools   map[string][]string `json:"pools,omitempty"`
	Weights map[string]uint64   `json:"weights,omitempty"`
	Catalog string              `json:"catalog,omitempty"`
	Secret  []byte              `json:"secret,omitempty"`
	Holds   bool                `json:"holds,omitempty"`
	Error   *Error              `json:"error,omitempty"`
}

// holdsCatalog reports whether this node's group holds the catalog.
func (s *Service) holdsCatalog() bool { return len(s.pools.catalogAddrs) == 0 }

// poolSet returns the pools, read again when older than poolSetTTL.
func (s *Service) poolSet(ctx context.Context) (*poolSet, *Error) {
	s.pools.mu.Lock()
	cur := s.pools.set
	s.pools.mu.Unlock()
	if cur != nil && time.Since(cur.at) < poolSetTTL {
		return cur, nil
	}
	next := &poolSet{pools: map[string][]string{}, weights: map[string]uint64{}, at: time.Now()}
	if s.holdsCatalog() {
		// Read the pools at least as fresh as the cluster: a node that is
		// behind (a new member catching up) would otherwise see no pools
		// and serve queues of other pools as its own (the 2-pool chaos run
		// caught a replacement node acknowledging deletes it never made).
		// A node that cannot pass the barrier keeps the pools it read last;
		// one that never read them cannot route and answers 503.
		bctx, cancel := context.WithTimeout(ctx, poolSetTTL)
		err := s.node.ReadBarrier(bctx)
		cancel()
		switch {
		case err != nil && cur != nil:
			return cur, nil
		case err != nil:
			return nil, unavailable("This node cannot tell which pool holds the queue yet.", err)
		}
		v := s.store.View()
		all, err := v.ListPools("", -1)
		v.Close()
		if err != nil {
			return nil, storeFailure("The pools could not be read.", err)
		}
		for _, p := range all {
			next.pools[p.Name], next.weights[p.Name] = p.Addresses, p.Weight
		}
		next.self = s.groupName(next.pools)
		next.catalog = next.self
	} else {
		ans, e := s.callCatalog(ctx, catalogRequest{Op: "pools"})
		if e != nil {
			if cur != nil {
				return cur, nil // keep serving known placements (docs/operations.md)
			}
			return nil, e
		}
		next.pools, next.weights, next.catalog = ans.Pools, ans.Weights, ans.Catalog
		if next.pools == nil {
			next.pools = map[string][]string{}
		}
		next.self = s.groupName(next.pools)
	}
	s.pools.mu.Lock()
	s.pools.set = next
	s.pools.mu.Unlock()
	return next, nil
}

// groupName returns the registered name of the pool one of whose
// addresses is a member of this node's group, or "".
func (s *Service) groupName(pools map[string][]string) string {
	members := s.node.Members()
	names := make([]string, 0, len(pools))
	for n := range pools {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		for _, m := range members {
			if slices.Contains(pools[n], m.Address) {
				return n
			}
		}
	}
	return ""
}

// poolsInUse reports whether requests may have to be carried to another
// pool: this node's group is not the catalog's, or pools are registered.
// An error means this node cannot tell yet (poolSet).
func (s *Service) poolsInUse(ctx context.Context) (bool, *Error) {
	if !s.holdsCatalog() {
		return true, nil
	}
	set, e := s.poolSet(ctx)
	if e != nil {
		return false, e
	}
	return len(set.pools) > 0, nil
}

// localUnlessKnown is poolsInUse for a request: a stale read may be served
// here while this node cannot tell where queues live (it asked for this
// node's view); anything else gets the error.
func (s *Service) localUnlessKnown(ctx context.Context, stale bool) (inUse bool, e *Error) {
	inUse, e = s.poolsInUse(ctx)
	if e != nil && stale {
		return false, nil
	}
	return inUse, e
}

// RouteQueue says where requests on the caller's queue (or topic) name are
// served. create asks for a placement if the queue has none (the requests
// that create queues: PUT, a post, a subscription); flavor is the
// `_flavor` a PUT names. A queue without a placement lives in the catalog
// pool.
func (s *Service) RouteQueue(ctx context.Context, c Caller, name string, create bool, flavor string) (Route, *Error) {
	inUse, e := s.localUnlessKnown(ctx, c.Stale)
	if e != nil || !inUse {
		return Route{}, e
	}
	return s.routeScoped(ctx, c.scope(), c.Project, name, create, flavor)
}

// routeScoped is RouteQueue once pools are known to be in use.
func (s *Service) routeScoped(ctx context.Context, scope, project, name string, create bool, flavor string) (Route, *Error) {
	// A queue this node's store holds is served here: it was created here
	// only because its placement named this pool (or it had none, in the
	// catalog pool, and then PlaceQueue keeps it here), and placements do
	// not move. So requests on existing queues need neither the cache nor
	// the catalog, which keeps them serving while the catalog pool is down,
	// even on a node that restarted since.
	v := s.store.View()
	q, err := v.Queue(scope, name)
	v.Close()
	if err != nil {
		return Route{}, storeFailure("The queue could not be read.", err)
	}
	if q != nil {
		return Route{Pool: s.ownPoolName(ctx)}, nil
	}
	set, e := s.poolSet(ctx)
	if e != nil {
		return Route{}, e
	}
	key := routeKey(scope, name)
	s.pools.mu.Lock()
	pool, cached := s.pools.routes[key]
	s.pools.mu.Unlock()
	if _, known := set.pools[pool]; cached && (known || pool == "") && (flavor == "" || !create) {
		return s.routeTo(set, pool, true)
	}
	var ans catalogAnswer
	if s.holdsCatalog() {
		ans, e = s.catalogPlace(ctx, catalogRequest{Op: "place", Scope: scope, Queue: name, Project: project, Create: create, Flavor: flavor})
	} else {
		ans, e = s.callCatalog(ctx, catalogRequest{Op: "place", Scope: scope, Queue: name, Project: project, Create: create, Flavor: flavor})
	}
	if e != nil {
		return Route{}, e
	}
	if !ans.Placed {
		return s.routeTo(set, "", false)
	}
	s.pools.mu.Lock()
	if len(s.pools.routes) >= maxRouteCache {
		clear(s.pools.routes)
	}
	s.pools.routes[key] = ans.Pool
	s.pools.mu.Unlock()
	if _, known := set.pools[ans.Pool]; !known && ans.Pool != "" {
		// A pool registered after the set was read.
		s.pools.mu.Lock()
		s.pools.set = nil
		s.pools.mu.Unlock()
		if set, e = s.poolSet(ctx); e != nil {
			return Route{}, e
		}
	}
	return s.routeTo(set, ans.Pool, true)
}

// routeTo turns a pool name into a route; placed is false for a queue
// without a placement (the catalog pool's).
func (s *Service) routeTo(set *poolSet, pool string, placed bool) (Route, *Error) {
	if !placed || pool == "" || pool == set.catalog {
		if s.holdsCatalog() {
			return Route{Pool: set.catalog}, nil
		}
		if addrs := set.pools[set.catalog]; set.catalog != "" && len(addrs) > 0 {
			return Route{Pool: set.catalog, Addrs: addrs}, nil
		}
		return Route{Pool: set.catalog, Addrs: s.pools.catalogAddrs}, nil
	}
	if pool == set.self {
		return Route{Pool: pool}, nil
	}
	addrs, ok := set.pools[pool]
	if !ok {
		return Route{}, Errf(http.StatusServiceUnavailable, TitleServiceUnavailable, "Pool %s is not registered any more. Please try again.", pool)
	}
	return Route{Pool: pool, Addrs: addrs}, nil
}

// ownPoolName is the registered name of this node's pool, "" if the
// pools cannot be read now (it only names the pool in answers).
func (s *Service) ownPoolName(ctx context.Context) string {
	s.pools.mu.Lock()
	cur := s.pools.set
	s.pools.mu.Unlock()
	if cur == nil || time.Since(cur.at) >= poolSetTTL {
		// Only a refresh may wait, and not for long.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, ownPoolNameWait)
		defer cancel()
	}
	set, e := s.poolSet(ctx)
	switch {
	case e != nil:
		return ""
	case set.self == "" && s.holdsCatalog():
		return set.catalog
	}
	return set.self
}

// ownPoolNameWait bounds reading the pools only to name this node's pool.
const ownPoolNameWait = 300 * time.Millisecond

// RouteCatalog is where pool and flavor requests are served: the catalog
// pool.
func (s *Service) RouteCatalog(ctx context.Context) (Route, *Error) {
	if s.holdsCatalog() {
		return Route{}, nil
	}
	set, e := s.poolSet(ctx)
	if e != nil {
		set = &poolSet{}
	}
	return s.routeTo(set, "", false)
}

// catalogApplied drops the pools a node read when an applied entry changed
// them, so that a catalog node's next request reads them again.
func (s *Service) catalogApplied(results []*fsm.EntryResult) {
	for _, r := range results {
		for _, c := range r.Commands {
			switch c.Type() {
			case fsm.TypeCreatePool, fsm.TypeUpdatePool, fsm.TypeDeletePool, fsm.TypePutFlavor, fsm.TypeDeleteFlavor:
				s.pools.mu.Lock()
				s.pools.set = nil
				s.pools.mu.Unlock()
				return
			}
		}
	}
}

// ForgetRoute drops the cached placement of the caller's queue, after the
// pool it named refused a request for it.
func (s *Service) ForgetRoute(c Caller, name string) {
	s.pools.mu.Lock()
	delete(s.pools.routes, routeKey(c.scope(), name))
	s.pools.set = nil
	s.pools.mu.Unlock()
}

// Holds reports whether this node's pool serves the caller's queue: it
// holds it in its store, or the catalog places it here. A carried request
// for a queue it does not hold is refused (StatusMisdirected).
func (s *Service) Holds(ctx context.Context, c Caller, name string) (bool, *Error) {
	r, e := s.RouteQueue(ctx, c, name, false, "")
	return e == nil && r.Local(), e
}

// CallPool sends a carried request to a node of route's pool and returns
// the node channel's answer. An unreachable pool is 503.
func (s *Service) CallPool(ctx context.Context, route Route, name string, body []byte) (int, []byte, *Error) {
	start := int(s.pools.next.Add(1))
	status, answer, err := s.node.CallGroup(ctx, route.Addrs, start, poolPath(name), body)
	if err != nil {
		s.log.Info("pool call failed", "pool", route.Pool, "err", err)
		pool := route.Pool
		if pool == "" {
			pool = "catalog"
		}
		if errors.Is(err, raftnode.ErrUnknownOutcome) {
			// The request reached pool's node and may have taken effect.
			return 0, nil, Errf(http.StatusServiceUnavailable, TitleServiceUnavailable,
				"Pool %s did not answer. The outcome is unknown (the connection to the pool broke while the request was in flight); check before retrying.", pool)
		}
		return 0, nil, Errf(http.StatusServiceUnavailable, TitleServiceUnavailable, "Pool %s cannot be reached. Please try again in a few seconds.", pool)
	}
	return status, answer, nil
}

func poolPath(name string) string { return "/internal/v1/pool/" + name }

// callCatalog asks the catalog pool.
func (s *Service) callCatalog(ctx context.Context, req catalogRequest) (catalogAnswer, *Error) {
	body, _ := json.Marshal(req)
	s.pools.mu.Lock()
	set := s.pools.set
	s.pools.mu.Unlock()
	addrs := s.pools.catalogAddrs
	if set != nil && set.catalog != "" && len(set.pools[set.catalog]) > 0 {
		addrs = append(slices.Clone(set.pools[set.catalog]), addrs...)
	}
	status, answer, e := s.CallPool(ctx, Route{Pool: "catalog", Addrs: addrs}, PoolRouteCatalog, body)
	if e != nil {
		return catalogAnswer{}, e
	}
	var ans catalogAnswer
	if status != http.StatusOK || json.Unmarshal(answer, &ans) != nil {
		return catalogAnswer{}, unavailable("The catalog could not be read.", errors.New(string(answer)))
	}
	if ans.Error != nil {
		return catalogAnswer{}, ans.Error
	}
	return ans, nil
}

// ServeCatalog answers a catalogRequest from a node of another pool.
func (s *Service) ServeCatalog(ctx context.Context, body []byte) []byte {
	var req catalogRequest
	var ans catalogAnswer
	var e *Error
	switch {
	case json.Unmarshal(body, &req) != nil:
		e = badRequest("The catalog request could not be parsed.")
	case req.Op == "holds":
		v := s.store.View()
		held, err := v.HoldsQueues()
		v.Close()
		ans.Holds, e = held, nil
		if err != nil {
			e = storeFailure("The store could not be read.", err)
		}
	case !s.holdsCatalog():
		e = Errf(http.StatusServiceUnavailable, TitleServiceUnavailable, "This node's pool does not hold the catalog.")
	case req.Op == "place":
		ans, e = s.catalogPlace(ctx, req)
	case req.Op == "pools":
		var set *poolSet
		if err := s.node.ReadBarrier(ctx); err != nil {
			e = unavailable("The pools could not be read.", err)
			break
		}
		s.pools.mu.Lock()
		s.pools.set = nil
		s.pools.mu.Unlock()
		if set, e = s.poolSet(ctx); e == nil {
			ans.Pools, ans.Weights, ans.Catalog = set.pools, set.weights, set.catalog
		}
	case req.Op == "secret":
		ans.Secret, e = s.signingKey()
	default:
		e = badRequest("Unknown catalog operation %q.", req.Op)
	}
	ans.Error = e
	out, _ := json.Marshal(ans)
	return out
}

// catalogPlace reads a queue's placement in the catalog (linearizable)
// and, when it has none and create is set, places it: on a pool drawn by
// weight among those with weight above 0 (among the flavor's pools when
// one is named), before the log. PlaceQueue applies as insert-if-absent,
// so two first requests on two nodes end with one placement.
func (s *Service) catalogPlace(ctx context.Context, req catalogRequest) (catalogAnswer, *Error) {
	const what = "The queue could not be placed."
	v, e := s.catalogView(ctx, what)
	if e != nil {
		return catalogAnswer{}, e
	}
	pool, placed, err := v.Placement(req.Scope, req.Queue)
	if err != nil || placed || !req.Create {
		v.Close()
		if err != nil {
			return catalogAnswer{}, storeFailure(what, err)
		}
		return catalogAnswer{Pool: pool, Placed: placed}, nil
	}
	all, err := v.ListPools("", -1)
	candidates := all
	if err == nil && req.Flavor != "" {
		var f *store.Flavor
		if f, err = v.Flavor(req.Project, req.Flavor); err == nil && f == nil {
			v.Close()
			return catalogAnswer{}, badBody("Flavor %s does not exist.", req.Flavor)
		}
		if err == nil {
			candidates, err = v.PoolsOfFlavor(req.Flavor)
		}
	}
	v.Close()
	if err != nil {
		return catalogAnswer{}, storeFailure(what, err)
	}
	// The catalog group's registered name, from the same view as the
	// candidates.
	byName := map[string][]string{}
	for _, p := range all {
		byName[p.Name] = p.Addresses
	}
	catalogName := s.groupName(byName)
	choice := drawPool(candidates)
	if req.Beside {
		choice = req.Pool
	} else if choice == "" {
		if len(all) == 0 {
			// No pool is registered: the queue stays in the catalog pool.
			return catalogAnswer{}, nil
		}
		if req.Flavor != "" {
			return catalogAnswer{}, badBody("Flavor %s has no pool that accepts new queues.", req.Flavor)
		}
		return catalogAnswer{}, Errf(http.StatusServiceUnavailable, TitleServiceUnavailable, "No pool accepts new queues (every pool's weight is 0).")
	}
	res, _, e := s.propose(ctx, what, &fsm.PlaceQueue{Project: req.Scope, Queue: req.Queue, Pool: choice, CatalogPool: catalogName})
	if e != nil {
		return catalogAnswer{}, e
	}
	return catalogAnswer{Pool: res.ID, Placed: true}, nil
}

// drawPool draws a pool with probability proportional to its weight; ""
// if no pool has weight above 0.
func drawPool(pools []*store.Pool) string {
	var total uint64
	for _, p := range pools {
		total += p.Weight
	}
	if total == 0 {
		return ""
	}
	n := rand.Uint64N(total)
	for _, p := range pools {
		if n < p.Weight {
			return p.Name
		}
		n -= p.Weight
	}
	return pools[len(pools)-1].Name
}

// placeBeside makes sure a dead-letter queue lives on the same pool as the
// queue whose messages move to it (the move is one apply in one store): a
// dead-letter queue without a placement is placed beside the queue; one
// placed on another pool is refused (400).
func (s *Service) placeBeside(ctx context.Context, c Caller, queue, dlq string) *Error {
	if dlq == "" {
		return nil
	}
	if inUse, e := s.poolsInUse(ctx); e != nil || !inUse {
		return e
	}
	here, e := s.RouteQueue(ctx, c, queue, false, "")
	if e != nil {
		return e
	}
	set, e := s.poolSet(ctx)
	if e != nil {
		return e
	}
	pool := here.Pool
	if here.Local() {
		pool = set.self
		if s.holdsCatalog() && set.self == "" {
			pool = set.catalog
		}
	}
	req := catalogRequest{Op: "place", Scope: c.scope(), Queue: dlq, Project: c.Project, Create: true, Beside: true, Pool: pool}
	var ans catalogAnswer
	if s.holdsCatalog() {
		ans, e = s.catalogPlace(ctx, req)
	} else {
		ans, e = s.callCatalog(ctx, req)
	}
	if e != nil {
		return e
	}
	same := ans.Pool == pool || (ans.Pool == "" && pool == set.catalog) || (pool == "" && ans.Pool == set.catalog)
	if !same {
		return badBody("The dead letter queue %s is on pool %s and queue %s on pool %s: a dead letter queue must be on the same pool as its queue.", dlq, ans.Pool, queue, pool)
	}
	return nil
}
