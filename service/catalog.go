package service

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zaqar-raft/zaqar/fsm"
	"github.com/zaqar-raft/zaqar/store"
)

// The pool and flavor API (contract §12, docs/pools.md). The catalog
// lives in this node's group: the catalog pool's, which is every node's
// in a deployment of one pool.

// PoolURIScheme is the scheme of a pool's uri:
// zaqar+raft://host:port[,host:port...], node addresses of the group's
// members.
const PoolURIScheme = "zaqar+raft"

const (
	maxPoolWeight      = 1<<32 - 1
	maxCatalogField    = 255 // uri, flavor (contract §12)
	maxCatalogNameSize = 64
)

// Capabilities are what every pool of this service offers: each is a Raft
// group of the same binary. Flavors show them as upstream derives them
// from their pools.
var Capabilities = []string{"FIFO", "CLAIMS", "DURABILITY", "AOD", "HIGH_THROUGHPUT"}

// PoolDoc is a pool as the API shows it.
type PoolDoc struct {
	Name    string          `json:"name"`
	Flavor  *string         `json:"flavor"` // null when the pool is in no flavor
	URI     string          `json:"uri"`
	Weight  uint64          `json:"weight"`
	Options json.RawMessage `json:"options,omitempty"` // detailed only
}

// FlavorDoc is a flavor as the API shows it.
type FlavorDoc struct {
	Name         string   `json:"name"`
	PoolList     []string `json:"pool_list"`
	Capabilities []string `json:"capabilities,omitempty"`
}

func poolDoc(p *store.Pool, detailed bool) PoolDoc {
	d := PoolDoc{Name: p.Name, URI: p.URI, Weight: p.Weight}
	if p.Flavor != "" {
		d.Flavor = &p.Flavor
	}
	if detailed {
		d.Options = p.Options
	}
	return d
}

// ParsePoolURI returns the node addresses a pool uri names, in the order
// given, without repeats.
func ParsePoolURI(uri string) ([]string, bool) {
	rest, ok := strings.CutPrefix(uri, PoolURIScheme+"://")
	if !ok || rest == "" {
		return nil, false
	}
	var addrs []string
	for _, a := range strings.Split(rest, ",") {
		host, port, err := net.SplitHostPort(a)
		if err != nil || host == "" || strings.ContainsAny(host, "/?#@ ") {
			return nil, false
		}
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return nil, false
		}
		a = net.JoinHostPort(strings.ToLower(host), strconv.Itoa(n))
		if !slices.Contains(addrs, a) {
			addrs = append(addrs, a)
		}
	}
	return addrs, true
}

func validateCatalogName(kind, name string) *Error {
	if name == "" || len(name) > maxCatalogNameSize || !validName(name) {
		return badRequest("%s names may only contain ASCII letters, digits, underscores, dashes and dots, and may not be more than %d characters long.", kind, maxCatalogNameSize)
	}
	return nil
}

// poolFields is a validated pool body; nil fields were absent.
type poolFields struct {
	uri     *string
	addrs   []string
	weight  *uint64
	flavor  *string
	options []byte
}

// parsePoolBody validates a pool PUT (create) or PATCH body: no other keys
// than weight, uri, flavor and options; weight and uri required on create.
func parsePoolBody(body []byte, create bool) (poolFields, *Error) {
	var f poolFields
	obj, e := parseObject(body, "Request body could not be parsed.")
	if e != nil {
		return f, e
	}
	for k := range obj {
		switch k {
		case "weight", "uri", "flavor", "options":
		default:
			return f, badBody("Additional properties are not allowed (%q was unexpected).", k)
		}
	}
	if raw, ok := obj["weight"]; ok {
		w, isInt := asInt(raw)
		if !isInt || w < 0 || w > maxPoolWeight {
			return f, badBody("The value of the \"weight\" field must be an integer from 0 to %d.", maxPoolWeight)
		}
		u := uint64(w)
		f.weight = &u
	}
	if raw, ok := obj["uri"]; ok {
		uri, isStr := asString(raw)
		addrs, valid := ParsePoolURI(uri)
		if !isStr || len(uri) > maxCatalogField || !valid {
			return f, badBody("The value of the \"uri\" field must be %s://host:port[,host:port...] (node addresses of the pool's members), at most %d characters.", PoolURIScheme, maxCatalogField)
		}
		f.uri, f.addrs = &uri, addrs
	}
	if raw, ok := obj["flavor"]; ok {
		fl, isStr := asString(raw)
		if !isStr || len(fl) > maxCatalogField {
			return f, badBody("The value of the \"flavor\" field must be a string of at most %d characters.", maxCatalogField)
		}
		f.flavor = &fl
	}
	if raw, ok := obj["options"]; ok {
		if _, e := parseObject(raw, `The value of the "options" field must be an object.`); e != nil {
			return f, e
		}
		var compact bytes.Buffer
		_ = json.Compact(&compact, raw) // a validated object
		f.options = compact.Bytes()
	}
	switch {
	case create && (f.weight == nil || f.uri == nil):
		return f, badBody("The \"weight\" and \"uri\" fields are required.")
	case !create && f.weight == nil && f.uri == nil && f.flavor == nil && f.options == nil:
		return f, badBody("One of `uri`, `weight`, `flavor`, or `options` needs to be specified")
	}
	return f, nil
}

// catalogView opens a linearizable view of the catalog.
func (s *Service) catalogView(ctx context.Context, what string) (*store.View, *Error) {
	if err := s.node.ReadBarrier(ctx); err != nil {
		return nil, unavailable(what, err)
	}
	return s.store.View(), nil
}

// CreatePool registers a pool (PUT /v2/pools/{pool}).
func (s *Service) CreatePool(ctx context.Context, name string, body []byte) *Error {
	if e := validateCatalogName("Pool", name); e != nil {
		return e
	}
	f, e := parsePoolBody(body, true)
	if e != nil {
		return e
	}
	addrs, e := s.probePool(ctx, *f.uri, f.addrs)
	if e != nil {
		return e
	}
	cmd := &fsm.CreatePool{Name: name, URI: *f.uri, Addresses: addrs, Weight: *f.weight, Options: f.options}
	if f.flavor != nil {
		cmd.Flavor = *f.flavor
	}
	if cmd.Options == nil {
		cmd.Options = []byte("{}")
	}
	const what = "Pool could not be created."
	res, e := s.checkCatalog(ctx, what, func(v *store.View) (store.CatalogOutcome, string, error) {
		return v.CheckCreatePool(store.Pool{Name: name, Addresses: addrs})
	})
	if e == nil && res.Changed {
		res, _, e = s.propose(ctx, what, cmd)
	}
	if e != nil {
		return e
	}
	return poolRefusal(name, *f.uri, res)
}

// poolProbeTimeout bounds the check that a pool's uri names a group.
const poolProbeTimeout = 3 * time.Second

// probePool checks that a member of a Raft group answers at one of the
// uri's addresses (upstream's "cannot connect" check) and returns the
// addresses the pool is registered under: the uri's and those of every
// member of the group, so that the group cannot be registered again under
// another of its members' addresses.
func (s *Service) probePool(ctx context.Context, uri string, addrs []string) ([]string, *Error) {
	ctx, cancel := context.WithTimeout(ctx, poolProbeTimeout)
	defer cancel()
	id, err := s.node.ProbeGroup(ctx, addrs)
	if err != nil {
		s.log.Info("pool uri does not answer", "uri", uri, "err", err)
		return nil, badBody("cannot connect to %s", uri)
	}
	out := slices.Clone(addrs)
	for _, m := range id.Members {
		if a, ok := ParsePoolURI(PoolURIScheme + "://" + m.Address); ok && !slices.Contains(out, a[0]) {
			out = append(out, a[0])
		}
	}
	return out, nil
}

// poolRefusal maps a refused pool change to Zaqar's errors.
func poolRefusal(name, uri string, res fsm.Result) *Error {
	switch {
	case res.Status == fsm.StatusNotFound:
		return notFound("Pool %s does not exist.", name)
	case res.Status == fsm.StatusConflict && res.ID == "":
		return Errf(http.StatusConflict, TitleConflict, "Pool %s already exists.", name)
	case res.Status == fsm.StatusConflict:
		return Errf(http.StatusConflict, TitleConflict, "The uri %s names a member of pool %s, which is already registered.", uri, res.ID)
	case res.Status == fsm.StatusInUse:
		return Errf(http.StatusForbidden, TitleUnableToDelete, "This pool is used by flavors %s; It cannot be deleted.", res.ID)
	}
	return nil
}

// checkCatalog runs a catalog change's refusal check on the current
// catalog and returns it as the change's Result would be (Changed: the
// change would be made). A change it refuses is not proposed; one it
// admits is checked again by its apply, which a concurrent change may
// still make refuse it.
func (s *Service) checkCatalog(ctx context.Context, what string, check func(*store.View) (store.CatalogOutcome, string, error)) (fsm.Result, *Error) {
	v, e := s.catalogView(ctx, what)
	if e != nil {
		return fsm.Result{}, e
	}
	defer v.Close()
	o, arg, err := check(v)
	if err != nil {
		return fsm.Result{}, storeFailure(what, err)
	}
	return fsm.CatalogResult(o, arg), nil
}

// GetPool returns a pool (GET /v2/pools/{pool}); detailed adds options.
func (s *Service) GetPool(ctx context.Context, name string, detailed bool) (PoolDoc, *Error) {
	const what = "Pool could not be read."
	v, e := s.catalogView(ctx, what)
	if e != nil {
		return PoolDoc{}, e
	}
	defer v.Close()
	p, err := v.Pool(name)
	if err != nil {
		return PoolDoc{}, storeFailure(what, err)
	}
	if p == nil {
		return PoolDoc{}, notFound("Pool %s does not exist.", name)
	}
	return poolDoc(p, detailed), nil
}

// UpdatePool changes a pool (PATCH /v2/pools/{pool}) and returns it.
func (s *Service) UpdatePool(ctx context.Context, name string, body []byte) (PoolDoc, *Error) {
	f, e := parsePoolBody(body, false)
	if e != nil {
		return PoolDoc{}, e
	}
	if f.uri != nil {
		if f.addrs, e = s.probePool(ctx, *f.uri, f.addrs); e != nil {
			return PoolDoc{}, e
		}
	}
	cmd := &fsm.UpdatePool{Name: name, URI: f.uri, Addresses: f.addrs, Weight: f.weight, Flavor: f.flavor, Options: f.options}
	const what = "Pool could not be updated."
	res, e := s.checkCatalog(ctx, what, func(v *store.View) (store.CatalogOutcome, string, error) {
		return v.CheckUpdatePool(name, store.PoolChange{URI: f.uri, Addresses: f.addrs})
	})
	if e == nil && res.Changed {
		res, _, e = s.propose(ctx, what, cmd)
	}
	if e != nil {
		return PoolDoc{}, e
	}
	uri := ""
	if f.uri != nil {
		uri = *f.uri
	}
	if e := poolRefusal(name, uri, res); e != nil {
		return PoolDoc{}, e
	}
	return s.GetPool(ctx, name, false)
}

// DeletePool removes a pool's registration (DELETE /v2/pools/{pool}): 204
// whether or not it was registered, 403 while it belongs to a flavor.
func (s *Service) DeletePool(ctx context.Context, name string) *Error {
	const what = "Pool could not be deleted."
	res, e := s.checkCatalog(ctx, what, func(v *store.View) (store.CatalogOutcome, string, error) {
		return v.CheckDeletePool(name)
	})
	if e == nil && res.Changed {
		e = s.refuseHoldingPool(ctx, name, what)
	}
	if e == nil && res.Changed {
		res, _, e = s.propose(ctx, what, &fsm.DeletePool{Name: name})
	}
	if e != nil {
		return e
	}
	if res.Status == fsm.StatusNotFound {
		return nil
	}
	return poolRefusal(name, "", res)
}

// refuseHoldingPool answers 403 if the pool holds queues: its placements
// would be dropped with it and its queues become unreachable. Only the
// pool itself knows (its store), so a pool with placements is asked; one
// that cannot be asked is 503. The catalog pool's own group may always be
// deregistered: a queue without a placement lives there, so its queues
// stay where they are served.
func (s *Service) refuseHoldingPool(ctx context.Context, name, what string) *Error {
	v, e := s.catalogView(ctx, what)
	if e != nil {
		return e
	}
	p, err := v.Pool(name)
	var placed int
	if err == nil && p != nil {
		placed, err = v.PlacementCount(name, 1)
	}
	v.Close()
	if err != nil {
		return storeFailure(what, err)
	}
	if p == nil {
		return nil // the apply answers for a pool deleted meanwhile
	}
	set, e := s.poolSet(ctx)
	if e != nil {
		return e
	}
	if placed == 0 || name == set.self {
		return nil
	}
	var holds bool
	{
		body, _ := json.Marshal(catalogRequest{Op: "holds"})
		status, answer, e := s.CallPool(ctx, Route{Pool: name, Addrs: p.Addresses}, PoolRouteCatalog, body)
		if e != nil {
			return e
		}
		var ans catalogAnswer
		if status != http.StatusOK || json.Unmarshal(answer, &ans) != nil || ans.Error != nil {
			return Errf(http.StatusServiceUnavailable, TitleServiceUnavailable, "Pool %s could not say whether it holds queues. Please try again.", name)
		}
		holds = ans.Holds
	}
	if holds {
		return Errf(http.StatusForbidden, TitleUnableToDelete, "Pool %s still holds queues; It cannot be deleted.", name)
	}
	return nil
}

// PoolList is a page of pools.
type PoolList struct {
	Pools []PoolDoc
	Limit int
}

// ListPools lists pools by name after marker (GET /v2/pools).
func (s *Service) ListPools(ctx context.Context, marker string, limitParam *int, detailed bool) (PoolList, *Error) {
	limit, e := pageSize(limitParam, s.limits.MaxQueuesPerPage, "Limit must be at least 1 and may not be greater than %d.")
	if e != nil {
		return PoolList{}, e
	}
	const what = "Pools could not be listed."
	v, e := s.catalogView(ctx, what)
	if e != nil {
		return PoolList{}, e
	}
	defer v.Close()
	pools, err := v.ListPools(marker, limit)
	if err != nil {
		return PoolList{}, storeFailure(what, err)
	}
	out := PoolList{Pools: make([]PoolDoc, len(pools)), Limit: limit}
	for i, p := range pools {
		out.Pools[i] = poolDoc(p, detailed)
	}
	return out, nil
}

// flavorBody is a validated flavor PUT or PATCH body.
type flavorBody struct {
	pools        []string // nil: absent (PATCH only)
	capabilities []byte   // nil: absent
}

func parseFlavorBody(body []byte, create bool) (flavorBody, *Error) {
	var f flavorBody
	obj, e := parseObject(body, "Request body could not be parsed.")
	if e != nil {
		return f, e
	}
	for k := range obj {
		if k != "pool_list" && k != "capabilities" {
			return f, badBody("Additional properties are not allowed (%q was unexpected).", k)
		}
	}
	if raw, ok := obj["pool_list"]; ok {
		if err := json.Unmarshal(raw, &f.pools); err != nil || isNull(raw) {
			return f, badBody(`The value of the "pool_list" field must be a list of pool names.`)
		}
		if len(f.pools) == 0 {
			return f, Errf(http.StatusBadRequest, "Unable to create", "The pool_list may not be empty.")
		}
		f.pools = slices.Compact(slices.Sorted(slices.Values(f.pools)))
	}
	if raw, ok := obj["capabilities"]; ok {
		if _, e := parseObject(raw, `The value of the "capabilities" field must be an object.`); e != nil {
			return f, e
		}
		f.capabilities = []byte(raw)
	}
	if f.pools == nil && create {
		return f, badBody(`The "pool_list" field is required.`)
	}
	if f.pools == nil && f.capabilities == nil {
		return f, badBody("`pool_list` needs to be specified")
	}
	return f, nil
}

// PutFlavor creates or replaces a flavor of the caller's project (PUT
// /v2/flavors/{flavor}); its pools become the body's pool_list.
func (s *Service) PutFlavor(ctx context.Context, c Caller, name string, body []byte) *Error {
	if e := validateCatalogName("Flavor", name); e != nil {
		return e
	}
	f, e := parseFlavorBody(body, true)
	if e != nil {
		return e
	}
	return s.putFlavor(ctx, c, name, f, false)
}

func (s *Service) putFlavor(ctx context.Context, c Caller, name string, f flavorBody, mustExist bool) *Error {
	cmd := &fsm.PutFlavor{Project: c.Project, Name: name, Capabilities: f.capabilities, SetPools: f.pools != nil, Pools: f.pools, MustExist: mustExist}
	const what = "Flavor could not be saved."
	res, e := s.checkCatalog(ctx, what, func(v *store.View) (store.CatalogOutcome, string, error) {
		return v.CheckPutFlavor(c.Project, name, f.pools, mustExist)
	})
	if e == nil && res.Changed {
		res, _, e = s.propose(ctx, what, cmd)
	}
	if e != nil {
		return e
	}
	switch {
	case res.Status == fsm.StatusNotFound && res.ID == "":
		return notFound("Flavor %s does not exist.", name)
	case res.Status == fsm.StatusNotFound:
		return Errf(http.StatusBadRequest, "Unable to create", "Flavor %s could not be created, error:Pool %s does not exist.", name, res.ID)
	}
	return nil
}

// GetFlavor returns a flavor of the caller's project.
func (s *Service) GetFlavor(ctx context.Context, c Caller, name string) (FlavorDoc, *Error) {
	const what = "Flavor could not be read."
	v, e := s.catalogView(ctx, what)
	if e != nil {
		return FlavorDoc{}, e
	}
	defer v.Close()
	fl, err := v.Flavor(c.Project, name)
	if err != nil {
		return FlavorDoc{}, storeFailure(what, err)
	}
	if fl == nil {
		return FlavorDoc{}, notFound("Flavor %s does not exist.", name)
	}
	return flavorDoc(v, fl, true)
}

func flavorDoc(v *store.View, fl *store.Flavor, detailed bool) (FlavorDoc, *Error) {
	pools, err := v.PoolsOfFlavor(fl.Name)
	if err != nil {
		return FlavorDoc{}, storeFailure("Flavor could not be read.", err)
	}
	d := FlavorDoc{Name: fl.Name, PoolList: make([]string, len(pools))}
	for i, p := range pools {
		d.PoolList[i] = p.Name
	}
	if detailed {
		d.Capabilities = Capabilities
	}
	return d, nil
}

// UpdateFlavor changes a flavor's pools (PATCH /v2/flavors/{flavor}) and
// returns it.
func (s *Service) UpdateFlavor(ctx context.Context, c Caller, name string, body []byte) (FlavorDoc, *Error) {
	f, e := parseFlavorBody(body, false)
	if e != nil {
		return FlavorDoc{}, e
	}
	if e := s.putFlavor(ctx, c, name, f, true); e != nil {
		return FlavorDoc{}, e
	}
	return s.GetFlavor(ctx, c, name)
}

// DeleteFlavor removes a flavor of the caller's project and takes its
// pools out of it: 204 whether or not it existed.
func (s *Service) DeleteFlavor(ctx context.Context, c Caller, name string) *Error {
	const what = "Flavor could not be deleted."
	res, e := s.checkCatalog(ctx, what, func(v *store.View) (store.CatalogOutcome, string, error) {
		o, err := v.CheckDeleteFlavor(c.Project, name)
		return o, "", err
	})
	if e == nil && res.Changed {
		_, _, e = s.propose(ctx, what, &fsm.DeleteFlavor{Project: c.Project, Name: name})
	}
	return e
}

// FlavorList is a page of flavors.
type FlavorList struct {
	Flavors []FlavorDoc
	Limit   int
}

// ListFlavors lists the caller's project's flavors after marker.
func (s *Service) ListFlavors(ctx context.Context, c Caller, marker string, limitParam *int, detailed bool) (FlavorList, *Error) {
	limit, e := pageSize(limitParam, s.limits.MaxQueuesPerPage, "Limit must be at least 1 and may not be greater than %d.")
	if e != nil {
		return FlavorList{}, e
	}
	const what = "Flavors could not be listed."
	v, e := s.catalogView(ctx, what)
	if e != nil {
		return FlavorList{}, e
	}
	defer v.Close()
	flavors, err := v.ListFlavors(c.Project, marker, limit)
	if err != nil {
		return FlavorList{}, storeFailure(what, err)
	}
	out := FlavorList{Flavors: make([]FlavorDoc, len(flavors)), Limit: limit}
	for i, fl := range flavors {
		if out.Flavors[i], e = flavorDoc(v, fl, detailed); e != nil {
			return FlavorList{}, e
		}
	}
	return out, nil
}
