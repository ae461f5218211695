package store

import "encoding/binary"

// Key spaces. Every key starts with one of these bytes; DESIGN.md lists what
// follows. Strings inside keys are escaped (see appendString) so composite
// keys sort by their components and no component can run into the next.
const (
	spaceMeta         byte = 0x01 // node-independent replicated settings and the applied index
	spaceProject      byte = 'p'  // p|project → number of queues
	spaceQueue        byte = 'q'  // q|project|queue → queue record
	spaceCounter      byte = 'c'  // c|project|queue → next sequence, stored message count
	spaceMessage      byte = 'm'  // m|project|queue|seq → message record
	spaceMessageID    byte = 'i'  // i|project|queue|id → seq
	spaceClaim        byte = 'k'  // k|project|queue|claimID → claim record
	spaceMsgExpiry    byte = 'x'  // x|expiresAt|project|queue|seq → message id
	spaceClaimExpiry  byte = 'y'  // y|expiresAt|project|queue|claimID → nothing
	spaceSubscription byte = 's'  // s|project|queue|id → subscription record
	spaceSubscriber   byte = 'u'  // u|project|queue|subscriber URI → subscription id
	spaceSubExpiry    byte = 'z'  // z|expiresAt|project|queue|id → nothing
	spaceCursor       byte = 'd'  // d|project|queue|id → last message seq handed to the subscriber
	spaceOutbox       byte = 'n'  // n|project|queue|seq → notification of a posted message
	spaceRetiredTrust byte = 't'  // t|trust id → nothing: a Keystone trust no subscription holds any more
	spaceReady        byte = 'r'  // r|project|queue|seq → nothing: a message claimable once its queue was promoted
	spaceWaiting      byte = 'w'  // w|project|queue|kind|availableAt|seq → nothing: a message claimed or delayed
	spacePool         byte = 'P'  // P|pool → pool record (the catalog, docs/pools.md)
	spaceFlavor       byte = 'F'  // F|project|flavor → flavor record (the catalog)
	spacePlacement    byte = 'L'  // L|project|queue → pool name (the catalog)
	spacePlaced       byte = 'B'  // B|pool|project|queue → nothing: placements by pool (the catalog)
)

var (
	keyApplied = []byte{spaceMeta, 'a'}
	keySecret  = []byte{spaceMeta, 's'}
	// keyGCLow holds the GC watermark: every expiry entry due at or before
	// it has been processed, so expiry scans start after it instead of
	// walking the tombstones of entries deleted before they were due.
	keyGCLow = []byte{spaceMeta, 'g'}
	// keyCommandLevel holds the highest gated command type the log has
	// committed (one byte; absent: none).
	keyCommandLevel = []byte{spaceMeta, 'l'}
	// keyDepthIndex is present once the depth index (spaces r and w) was
	// built; from then on every mutation keeps it (DESIGN.md, "Depth").
	keyDepthIndex = []byte{spaceMeta, 'r'}
)

// appendString appends s escaped so that it sorts like s and ends with a
// terminator that sorts before every byte a string can continue with:
// 0x00 becomes 0x00 0xFF and the string ends with 0x00 0x01.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			b = append(b, 0, 0xFF)
			continue
		}
		b = append(b, s[i])
	}
	return append(b, 0, 1)
}

// readString decodes an escaped string from the front of b and returns it
// with the rest of b. ok is false if b holds no terminated string.
func readString(b []byte) (s string, rest []byte, ok bool) {
	out := make([]byte, 0, 16)
	for i := 0; i < len(b); i++ {
		if b[i] != 0 {
			out = append(out, b[i])
			continue
		}
		if i+1 >= len(b) {
			return "", nil, false
		}
		switch b[i+1] {
		case 0xFF:
			out = append(out, 0)
			i++
		case 1:
			return string(out), b[i+2:], true
		default:
			return "", nil, false
		}
	}
	return "", nil, false
}

func appendUint64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }

// prefixEnd returns the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xFF {
			end[i]++
			return end[:i+1]
		}
	}
	return nil // p is all 0xFF: no upper bound
}

func projectKey(project string) []byte {
	return appendString([]byte{spaceProject}, project)
}

func queuePrefix(project string) []byte {
	return appendString([]byte{spaceQueue}, project)
}

func queueKey(project, queue string) []byte {
	return appendString(queuePrefix(project), queue)
}

func counterKey(project, queue string) []byte {
	return appendString(appendString([]byte{spaceCounter}, project), queue)
}

// queueScoped returns space|project|queue, the prefix of every key of that
// space that belongs to the queue.
func queueScoped(space byte, project, queue string) []byte {
	b := make([]byte, 0, 2+len(project)+len(queue)+4+8)
	b = append(b, space)
	b = appendString(b, project)
	return appendString(b, queue)
}

func messageKey(project, queue string, seq uint64) []byte {
	return appendUint64(queueScoped(spaceMessage, project, queue), seq)
}

func messageIDKey(project, queue, id string) []byte {
	return append(queueScoped(spaceMessageID, project, queue), id...)
}

func claimKey(project, queue, claimID string) []byte {
	return append(queueScoped(spaceClaim, project, queue), claimID...)
}

func msgExpiryKey(expiresAt int64, project, queue string, seq uint64) []byte {
	b := appendUint64([]byte{spaceMsgExpiry}, uint64(expiresAt))
	b = appendString(b, project)
	b = appendString(b, queue)
	return appendUint64(b, seq)
}

func claimExpiryKey(expiresAt int64, project, queue, claimID string) []byte {
	b := appendUint64([]byte{spaceClaimExpiry}, uint64(expiresAt))
	b = appendString(b, project)
	b = appendString(b, queue)
	return append(b, claimID...)
}

func readyKey(project, queue string, seq uint64) []byte {
	return appendUint64(queueScoped(spaceReady, project, queue), seq)
}

func waitingKey(project, queue string, kind byte, at int64, seq uint64) []byte {
	return appendUint64(appendUint64(waitingKind(project, queue, kind), uint64(at)), seq)
}

// waitingKind returns the prefix of the queue's waiting entries of a kind.
func waitingKind(project, queue string, kind byte) []byte {
	return append(queueScoped(spaceWaiting, project, queue), kind)
}

// waitingFrom returns the inclusive lower bound of the queue's waiting
// entries of a kind available after promoted.
func waitingFrom(project, queue string, kind byte, promoted int64) []byte {
	return appendUint64(waitingKind(project, queue, kind), uint64(promoted)+1)
}

// waitingUpTo returns the exclusive upper bound of the queue's waiting
// entries of a kind available at or before now.
func waitingUpTo(project, queue string, kind byte, now int64) []byte {
	return appendUint64(waitingKind(project, queue, kind), uint64(now)+1)
}

func subscriptionKey(project, queue, id string) []byte {
	return append(queueScoped(spaceSubscription, project, queue), id...)
}

func subscriberKey(project, queue, subscriber string) []byte {
	return append(queueScoped(spaceSubscriber, project, queue), subscriber...)
}

func cursorKey(project, queue, id string) []byte {
	return append(queueScoped(spaceCursor, project, queue), id...)
}

func outboxKey(project, queue string, seq uint64) []byte {
	return appendUint64(queueScoped(spaceOutbox, project, queue), seq)
}

// retiredTrustKey is the key of a retired trust. The id is the whole
// rest of the key, so the space lists in id order.
func retiredTrustKey(trustID string) []byte {
	return append([]byte{spaceRetiredTrust}, trustID...)
}

func subExpiryKey(expiresAt int64, project, queue, id string) []byte {
	b := appendUint64([]byte{spaceSubExpiry}, uint64(expiresAt))
	b = appendString(b, project)
	b = appendString(b, queue)
	return append(b, id...)
}

// expiryEntry is a decoded x|, y| or z| key.
type expiryEntry struct {
	at      int64
	project string
	queue   string
	tail    []byte // seq (8 bytes) for messages, claim id for claims
}

func decodeExpiryKey(k []byte) (expiryEntry, bool) {
	if len(k) < 9 {
		return expiryEntry{}, false
	}
	e := expiryEntry{at: int64(binary.BigEndian.Uint64(k[1:9]))}
	var ok bool
	rest := k[9:]
	if e.project, rest, ok = readString(rest); !ok {
		return e, false
	}
	if e.queue, rest, ok = readString(rest); !ok {
		return e, false
	}
	e.tail = rest
	return e, true
}

// expiryFrom returns the inclusive lower bound of space's expiry entries
// due after the GC watermark low.
func expiryFrom(space byte, low int64) []byte {
	return appendUint64([]byte{space}, uint64(low)+1)
}

// expiryUpTo returns the exclusive upper bound of space's expiry entries at
// or before now.
func expiryUpTo(space byte, now int64) []byte {
	return appendUint64([]byte{space}, uint64(now)+1)
}
