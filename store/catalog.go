package store

import (
	"fmt"
	"slices"

	"github.com/zaqar-raft/zaqar/internal/codec"
)

// The catalog (docs/pools.md): the pools of the deployment and the flavors
// that group them. It lives in the catalog pool's store beside that pool's
// queues, in key spaces of its own.

const (
	poolRecordV   byte = 1
	flavorRecordV byte = 1
)

// Pool is a registered pool: a Raft group of this service.
type Pool struct {
	Name string
	// URI names the group as the operator registered it.
	URI string
	// Addresses are the node addresses URI names, as the service parsed
	// them; no two pools share one.
	Addresses []string
	// Weight is the pool's share of new placements; 0 takes it out.
	Weight uint64
	// Flavor is the flavor the pool belongs to ("" for none).
	Flavor string
	// Options is a JSON object, stored as given.
	Options   []byte
	CreatedAt int64 // unix nanoseconds
}

// PoolChange holds the fields a pool update sets; nil fields keep their
// value.
type PoolChange struct {
	URI       *string
	Addresses []string // set with URI
	Weight    *uint64
	Flavor    *string
	Options   []byte // nil: unchanged
}

// Flavor is a project's flavor. Its pools are the pools whose Flavor field
// names it.
type Flavor struct {
	Project string
	Name    string
	// Capabilities is a JSON object, stored as given.
	Capabilities []byte
	CreatedAt    int64
}

// CatalogOutcome is the result of a catalog change that may be refused.
type CatalogOutcome byte

// Catalog outcomes. A refused change writes nothing.
const (
	CatalogDone         CatalogOutcome = iota
	CatalogNotFound                    // the pool or flavor does not exist
	CatalogExists                      // a pool of that name exists already
	CatalogAddressTaken                // another pool names one of the addresses
	CatalogInFlavor                    // the pool belongs to a flavor
)

func poolKey(name string) []byte { return appendString([]byte{spacePool}, name) }

func flavorPrefix(project string) []byte { return appendString([]byte{spaceFlavor}, project) }

func flavorKey(project, name string) []byte { return appendString(flavorPrefix(project), name) }

func encodePool(p *Pool) []byte {
	var e codec.Encoder
	e.Byte(poolRecordV)
	e.String(p.URI)
	e.Strings(p.Addresses)
	e.Uvarint(p.Weight)
	e.String(p.Flavor)
	e.Bytes(p.Options)
	e.Int64(p.CreatedAt)
	return e.Buf
}

func decodePool(name string, b []byte) (*Pool, error) {
	d := codec.NewDecoder(b)
	if v := d.Byte(); v != poolRecordV {
		return nil, fmt.Errorf("store: pool record version %d", v)
	}
	p := &Pool{Name: name}
	p.URI = d.String()
	p.Addresses = d.Strings()
	p.Weight = d.Uvarint()
	p.Flavor = d.String()
	p.Options = append([]byte(nil), d.Bytes()...)
	p.CreatedAt = d.Int64()
	if err := d.Done(); err != nil {
		return nil, fmt.Errorf("store: decode pool %q: %w", name, err)
	}
	return p, nil
}

func encodeFlavor(f *Flavor) []byte {
	var e codec.Encoder
	e.Byte(flavorRecordV)
	e.Bytes(f.Capabilities)
	e.Int64(f.CreatedAt)
	return e.Buf
}

func decodeFlavor(project, name string, b []byte) (*Flavor, error) {
	d := codec.NewDecoder(b)
	if v := d.Byte(); v != flavorRecordV {
		return nil, fmt.Errorf("store: flavor record version %d", v)
	}
	f := &Flavor{Project: project, Name: name}
	f.Capabilities = append([]byte(nil), d.Bytes()...)
	f.CreatedAt = d.Int64()
	if err := d.Done(); err != nil {
		return nil, fmt.Errorf("store: decode flavor %q: %w", name, err)
	}
	return f, nil
}

func (r reader) pool(name string) (*Pool, error) {
	v, ok, err := r.get(poolKey(name))
	if err != nil || !ok {
		return nil, err
	}
	return decodePool(name, v)
}

// pools returns up to limit pools whose names sort after marker, in name
// order (limit < 0: all).
func (r reader) pools(marker string, limit int) ([]*Pool, error) {
	var out []*Pool
	err := r.scanNames([]byte{spacePool}, marker, limit, func(name string, v []byte) (bool, error) {
		p, err := decodePool(name, v)
		if err == nil {
			out = append(out, p)
		}
		return true, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: list pools: %w", err)
	}
	return out, nil
}

// addressOwner returns the name of a pool other than self that names one
// of addrs, or "".
func (r reader) addressOwner(self string, addrs []string) (string, error) {
	all, err := r.pools("", -1)
	if err != nil {
		return "", err
	}
	for _, p := range all {
		if p.Name == self {
			continue
		}
		for _, a := range p.Addresses {
			if slices.Contains(addrs, a) {
				return p.Name, nil
			}
		}
	}
	return "", nil
}

// Pool returns the pool's record, or nil if it is not registered.
func (v *View) Pool(name string) (*Pool, error) { return v.r.pool(name) }

// ListPools returns up to limit pools whose names sort after marker, in
// name order.
func (v *View) ListPools(marker string, limit int) ([]*Pool, error) {
	return v.r.pools(marker, limit)
}

// PoolsOfFlavor returns the pools whose Flavor is flavor, in name order.
// The catalog holds few pools; this is one scan of them all.
func (v *View) PoolsOfFlavor(flavor string) ([]*Pool, error) {
	all, err := v.r.pools("", -1)
	if err != nil {
		return nil, err
	}
	var out []*Pool
	for _, p := range all {
		if p.Flavor == flavor {
			out = append(out, p)
		}
	}
	return out, nil
}

// Flavor returns the project's flavor, or nil if it does not exist.
func (v *View) Flavor(project, name string) (*Flavor, error) {
	b, ok, err := v.r.get(flavorKey(project, name))
	if err != nil || !ok {
		return nil, err
	}
	return decodeFlavor(project, name, b)
}

// ListFlavors returns up to limit flavors of the project whose names sort
// after marker, in name order.
func (v *View) ListFlavors(project, marker string, limit int) ([]*Flavor, error) {
	var out []*Flavor
	err := v.r.scanNames(flavorPrefix(project), marker, limit, func(name string, b []byte) (bool, error) {
		f, err := decodeFlavor(project, name, b)
		if err == nil {
			out = append(out, f)
		}
		return true, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: list flavors: %w", err)
	}
	return out, nil
}

// Each catalog change has one refusal check on a reader: the apply runs
// it inside its batch, and the service runs it on a view first, so that a
// change refused on the catalog it reads is not proposed at all.

func (r reader) createPoolRefusal(p *Pool) (CatalogOutcome, string, error) {
	old, err := r.pool(p.Name)
	if err != nil || old != nil {
		return CatalogExists, p.Name, err
	}
	other, err := r.addressOwner(p.Name, p.Addresses)
	if err != nil || other != "" {
		return CatalogAddressTaken, other, err
	}
	return CatalogDone, "", nil
}

func (r reader) updatePoolRefusal(name string, c *PoolChange) (*Pool, CatalogOutcome, string, error) {
	p, err := r.pool(name)
	if err != nil || p == nil {
		return nil, CatalogNotFound, "", err
	}
	if c.URI != nil {
		other, err := r.addressOwner(name, c.Addresses)
		if err != nil || other != "" {
			return nil, CatalogAddressTaken, other, err
		}
	}
	return p, CatalogDone, "", nil
}

func (r reader) deletePoolRefusal(name string) (CatalogOutcome, string, error) {
	p, err := r.pool(name)
	switch {
	case err != nil || p == nil:
		return CatalogNotFound, "", err
	case p.Flavor != "":
		return CatalogInFlavor, p.Flavor, nil
	}
	return CatalogDone, "", nil
}

func (r reader) putFlavorRefusal(project, name string, pools []string, mustExist bool) (CatalogOutcome, string, error) {
	if mustExist {
		if _, ok, err := r.get(flavorKey(project, name)); err != nil || !ok {
			return CatalogNotFound, "", err
		}
	}
	for _, p := range pools {
		if pool, err := r.pool(p); err != nil || pool == nil {
			return CatalogNotFound, p, err
		}
	}
	return CatalogDone, "", nil
}

func (r reader) deleteFlavorRefusal(project, name string) (CatalogOutcome, error) {
	if _, ok, err := r.get(flavorKey(project, name)); err != nil || !ok {
		return CatalogNotFound, err
	}
	return CatalogDone, nil
}

// CheckCreatePool says whether CreatePool would refuse p now.
func (v *View) CheckCreatePool(p Pool) (CatalogOutcome, string, error) {
	return v.r.createPoolRefusal(&p)
}

// CheckUpdatePool says whether UpdatePool would refuse c now.
func (v *View) CheckUpdatePool(name string, c PoolChange) (CatalogOutcome, string, error) {
	_, o, arg, err := v.r.updatePoolRefusal(name, &c)
	return o, arg, err
}

// CheckDeletePool says whether DeletePool would refuse now.
func (v *View) CheckDeletePool(name string) (CatalogOutcome, string, error) {
	return v.r.deletePoolRefusal(name)
}

// CheckPutFlavor says whether PutFlavor would refuse now.
func (v *View) CheckPutFlavor(project, name string, pools []string, mustExist bool) (CatalogOutcome, string, error) {
	return v.r.putFlavorRefusal(project, name, pools, mustExist)
}

// CheckDeleteFlavor says whether DeleteFlavor would find nothing now.
func (v *View) CheckDeleteFlavor(project, name string) (CatalogOutcome, error) {
	return v.r.deleteFlavorRefusal(project, name)
}

func mustRefusal(o CatalogOutcome, arg string, err error) (CatalogOutcome, string) {
	if err != nil {
		panic(fmt.Sprintf("store: read inside apply: %v", err))
	}
	return o, arg
}

// CreatePool registers p unless a pool of that name exists
// (CatalogExists) or another pool names one of its addresses
// (CatalogAddressTaken, with that pool's name).
func (t *Txn) CreatePool(p Pool, now int64) (CatalogOutcome, string) {
	if o, arg := mustRefusal(t.r.createPoolRefusal(&p)); o != CatalogDone {
		return o, arg
	}
	p.CreatedAt = now
	t.set(poolKey(p.Name), encodePool(&p))
	return CatalogDone, ""
}

// UpdatePool changes the fields c sets (CatalogNotFound if the pool is not
// registered; CatalogAddressTaken, with the other pool's name, if another
// pool names one of the new addresses).
func (t *Txn) UpdatePool(name string, c PoolChange) (CatalogOutcome, string) {
	p, o, arg, err := t.r.updatePoolRefusal(name, &c)
	if o, arg = mustRefusal(o, arg, err); o != CatalogDone {
		return o, arg
	}
	if c.URI != nil {
		p.URI, p.Addresses = *c.URI, c.Addresses
	}
	if c.Weight != nil {
		p.Weight = *c.Weight
	}
	if c.Flavor != nil {
		p.Flavor = *c.Flavor
	}
	if c.Options != nil {
		p.Options = c.Options
	}
	t.set(poolKey(name), encodePool(p))
	return CatalogDone, ""
}

// DeletePool removes a pool's registration and its placements. A pool
// that belongs to a flavor is kept (CatalogInFlavor, with the flavor's
// name); a pool that is not registered is CatalogNotFound. Whether the
// pool still holds queues is for the service to ask the pool before
// proposing: the catalog cannot see another group's store.
func (t *Txn) DeletePool(name string) (CatalogOutcome, string) {
	if o, arg := mustRefusal(t.r.deletePoolRefusal(name)); o != CatalogDone {
		return o, arg
	}
	t.del(poolKey(name))
	t.dropPlacements(name)
	return CatalogDone, ""
}

// PutFlavor creates or replaces the project's flavor. If pools is non-nil,
// the flavor's pools become exactly those: their Flavor is set to the
// flavor's name and cleared on every other pool that had it. A named pool
// that is not registered refuses the whole change (CatalogNotFound, with
// its name). mustExist refuses to create a flavor (CatalogNotFound, "").
// Capabilities nil keeps the stored ones.
func (t *Txn) PutFlavor(f Flavor, pools []string, mustExist bool, now int64) (CatalogOutcome, string) {
	if o, arg := mustRefusal(t.r.putFlavorRefusal(f.Project, f.Name, pools, mustExist)); o != CatalogDone {
		return o, arg
	}
	f.CreatedAt = now
	if old, exists := must2(t.r.get(flavorKey(f.Project, f.Name))); exists {
		prev, err := decodeFlavor(f.Project, f.Name, old)
		if err != nil {
			panic(fmt.Sprintf("store: %v", err))
		}
		f.CreatedAt = prev.CreatedAt
		if f.Capabilities == nil {
			f.Capabilities = prev.Capabilities
		}
	}
	t.set(flavorKey(f.Project, f.Name), encodeFlavor(&f))
	if pools != nil {
		t.setFlavorPools(f.Name, pools)
	}
	return CatalogDone, ""
}

// setFlavorPools makes pools exactly the pools of flavor.
func (t *Txn) setFlavorPools(flavor string, pools []string) {
	for _, p := range must(t.r.pools("", -1)) {
		in := slices.Contains(pools, p.Name)
		switch {
		case in && p.Flavor != flavor:
			p.Flavor = flavor
		case !in && p.Flavor == flavor:
			p.Flavor = ""
		default:
			continue
		}
		t.set(poolKey(p.Name), encodePool(p))
	}
}

// DeleteFlavor removes the project's flavor and takes its pools out of it.
// Deleting a flavor that does not exist changes nothing (CatalogNotFound).
func (t *Txn) DeleteFlavor(project, name string) CatalogOutcome {
	o, err := t.r.deleteFlavorRefusal(project, name)
	if o, _ = mustRefusal(o, "", err); o != CatalogDone {
		return o
	}
	t.del(flavorKey(project, name))
	t.setFlavorPools(name, nil)
	return CatalogDone
}
