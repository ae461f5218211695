package store

import (
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Txn applies mutations to one Pebble indexed batch. Reads inside a Txn see
// its own earlier writes. Every mutation checks all of its preconditions
// before its first write, so a mutation that reports failure has written
// nothing: the batch is shared by every command of a Raft batch.
//
// A Pebble error inside a mutation means the local database is broken; the
// mutation panics rather than let this replica diverge from the others.
type Txn struct {
	b       *pebble.Batch
	r       reader
	index   uint64
	release func() // releases the store's read lock
	reads   pointReads

	gcLow       int64 // the GC watermark, once loaded
	gcLowLoaded bool

	depthOn     bool // the store keeps the depth index, once loaded
	depthLoaded bool
}

// watermark returns the GC watermark as this transaction sees it.
func (t *Txn) watermark() int64 {
	if !t.gcLowLoaded {
		t.gcLow, t.gcLowLoaded = must(t.r.gcLow()), true
	}
	return t.gcLow
}

func (t *Txn) setWatermark(low int64) {
	t.gcLow, t.gcLowLoaded = low, true
	t.set(keyGCLow, binary.BigEndian.AppendUint64(nil, uint64(low)))
}

// noteExpiry keeps the watermark below a new expiry entry. Expiries are
// set from the leader's clock and are always in its future, but a new
// leader whose clock is behind could set one at or before the watermark,
// which expiry scans would then never reach.
func (t *Txn) noteExpiry(at int64) {
	if at <= t.watermark() {
		t.setWatermark(at - 1)
	}
}

// SetIndex records the Raft index of the entry being applied; it becomes the
// MetaVersion of queues whose metadata the entry writes.
func (t *Txn) SetIndex(index uint64) { t.index = index }

// Commit writes the applied index and term beside the batch's data and
// commits without fsync (the Raft log is the durable record; see DESIGN.md).
func (t *Txn) Commit(index, term uint64) error {
	v := make([]byte, 16)
	binary.BigEndian.PutUint64(v, index)
	binary.BigEndian.PutUint64(v[8:], term)
	t.set(keyApplied, v)
	defer t.release()
	if err := t.b.Commit(pebble.NoSync); err != nil {
		_ = t.b.Close()
		return fmt.Errorf("store: commit batch at index %d: %w", index, err)
	}
	return t.b.Close()
}

// Abort drops the batch.
func (t *Txn) Abort() {
	_ = t.b.Close()
	t.release()
}

func (t *Txn) set(k, v []byte) {
	if err := t.b.Set(k, v, nil); err != nil {
		panic(fmt.Sprintf("store: batch set: %v", err))
	}
	t.reads.wrote(k, v, true)
}

func (t *Txn) del(k []byte) {
	if err := t.b.Delete(k, nil); err != nil {
		panic(fmt.Sprintf("store: batch delete: %v", err))
	}
	t.reads.wrote(k, nil, false)
}

func (t *Txn) delPrefix(p []byte) {
	t.delRange(p, prefixEnd(p))
}

// delRange deletes every key in [lower, upper); a nil upper has no bound.
func (t *Txn) delRange(lower, upper []byte) {
	if err := t.b.DeleteRange(lower, upper, nil); err != nil {
		panic(fmt.Sprintf("store: batch delete range: %v", err))
	}
	t.reads.wroteRange(lower, upper)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(fmt.Sprintf("store: read inside apply: %v", err))
	}
	return v
}

func (t *Txn) putMessage(project, queue string, m *Message) {
	t.set(messageKey(project, queue, m.Seq), encodeMessage(m))
}

func (t *Txn) putCounters(project, queue string, c counters) {
	t.set(counterKey(project, queue), encodeCounters(c))
}

func (t *Txn) addProjectQueues(project string, delta int64) {
	k := projectKey(project)
	var n uint64
	if v, ok := must2(t.r.get(k)); ok && len(v) == 8 {
		n = binary.BigEndian.Uint64(v)
	}
	n = uint64(int64(n) + delta)
	if n == 0 {
		t.del(k)
		return
	}
	t.set(k, binary.BigEndian.AppendUint64(nil, n))
}

func must2(v []byte, ok bool, err error) ([]byte, bool) {
	if err != nil {
		panic(fmt.Sprintf("store: read inside apply: %v", err))
	}
	return v, ok
}

// CreateQueue creates a queue with the given metadata. It reports false, and
// changes nothing, if the queue already exists: PUT never rewrites metadata.
func (t *Txn) CreateQueue(project, name string, now int64, settings QueueSettings, metadata []byte) bool {
	if q := must(t.r.queue(project, name)); q != nil {
		return false
	}
	t.createQueue(project, name, now, settings, metadata)
	return true
}

func (t *Txn) createQueue(project, name string, now int64, settings QueueSettings, metadata []byte) *Queue {
	if len(metadata) == 0 {
		metadata = []byte("{}")
	}
	q := &Queue{Name: name, CreatedAt: now, MetaVersion: t.index, Settings: settings, Metadata: metadata}
	t.set(queueKey(project, name), encodeQueue(q))
	c := must(t.r.counters(project, name))
	t.putCounters(project, name, c)
	t.addProjectQueues(project, 1)
	return q
}

// ensureQueue returns the queue, creating it with empty metadata if missing
// (queues are created lazily by posts).
func (t *Txn) ensureQueue(project, name string, now int64) *Queue {
	if q := must(t.r.queue(project, name)); q != nil {
		return q
	}
	return t.createQueue(project, name, now, QueueSettings{}, nil)
}

// SetQueueMetadata replaces a queue's metadata if its MetaVersion is still
// expectVersion. It returns ErrNotFound or ErrConflict otherwise.
func (t *Txn) SetQueueMetadata(project, name string, expectVersion uint64, settings QueueSettings, metadata []byte) error {
	q := must(t.r.queue(project, name))
	if q == nil {
		return ErrNotFound
	}
	if q.MetaVersion != expectVersion {
		return ErrConflict
	}
	q.MetaVersion = t.index
	q.Settings = settings
	q.Metadata = metadata
	t.set(queueKey(project, name), encodeQueue(q))
	return nil
}

// DeleteQueue removes a queue with its messages, claims and subscriptions.
// Deleting a missing queue is not an error.
func (t *Txn) DeleteQueue(project, name string) {
	if q := must(t.r.queue(project, name)); q == nil {
		return
	}
	t.del(queueKey(project, name))
	t.del(counterKey(project, name))
	t.addProjectQueues(project, -1)
	t.retireQueueTrusts(project, name)
	if t.indexed() {
		t.delPrefix(queueScoped(spaceReady, project, name))
		t.delPrefix(queueScoped(spaceWaiting, project, name))
	}
	// Expiry index entries of the deleted messages and claims stay behind;
	// GC recognises them as stale (their target is gone) and drops them.
	for _, space := range []byte{spaceMessage, spaceMessageID, spaceClaim, spaceSubscription, spaceSubscriber, spaceCursor, spaceOutbox} {
		t.delPrefix(queueScoped(space, project, name))
	}
}

// PurgeQueue deletes the queue's messages and claims and/or subscriptions.
func (t *Txn) PurgeQueue(project, name string, messages, subscriptions bool) {
	if q := must(t.r.queue(project, name)); q == nil {
		return
	}
	if messages {
		for _, space := range []byte{spaceMessage, spaceMessageID, spaceClaim} {
			t.delPrefix(queueScoped(space, project, name))
		}
		c := must(t.r.counters(project, name))
		c.Stored = 0
		if t.indexed() {
			t.delPrefix(queueScoped(spaceReady, project, name))
			t.delPrefix(queueScoped(spaceWaiting, project, name))
			c.InClaim, c.InDelay, c.ReadyHead, c.NextDue = 0, 0, 0, Never
		}
		t.putCounters(project, name, c)
	}
	if subscriptions {
		t.retireQueueTrusts(project, name)
		for _, space := range []byte{spaceSubscription, spaceSubscriber, spaceCursor, spaceOutbox} {
			t.delPrefix(queueScoped(space, project, name))
		}
	}
}

// QueueSettings returns a queue's settings as the transaction sees them;
// ok is false if the queue does not exist.
func (t *Txn) QueueSettings(project, name string) (QueueSettings, bool) {
	q := must(t.r.queue(project, name))
	if q == nil {
		return QueueSettings{}, false
	}
	return q.Settings, true
}

// NewMessage is a message to post. Zero TTL means "the queue's default TTL,
// else defaultTTL"; a negative Delay means "not given".
type NewMessage struct {
	ID       string
	TTL      int64
	Delay    int64
	Body     []byte
	Checksum string
}

// PostMessages appends msgs to the queue in order, creating the queue if it
// does not exist. Message ids are the proposer's to make unique, like claim
// ids: they are 128 random bits made once per command, and a command is in
// the Raft log once (the FSM skips entries it has applied). So a post does
// not look its ids up: an absent key is the costliest read there is, a
// search of every memtable, and the lookup was the largest part of
// applying a post. An id repeated within msgs is posted once. It returns
// how many of the posted messages are visible at once (not delayed).
func (t *Txn) PostMessages(project, queue, clientID string, now, defaultTTL int64, msgs []NewMessage) (visible int) {
	q := t.ensureQueue(project, queue, now)
	c := must(t.r.counters(project, queue))
	t.promote(project, queue, &c, now)
	notify := t.hasSubscriptions(project, queue)
	var seen map[string]struct{}
	if len(msgs) > 1 {
		seen = make(map[string]struct{}, len(msgs))
	}
	for i := range msgs {
		nm := &msgs[i]
		if seen != nil {
			if _, dup := seen[nm.ID]; dup {
				continue
			}
			seen[nm.ID] = struct{}{}
		}
		ttl := nm.TTL
		if ttl == 0 {
			ttl = q.Settings.DefaultTTL
		}
		if ttl == 0 {
			ttl = defaultTTL
		}
		var delay int64
		if q.Settings.DefaultDelay != 0 {
			delay = nm.Delay
			if delay < 0 {
				delay = q.Settings.DefaultDelay
			}
		}
		m := &Message{
			Seq: c.NextSeq, ID: nm.ID, CreatedAt: now,
			ExpiresAt: Deadline(now, ttl), VisibleAt: Deadline(now, delay),
			TTL: ttl, Delay: delay, ClientID: clientID, Checksum: nm.Checksum, Body: nm.Body,
		}
		c.NextSeq++
		c.Stored++
		t.insertMessage(project, queue, &c, m)
		if notify {
			t.putNotification(project, queue, m, q.Settings.DefaultDelay != 0)
		}
		if m.VisibleAt <= now {
			visible++
		}
	}
	t.putCounters(project, queue, c)
	return visible
}

func must3(v uint64, ok bool, err error) (uint64, bool) {
	if err != nil {
		panic(fmt.Sprintf("store: read inside apply: %v", err))
	}
	return v, ok
}

// insertMessage writes a message and its indexes; the caller writes c.
func (t *Txn) insertMessage(project, queue string, c *counters, m *Message) {
	t.putMessage(project, queue, m)
	if t.indexed() {
		t.addEntry(project, queue, c, m.Seq, slotOf(m))
	}
	t.set(messageIDKey(project, queue, m.ID), binary.BigEndian.AppendUint64(nil, m.Seq))
	t.set(msgExpiryKey(m.ExpiresAt, project, queue, m.Seq), []byte(m.ID))
	t.noteExpiry(m.ExpiresAt)
}

// removeMessage deletes a message and its indexes and updates the counters.
func (t *Txn) removeMessage(project, queue string, m *Message) {
	t.del(messageKey(project, queue, m.Seq))
	t.del(messageIDKey(project, queue, m.ID))
	t.del(msgExpiryKey(m.ExpiresAt, project, queue, m.Seq))
	c := must(t.r.counters(project, queue))
	if c.Stored > 0 {
		c.Stored--
	}
	if t.indexed() {
		t.dropEntry(project, queue, &c, m.Seq, slotOf(m))
	}
	t.putCounters(project, queue, c)
}

// setExpiry moves a message's expiry and its index entry.
func (t *Txn) setExpiry(project, queue string, m *Message, expiresAt int64) {
	t.del(msgExpiryKey(m.ExpiresAt, project, queue, m.Seq))
	m.ExpiresAt = expiresAt
	t.set(msgExpiryKey(m.ExpiresAt, project, queue, m.Seq), []byte(m.ID))
	t.noteExpiry(m.ExpiresAt)
}

// DeleteOutcome is the result of deleting one message (contract §6.6).
type DeleteOutcome int

// Outcomes of DeleteMessage and DeleteMessages.
const (
	Deleted          DeleteOutcome = iota // deleted, or there was nothing to delete
	DeniedClaimed                         // claimed, and no or another claim id given
	DeniedNotClaimed                      // a claim id was given but the message is not claimed
	DeniedBadClaim                        // the claim id cannot name a claim
)

// DeleteMessage deletes one message, enforcing the claim rules: a claimed
// message needs its claim id, and a claim id needs a claimed message.
// claimIDValid says whether claimID has the shape of a claim id.
func (t *Txn) DeleteMessage(project, queue, id, claimID string, claimIDValid bool, now int64) DeleteOutcome {
	m := must(t.r.messageByID(project, queue, id))
	if m == nil || m.ExpiresAt <= now {
		return Deleted
	}
	switch {
	case claimID == "":
		if m.Claimed(now) {
			return DeniedClaimed
		}
	case !claimIDValid:
		return DeniedBadClaim
	case !m.Claimed(now):
		return DeniedNotClaimed
	case m.ClaimID != claimID:
		return DeniedClaimed
	}
	t.removeMessage(project, queue, m)
	return Deleted
}

// DeleteMessages deletes the listed messages that exist. With requireClaims,
// every one of them must be held by an active claim among claimIDs, or
// nothing is deleted and DeniedClaimed is returned.
func (t *Txn) DeleteMessages(project, queue string, ids, claimIDs []string, requireClaims bool, now int64) DeleteOutcome {
	var found []*Message
	for _, id := range ids {
		m := must(t.r.messageByID(project, queue, id))
		if m == nil || m.ExpiresAt <= now {
			continue
		}
		found = append(found, m)
	}
	if requireClaims {
		allowed := make(map[string]bool, len(claimIDs))
		for _, c := range claimIDs {
			allowed[c] = true
		}
		for _, m := range found {
			if !m.Claimed(now) || !allowed[m.ClaimID] {
				return DeniedClaimed
			}
		}
	}
	for _, m := range found {
		// A message listed twice is found twice; remove it once.
		if v := must(t.r.messageBySeq(project, queue, m.Seq)); v != nil {
			t.removeMessage(project, queue, m)
		}
	}
	return Deleted
}

// advanceHead moves the queue's head hint to first, the lowest sequence
// number a scan from the head met. Claims and pops call it only when they
// write anyway, so one that takes nothing changes nothing.
func (t *Txn) advanceHead(project, queue string, first uint64) {
	c := must(t.r.counters(project, queue))
	if first > c.Head {
		c.Head = first
		t.putCounters(project, queue, c)
	}
}

// takeClaimable returns up to n of the oldest claimable messages, which
// the caller claims or removes, and the sequence number of the queue's
// first stored message for advanceHead.
func (t *Txn) takeClaimable(project, queue string, n int, now int64) ([]*Message, uint64) {
	if t.indexed() {
		out := t.takeReady(project, queue, n, now)
		if len(out) == 0 {
			return nil, 0
		}
		return out, must(t.r.firstMessageSeq(project, queue))
	}
	var out []*Message
	first, err := t.r.scanMessages(project, queue, 0, func(h msgHeader) bool { return claimable(h, now) }, func(m *Message) bool {
		out = append(out, m)
		return len(out) < n
	})
	if err != nil {
		panic(fmt.Sprintf("store: claim scan: %v", err))
	}
	return out, first
}

// promoteQueue promotes an existing queue's due waiting entries, so that
// the messages of a claim GC collects are ready again before the next
// claim or post on the queue.
func (t *Txn) promoteQueue(project, queue string, now int64) {
	if !t.indexed() {
		return
	}
	if q := must(t.r.queue(project, queue)); q == nil {
		return
	}
	c := must(t.r.counters(project, queue))
	before := c
	t.promote(project, queue, &c, now)
	if c != before {
		t.putCounters(project, queue, c)
	}
}

// claimable reports whether a message can be claimed or popped at now.
func claimable(h msgHeader, now int64) bool {
	return h.expiresAt() > now && h.claimExpiresAt() <= now && h.visibleAt() <= now
}

// PopMessages removes and returns up to n of the oldest claimable messages.
func (t *Txn) PopMessages(project, queue string, n int, now int64) []*Message {
	if n <= 0 {
		return nil // the scan below takes one message before it checks n
	}
	out, first := t.takeClaimable(project, queue, n, now)
	if len(out) > 0 {
		t.advanceHead(project, queue, first)
	}
	for _, m := range out {
		t.removeMessage(project, queue, m)
	}
	return out
}

// CreateClaim claims up to limit of the oldest claimable messages. In a
// queue with a dead-letter queue, a selected message that was already
// claimed MaxClaimCount times moves there instead. It returns the claimed
// messages (none if nothing could be claimed; then no claim is stored).
func (t *Txn) CreateClaim(project, queue, claimID string, ttl, grace int64, limit int, now int64) []*Message {
	if limit <= 0 {
		return nil // the scan below takes one message before it checks limit
	}
	q := must(t.r.queue(project, queue))
	if q == nil {
		return nil
	}
	dlq := q.Settings.DeadLetterEnabled() && q.Settings.DeadLetter != queue
	selected, first := t.takeClaimable(project, queue, limit, now)
	if len(selected) > 0 {
		t.advanceHead(project, queue, first)
	}
	claimExpires := Deadline(now, ttl)
	var claimed []*Message
	for _, m := range selected {
		if dlq && m.ClaimCount >= q.Settings.MaxClaimCount {
			t.moveToDeadLetter(project, queue, q.Settings, m, now)
			continue
		}
		before := slotOf(m)
		m.ClaimID = claimID
		m.ClaimExpiresAt = claimExpires
		m.ClaimCount++
		t.extendForClaim(project, queue, m, now, ttl, grace)
		t.putMessage(project, queue, m)
		t.reslot(project, queue, m.Seq, before, slotOf(m))
		claimed = append(claimed, m)
	}
	if len(claimed) == 0 {
		return nil
	}
	c := &Claim{ID: claimID, UpdatedAt: now, ExpiresAt: claimExpires, TTL: ttl, Grace: grace}
	for _, m := range claimed {
		c.Seqs = append(c.Seqs, m.Seq)
	}
	t.set(claimKey(project, queue, claimID), encodeClaim(c))
	t.set(claimExpiryKey(claimExpires, project, queue, claimID), nil)
	t.noteExpiry(claimExpires)
	return claimed
}

// extendForClaim makes a message outlive its claim (contract §7.7).
func (t *Txn) extendForClaim(project, queue string, m *Message, now, ttl, grace int64) {
	if m.ExpiresAt < Deadline(now, ttl) {
		t.setExpiry(project, queue, m, Deadline(now, addSeconds(ttl, grace)))
		m.TTL = addSeconds(ttl, grace)
	}
}

// moveToDeadLetter moves a message to the dead-letter queue: same id, body
// and claim count, a fresh expiry, and immediately claimable.
func (t *Txn) moveToDeadLetter(project, queue string, s QueueSettings, m *Message, now int64) {
	t.removeMessage(project, queue, m)
	t.ensureQueue(project, s.DeadLetter, now)
	if _, exists := must3(t.r.seqOf(project, s.DeadLetter, m.ID)); exists {
		return
	}
	c := must(t.r.counters(project, s.DeadLetter))
	moved := *m
	moved.Seq = c.NextSeq
	moved.ClaimID, moved.ClaimExpiresAt = "", 0
	if s.DeadLetterTTL > 0 {
		moved.TTL = s.DeadLetterTTL
	}
	moved.ExpiresAt = Deadline(now, moved.TTL)
	moved.VisibleAt = now
	c.NextSeq++
	c.Stored++
	t.promote(project, s.DeadLetter, &c, now)
	t.insertMessage(project, s.DeadLetter, &c, &moved)
	t.putCounters(project, s.DeadLetter, c)
}

// RenewClaim restarts an active claim with a new TTL and grace, extending
// its messages again. It reports false if the claim is missing or expired.
func (t *Txn) RenewClaim(project, queue, claimID string, ttl, grace, now int64) bool {
	c := must(t.r.claim(project, queue, claimID))
	if c == nil || c.ExpiresAt <= now {
		return false
	}
	t.del(claimExpiryKey(c.ExpiresAt, project, queue, claimID))
	c.UpdatedAt, c.ExpiresAt, c.TTL, c.Grace = now, Deadline(now, ttl), ttl, grace
	t.set(claimKey(project, queue, claimID), encodeClaim(c))
	t.set(claimExpiryKey(c.ExpiresAt, project, queue, claimID), nil)
	t.noteExpiry(c.ExpiresAt)
	for _, seq := range c.Seqs {
		m := must(t.r.messageBySeq(project, queue, seq))
		if m == nil || m.ClaimID != claimID || !m.Claimed(now) {
			continue
		}
		before := slotOf(m)
		m.ClaimExpiresAt = c.ExpiresAt
		t.extendForClaim(project, queue, m, now, ttl, grace)
		t.putMessage(project, queue, m)
		t.reslot(project, queue, m.Seq, before, slotOf(m))
	}
	return true
}

// ReleaseClaim ends a claim; its messages become claimable at once. The
// messages keep the claim id, which pop reports as their last claim.
func (t *Txn) ReleaseClaim(project, queue, claimID string, now int64) {
	c := must(t.r.claim(project, queue, claimID))
	if c == nil {
		return
	}
	for _, seq := range c.Seqs {
		m := must(t.r.messageBySeq(project, queue, seq))
		if m == nil || m.ClaimID != claimID || m.ClaimExpiresAt == 0 {
			continue
		}
		before := slotOf(m)
		m.ClaimExpiresAt = 0
		t.putMessage(project, queue, m)
		t.reslot(project, queue, m.Seq, before, slotOf(m))
	}
	t.del(claimKey(project, queue, claimID))
	t.del(claimExpiryKey(c.ExpiresAt, project, queue, claimID))
}

// CollectGarbage deletes up to limit expired messages and claims (and stale
// expiry entries left by deleted queues) as of now. It returns how many
// index entries it processed; fewer than limit means it caught up.
func (t *Txn) CollectGarbage(now int64, limit int) int {
	done := 0
	done += t.collect(spaceMsgExpiry, now, limit-done, func(e expiryEntry, id []byte) {
		if len(e.tail) != 8 {
			return
		}
		seq := binary.BigEndian.Uint64(e.tail)
		m := must(t.r.messageBySeq(e.project, e.queue, seq))
		if m != nil && m.ID == string(id) && m.ExpiresAt == e.at {
			t.removeMessage(e.project, e.queue, m)
		}
	})
	if done < limit {
		done += t.collectSubscriptions(now, limit-done)
	}
	if done < limit {
		done += t.collect(spaceClaimExpiry, now, limit-done, func(e expiryEntry, _ []byte) {
			c := must(t.r.claim(e.project, e.queue, string(e.tail)))
			if c != nil && c.ExpiresAt == e.at {
				t.del(claimKey(e.project, e.queue, c.ID))
				t.promoteQueue(e.project, e.queue, now)
			}
		})
	}
	if done < limit {
		// Every entry due by now was processed: later scans start here.
		t.setWatermark(now)
	}
	return done
}

func (t *Txn) collect(space byte, now int64, limit int, fn func(expiryEntry, []byte)) int {
	if limit <= 0 {
		return 0
	}
	it, err := t.r.iter(expiryFrom(space, t.watermark()), expiryUpTo(space, now))
	if err != nil {
		panic(fmt.Sprintf("store: gc iterator: %v", err))
	}
	type entry struct {
		key, val []byte
	}
	var entries []entry
	for ok := it.First(); ok && len(entries) < limit; ok = it.Next() {
		entries = append(entries, entry{append([]byte(nil), it.Key()...), append([]byte(nil), it.Value()...)})
	}
	if err := it.Close(); err != nil {
		panic(fmt.Sprintf("store: gc iterator: %v", err))
	}
	for _, e := range entries {
		if d, ok := decodeExpiryKey(e.key); ok {
			fn(d, e.val)
		}
		t.del(e.key)
	}
	return len(entries)
}

// RaiseCommandLevel records that the log holds a command of a gated type
// (fsm.UngatedMax and below are not recorded): the command gate admits
// every type up to the highest recorded without asking the voters again.
func (t *Txn) RaiseCommandLevel(level byte) {
	if v, ok := must2(t.r.get(keyCommandLevel)); ok && len(v) == 1 && v[0] >= level {
		return
	}
	t.set(keyCommandLevel, []byte{level})
}

// SetSecretIfAbsent stores the cluster's signing secret unless one exists.
func (t *Txn) SetSecretIfAbsent(secret []byte) bool {
	if _, ok := must2(t.r.get(keySecret)); ok {
		return false
	}
	t.set(keySecret, secret)
	return true
}
