package store

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
)

// The depth index keeps claims, stats and listings of a queue independent
// of how many of its messages are claimed or delayed (DESIGN.md, "Depth").
// Every stored message has exactly one entry: a ready entry r|p|q|seq if
// its slot time is at or before the queue's promotion watermark, else a
// waiting entry w|p|q|kind|at|seq, kind saying what it waits for.

// DepthIndexFormat is the format of the depth index this build keeps,
// stored as the value of its marker key.
const DepthIndexFormat byte = 1

// Kinds of waiting entry (the byte after the queue in its key).
const (
	waitDelay byte = 0 // not visible yet
	waitClaim byte = 1 // held by a claim
)

// waitKinds are the kinds of waiting entry.
var waitKinds = [...]byte{waitDelay, waitClaim}

// slot is when a message next becomes claimable and what it waits for
// until then.
type slot struct {
	at    int64
	claim bool
}

func slotFor(visibleAt, claimExpiresAt int64) slot {
	if claimExpiresAt > visibleAt {
		return slot{at: claimExpiresAt, claim: true}
	}
	return slot{at: visibleAt}
}

func slotOf(m *Message) slot { return slotFor(m.VisibleAt, m.ClaimExpiresAt) }

func (s slot) kind() byte {
	if s.claim {
		return waitClaim
	}
	return waitDelay
}

// count returns the counter of the queue's waiting entries of a kind.
func (c *counters) count(kind byte) *uint64 {
	if kind == waitClaim {
		return &c.InClaim
	}
	return &c.InDelay
}

// indexed reports whether the store keeps the depth index, as this
// transaction sees it.
func (t *Txn) indexed() bool {
	if !t.depthLoaded {
		_, t.depthOn = must2(t.r.get(keyDepthIndex))
		t.depthLoaded = true
	}
	return t.depthOn
}

// addEntry indexes message seq at slot s. The caller writes c.
func (t *Txn) addEntry(project, queue string, c *counters, seq uint64, s slot) {
	if s.at <= c.Promoted {
		t.set(readyKey(project, queue, seq), nil)
		c.ReadyHead = min(c.ReadyHead, seq)
		return
	}
	t.set(waitingKey(project, queue, s.kind(), s.at, seq), nil)
	*c.count(s.kind())++
	c.NextDue = min(c.NextDue, s.at)
}

// dropEntry removes the entry of message seq indexed at slot s. The caller
// writes c.
func (t *Txn) dropEntry(project, queue string, c *counters, seq uint64, s slot) {
	if s.at <= c.Promoted {
		t.del(readyKey(project, queue, seq))
		return
	}
	t.del(waitingKey(project, queue, s.kind(), s.at, seq))
	if n := c.count(s.kind()); *n > 0 {
		*n--
	}
}

// reslot moves message seq's entry from slot before to slot after.
func (t *Txn) reslot(project, queue string, seq uint64, before, after slot) {
	if before == after || !t.indexed() {
		return
	}
	c := must(t.r.counters(project, queue))
	t.dropEntry(project, queue, &c, seq, before)
	t.addEntry(project, queue, &c, seq, after)
	t.putCounters(project, queue, c)
}

// promote turns the queue's waiting entries due by now into ready entries
// and raises the watermark to now. It costs the entries it moves (each
// moves once per claim or delay) plus one seek; nothing when no entry can
// be due (NextDue). The caller writes c.
func (t *Txn) promote(project, queue string, c *counters, now int64) {
	if !t.indexed() || now <= c.Promoted {
		return
	}
	if now < c.NextDue {
		c.Promoted = now
		return
	}
	c.NextDue = Never
	for _, kind := range waitKinds {
		for _, seq := range t.promoteKind(project, queue, kind, c, now) {
			t.set(readyKey(project, queue, seq), nil)
			c.ReadyHead = min(c.ReadyHead, seq)
		}
	}
	c.Promoted = now
}

// promoteKind deletes the queue's waiting entries of a kind due by now,
// returns their sequence numbers, and lowers c.NextDue to the first one
// left.
func (t *Txn) promoteKind(project, queue string, kind byte, c *counters, now int64) []uint64 {
	prefix := waitingKind(project, queue, kind)
	it, err := t.r.iter(waitingFrom(project, queue, kind, c.Promoted), prefixEnd(prefix))
	if err != nil {
		panic(fmt.Sprintf("store: promote iterator: %v", err))
	}
	var seqs []uint64
	var keys [][]byte
	for ok := it.First(); ok; ok = it.Next() {
		at, seq, ok := decodeWaiting(it.Key()[len(prefix):])
		if !ok {
			panic(fmt.Sprintf("store: corrupt waiting key %x", it.Key()))
		}
		if at > now {
			c.NextDue = min(c.NextDue, at)
			break
		}
		keys = append(keys, append([]byte(nil), it.Key()...))
		seqs = append(seqs, seq)
	}
	if err := it.Close(); err != nil {
		panic(fmt.Sprintf("store: promote iterator: %v", err))
	}
	for _, k := range keys {
		t.del(k)
	}
	n := c.count(kind)
	*n -= min(*n, uint64(len(keys)))
	return seqs
}

// decodeWaiting reads at|seq, the part of a waiting key after its kind.
func decodeWaiting(b []byte) (int64, uint64, bool) {
	if len(b) != 16 {
		return 0, 0, false
	}
	return int64(binary.BigEndian.Uint64(b)), binary.BigEndian.Uint64(b[8:]), true
}

// takeReady returns up to n of the oldest claimable messages from the
// ready entries after promoting the queue to now. The caller claims or
// removes every message returned, so each leaves the ready space; the
// queue's ReadyHead moves past them.
func (t *Txn) takeReady(project, queue string, n int, now int64) []*Message {
	c := must(t.r.counters(project, queue))
	before := c
	t.promote(project, queue, &c, now)
	prefix := queueScoped(spaceReady, project, queue)
	it, err := t.r.iter(appendUint64(append([]byte(nil), prefix...), c.ReadyHead), prefixEnd(prefix))
	if err != nil {
		panic(fmt.Sprintf("store: ready iterator: %v", err))
	}
	var out []*Message
	var stays, last uint64 // the first entry left behind; the last one taken
	for ok := it.First(); ok && len(out) < n; ok = it.Next() {
		seq := binary.BigEndian.Uint64(it.Key()[len(prefix):])
		m := must(t.r.messageBySeq(project, queue, seq))
		if m == nil {
			panic(fmt.Sprintf("store: ready entry %x without its message", it.Key()))
		}
		// Expired messages wait for GC; a message promoted by a clock
		// ahead of this entry's is claimable later.
		if m.ExpiresAt <= now || m.ClaimExpiresAt > now || m.VisibleAt > now {
			if stays == 0 {
				stays = seq
			}
			continue
		}
		out = append(out, m)
		last = seq
	}
	if err := it.Close(); err != nil {
		panic(fmt.Sprintf("store: ready iterator: %v", err))
	}
	switch {
	case stays != 0:
		c.ReadyHead = max(c.ReadyHead, stays)
	case last != 0:
		c.ReadyHead = max(c.ReadyHead, last+1)
	}
	if c != before {
		t.putCounters(project, queue, c)
	}
	return out
}

// firstMessageSeq returns the sequence number of the queue's first stored
// message at or after its head hint (0 if none).
func (r reader) firstMessageSeq(project, queue string) (uint64, error) {
	c, err := r.counters(project, queue)
	if err != nil {
		return 0, err
	}
	prefix := queueScoped(spaceMessage, project, queue)
	it, err := r.iter(appendUint64(append([]byte(nil), prefix...), c.Head), prefixEnd(prefix))
	if err != nil {
		return 0, err
	}
	defer it.Close()
	if !it.First() {
		return 0, it.Error()
	}
	return binary.BigEndian.Uint64(it.Key()[len(prefix):]), nil
}

// BuildDepthIndex builds the depth index from the stored messages, with
// every queue promoted to now, and from then on every mutation keeps it.
// It reports false, and changes nothing, if the index exists. Its cost is
// one pass over every message header, once in the store's life.
func (t *Txn) BuildDepthIndex(now int64) bool {
	if t.indexed() {
		return false
	}
	it, err := t.r.iter([]byte{spaceMessage}, []byte{spaceMessage + 1})
	if err != nil {
		panic(fmt.Sprintf("store: index build iterator: %v", err))
	}
	var project, queue string
	var scope []byte
	var c counters
	open := false
	flush := func() {
		if open {
			t.putCounters(project, queue, c)
		}
	}
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if !open || len(k) != len(scope)+8 || string(k[:len(scope)]) != string(scope) {
			flush()
			p, rest, ok1 := readString(k[1:])
			q, _, ok2 := readString(rest)
			if !ok1 || !ok2 {
				panic(fmt.Sprintf("store: corrupt message key %x", k))
			}
			project, queue, open = p, q, true
			scope = queueScoped(spaceMessage, project, queue)
			c = must(t.r.counters(project, queue))
			c.InClaim, c.InDelay, c.ReadyHead, c.Promoted, c.NextDue = 0, 0, 0, now, Never
		}
		h := msgHeader(it.Value())
		if !h.valid() {
			panic(fmt.Sprintf("store: corrupt message record at %x", k))
		}
		t.addEntry(project, queue, &c, binary.BigEndian.Uint64(k[len(scope):]), slotFor(h.visibleAt(), h.claimExpiresAt()))
	}
	if err := it.Close(); err != nil {
		panic(fmt.Sprintf("store: index build iterator: %v", err))
	}
	flush()
	t.set(keyDepthIndex, []byte{DepthIndexFormat})
	t.depthOn, t.depthLoaded = true, true
	return true
}

// DepthIndexed reports whether the store keeps the depth index.
func (v *View) DepthIndexed() (bool, error) {
	_, ok, err := v.r.get(keyDepthIndex)
	return ok, err
}

// NextClaimable returns a time at or before which none of the queue's
// claimed or delayed messages becomes claimable again (a claim runs out,
// a delay ends): Never if it holds none, 0 if the store keeps no depth
// index (nothing is known). A waiting claim sleeps until then at most.
func (v *View) NextClaimable(project, queue string) (int64, error) {
	indexed, err := v.DepthIndexed()
	if err != nil || !indexed {
		return 0, err
	}
	c, err := v.r.counters(project, queue)
	if err != nil {
		return 0, err
	}
	if c.InClaim == 0 && c.InDelay == 0 {
		return Never, nil
	}
	return c.NextDue, nil
}

// waitingSeqs returns the sequence numbers of the queue's waiting entries
// of a kind whose time is in (from, to], sorted.
func (v *View) waitingSeqs(project, queue string, kind byte, from, to int64) ([]uint64, error) {
	if to <= from {
		return nil, nil
	}
	prefix := waitingKind(project, queue, kind)
	it, err := v.r.iter(waitingFrom(project, queue, kind, from), waitingUpTo(project, queue, kind, to))
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var seqs []uint64
	for ok := it.First(); ok; ok = it.Next() {
		_, seq, ok := decodeWaiting(it.Key()[len(prefix):])
		if !ok {
			return nil, fmt.Errorf("store: corrupt waiting key %x", it.Key())
		}
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	return seqs, it.Error()
}

// dueWaiting returns the queue's waiting entries of a kind due by now that
// promotion has not reached yet, sorted by sequence number.
func (v *View) dueWaiting(project, queue string, kind byte, c counters, now int64) ([]uint64, error) {
	if now < c.NextDue {
		return nil, nil
	}
	return v.waitingSeqs(project, queue, kind, c.Promoted, now)
}

// claimedIndexed counts the queue's claimed messages from the index: the
// waiting entries of kind claim, less those whose claim expired by now.
func (v *View) claimedIndexed(project, queue string, now int64) (int64, error) {
	c, err := v.r.counters(project, queue)
	if err != nil {
		return 0, err
	}
	expired, err := v.dueWaiting(project, queue, waitClaim, c, now)
	if err != nil {
		return 0, err
	}
	return max(int64(c.InClaim)-int64(len(expired)), 0), nil
}

// listFromIndex lists like ListMessages with claimed messages excluded,
// from the ready entries merged with the waiting entries that may be
// listed: those due by now, and with IncludeDelayed every delayed one. It
// reports false, and lists nothing, when scanning the queue costs less:
// with IncludeDelayed the index reads every delayed entry, the scan at
// most the claimed messages ahead of the page.
func (v *View) listFromIndex(project, queue string, now int64, o ListOptions) ([]*Message, bool, error) {
	c, err := v.r.counters(project, queue)
	if err != nil {
		return nil, false, err
	}
	if o.IncludeDelayed && c.InDelay >= c.InClaim {
		return nil, false, nil
	}
	var extra []uint64
	for _, kind := range waitKinds {
		var seqs []uint64
		if kind == waitDelay && o.IncludeDelayed {
			seqs, err = v.waitingSeqs(project, queue, kind, c.Promoted, Never)
		} else {
			seqs, err = v.dueWaiting(project, queue, kind, c, now)
		}
		if err != nil {
			return nil, false, err
		}
		extra = append(extra, seqs...)
	}
	slices.Sort(extra)
	i, _ := slices.BinarySearch(extra, o.AfterSeq+1)
	extra = extra[i:]
	prefix := queueScoped(spaceReady, project, queue)
	from := max(o.AfterSeq+1, c.ReadyHead)
	it, err := v.r.iter(appendUint64(append([]byte(nil), prefix...), from), prefixEnd(prefix))
	if err != nil {
		return nil, false, err
	}
	defer it.Close()
	var out []*Message
	ok := it.First()
	for len(out) < o.Limit && (ok || len(extra) > 0) {
		seq := uint64(math.MaxUint64)
		if ok {
			seq = binary.BigEndian.Uint64(it.Key()[len(prefix):])
		}
		if len(extra) > 0 && extra[0] < seq {
			seq, extra = extra[0], extra[1:]
		} else {
			ok = it.Next()
		}
		m, err := v.r.messageBySeq(project, queue, seq)
		if err != nil {
			return nil, false, err
		}
		if m == nil || m.ExpiresAt <= now || m.ClaimExpiresAt > now || (!o.IncludeDelayed && m.VisibleAt > now) {
			continue
		}
		if !o.Echo && m.ClientID == o.ClientID {
			continue
		}
		out = append(out, m)
	}
	return out, true, it.Error()
}
