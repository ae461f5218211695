package fsm

import (
	"github.com/zaqar-raft/zaqar/internal/codec"
	"github.com/zaqar-raft/zaqar/store"
)

// The catalog's commands (docs/pools.md): pools and flavors. They are
// proposed to the catalog pool's group only, and are gated like every type
// above UngatedMax.

// CatalogResult is the Result of a catalog change with outcome o; arg names
// what the outcome is about (the other pool, the missing pool, the
// flavor). The service uses it for the same check made before proposing.
func CatalogResult(o store.CatalogOutcome, arg string) Result {
	switch o {
	case store.CatalogNotFound:
		return Result{Status: StatusNotFound, ID: arg}
	case store.CatalogExists:
		return Result{Status: StatusConflict}
	case store.CatalogAddressTaken:
		return Result{Status: StatusConflict, ID: arg}
	case store.CatalogInFlavor:
		return Result{Status: StatusInUse, ID: arg}
	}
	return Result{Changed: true}
}

// CreatePool registers a pool. Result: StatusConflict with an empty ID if
// the name is taken, with the other pool's name if one of the addresses
// is.
type CreatePool struct {
	Name, URI string
	Addresses []string
	Weight    uint64
	Flavor    string
	Options   []byte
}

// Type implements Command.
func (*CreatePool) Type() Type { return TypeCreatePool }
func (c *CreatePool) encode(e *codec.Encoder) {
	e.String(c.Name)
	e.String(c.URI)
	e.Strings(c.Addresses)
	e.Uvarint(c.Weight)
	e.String(c.Flavor)
	e.Bytes(c.Options)
}
func (c *CreatePool) decode(d *codec.Decoder) {
	c.Name, c.URI = d.String(), d.String()
	c.Addresses = d.Strings()
	c.Weight = d.Uvarint()
	c.Flavor = d.String()
	c.Options = append([]byte{}, d.Bytes()...)
}
func (c *CreatePool) apply(t *store.Txn, now int64) Result {
	return CatalogResult(t.CreatePool(store.Pool{
		Name: c.Name, URI: c.URI, Addresses: c.Addresses, Weight: c.Weight, Flavor: c.Flavor, Options: c.Options,
	}, now))
}

// UpdatePool changes the fields it sets of a pool. Result: StatusNotFound,
// or StatusConflict with the name of the pool that holds one of the new
// addresses.
type UpdatePool struct {
	Name      string
	URI       *string
	Addresses []string // with URI
	Weight    *uint64
	Flavor    *string
	Options   []byte // nil keeps the options
}

// Type implements Command.
func (*UpdatePool) Type() Type { return TypeUpdatePool }
func (c *UpdatePool) encode(e *codec.Encoder) {
	e.String(c.Name)
	e.Bool(c.URI != nil)
	if c.URI != nil {
		e.String(*c.URI)
		e.Strings(c.Addresses)
	}
	e.Bool(c.Weight != nil)
	if c.Weight != nil {
		e.Uvarint(*c.Weight)
	}
	e.Bool(c.Flavor != nil)
	if c.Flavor != nil {
		e.String(*c.Flavor)
	}
	e.Bool(c.Options != nil)
	if c.Options != nil {
		e.Bytes(c.Options)
	}
}
func (c *UpdatePool) decode(d *codec.Decoder) {
	c.Name = d.String()
	if d.Bool() {
		uri := d.String()
		c.URI = &uri
		c.Addresses = d.Strings()
	}
	if d.Bool() {
		w := d.Uvarint()
		c.Weight = &w
	}
	if d.Bool() {
		f := d.String()
		c.Flavor = &f
	}
	if d.Bool() {
		c.Options = append([]byte{}, d.Bytes()...)
	}
}
func (c *UpdatePool) apply(t *store.Txn, _ int64) Result {
	return CatalogResult(t.UpdatePool(c.Name, store.PoolChange{
		URI: c.URI, Addresses: c.Addresses, Weight: c.Weight, Flavor: c.Flavor, Options: c.Options,
	}))
}

// DeletePool removes a pool's registration. Result: StatusNotFound, or
// StatusInUse with the name of the flavor the pool belongs to.
type DeletePool struct{ Name string }

// Type implements Command.
func (*DeletePool) Type() Type                { return TypeDeletePool }
func (c *DeletePool) encode(e *codec.Encoder) { e.String(c.Name) }
func (c *DeletePool) decode(d *codec.Decoder) { c.Name = d.String() }
func (c *DeletePool) apply(t *store.Txn, _ int64) Result {
	return CatalogResult(t.DeletePool(c.Name))
}

// PutFlavor creates or replaces a project's flavor (only replaces with
// MustExist). With SetPools, the flavor's pools become exactly Pools.
// Capabilities nil keeps the stored ones. Result: StatusNotFound with the
// name of a pool that is not registered, or with an empty ID if MustExist
// and the flavor does not exist.
type PutFlavor struct {
	Project, Name string
	Capabilities  []byte
	SetPools      bool
	Pools         []string
	MustExist     bool
}

// Type implements Command.
func (*PutFlavor) Type() Type { return TypePutFlavor }
func (c *PutFlavor) encode(e *codec.Encoder) {
	e.String(c.Project)
	e.String(c.Name)
	e.Bool(c.Capabilities != nil)
	if c.Capabilities != nil {
		e.Bytes(c.Capabilities)
	}
	e.Bool(c.SetPools)
	e.Strings(c.Pools)
	e.Bool(c.MustExist)
}
func (c *PutFlavor) decode(d *codec.Decoder) {
	c.Project, c.Name = d.String(), d.String()
	if d.Bool() {
		c.Capabilities = append([]byte{}, d.Bytes()...)
	}
	c.SetPools = d.Bool()
	c.Pools = d.Strings()
	c.MustExist = d.Bool()
}
func (c *PutFlavor) apply(t *store.Txn, now int64) Result {
	var pools []string
	if c.SetPools {
		pools = append([]string{}, c.Pools...)
	}
	return CatalogResult(t.PutFlavor(store.Flavor{Project: c.Project, Name: c.Name, Capabilities: c.Capabilities}, pools, c.MustExist, now))
}

// DeleteFlavor removes a project's flavor and takes its pools out of it.
// Result: StatusNotFound if it did not exist (nothing changed).
type DeleteFlavor struct{ Project, Name string }

// Type implements Command.
func (*DeleteFlavor) Type() Type { return TypeDeleteFlavor }
func (c *DeleteFlavor) encode(e *codec.Encoder) {
	e.String(c.Project)
	e.String(c.Name)
}
func (c *DeleteFlavor) decode(d *codec.Decoder) { c.Project, c.Name = d.String(), d.String() }
func (c *DeleteFlavor) apply(t *store.Txn, _ int64) Result {
	return CatalogResult(t.DeleteFlavor(c.Project, c.Name), "")
}

// PlaceQueue places a queue (or topic: Project is its scope) on Pool
// unless the catalog has a placement for it already; a queue the catalog
// pool's store holds already is placed on CatalogPool. Result: ID is the
// pool the queue is placed on after the apply.
type PlaceQueue struct {
	Project, Queue    string
	Pool, CatalogPool string
}

// Type implements Command.
func (*PlaceQueue) Type() Type { return TypePlaceQueue }
func (c *PlaceQueue) encode(e *codec.Encoder) {
	e.String(c.Project)
	e.String(c.Queue)
	e.String(c.Pool)
	e.String(c.CatalogPool)
}
func (c *PlaceQueue) decode(d *codec.Decoder) {
	c.Project, c.Queue, c.Pool, c.CatalogPool = d.String(), d.String(), d.String(), d.String()
}
func (c *PlaceQueue) apply(t *store.Txn, _ int64) Result {
	return Result{ID: t.PlaceQueue(c.Project, c.Queue, c.Pool, c.CatalogPool), Changed: true}
}
