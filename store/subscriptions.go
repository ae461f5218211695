package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/zaqar-raft/zaqar/internal/codec"
)

const (
	subscriptionRecordV byte = 1
	// subscriptionTrustRecordV is a subscriptionRecordV record followed by
	// the trust id. Only subscriptions holding a trust are written so, so
	// every other record stays byte for byte what earlier builds wrote.
	subscriptionTrustRecordV byte = 2
	notificationRecordV      byte = 1
)

// Subscription is a stored subscription of a queue (or topic).
type Subscription struct {
	ID         string
	Source     string // the queue it belongs to
	Subscriber string // URI: http(s)://, mailto:, trust+http(s)://, or an internal websocket address
	TTL        int64  // seconds, as last set
	CreatedAt  int64  // unix nanoseconds
	ExpiresAt  int64  // unix nanoseconds
	Options    []byte // JSON object
	Confirmed  bool
	// TrustID is the Keystone trust the subscription delivers with (a
	// trust+http(s) subscriber), "" if it holds none. Only HoldTrust gives
	// a subscription a trust; clients never see it.
	TrustID string
}

// Age returns whole seconds since the subscription was created.
func (s *Subscription) Age(now int64) int64 { return secondsBetween(s.CreatedAt, now) }

func encodeSubscription(s *Subscription) []byte {
	var e codec.Encoder
	version := subscriptionRecordV
	if s.TrustID != "" {
		version = subscriptionTrustRecordV
	}
	e.Byte(version)
	e.String(s.Subscriber)
	e.Varint(s.TTL)
	e.Int64(s.CreatedAt)
	e.Int64(s.ExpiresAt)
	e.Bool(s.Confirmed)
	e.Bytes(s.Options)
	if version == subscriptionTrustRecordV {
		e.String(s.TrustID)
	}
	return e.Buf
}

func decodeSubscription(id, source string, b []byte) (*Subscription, error) {
	d := codec.NewDecoder(b)
	version := d.Byte()
	if version != subscriptionRecordV && version != subscriptionTrustRecordV {
		return nil, fmt.Errorf("store: subscription record version %d", version)
	}
	s := &Subscription{ID: id, Source: source}
	s.Subscriber = d.String()
	s.TTL = d.Varint()
	s.CreatedAt = d.Int64()
	s.ExpiresAt = d.Int64()
	s.Confirmed = d.Bool()
	s.Options = append([]byte(nil), d.Bytes()...)
	if version == subscriptionTrustRecordV {
		s.TrustID = d.String()
	}
	if err := d.Done(); err != nil {
		return nil, fmt.Errorf("store: decode subscription %s: %w", id, err)
	}
	return s, nil
}

// Notification is the record of one posted message kept for delivery to
// the queue's subscribers (contract §10.2): the payload as it will be sent,
// and the times that bound its delivery.
type Notification struct {
	Seq       uint64
	CreatedAt int64  // when the message was posted (for delivery lag)
	ExpiresAt int64  // when the message expires; undelivered notifications are given up then
	Payload   []byte // {"body", "ttl", ["delay",] "queue_name", "Message_Type": "Notification"}
}

func encodeNotification(n *Notification) []byte {
	var e codec.Encoder
	e.Byte(notificationRecordV)
	e.Int64(n.CreatedAt)
	e.Int64(n.ExpiresAt)
	e.Buf = append(e.Buf, n.Payload...)
	return e.Buf
}

func decodeNotification(seq uint64, b []byte) (*Notification, error) {
	d := codec.NewDecoder(b)
	if v := d.Byte(); v != notificationRecordV {
		return nil, fmt.Errorf("store: notification record version %d", v)
	}
	n := &Notification{Seq: seq, CreatedAt: d.Int64(), ExpiresAt: d.Int64()}
	if err := d.Err(); err != nil {
		return nil, fmt.Errorf("store: decode notification %d: %w", seq, err)
	}
	n.Payload = append([]byte(nil), d.Remaining()...)
	return n, nil
}

// notificationPayload builds the §10.2 payload of a posted message. Keys are
// in the reference's order; delay appears only for delayed queues.
func notificationPayload(queue string, m *Message, delayed bool) []byte {
	var b bytes.Buffer
	b.WriteString(`{"body": `)
	b.Write(m.Body)
	b.WriteString(`, "ttl": `)
	b.WriteString(strconv.FormatInt(m.TTL, 10))
	if delayed {
		b.WriteString(`, "delay": `)
		b.WriteString(strconv.FormatInt(m.Delay, 10))
	}
	q, _ := json.Marshal(queue)
	b.WriteString(`, "queue_name": `)
	b.Write(q)
	b.WriteString(`, "Message_Type": "Notification"}`)
	return b.Bytes()
}

func (t *Txn) hasSubscriptions(project, queue string) bool {
	prefix := queueScoped(spaceSubscription, project, queue)
	it, err := t.r.iter(prefix, prefixEnd(prefix))
	if err != nil {
		panic(fmt.Sprintf("store: subscription iterator: %v", err))
	}
	found := it.First()
	if err := it.Close(); err != nil {
		panic(fmt.Sprintf("store: subscription iterator: %v", err))
	}
	return found
}

func (t *Txn) putNotification(project, queue string, m *Message, delayed bool) {
	n := &Notification{CreatedAt: m.CreatedAt, ExpiresAt: m.ExpiresAt, Payload: notificationPayload(queue, m, delayed)}
	t.set(outboxKey(project, queue, m.Seq), encodeNotification(n))
}

func (t *Txn) subscription(project, queue, id string) *Subscription {
	v, ok := must2(t.r.get(subscriptionKey(project, queue, id)))
	if !ok {
		return nil
	}
	s, err := decodeSubscription(id, queue, v)
	if err != nil {
		panic(fmt.Sprintf("store: %v", err))
	}
	return s
}

func (t *Txn) putSubscription(project, queue string, s *Subscription) {
	t.set(subscriptionKey(project, queue, s.ID), encodeSubscription(s))
}

// SubscribeOutcome says what CreateSubscription did.
type SubscribeOutcome int

// Outcomes of CreateSubscription (contract §9.2).
const (
	Subscribed         SubscribeOutcome = iota // a new subscription was stored
	AlreadyUnconfirmed                         // the subscriber has an unconfirmed one: its id is returned, nothing changes
	AlreadyConfirmed                           // the subscriber has a confirmed one: a conflict
)

// CreateSubscription subscribes s.Subscriber to the queue, creating the
// queue if needed. Subscriptions are unique by project, queue and
// subscriber. A new subscription receives the messages posted after it.
// It returns the outcome and the id of the (new or existing) subscription.
func (t *Txn) CreateSubscription(project, queue string, s Subscription, now int64) (SubscribeOutcome, string) {
	if v, ok := must2(t.r.get(subscriberKey(project, queue, s.Subscriber))); ok {
		if existing := t.subscription(project, queue, string(v)); existing != nil {
			if existing.ExpiresAt > now {
				if existing.Confirmed {
					return AlreadyConfirmed, existing.ID
				}
				return AlreadyUnconfirmed, existing.ID
			}
			t.removeSubscription(project, queue, existing) // expired: make way
		}
	}
	t.ensureQueue(project, queue, now)
	c := must(t.r.counters(project, queue))
	s.Source = queue
	s.CreatedAt = now
	s.ExpiresAt = Deadline(now, s.TTL)
	if len(s.Options) == 0 {
		s.Options = []byte("{}")
	}
	t.putSubscription(project, queue, &s)
	t.set(subscriberKey(project, queue, s.Subscriber), []byte(s.ID))
	t.set(subExpiryKey(s.ExpiresAt, project, queue, s.ID), nil)
	t.noteExpiry(s.ExpiresAt)
	t.setCursor(project, queue, s.ID, c.NextSeq-1)
	return Subscribed, s.ID
}

func (t *Txn) setCursor(project, queue, id string, seq uint64) {
	t.set(cursorKey(project, queue, id), binary.BigEndian.AppendUint64(nil, seq))
}

func (t *Txn) cursor(project, queue, id string) (uint64, bool) {
	v, ok := must2(t.r.get(cursorKey(project, queue, id)))
	if !ok || len(v) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(v), true
}

// SubscriptionUpdate is a PATCH of a subscription; nil fields are kept.
type SubscriptionUpdate struct {
	Subscriber *string
	TTL        *int64 // also restarts the expiry from now
	Options    []byte // replaces the options when non-nil
}

// UpdateSubscription applies u. It returns ErrNotFound for a missing or
// expired subscription and ErrConflict when the new subscriber already has
// another subscription on the queue. A new subscriber retires the trust the
// subscription held: it was delegated for sending to the old one (a new
// trust+ subscriber gets its own trust through HoldTrust). New options
// leave the trust alone.
func (t *Txn) UpdateSubscription(project, queue, id string, u SubscriptionUpdate, now int64) error {
	s := t.subscription(project, queue, id)
	if s == nil || s.ExpiresAt <= now {
		return ErrNotFound
	}
	if u.Subscriber != nil && *u.Subscriber != s.Subscriber {
		if v, ok := must2(t.r.get(subscriberKey(project, queue, *u.Subscriber))); ok {
			if other := t.subscription(project, queue, string(v)); other != nil && other.ExpiresAt > now {
				return ErrConflict
			}
		}
		t.del(subscriberKey(project, queue, s.Subscriber))
		s.Subscriber = *u.Subscriber
		t.set(subscriberKey(project, queue, s.Subscriber), []byte(s.ID))
		t.retireTrust(s.TrustID)
		s.TrustID = ""
	}
	if u.TTL != nil {
		t.del(subExpiryKey(s.ExpiresAt, project, queue, s.ID))
		s.TTL = *u.TTL
		s.ExpiresAt = Deadline(now, s.TTL)
		t.set(subExpiryKey(s.ExpiresAt, project, queue, s.ID), nil)
		t.noteExpiry(s.ExpiresAt)
	}
	if u.Options != nil {
		s.Options = u.Options
	}
	t.putSubscription(project, queue, s)
	return nil
}

// ConfirmSubscription sets a subscription's confirmed flag; ErrNotFound if
// it does not exist (or expired).
func (t *Txn) ConfirmSubscription(project, queue, id string, confirmed bool, now int64) error {
	s := t.subscription(project, queue, id)
	if s == nil || s.ExpiresAt <= now {
		return ErrNotFound
	}
	s.Confirmed = confirmed
	t.putSubscription(project, queue, s)
	return nil
}

// DeleteSubscription removes a subscription; a missing one is not an error.
func (t *Txn) DeleteSubscription(project, queue, id string) {
	if s := t.subscription(project, queue, id); s != nil {
		t.removeSubscription(project, queue, s)
	}
}

func (t *Txn) removeSubscription(project, queue string, s *Subscription) {
	t.retireTrust(s.TrustID)
	t.del(subscriptionKey(project, queue, s.ID))
	if v, ok := must2(t.r.get(subscriberKey(project, queue, s.Subscriber))); ok && string(v) == s.ID {
		t.del(subscriberKey(project, queue, s.Subscriber))
	}
	t.del(cursorKey(project, queue, s.ID))
	t.del(subExpiryKey(s.ExpiresAt, project, queue, s.ID))
	t.trimOutbox(project, queue)
}

// HoldTrust gives a subscription the Keystone trust trustID, which the
// service created for sending to subscriber. The subscription holds it only
// if it exists, is unexpired and still has that subscriber; the trust it
// held before, if another, is retired. Otherwise trustID itself is retired:
// the subscribe or PATCH it was made for did not take effect (a duplicate,
// a conflict, a deletion in between). It reports whether the trust is held.
func (t *Txn) HoldTrust(project, queue, id, subscriber, trustID string, now int64) bool {
	s := t.subscription(project, queue, id)
	if s == nil || s.ExpiresAt <= now || s.Subscriber != subscriber {
		t.retireTrust(trustID)
		return false
	}
	if s.TrustID == trustID {
		return true
	}
	t.retireTrust(s.TrustID)
	s.TrustID = trustID
	t.putSubscription(project, queue, s)
	return true
}

// retireTrust records that no subscription holds a trust any more, so the
// leader deletes it in Keystone (and then ForgetTrusts). "" is no trust.
func (t *Txn) retireTrust(trustID string) {
	if trustID != "" {
		t.set(retiredTrustKey(trustID), nil)
	}
}

// retireQueueTrusts retires the trusts the queue's subscriptions hold,
// before they are deleted by prefix.
func (t *Txn) retireQueueTrusts(project, queue string) {
	prefix := queueScoped(spaceSubscription, project, queue)
	it, err := t.r.iter(prefix, prefixEnd(prefix))
	if err != nil {
		panic(fmt.Sprintf("store: subscription iterator: %v", err))
	}
	var held []string
	for ok := it.First(); ok; ok = it.Next() {
		s, err := decodeSubscription(string(it.Key()[len(prefix):]), queue, it.Value())
		if err != nil {
			panic(fmt.Sprintf("store: %v", err))
		}
		if s.TrustID != "" {
			held = append(held, s.TrustID)
		}
	}
	if err := it.Close(); err != nil {
		panic(fmt.Sprintf("store: subscription iterator: %v", err))
	}
	for _, id := range held {
		t.retireTrust(id)
	}
}

// ForgetTrusts removes retired trusts from the record once the leader has
// deleted them in Keystone (or found them gone).
func (t *Txn) ForgetTrusts(trustIDs []string) {
	for _, id := range trustIDs {
		t.del(retiredTrustKey(id))
	}
}

// CursorAdvance moves one subscription's delivery cursor.
type CursorAdvance struct {
	Project, Queue, ID string
	Seq                uint64 // every notification up to this sequence was handled
}

// AdvanceCursors records delivery progress. A cursor never moves back, and
// advances for subscriptions that no longer exist are ignored. Outbox
// entries every subscription of a queue has passed are deleted.
func (t *Txn) AdvanceCursors(advances []CursorAdvance) {
	touched := map[[2]string]bool{}
	for _, a := range advances {
		cur, ok := t.cursor(a.Project, a.Queue, a.ID)
		if !ok || a.Seq <= cur {
			continue
		}
		t.setCursor(a.Project, a.Queue, a.ID, a.Seq)
		touched[[2]string{a.Project, a.Queue}] = true
	}
	// Trim in a deterministic order: map iteration order is random.
	keys := make([][2]string, 0, len(touched))
	for k := range touched {
		keys = append(keys, k)
	}
	sortPairs(keys)
	for _, k := range keys {
		t.trimOutbox(k[0], k[1])
	}
}

func sortPairs(p [][2]string) {
	for i := 1; i < len(p); i++ {
		for j := i; j > 0 && (p[j][0] < p[j-1][0] || p[j][0] == p[j-1][0] && p[j][1] < p[j-1][1]); j-- {
			p[j], p[j-1] = p[j-1], p[j]
		}
	}
}

// trimOutbox deletes the queue's notifications that every subscription
// has passed (all of them when the queue has no subscriptions left).
func (t *Txn) trimOutbox(project, queue string) {
	prefix := queueScoped(spaceCursor, project, queue)
	it, err := t.r.iter(prefix, prefixEnd(prefix))
	if err != nil {
		panic(fmt.Sprintf("store: cursor iterator: %v", err))
	}
	minSeq, any := uint64(0), false
	for ok := it.First(); ok; ok = it.Next() {
		if len(it.Value()) != 8 {
			continue
		}
		if seq := binary.BigEndian.Uint64(it.Value()); !any || seq < minSeq {
			minSeq, any = seq, true
		}
	}
	if err := it.Close(); err != nil {
		panic(fmt.Sprintf("store: cursor iterator: %v", err))
	}
	out := queueScoped(spaceOutbox, project, queue)
	if !any {
		t.delPrefix(out)
		return
	}
	t.delRange(out, appendUint64(append([]byte(nil), out...), minSeq+1))
}

// collectSubscriptions removes expired subscriptions (part of GC).
func (t *Txn) collectSubscriptions(now int64, limit int) int {
	return t.collect(spaceSubExpiry, now, limit, func(e expiryEntry, _ []byte) {
		s := t.subscription(e.project, e.queue, string(e.tail))
		if s != nil && s.ExpiresAt == e.at {
			t.removeSubscription(e.project, e.queue, s)
		}
	})
}

// Subscription returns an unexpired subscription, or nil.
func (v *View) Subscription(project, queue, id string, now int64) (*Subscription, error) {
	b, ok, err := v.r.get(subscriptionKey(project, queue, id))
	if err != nil || !ok {
		return nil, err
	}
	s, err := decodeSubscription(id, queue, b)
	if err != nil || s.ExpiresAt <= now {
		return nil, err
	}
	return s, nil
}

// ListSubscriptions returns up to limit unexpired subscriptions of a queue
// with ids after marker, in id order (ids are time-ordered, so this is
// creation order).
func (v *View) ListSubscriptions(project, queue, marker string, limit int, now int64) ([]*Subscription, error) {
	prefix := queueScoped(spaceSubscription, project, queue)
	lower := prefix
	if marker != "" {
		lower = append(append([]byte(nil), prefix...), marker...)
		lower = append(lower, 0) // strictly after the marker
	}
	it, err := v.r.iter(lower, prefixEnd(prefix))
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []*Subscription
	for ok := it.First(); ok && len(out) < limit; ok = it.Next() {
		s, err := decodeSubscription(string(it.Key()[len(prefix):]), queue, it.Value())
		if err != nil {
			return nil, err
		}
		if s.ExpiresAt > now {
			out = append(out, s)
		}
	}
	return out, it.Error()
}

// Subscriber is a subscription with the position of its delivery cursor,
// as the notifier sees it.
type Subscriber struct {
	Project string
	*Subscription
	Cursor uint64
}

// Subscribers returns every unexpired subscription of every queue (or of
// one project's queue when project and queue are given), with cursors.
func (v *View) Subscribers(project, queue string, now int64) ([]Subscriber, error) {
	prefix := []byte{spaceSubscription}
	if queue != "" {
		prefix = queueScoped(spaceSubscription, project, queue)
	}
	it, err := v.r.iter(prefix, prefixEnd(prefix))
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []Subscriber
	for ok := it.First(); ok; ok = it.Next() {
		proj, rest, ok1 := readString(it.Key()[1:])
		q, rest, ok2 := readString(rest)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("store: corrupt subscription key %x", it.Key())
		}
		s, err := decodeSubscription(string(rest), q, it.Value())
		if err != nil {
			return nil, err
		}
		if s.ExpiresAt <= now {
			continue
		}
		c, ok, err := v.r.get(cursorKey(proj, q, s.ID))
		if err != nil {
			return nil, err
		}
		sub := Subscriber{Project: proj, Subscription: s}
		if ok && len(c) == 8 {
			sub.Cursor = binary.BigEndian.Uint64(c)
		}
		out = append(out, sub)
	}
	return out, it.Error()
}

// RetiredTrusts returns up to limit retired trusts (see HoldTrust), in id
// order: the Keystone trusts the leader is to delete.
func (v *View) RetiredTrusts(limit int) ([]string, error) {
	prefix := []byte{spaceRetiredTrust}
	it, err := v.r.iter(prefix, prefixEnd(prefix))
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []string
	for ok := it.First(); ok && len(out) < limit; ok = it.Next() {
		out = append(out, string(it.Key()[1:]))
	}
	return out, it.Error()
}

// Notifications returns up to limit notifications of the queue with
// sequence numbers after afterSeq, in order.
func (v *View) Notifications(project, queue string, afterSeq uint64, limit int) ([]*Notification, error) {
	prefix := queueScoped(spaceOutbox, project, queue)
	it, err := v.r.iter(appendUint64(append([]byte(nil), prefix...), afterSeq+1), prefixEnd(prefix))
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []*Notification
	for ok := it.First(); ok && len(out) < limit; ok = it.Next() {
		n, err := decodeNotification(binary.BigEndian.Uint64(it.Key()[len(prefix):]), it.Value())
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, it.Error()
}
