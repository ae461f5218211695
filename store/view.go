package store

import (
	"encoding/binary"
	"fmt"
)

// Queue returns the queue's record, or nil if the queue does not exist.
func (v *View) Queue(project, name string) (*Queue, error) { return v.r.queue(project, name) }

// ListQueues returns up to limit queues of the project whose names sort
// after marker, in name order, skipping those keep rejects (keep may be nil).
func (v *View) ListQueues(project, marker string, limit int, keep func(*Queue) bool) ([]*Queue, error) {
	var out []*Queue
	err := v.r.scanNames(queuePrefix(project), marker, limit, func(name string, b []byte) (bool, error) {
		q, err := decodeQueue(name, b)
		if err != nil || (keep != nil && !keep(q)) {
			return false, err
		}
		out = append(out, q)
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: list queues: %w", err)
	}
	return out, nil
}

// scanNames visits, in name order, the records keyed prefix|name whose
// names sort after marker, until visit has accepted limit of them (limit
// < 0: all). It is the one scan behind every listing by name.
func (r reader) scanNames(prefix []byte, marker string, limit int, visit func(name string, value []byte) (bool, error)) error {
	lower := prefix
	if marker != "" {
		// Start at the marker's own key; it is skipped below if it exists.
		lower = appendString(append([]byte(nil), prefix...), marker)
	}
	it, err := r.iter(lower, prefixEnd(prefix))
	if err != nil {
		return err
	}
	defer it.Close()
	accepted := 0
	for ok := it.First(); ok && (limit < 0 || accepted < limit); ok = it.Next() {
		name, _, ok := readString(it.Key()[len(prefix):])
		if !ok {
			return fmt.Errorf("corrupt key %x", it.Key())
		}
		if marker != "" && name == marker {
			continue
		}
		took, err := visit(name, it.Value())
		if err != nil {
			return err
		}
		if took {
			accepted++
		}
	}
	return it.Error()
}

// QueueCount returns the number of queues in the project.
func (v *View) QueueCount(project string) (uint64, error) {
	b, ok, err := v.r.get(projectKey(project))
	if err != nil || !ok || len(b) != 8 {
		return 0, err
	}
	return binary.BigEndian.Uint64(b), nil
}

// Stats describes a queue's messages at one instant.
type Stats struct {
	Total   int64    // unexpired messages
	Claimed int64    // unexpired messages under an active claim
	Oldest  *Message // first unexpired message in FIFO order; nil if Total is 0
	Newest  *Message // last unexpired message
}

// QueueStats counts the queue's messages as of now. It reads the stored
// count and subtracts the expired messages GC has not collected yet, so it
// costs the GC backlog plus the active claims, not the queue's depth.
func (v *View) QueueStats(project, queue string, now int64) (Stats, error) {
	var st Stats
	c, err := v.r.counters(project, queue)
	if err != nil {
		return st, err
	}
	expired, err := v.expiredUncollected(project, queue, now)
	if err != nil {
		return st, err
	}
	st.Total = int64(c.Stored) - expired
	if st.Total <= 0 {
		return Stats{}, nil
	}
	indexed, err := v.DepthIndexed()
	if err != nil {
		return st, err
	}
	if indexed {
		st.Claimed, err = v.claimedIndexed(project, queue, now)
	} else {
		st.Claimed, err = v.claimedCount(project, queue, now)
	}
	if err != nil {
		return st, err
	}
	if st.Oldest, err = v.edgeMessage(project, queue, now, false); err != nil {
		return st, err
	}
	if st.Newest, err = v.edgeMessage(project, queue, now, true); err != nil {
		return st, err
	}
	return st, nil
}

// expiredUncollected counts this queue's messages that expired at or before
// now but are still stored.
func (v *View) expiredUncollected(project, queue string, now int64) (int64, error) {
	low, err := v.r.gcLow()
	if err != nil {
		return 0, err
	}
	it, err := v.r.iter(expiryFrom(spaceMsgExpiry, low), expiryUpTo(spaceMsgExpiry, now))
	if err != nil {
		return 0, err
	}
	defer it.Close()
	var n int64
	for ok := it.First(); ok; ok = it.Next() {
		e, ok := decodeExpiryKey(it.Key())
		if !ok || e.project != project || e.queue != queue || len(e.tail) != 8 {
			continue
		}
		m, err := v.r.messageBySeq(project, queue, binary.BigEndian.Uint64(e.tail))
		if err != nil {
			return 0, err
		}
		if m != nil && m.ID == string(it.Value()) && m.ExpiresAt == e.at {
			n++
		}
	}
	return n, it.Error()
}

func (v *View) claimedCount(project, queue string, now int64) (int64, error) {
	prefix := queueScoped(spaceClaim, project, queue)
	it, err := v.r.iter(prefix, prefixEnd(prefix))
	if err != nil {
		return 0, err
	}
	defer it.Close()
	var n int64
	for ok := it.First(); ok; ok = it.Next() {
		c, err := decodeClaim(string(it.Key()[len(prefix):]), it.Value())
		if err != nil {
			return 0, err
		}
		if c.ExpiresAt <= now {
			continue
		}
		for _, seq := range c.Seqs {
			m, err := v.r.messageBySeq(project, queue, seq)
			if err != nil {
				return 0, err
			}
			if m != nil && m.ClaimID == c.ID && m.Claimed(now) && m.ExpiresAt > now {
				n++
			}
		}
	}
	return n, it.Error()
}

// edgeMessage returns the first (or, with last, the final) unexpired message.
func (v *View) edgeMessage(project, queue string, now int64, last bool) (*Message, error) {
	prefix := queueScoped(spaceMessage, project, queue)
	c, err := v.r.counters(project, queue)
	if err != nil {
		return nil, err
	}
	it, err := v.r.iter(appendUint64(append([]byte(nil), prefix...), c.Head), prefixEnd(prefix))
	if err != nil {
		return nil, err
	}
	defer it.Close()
	ok := it.First()
	if last {
		ok = it.Last()
	}
	for ; ok; ok = step(it.Next, it.Prev, last) {
		if h := msgHeader(it.Value()); h.valid() && h.expiresAt() > now {
			return decodeMessage(binary.BigEndian.Uint64(it.Key()[len(prefix):]), it.Value())
		}
	}
	return nil, it.Error()
}

func step(next, prev func() bool, backwards bool) bool {
	if backwards {
		return prev()
	}
	return next()
}

// ListOptions select messages for ListMessages.
type ListOptions struct {
	AfterSeq       uint64 // marker: only messages after this sequence number
	Limit          int
	ClientID       string // the caller; with Echo false its own messages are skipped
	Echo           bool
	IncludeClaimed bool
	IncludeDelayed bool
}

// ListMessages returns up to Limit unexpired messages in FIFO order.
func (v *View) ListMessages(project, queue string, now int64, o ListOptions) ([]*Message, error) {
	if o.Limit <= 0 {
		return nil, nil // the scan below takes one message before it checks the limit
	}
	if !o.IncludeClaimed {
		indexed, err := v.DepthIndexed()
		if err != nil {
			return nil, err
		}
		if indexed {
			out, ok, err := v.listFromIndex(project, queue, now, o)
			if ok || err != nil {
				return out, err
			}
		}
	}
	var out []*Message
	keep := func(h msgHeader) bool {
		if h.expiresAt() <= now {
			return false
		}
		if !o.IncludeClaimed && h.claimExpiresAt() > now {
			return false
		}
		if !o.IncludeDelayed && h.visibleAt() > now {
			return false
		}
		return true
	}
	_, err := v.r.scanMessages(project, queue, o.AfterSeq, keep, func(m *Message) bool {
		if !o.Echo && m.ClientID == o.ClientID {
			return true
		}
		out = append(out, m)
		return len(out) < o.Limit
	})
	return out, err
}

// Message returns the unexpired message with that id, or nil.
func (v *View) Message(project, queue, id string, now int64) (*Message, error) {
	m, err := v.r.messageByID(project, queue, id)
	if err != nil || m == nil || m.ExpiresAt <= now {
		return nil, err
	}
	return m, nil
}

// Claim returns an active claim and its messages that still exist, or nil.
func (v *View) Claim(project, queue, claimID string, now int64) (*Claim, []*Message, error) {
	c, err := v.r.claim(project, queue, claimID)
	if err != nil || c == nil || c.ExpiresAt <= now {
		return nil, nil, err
	}
	var msgs []*Message
	for _, seq := range c.Seqs {
		m, err := v.r.messageBySeq(project, queue, seq)
		if err != nil {
			return nil, nil, err
		}
		if m != nil && m.ClaimID == claimID && m.Claimed(now) && m.ExpiresAt > now {
			msgs = append(msgs, m)
		}
	}
	return c, msgs, nil
}

// Secret returns the cluster's signing secret, or nil if none is set yet.
func (v *View) Secret() ([]byte, error) {
	b, ok, err := v.r.get(keySecret)
	if err != nil || !ok {
		return nil, err
	}
	return b, nil
}

// CommandLevel returns the highest gated command type the log has
// committed (Txn.RaiseCommandLevel), 0 if none.
func (v *View) CommandLevel() (byte, error) {
	b, ok, err := v.r.get(keyCommandLevel)
	if err != nil || !ok || len(b) != 1 {
		return 0, err
	}
	return b[0], nil
}

// Pending reports whether GC has work at now: an expiry entry that is due.
func (v *View) Pending(now int64) (bool, error) {
	low, err := v.r.gcLow()
	if err != nil {
		return false, err
	}
	for _, space := range []byte{spaceMsgExpiry, spaceClaimExpiry, spaceSubExpiry} {
		it, err := v.r.iter(expiryFrom(space, low), expiryUpTo(space, now))
		if err != nil {
			return false, err
		}
		found := it.First()
		if err := it.Close(); err != nil {
			return false, err
		}
		if found {
			return true, nil
		}
	}
	return false, nil
}

// QueueDepth is a queue's stored message count and its oldest message.
type QueueDepth struct {
	Project, Queue string
	Messages       uint64 // stored, expired-but-uncollected included
	OldestAge      int64  // seconds since the oldest unexpired message was posted; 0 if none
}

// DeepestQueues returns the n queues (of every project) holding the most
// messages, deepest first. It reads one counter per queue.
func (v *View) DeepestQueues(n int, now int64) ([]QueueDepth, error) {
	it, err := v.r.iter([]byte{spaceCounter}, []byte{spaceCounter + 1})
	if err != nil {
		return nil, err
	}
	var top []QueueDepth
	for ok := it.First(); ok; ok = it.Next() {
		c, err := decodeCounters(it.Value())
		if err != nil || c.Stored == 0 {
			continue
		}
		if len(top) == n && c.Stored <= top[n-1].Messages {
			continue
		}
		proj, rest, ok1 := readString(it.Key()[1:])
		q, _, ok2 := readString(rest)
		if !ok1 || !ok2 {
			continue
		}
		top = insertDepth(top, QueueDepth{Project: proj, Queue: q, Messages: c.Stored}, n)
	}
	if err := it.Close(); err != nil {
		return nil, err
	}
	for i := range top {
		m, err := v.edgeMessage(top[i].Project, top[i].Queue, now, false)
		if err != nil {
			return nil, err
		}
		if m != nil {
			top[i].OldestAge = m.Age(now)
		}
	}
	return top, nil
}

// insertDepth keeps top sorted by depth, at most n long.
func insertDepth(top []QueueDepth, d QueueDepth, n int) []QueueDepth {
	i := len(top)
	for i > 0 && top[i-1].Messages < d.Messages {
		i--
	}
	top = append(top, QueueDepth{})
	copy(top[i+1:], top[i:])
	top[i] = d
	if len(top) > n {
		top = top[:n]
	}
	return top
}

// ActiveClaims counts the claims that have not expired at now.
func (v *View) ActiveClaims(now int64) (int, error) {
	it, err := v.r.iter(expiryUpTo(spaceClaimExpiry, now), []byte{spaceClaimExpiry + 1})
	if err != nil {
		return 0, err
	}
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		n++
	}
	return n, it.Close()
}
