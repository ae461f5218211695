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
// waiting entry w|p|q|at|seq whose value says what it waits for.

// DepthIndexFormat is the format of the depth index this build keeps,
// stored as the value of its marker key.
const DepthIndexFormat byte = 1

// Kinds of waiting entry (the entry's one-byte value).
const (
	waitDelay byte = 0 // not visible yet
	waitClaim byte = 1 // held by a claim
)

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
	kind := waitDelay
	if s.claim {
		kind = waitClaim
		c.InClaim++
	}
	t.set(waitingKey(project, queue, s.at, seq), []byte{kind})
	c.NextDue = min(c.NextDue, s.at)
}

// dropEntry removes the entry of message seq indexed at slot s. The caller
// writes c.
func (t *Txn) dropEntry(project, queue string, c *counters, seq uint64, s slot) {
	if s.at <= c.Promoted {
		t.del(readyKey(project, queue, seq))
		return
	}
	t.del(waitingKey(project, queue, s.at, seq))
	if s.claim && c.InClaim > 0 {
		c.InClaim--
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
	prefix := queueScoped(spaceWaiting, project, queue)
	it, err := t.r.iter(waitingFrom(project, queue, c.Promoted), prefixEnd(prefix))
	if err != nil {
		panic(fmt.Sprintf("store: promote iterator: %v", err))
	}
	type due struct {
		key  []byte
		seq  uint64
		kind byte
	}
	var dues []due
	c.NextDue = Never
	for ok := it.First(); ok; ok = it.Next() {
		at, seq, ok := decodeWaiting(it.Key()[len(prefix):])
		if !ok {
			panic(fmt.Sprintf("store: corrupt waiting key %x", it.Key()))
		}
		if at > now {
			c.NextDue = at
			break
		}
		var kind byte
		if v := it.Value(); len(v) == 1 {
			kind = v[0]
		}
		dues = append(dues, due{append([]byte(nil), it.Key()...), seq, kind})
	}
	if err := it.Close(); err != nil {
		panic(fmt.Sprintf("store: promote iterator: %v", err))
	}
	for _, d := range dues {
		t.del(d.key)
		t.set(readyKey(project, queue, d.seq), nil)
		c.ReadyHead = min(c.ReadyHead, d.seq)
		if d.kind == waitClaim && c.InClaim > 0 {
			c.InClaim--
		}
	}
	c.Promoted = now
}

// decodeWaiting reads at|seq, the part of a waiting key after its queue.
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
			c.InClaim, c.ReadyHead, c.Promoted, c.NextDue = 0, 0, now, Never
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

// dueWaiting returns the queue's waiting entries due by now (promotion has
// not reached them yet), sorted by sequence number, and how many of them
// wait for a claim.
func (v *View) dueWaiting(project, queue string, c counters, now int64) ([]uint64, int64, error) {
	if now <= c.Promoted || now < c.NextDue {
		return nil, 0, nil
	}
	prefix := queueScoped(spaceWaiting, project, queue)
	it, err := v.r.iter(waitingFrom(project, queue, c.Promoted), waitingUpTo(project, queue, now))
	if err != nil {
		return nil, 0, err
	}
	defer it.Close()
	var seqs []uint64
	var claims int64
	for ok := it.First(); ok; ok = it.Next() {
		_, seq, ok := decodeWaiting(it.Key()[len(prefix):])
		if !ok {
			return nil, 0, fmt.Errorf("store: corrupt waiting key %x", it.Key())
		}
		seqs = append(seqs, seq)
		if v := it.Value(); len(v) == 1 && v[0] == waitClaim {
			claims++
		}
	}
	slices.Sort(seqs)
	return seqs, claims, it.Error()
}

// claimedIndexed counts the queue's claimed messages from the index: the
// waiting entries of kind claim, less those whose claim expired by now.
func (v *View) claimedIndexed(project, queue string, now int64) (int64, error) {
	c, err := v.r.counters(project, queue)
	if err != nil {
		return 0, err
	}
	_, expired, err := v.dueWaiting(project, queue, c, now)
	if err != nil {
		return 0, err
	}
	return max(int64(c.InClaim)-expired, 0), nil
}

// listReady lists like ListMessages with claimed and delayed messages
// excluded, from the ready entries merged with the waiting entries due by
// now, so that it costs the messages it returns or skips as expired, not
// the claimed or delayed ones.
func (v *View) listReady(project, queue string, now int64, o ListOptions) ([]*Message, error) {
	c, err := v.r.counters(project, queue)
	if err != nil {
		return nil, err
	}
	due, _, err := v.dueWaiting(project, queue, c, now)
	if err != nil {
		return nil, err
	}
	i, _ := slices.BinarySearch(due, o.AfterSeq+1)
	due = due[i:]
	prefix := queueScoped(spaceReady, project, queue)
	from := max(o.AfterSeq+1, c.ReadyHead)
	it, err := v.r.iter(appendUint64(append([]byte(nil), prefix...), from), prefixEnd(prefix))
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []*Message
	ok := it.First()
	for len(out) < o.Limit && (ok || len(due) > 0) {
		seq := uint64(math.MaxUint64)
		if ok {
			seq = binary.BigEndian.Uint64(it.Key()[len(prefix):])
		}
		if len(due) > 0 && due[0] < seq {
			seq, due = due[0], due[1:]
		} else {
			ok = it.Next()
		}
		m, err := v.r.messageBySeq(project, queue, seq)
		if err != nil {
			return nil, err
		}
		if m == nil || m.ExpiresAt <= now || m.ClaimExpiresAt > now || m.VisibleAt > now {
			continue
		}
		if !o.Echo && m.ClientID == o.ClientID {
			continue
		}
		out = append(out, m)
	}
	return out, it.Error()
}
