// Package fsm defines the commands that change the service's state, their
// encoding in the Raft log, and the state machine that applies them to the
// store. A log entry is one timestamp plus one or more commands; each
// command is a type byte and a body, dispatched through a table. An unknown
// type or a body that does not decode stops the node: a replica that skips
// what the others applied would silently diverge.
package fsm

import (
	"errors"
	"fmt"

	"github.com/zaqar-raft/zaqar/internal/codec"
	"github.com/zaqar-raft/zaqar/store"
)

// Type identifies a command in the log. Values are never reused.
type Type byte

// Command types.
const (
	TypeCreateQueue         Type = 1
	TypeSetQueueMetadata    Type = 2
	TypeDeleteQueue         Type = 3
	TypePurgeQueue          Type = 4
	TypePostMessages        Type = 5
	TypeDeleteMessage       Type = 6
	TypeDeleteMessages      Type = 7
	TypePopMessages         Type = 8
	TypeCreateClaim         Type = 9
	TypeRenewClaim          Type = 10
	TypeReleaseClaim        Type = 11
	TypeCollectGarbage      Type = 12
	TypeSetSecret           Type = 13
	TypeSubscribe           Type = 14
	TypeUpdateSubscription  Type = 15
	TypeDeleteSubscription  Type = 16
	TypeConfirmSubscription Type = 17
	TypeAdvanceCursors      Type = 18
	// Gated: proposed only once every voter knows them (see UngatedMax).
	TypeSubscribeLong          Type = 19
	TypeUpdateSubscriptionLong Type = 20
	// ForgetTrusts is numbered below HoldTrust although it was added with
	// it: a trust is only ever forgotten after a HoldTrust committed, so
	// the log then holds a type at least as high, which the gate admits
	// without asking every voter (raftnode's holdsType).
	TypeForgetTrusts Type = 21
	TypeHoldTrust    Type = 22
	// BuildDepthIndex switches every replica to the store's depth index at
	// the same log index; builds before it keep scanning.
	TypeBuildDepthIndex Type = 23
	// The catalog (docs/pools.md).
	TypeCreatePool   Type = 24
	TypeUpdatePool   Type = 25
	TypeDeletePool   Type = 26
	TypePutFlavor    Type = 27
	TypeDeleteFlavor Type = 28
	TypePlaceQueue   Type = 29
)

// MaxType is the highest command type this build knows. Types are numbered
// in the order they were added, so a build knows every type up to its
// MaxType: that number is its command level.
const MaxType = TypePlaceQueue

// UngatedMax is the highest type that every build able to join a cluster
// knows (all types from before the version gate). A type above it is
// proposed only once every voter has reported a level that includes it
// (raftnode's command gate), so a rolling upgrade never hands a node an
// entry it cannot apply.
const UngatedMax Type = 18

// Command is one state change. Everything its application depends on is in
// its fields or in the entry's timestamp.
type Command interface {
	Type() Type
	encode(e *codec.Encoder)
	decode(d *codec.Decoder)
	apply(t *store.Txn, now int64) Result
}

// commandTable maps each type to a constructor of an empty command.
var commandTable = map[Type]func() Command{
	TypeCreateQueue:         func() Command { return &CreateQueue{} },
	TypeSetQueueMetadata:    func() Command { return &SetQueueMetadata{} },
	TypeDeleteQueue:         func() Command { return &DeleteQueue{} },
	TypePurgeQueue:          func() Command { return &PurgeQueue{} },
	TypePostMessages:        func() Command { return &PostMessages{} },
	TypeDeleteMessage:       func() Command { return &DeleteMessage{} },
	TypeDeleteMessages:      func() Command { return &DeleteMessages{} },
	TypePopMessages:         func() Command { return &PopMessages{} },
	TypeCreateClaim:         func() Command { return &CreateClaim{} },
	TypeRenewClaim:          func() Command { return &RenewClaim{} },
	TypeReleaseClaim:        func() Command { return &ReleaseClaim{} },
	TypeCollectGarbage:      func() Command { return &CollectGarbage{} },
	TypeSetSecret:           func() Command { return &SetSecret{} },
	TypeSubscribe:           func() Command { return &Subscribe{} },
	TypeUpdateSubscription:  func() Command { return &UpdateSubscription{} },
	TypeDeleteSubscription:  func() Command { return &DeleteSubscription{} },
	TypeConfirmSubscription: func() Command { return &ConfirmSubscription{} },
	TypeAdvanceCursors:      func() Command { return &AdvanceCursors{} },

	TypeSubscribeLong:          func() Command { return &SubscribeLong{} },
	TypeUpdateSubscriptionLong: func() Command { return &UpdateSubscriptionLong{} },
	TypeHoldTrust:              func() Command { return &HoldTrust{} },
	TypeForgetTrusts:           func() Command { return &ForgetTrusts{} },
	TypeBuildDepthIndex:        func() Command { return &BuildDepthIndex{} },

	TypeCreatePool:   func() Command { return &CreatePool{} },
	TypeUpdatePool:   func() Command { return &UpdatePool{} },
	TypeDeletePool:   func() Command { return &DeletePool{} },
	TypePutFlavor:    func() Command { return &PutFlavor{} },
	TypeDeleteFlavor: func() Command { return &DeleteFlavor{} },
	TypePlaceQueue:   func() Command { return &PlaceQueue{} },
}

// entryVersion is the first byte of every log entry this code writes.
const entryVersion byte = 1

// EntryHeaderLen is the size of the entry header: version and timestamp.
// The leader overwrites the timestamp (bytes 1..8) just before proposing.
const EntryHeaderLen = 9

// ErrUnknownCommand means an entry holds a command type this build does not
// know; the node must stop rather than skip it.
var ErrUnknownCommand = errors.New("fsm: unknown command type")

// EncodeEntry encodes commands as one log entry with timestamp now (unix
// nanoseconds).
func EncodeEntry(now int64, cmds ...Command) []byte {
	e := codec.Encoder{Buf: make([]byte, 0, 256)}
	e.Byte(entryVersion)
	e.Int64(now)
	e.Uvarint(uint64(len(cmds)))
	var body codec.Encoder
	for _, c := range cmds {
		body.Buf = body.Buf[:0]
		c.encode(&body)
		e.Byte(byte(c.Type()))
		e.Bytes(body.Buf)
	}
	return e.Buf
}

// StampEntry overwrites the timestamp of an encoded entry in place.
func StampEntry(entry []byte, now int64) error {
	if len(entry) < EntryHeaderLen || entry[0] != entryVersion {
		return fmt.Errorf("fsm: not an entry")
	}
	var e codec.Encoder
	e.Int64(now)
	copy(entry[1:EntryHeaderLen], e.Buf)
	return nil
}

// EntryMaxType returns the highest command type in an encoded entry,
// reading only the command headers.
func EntryMaxType(b []byte) (Type, error) {
	d := codec.NewDecoder(b)
	if v := d.Byte(); v != entryVersion {
		return 0, fmt.Errorf("fsm: entry version %d", v)
	}
	d.Int64()
	n := d.Count(2)
	var highest Type
	for i := 0; i < n && d.Err() == nil; i++ {
		highest = max(highest, Type(d.Byte()))
		d.Bytes()
	}
	if err := d.Done(); err != nil {
		return 0, fmt.Errorf("fsm: decode entry: %w", err)
	}
	return highest, nil
}

// DecodeEntry decodes a log entry into its timestamp and commands.
func DecodeEntry(b []byte) (now int64, cmds []Command, err error) {
	d := codec.NewDecoder(b)
	if v := d.Byte(); v != entryVersion {
		return 0, nil, fmt.Errorf("fsm: entry version %d", v)
	}
	now = d.Int64()
	n := d.Count(2)
	cmds = make([]Command, 0, n)
	for i := 0; i < n; i++ {
		typ := Type(d.Byte())
		body := d.Bytes()
		if d.Err() != nil {
			break
		}
		mk, ok := commandTable[typ]
		if !ok {
			return 0, nil, fmt.Errorf("%w %d", ErrUnknownCommand, typ)
		}
		c := mk()
		cd := codec.NewDecoder(body)
		c.decode(cd)
		if err := cd.Done(); err != nil {
			return 0, nil, fmt.Errorf("fsm: decode command type %d: %w", typ, err)
		}
		cmds = append(cmds, c)
	}
	if err := d.Done(); err != nil {
		return 0, nil, fmt.Errorf("fsm: decode entry: %w", err)
	}
	return now, cmds, nil
}

func encodeSettings(e *codec.Encoder, s store.QueueSettings) {
	e.Varint(s.DefaultTTL)
	e.Varint(s.DefaultDelay)
	e.Varint(s.MaxPostSize)
	e.Varint(s.MaxClaimCount)
	e.String(s.DeadLetter)
	e.Varint(s.DeadLetterTTL)
}

func decodeSettings(d *codec.Decoder) store.QueueSettings {
	return store.QueueSettings{
		DefaultTTL: d.Varint(), DefaultDelay: d.Varint(), MaxPostSize: d.Varint(),
		MaxClaimCount: d.Varint(), DeadLetter: d.String(), DeadLetterTTL: d.Varint(),
	}
}

// CreateQueue creates a queue unless it exists.
type CreateQueue struct {
	Project, Queue string
	Settings       store.QueueSettings
	Metadata       []byte
}

// Type implements Command.
func (*CreateQueue) Type() Type { return TypeCreateQueue }
func (c *CreateQueue) encode(e *codec.Encoder) {
	e.String(c.Project)
	e.String(c.Queue)
	encodeSettings(e, c.Settings)
	e.Bytes(c.Metadata)
}
func (c *CreateQueue) decode(d *codec.Decoder) {
	c.Project, c.Queue = d.String(), d.String()
	c.Settings = decodeSettings(d)
	c.Metadata = d.Bytes()
}
func (c *CreateQueue) apply(t *store.Txn, now int64) Result {
	if t.Misplaced(c.Project, c.Queue) {
		return Result{Status: StatusMisplaced}
	}
	return Result{Changed: t.CreateQueue(c.Project, c.Queue, now, c.Settings, c.Metadata)}
}

// SetQueueMetadata replaces a queue's metadata if it is still at
// ExpectVersion (the service computed the new metadata from that version).
type SetQueueMetadata struct {
	Project, Queue string
	ExpectVersion  uint64
	Settings       store.QueueSettings
	Metadata       []byte
}

// Type implements Command.
func (*SetQueueMetadata) Type() Type { return TypeSetQueueMetadata }
func (c *SetQueueMetadata) encode(e *codec.Encoder) {
	e.String(c.Project)
	e.String(c.Queue)
	e.Uvarint(c.ExpectVersion)
	encodeSettings(e, c.Settings)
	e.Bytes(c.Metadata)
}
func (c *SetQueueMetadata) decode(d *codec.Decoder) {
	c.Project, c.Queue = d.String(), d.String()
	c.ExpectVersion = d.Uvarint()
	c.Settings = decodeSettings(d)
	c.Metadata = d.Bytes()
}
func (c *SetQueueMetadata) apply(t *store.Txn, _ int64) Result {
	switch err := t.SetQueueMetadata(c.Project, c.Queue, c.ExpectVersion, c.Settings, c.Metadata); {
	case errors.Is(err, store.ErrNotFound):
		return Result{Status: StatusNotFound}
	case errors.Is(err, store.ErrConflict):
		return Result{Status: StatusConflict}
	}
	return Result{Changed: true}
}

// DeleteQueue deletes a queue and everything in it.
type DeleteQueue struct{ Project, Queue string }

// Type implements Command.
func (*DeleteQueue) Type() Type { return TypeDeleteQueue }
func (c *DeleteQueue) encode(e *codec.Encoder) {
	e.String(c.Project)
	e.String(c.Queue)
}
func (c *DeleteQueue) decode(d *codec.Decoder) { c.Project, c.Queue = d.String(), d.String() }
func (c *DeleteQueue) apply(t *store.Txn, _ int64) Result {
	t.DeleteQueue(c.Project, c.Queue)
	return Result{}
}

// PurgeQueue deletes a queue's messages and claims and/or subscriptions.
type PurgeQueue struct {
	Project, Queue          string
	Messages, Subscriptions bool
}

// Type implements Command.
func (*PurgeQueue) Type() Type { return TypePurgeQueue }
func (c *PurgeQueue) encode(e *codec.Encoder) {
	e.String(c.Project)
	e.String(c.Queue)
	e.Bool(c.Messages)
	e.Bool(c.Subscriptions)
}
func (c *PurgeQueue) decode(d *codec.Decoder) {
	c.Project, c.Queue = d.String(), d.String()
	c.Messages, c.Subscriptions = d.Bool(), d.Bool()
}
func (c *PurgeQueue) apply(t *store.Txn, _ int64) Result {
	t.PurgeQueue(c.Project, c.Queue, c.Messages, c.Subscriptions)
	return Result{}
}

// PostMessages appends messages to a queue, creating it if needed.
type PostMessages struct {
	Project, Queue string
	ClientID       string
	DefaultTTL     int64 // the cluster default, used when neither message nor queue sets one
	Messages       []store.NewMessage
	// BodySize is the size of the request that posted the messages; a
	// queue whose _max_messages_post_size is smaller refuses them. Checking
	// it here rather than before proposing makes the check exact whatever
	// node the request came through.
	BodySize int64
}

// Type implements Command.
func (*PostMessages) Type() Type { return TypePostMessages }
func (c *PostMessages) encode(e *codec.Encoder) {
	e.String(c.Project)
	e.String(c.Queue)
	e.String(c.ClientID)
	e.Varint(c.DefaultTTL)
	e.Uvarint(uint64(len(c.Messages)))
	for _, m := range c.Messages {
		e.String(m.ID)
		e.Varint(m.TTL)
		e.Varint(m.Delay)
		e.String(m.Checksum)
		e.Bytes(m.Body)
	}
	e.Varint(c.BodySize)
}
func (c *PostMessages) decode(d *codec.Decoder) {
	c.Project, c.Queue, c.ClientID = d.String(), d.String(), d.String()
	c.DefaultTTL = d.Varint()
	n := d.Count(5)
	c.Messages = make([]store.NewMessage, n)
	for i := range c.Messages {
		m := &c.Messages[i]
		m.ID = d.String()
		m.TTL = d.Varint()
		m.Delay = d.Varint()
		m.Checksum = d.String()
		m.Body = d.Bytes()
	}
	c.BodySize = d.Varint()
}
func (c *PostMessages) apply(t *store.Txn, now int64) Result {
	if t.Misplaced(c.Project, c.Queue) {
		return Result{Status: StatusMisplaced}
	}
	if s, ok := t.QueueSettings(c.Project, c.Queue); ok && s.MaxPostSize > 0 && c.BodySize > s.MaxPostSize {
		return Result{Status: StatusTooLarge, Count: int(s.MaxPostSize)}
	}
	return Result{Count: t.PostMessages(c.Project, c.Queue, c.ClientID, now, c.DefaultTTL, c.Messages)}
}

// DeleteMessage deletes one message under the claim rules.
type DeleteMessage struct {
	Project, Queue string
	ID, ClaimID    string
}

// Type implements Command.
func (*DeleteMessage) Type() Type { return TypeDeleteMessage }
func (c *DeleteMessage) encode(e *codec.Encoder) {
	e.String(c.Project)
	e.String(c.Queue)
	e.String(c.ID)
	e.String(c.ClaimID)
}
func (c *DeleteMessage) decode(d *codec.Decoder) {
	c.Project, c.Queue, c.ID, c.ClaimID = d.String(), d.String(), d.String(), d.String()
}
func (c *DeleteMessage) apply(t *store.Txn, now int64) Result {
	return outcomeResult(t.DeleteMessage(c.Project, c.Queue, c.ID, c.ClaimID, validClaimID(c.ClaimID), now))
}

// DeleteMessages deletes listed messages, optionally requiring their claims.
type DeleteMessages struct {
	Project, Queue string
	IDs, ClaimIDs  []string
	RequireClaims  bool
}

// Type implements Command.
func (*DeleteMessages) Type() Type { return TypeDeleteMessages }
func (c *DeleteMessages) encode(e *codec.Encoder) {
	e.String(c.Project)
	e.String(c.Queue)
	e.Strings(c.IDs)
	e.Strings(c.ClaimIDs)
	e.Bool(c.RequireClaims)
}
func (c *DeleteMessages) decode(d *codec.Decoder) {
	c.Project, c.Queue = d.String(), d.String()
	c.IDs, c.ClaimIDs = d.Strings(), d.Strings()
	c.RequireClaims = d.Bool()
}
func (c *DeleteMessages) apply(t *store.Txn, now int64) Result {
	return outcomeResult(t.DeleteMessages(c.Project, c.Queue, c.IDs, c.ClaimIDs, c.RequireClaims, now))
}

// MaxTakeLimit is the largest number of messages one claim or pop command
// takes: its Limit is decoded into 16 bits, so a larger configured limit
// would wrap (service.Limits.Check refuses one at start-up).
const MaxTakeLimit = 1<<16 - 1

// maxGCLimit bounds a CollectGarbage command's Limit (24 bits).
const maxGCLimit = 1<<24 - 1

// PopMessages removes and returns up to Limit claimable messages.
type PopMessages struct {
	Project, Queue string
	Limit          int
}

// Type implements Command.
func (*PopMessages) Type() Type { return TypePopMessages }
func (c *PopMessages) encode(e *codec.Encoder) {
	e.String(c.Project)
	e.String(c.Queue)
	e.Uvarint(uint64(c.Limit))
}
func (c *PopMessages) decode(d *codec.Decoder) {
	c.Project, c.Queue = d.String(), d.String()
	c.Limit = int(d.Uvarint() & MaxTakeLimit)
}
func (c *PopMessages) apply(t *store.Txn, now int64) Result {
	return Result{Messages: t.PopMessages(c.Project, c.Queue, c.Limit, now)}
}

// CreateClaim claims up to Limit messages under a new claim id.
type CreateClaim struct {
	Project, Queue string
	ClaimID        string
	TTL, Grace     int64
	Limit          int
}

// Type implements Command.
func (*CreateClaim) Type() Type { return TypeCreateClaim }
func (c *CreateClaim) encode(e *codec.Encoder) {
	e.String(c.Project)
	e.String(c.Queue)
	e.String(c.ClaimID)
	e.Varint(c.TTL)
	e.Varint(c.Grace)
	e.Uvarint(uint64(c.Limit))
}
func (c *CreateClaim) decode(d *codec.Decoder) {
	c.Project, c.Queue, c.ClaimID = d.String(), d.String(), d.String()
	c.TTL, c.Grace = d.Varint(), d.Varint()
	c.Limit = int(d.Uvarint() & MaxTakeLimit)
}
func (c *CreateClaim) apply(t *store.Txn, now int64) Result {
	return Result{Messages: t.CreateClaim(c.Project, c.Queue, c.ClaimID, c.TTL, c.Grace, c.Limit, now)}
}

// RenewClaim restarts an active claim.
type RenewClaim struct {
	Project, Queue string
	ClaimID        string
	TTL, Grace     int64
}

// Type implements Command.
func (*RenewClaim) Type() Type { return TypeRenewClaim }
func (c *RenewClaim) encode(e *codec.Encoder) {
	e.String(c.Project)
	e.String(c.Queue)
	e.String(c.ClaimID)
	e.Varint(c.TTL)
	e.Varint(c.Grace)
}
func (c *RenewClaim) decode(d *codec.Decoder) {
	c.Project, c.Queue, c.ClaimID = d.String(), d.String(), d.String()
	c.TTL, c.Grace = d.Varint(), d.Varint()
}
func (c *RenewClaim) apply(t *store.Txn, now int64) Result {
	if !t.RenewClaim(c.Project, c.Queue, c.ClaimID, c.TTL, c.Grace, now) {
		return Result{Status: StatusNotFound}
	}
	return Result{Changed: true}
}

// ReleaseClaim ends a claim.
type ReleaseClaim struct {
	Project, Queue string
	ClaimID        string
}

// Type implements Command.
func (*ReleaseClaim) Type() Type { return TypeReleaseClaim }
func (c *ReleaseClaim) encode(e *codec.Encoder) {
	e.String(c.Project)
	e.String(c.Queue)
	e.String(c.ClaimID)
}
func (c *ReleaseClaim) decode(d *codec.Decoder) {
	c.Project, c.Queue, c.ClaimID = d.String(), d.String(), d.String()
}
func (c *ReleaseClaim) apply(t *store.Txn, now int64) Result {
	t.ReleaseClaim(c.Project, c.Queue, c.ClaimID, now)
	return Result{}
}

// CollectGarbage removes up to Limit expired messages and claims.
type CollectGarbage struct{ Limit int }

// Type implements Command.
func (*CollectGarbage) Type() Type                { return TypeCollectGarbage }
func (c *CollectGarbage) encode(e *codec.Encoder) { e.Uvarint(uint64(c.Limit)) }
func (c *CollectGarbage) decode(d *codec.Decoder) { c.Limit = int(d.Uvarint() & maxGCLimit) }
func (c *CollectGarbage) apply(t *store.Txn, now int64) Result {
	return Result{Count: t.CollectGarbage(now, c.Limit)}
}

// SetSecret stores the cluster's signing secret unless one exists.
type SetSecret struct{ Secret []byte }

// Type implements Command.
func (*SetSecret) Type() Type                { return TypeSetSecret }
func (c *SetSecret) encode(e *codec.Encoder) { e.Bytes(c.Secret) }
func (c *SetSecret) decode(d *codec.Decoder) { c.Secret = d.Bytes() }
func (c *SetSecret) apply(t *store.Txn, _ int64) Result {
	return Result{Changed: t.SetSecretIfAbsent(c.Secret)}
}

// Subscribe subscribes a subscriber to a queue (contract §9.2).
type Subscribe struct {
	Project, Queue string
	ID             string // the new subscription's id, chosen by the proposer
	Subscriber     string
	TTL            int64
	Options        []byte
	// Confirmed creates the subscription already confirmed (websocket
	// connections subscribe themselves; there is nobody to confirm).
	Confirmed bool
}

// Type implements Command.
func (*Subscribe) Type() Type { return TypeSubscribe }
func (c *Subscribe) encode(e *codec.Encoder) {
	e.String(c.Project)
	e.String(c.Queue)
	e.String(c.ID)
	e.String(c.Subscriber)
	e.Varint(c.TTL)
	e.Bytes(c.Options)
	e.Bool(c.Confirmed)
}
func (c *Subscribe) decode(d *codec.Decoder) {
	c.Project, c.Queue, c.ID, c.Subscriber = d.String(), d.String(), d.String(), d.String()
	c.TTL = d.Varint()
	c.Options = d.Bytes()
	c.Confirmed = d.Bool()
}
func (c *Subscribe) apply(t *store.Txn, now int64) Result {
	if t.Misplaced(c.Project, c.Queue) {
		return Result{Status: StatusMisplaced}
	}
	out, id := t.CreateSubscription(c.Project, c.Queue, store.Subscription{
		ID: c.ID, Subscriber: c.Subscriber, TTL: c.TTL, Options: c.Options, Confirmed: c.Confirmed,
	}, now)
	switch out {
	case store.AlreadyConfirmed:
		return Result{Status: StatusConflict, ID: id}
	case store.AlreadyUnconfirmed:
		return Result{ID: id}
	}
	return Result{Changed: true, ID: id}
}

// MaxShortTTL is the longest TTL, in seconds (100 years), that the
// commands of the ungated types carry: Subscribe and UpdateSubscription,
// and — by the limits the service refuses to start beyond — every message
// TTL and delay and every claim TTL and grace. Builds from before expiries
// saturated (store.Deadline) compute now + ttl*1e9 with wrap-around; for
// any now before 2062, now plus twice this (a claim's TTL plus its grace)
// stays below 2262, so those builds and later ones store the same
// deadlines for such commands.
const MaxShortTTL int64 = 100 * 365 * 24 * 3600

// SubscribeLong is Subscribe for a TTL above MaxShortTTL (OpenStack Heat
// subscribes for about 6983 years); the store saturates its expiry at
// store.Never. Body and effect are Subscribe's. It has a type of its own
// so that the command gate proposes it only once every voter runs a build
// that saturates: an older one would wrap the expiry into the past and
// diverge from the others.
type SubscribeLong struct{ Subscribe }

// Type implements Command.
func (*SubscribeLong) Type() Type { return TypeSubscribeLong }

// UpdateSubscription patches a subscription (contract §9.5).
type UpdateSubscription struct {
	Project, Queue, ID string
	Subscriber         *string
	TTL                *int64
	Options            []byte // nil keeps the options
}

// Type implements Command.
func (*UpdateSubscription) Type() Type { return TypeUpdateSubscription }
func (c *UpdateSubscription) encode(e *codec.Encoder) {
	e.String(c.Project)
	e.String(c.Queue)
	e.String(c.ID)
	e.Bool(c.Subscriber != nil)
	if c.Subscriber != nil {
		e.String(*c.Subscriber)
	}
	e.Bool(c.TTL != nil)
	if c.TTL != nil {
		e.Varint(*c.TTL)
	}
	e.Bool(c.Options != nil)
	if c.Options != nil {
		e.Bytes(c.Options)
	}
}
func (c *UpdateSubscription) decode(d *codec.Decoder) {
	c.Project, c.Queue, c.ID = d.String(), d.String(), d.String()
	if d.Bool() {
		s := d.String()
		c.Subscriber = &s
	}
	if d.Bool() {
		n := d.Varint()
		c.TTL = &n
	}
	if d.Bool() {
		c.Options = append([]byte{}, d.Bytes()...)
	}
}
func (c *UpdateSubscription) apply(t *store.Txn, now int64) Result {
	err := t.UpdateSubscription(c.Project, c.Queue, c.ID, store.SubscriptionUpdate{
		Subscriber: c.Subscriber, TTL: c.TTL, Options: c.Options,
	}, now)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return Result{Status: StatusNotFound}
	case errors.Is(err, store.ErrConflict):
		return Result{Status: StatusConflict}
	}
	return Result{Changed: true}
}

// UpdateSubscriptionLong is UpdateSubscription setting a TTL above
// MaxShortTTL, gated as SubscribeLong is.
type UpdateSubscriptionLong struct{ UpdateSubscription }

// Type implements Command.
func (*UpdateSubscriptionLong) Type() Type { return TypeUpdateSubscriptionLong }

// DeleteSubscription removes a subscription.
type DeleteSubscription struct{ Project, Queue, ID string }

// Type implements Command.
func (*DeleteSubscription) Type() Type { return TypeDeleteSubscription }
func (c *DeleteSubscription) encode(e *codec.Encoder) {
	e.String(c.Project)
	e.String(c.Queue)
	e.String(c.ID)
}
func (c *DeleteSubscription) decode(d *codec.Decoder) {
	c.Project, c.Queue, c.ID = d.String(), d.String(), d.String()
}
func (c *DeleteSubscription) apply(t *store.Txn, _ int64) Result {
	t.DeleteSubscription(c.Project, c.Queue, c.ID)
	return Result{}
}

// ConfirmSubscription sets a subscription's confirmed flag (contract §9.7).
type ConfirmSubscription struct {
	Project, Queue, ID string
	Confirmed          bool
}

// Type implements Command.
func (*ConfirmSubscription) Type() Type { return TypeConfirmSubscription }
func (c *ConfirmSubscription) encode(e *codec.Encoder) {
	e.String(c.Project)
	e.String(c.Queue)
	e.String(c.ID)
	e.Bool(c.Confirmed)
}
func (c *ConfirmSubscription) decode(d *codec.Decoder) {
	c.Project, c.Queue, c.ID = d.String(), d.String(), d.String()
	c.Confirmed = d.Bool()
}
func (c *ConfirmSubscription) apply(t *store.Txn, now int64) Result {
	if err := t.ConfirmSubscription(c.Project, c.Queue, c.ID, c.Confirmed, now); err != nil {
		return Result{Status: StatusNotFound}
	}
	return Result{Changed: true}
}

// AdvanceCursors records notification delivery progress; the leader's
// notifier proposes it so a new leader resumes where the old one stopped.
type AdvanceCursors struct{ Advances []store.CursorAdvance }

// Type implements Command.
func (*AdvanceCursors) Type() Type { return TypeAdvanceCursors }
func (c *AdvanceCursors) encode(e *codec.Encoder) {
	e.Uvarint(uint64(len(c.Advances)))
	for _, a := range c.Advances {
		e.String(a.Project)
		e.String(a.Queue)
		e.String(a.ID)
		e.Uvarint(a.Seq)
	}
}
func (c *AdvanceCursors) decode(d *codec.Decoder) {
	n := d.Count(4)
	c.Advances = make([]store.CursorAdvance, n)
	for i := range c.Advances {
		c.Advances[i] = store.CursorAdvance{Project: d.String(), Queue: d.String(), ID: d.String(), Seq: d.Uvarint()}
	}
}
func (c *AdvanceCursors) apply(t *store.Txn, _ int64) Result {
	t.AdvanceCursors(c.Advances)
	return Result{}
}

// HoldTrust gives a subscription the Keystone trust the service created for
// its trust+http(s) subscriber, or retires the trust if the subscription
// is not (or no longer) the one it was made for (store.Txn.HoldTrust). The
// service proposes it in the entry of the Subscribe or UpdateSubscription
// the trust was made for, after it; being gated, it also keeps trust
// subscriptions away from builds that would not retire their trusts.
type HoldTrust struct {
	Project, Queue, ID string
	// Subscriber is the URI the trust was made for sending to.
	Subscriber string
	TrustID    string
}

// Type implements Command.
func (*HoldTrust) Type() Type { return TypeHoldTrust }
func (c *HoldTrust) encode(e *codec.Encoder) {
	e.String(c.Project)
	e.String(c.Queue)
	e.String(c.ID)
	e.String(c.Subscriber)
	e.String(c.TrustID)
}
func (c *HoldTrust) decode(d *codec.Decoder) {
	c.Project, c.Queue, c.ID, c.Subscriber, c.TrustID = d.String(), d.String(), d.String(), d.String(), d.String()
}
func (c *HoldTrust) apply(t *store.Txn, now int64) Result {
	return Result{Changed: t.HoldTrust(c.Project, c.Queue, c.ID, c.Subscriber, c.TrustID, now)}
}

// ForgetTrusts removes retired trusts the leader has deleted in Keystone
// (or found gone).
type ForgetTrusts struct{ TrustIDs []string }

// Type implements Command.
func (*ForgetTrusts) Type() Type                { return TypeForgetTrusts }
func (c *ForgetTrusts) encode(e *codec.Encoder) { e.Strings(c.TrustIDs) }
func (c *ForgetTrusts) decode(d *codec.Decoder) { c.TrustIDs = d.Strings() }
func (c *ForgetTrusts) apply(t *store.Txn, _ int64) Result {
	t.ForgetTrusts(c.TrustIDs)
	return Result{}
}

// BuildDepthIndex builds the store's depth index from the messages it
// holds, with every queue promoted to the entry's time; from this entry on
// every replica keeps the index and claims, stats and listings use it
// (store/DESIGN.md, "Depth"). The leader proposes it once, when the gate
// admits it; a second one changes nothing.
type BuildDepthIndex struct {
	// Format is the index format to build: store.DepthIndexFormat. A
	// later format would come with its own command type.
	Format byte
}

// Type implements Command.
func (*BuildDepthIndex) Type() Type                { return TypeBuildDepthIndex }
func (c *BuildDepthIndex) encode(e *codec.Encoder) { e.Byte(c.Format) }
func (c *BuildDepthIndex) decode(d *codec.Decoder) { c.Format = d.Byte() }
func (c *BuildDepthIndex) apply(t *store.Txn, now int64) Result {
	return Result{Changed: t.BuildDepthIndex(now)}
}
