package store

import (
	"encoding/binary"
	"fmt"

	"github.com/zaqar-raft/zaqar/internal/codec"
)

// Record format versions. A record whose first byte is not the version this
// code writes is corrupt or from a future release; both are fatal in apply.
const (
	queueRecordV   byte = 1
	messageRecordV byte = 1
	claimRecordV   byte = 1
)

// QueueSettings are the reserved metadata values that change how the store
// treats a queue. The service derives them from validated metadata; the
// store never parses metadata JSON.
type QueueSettings struct {
	DefaultTTL    int64  // seconds; 0 means "use the cluster default"
	DefaultDelay  int64  // seconds; non-zero makes the queue a delayed queue
	MaxPostSize   int64  // bytes; 0 means "use the cluster limit"
	MaxClaimCount int64  // claims a message may take before it moves to DeadLetter
	DeadLetter    string // dead-letter queue name; "" means none
	DeadLetterTTL int64  // seconds; TTL given to moved messages, 0 keeps theirs
}

// DeadLetterEnabled reports whether claims move worn-out messages away.
func (s QueueSettings) DeadLetterEnabled() bool {
	return s.DeadLetter != "" && s.MaxClaimCount > 0
}

// Queue is a queue's stored record.
type Queue struct {
	Name      string
	CreatedAt int64 // unix nanoseconds
	// MetaVersion is the Raft index of the command that last wrote Metadata;
	// metadata updates compare it to detect a concurrent change.
	MetaVersion uint64
	Settings    QueueSettings
	Metadata    []byte // compact JSON object
}

func encodeQueue(q *Queue) []byte {
	var e codec.Encoder
	e.Byte(queueRecordV)
	e.Int64(q.CreatedAt)
	e.Uvarint(q.MetaVersion)
	e.Varint(q.Settings.DefaultTTL)
	e.Varint(q.Settings.DefaultDelay)
	e.Varint(q.Settings.MaxPostSize)
	e.Varint(q.Settings.MaxClaimCount)
	e.String(q.Settings.DeadLetter)
	e.Varint(q.Settings.DeadLetterTTL)
	e.Bytes(q.Metadata)
	return e.Buf
}

func decodeQueue(name string, b []byte) (*Queue, error) {
	d := codec.NewDecoder(b)
	if v := d.Byte(); v != queueRecordV {
		return nil, fmt.Errorf("store: queue record version %d", v)
	}
	q := &Queue{Name: name}
	q.CreatedAt = d.Int64()
	q.MetaVersion = d.Uvarint()
	q.Settings.DefaultTTL = d.Varint()
	q.Settings.DefaultDelay = d.Varint()
	q.Settings.MaxPostSize = d.Varint()
	q.Settings.MaxClaimCount = d.Varint()
	q.Settings.DeadLetter = d.String()
	q.Settings.DeadLetterTTL = d.Varint()
	q.Metadata = append([]byte(nil), d.Bytes()...)
	if err := d.Done(); err != nil {
		return nil, fmt.Errorf("store: decode queue %q: %w", name, err)
	}
	return q, nil
}

// counters is the per-queue value that changes on every post and delete.
type counters struct {
	NextSeq uint64 // sequence number the next posted message gets
	Stored  uint64 // messages stored, expired-but-not-collected included
	// Head is a sequence number below which the queue holds no message:
	// scans from the head start there instead of walking the deleted
	// messages' tombstones. Claims and pops move it forward.
	Head uint64

	// The depth index's per-queue state (DESIGN.md, "Depth"); all zero
	// until the index is built, and then written only if one is non-zero.

	// InClaim counts the queue's waiting entries of kind waitClaim.
	InClaim uint64
	// InDelay counts the queue's waiting entries of kind waitDelay.
	InDelay uint64
	// ReadyHead is a sequence number below which the queue has no ready
	// entry, like Head for the ready space.
	ReadyHead uint64
	// Promoted is the promotion watermark: a message whose slot time is at
	// or before it has a ready entry, one after it a waiting entry.
	Promoted int64
	// NextDue is at or below the slot time of every waiting entry
	// (Never: none), so promoting up to a time before it has nothing to do.
	NextDue int64
}

const (
	countersV0Len    = 16 // NextSeq, Stored
	countersV1Len    = 24 // + Head
	countersDepthLen = 64 // + InClaim, ReadyHead, Promoted, NextDue, InDelay
)

func encodeCounters(c counters) []byte {
	if c.InClaim == 0 && c.ReadyHead == 0 && c.Promoted == 0 && c.NextDue == 0 && c.InDelay == 0 {
		// What builds without the depth index write, byte for byte.
		b := make([]byte, 0, countersV1Len)
		b = binary.BigEndian.AppendUint64(b, c.NextSeq)
		b = binary.BigEndian.AppendUint64(b, c.Stored)
		return binary.BigEndian.AppendUint64(b, c.Head)
	}
	b := make([]byte, 0, countersDepthLen)
	b = binary.BigEndian.AppendUint64(b, c.NextSeq)
	b = binary.BigEndian.AppendUint64(b, c.Stored)
	b = binary.BigEndian.AppendUint64(b, c.Head)
	b = binary.BigEndian.AppendUint64(b, c.InClaim)
	b = binary.BigEndian.AppendUint64(b, c.ReadyHead)
	b = binary.BigEndian.AppendUint64(b, uint64(c.Promoted))
	b = binary.BigEndian.AppendUint64(b, uint64(c.NextDue))
	return binary.BigEndian.AppendUint64(b, c.InDelay)
}

func decodeCounters(b []byte) (counters, error) {
	if len(b) != countersV0Len && len(b) != countersV1Len && len(b) != countersDepthLen {
		return counters{}, fmt.Errorf("store: counters record of %d bytes", len(b))
	}
	c := counters{NextSeq: binary.BigEndian.Uint64(b), Stored: binary.BigEndian.Uint64(b[8:])}
	if len(b) >= countersV1Len {
		c.Head = binary.BigEndian.Uint64(b[16:])
	}
	if len(b) == countersDepthLen {
		c.InClaim = binary.BigEndian.Uint64(b[24:])
		c.ReadyHead = binary.BigEndian.Uint64(b[32:])
		c.Promoted = int64(binary.BigEndian.Uint64(b[40:]))
		c.NextDue = int64(binary.BigEndian.Uint64(b[48:]))
		c.InDelay = binary.BigEndian.Uint64(b[56:])
	}
	return c, nil
}

// Message is a stored message.
type Message struct {
	Seq            uint64 // position in its queue; FIFO order
	ID             string
	CreatedAt      int64 // unix nanoseconds
	ExpiresAt      int64 // unix nanoseconds
	VisibleAt      int64 // unix nanoseconds; later than CreatedAt only in delayed queues
	TTL            int64 // seconds, as reported (raised when a claim extends the message)
	Delay          int64 // seconds, as posted (for notifications)
	ClaimID        string
	ClaimExpiresAt int64 // unix nanoseconds; the message is claimed while this is in the future
	ClaimCount     int64
	ClientID       string // normalised Client-ID of the poster
	Checksum       string
	Body           []byte // the posted JSON value, compact, or its sealed envelope (internal/bodycrypt)
}

// Claimed reports whether an active claim holds the message at now.
func (m *Message) Claimed(now int64) bool { return m.ClaimID != "" && m.ClaimExpiresAt > now }

// Age returns whole seconds since the message was posted.
func (m *Message) Age(now int64) int64 { return secondsBetween(m.CreatedAt, now) }

func secondsBetween(from, to int64) int64 {
	if to <= from {
		return 0
	}
	return (to - from) / 1e9
}

// The fixed-width header lets scans filter messages without decoding them.
const (
	msgOffCreated      = 1
	msgOffExpires      = 9
	msgOffVisible      = 17
	msgOffClaimExpires = 25
	msgHeaderLen       = 33
)

func encodeMessage(m *Message) []byte {
	e := codec.Encoder{Buf: make([]byte, 0, msgHeaderLen+64+len(m.Body))}
	e.Byte(messageRecordV)
	e.Int64(m.CreatedAt)
	e.Int64(m.ExpiresAt)
	e.Int64(m.VisibleAt)
	e.Int64(m.ClaimExpiresAt)
	e.Varint(m.TTL)
	e.Varint(m.Delay)
	e.Varint(m.ClaimCount)
	e.String(m.ID)
	e.String(m.ClaimID)
	e.String(m.ClientID)
	e.String(m.Checksum)
	e.Buf = append(e.Buf, m.Body...)
	return e.Buf
}

func decodeMessage(seq uint64, b []byte) (*Message, error) {
	d := codec.NewDecoder(b)
	if v := d.Byte(); v != messageRecordV {
		return nil, fmt.Errorf("store: message record version %d", v)
	}
	m := &Message{Seq: seq}
	m.CreatedAt = d.Int64()
	m.ExpiresAt = d.Int64()
	m.VisibleAt = d.Int64()
	m.ClaimExpiresAt = d.Int64()
	m.TTL = d.Varint()
	m.Delay = d.Varint()
	m.ClaimCount = d.Varint()
	m.ID = d.String()
	m.ClaimID = d.String()
	m.ClientID = d.String()
	m.Checksum = d.String()
	if err := d.Err(); err != nil {
		return nil, fmt.Errorf("store: decode message %d: %w", seq, err)
	}
	m.Body = append([]byte(nil), d.Remaining()...)
	return m, nil
}

// msgHeader reads the fixed-width fields of an encoded message.
type msgHeader []byte

func (h msgHeader) valid() bool      { return len(h) >= msgHeaderLen && h[0] == messageRecordV }
func (h msgHeader) createdAt() int64 { return int64(binary.BigEndian.Uint64(h[msgOffCreated:])) }
func (h msgHeader) expiresAt() int64 { return int64(binary.BigEndian.Uint64(h[msgOffExpires:])) }
func (h msgHeader) visibleAt() int64 { return int64(binary.BigEndian.Uint64(h[msgOffVisible:])) }
func (h msgHeader) claimExpiresAt() int64 {
	return int64(binary.BigEndian.Uint64(h[msgOffClaimExpires:]))
}

// Claim is a stored claim.
type Claim struct {
	ID        string
	UpdatedAt int64 // creation or last renewal, unix nanoseconds
	ExpiresAt int64
	TTL       int64
	Grace     int64
	Seqs      []uint64 // messages taken by the claim, in FIFO order
}

func encodeClaim(c *Claim) []byte {
	var e codec.Encoder
	e.Byte(claimRecordV)
	e.Int64(c.UpdatedAt)
	e.Int64(c.ExpiresAt)
	e.Varint(c.TTL)
	e.Varint(c.Grace)
	e.Uvarint(uint64(len(c.Seqs)))
	for _, s := range c.Seqs {
		e.Uvarint(s)
	}
	return e.Buf
}

func decodeClaim(id string, b []byte) (*Claim, error) {
	d := codec.NewDecoder(b)
	if v := d.Byte(); v != claimRecordV {
		return nil, fmt.Errorf("store: claim record version %d", v)
	}
	c := &Claim{ID: id}
	c.UpdatedAt = d.Int64()
	c.ExpiresAt = d.Int64()
	c.TTL = d.Varint()
	c.Grace = d.Varint()
	n := d.Count(1)
	c.Seqs = make([]uint64, n)
	for i := range c.Seqs {
		c.Seqs[i] = d.Uvarint()
	}
	if err := d.Done(); err != nil {
		return nil, fmt.Errorf("store: decode claim %s: %w", id, err)
	}
	return c, nil
}

// AppendMessage appends m (sequence number included) to b in the record
// format, for carrying messages in command results.
func AppendMessage(b []byte, m *Message) []byte {
	b = binary.AppendUvarint(b, m.Seq)
	rec := encodeMessage(m)
	b = binary.AppendUvarint(b, uint64(len(rec)))
	return append(b, rec...)
}

// ReadMessage decodes one message written by AppendMessage.
func ReadMessage(d *codec.Decoder) (*Message, error) {
	seq := d.Uvarint()
	rec := d.Bytes()
	if err := d.Err(); err != nil {
		return nil, err
	}
	return decodeMessage(seq, rec)
}

// Age returns whole seconds since the claim was created or last renewed.
func (c *Claim) Age(now int64) int64 { return secondsBetween(c.UpdatedAt, now) }
