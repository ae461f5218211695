package clustertest

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// Anomaly kinds.
const (
	anomalyLost            = "lost-ack"           // an acknowledged post is gone without a delete or expiry
	anomalyPhantom         = "phantom-write"      // a post answered as failed took effect
	anomalyDuplicatePost   = "duplicate-post"     // one posted body stored under two message ids
	anomalyDoubleClaim     = "double-claim"       // two live claims held one message at once
	anomalyResurrected     = "resurrected-delete" // a message was returned after an acknowledged delete
	anomalyNonLinearizable = "non-linearizable"   // porcupine found no linearization
	anomalyDigest          = "digest-mismatch"    // replicas at the same index differ
	anomalyNotConverged    = "not-converged"      // replicas never reached the same index
	anomalyServerError     = "server-error"       // a 5xx other than 503
	anomalyNoRecovery      = "no-recovery"        // the cluster never recovered from a fault
)

// checkSlack absorbs clock granularity when operation windows are compared
// with server-side expiry times (same machine, same clock).
const checkSlack = int64(time.Second)

// anomaly is one thing a checker found wrong.
type anomaly struct {
	Kind    string `json:"kind"`
	Message string `json:"message,omitempty"` // body uid or message id concerned
	Ops     []int  `json:"ops,omitempty"`     // history operations that show it
	Detail  string `json:"detail"`
}

func (a anomaly) String() string {
	s := a.Kind
	if a.Message != "" {
		s += " " + a.Message
	}
	if len(a.Ops) > 0 {
		s += fmt.Sprintf(" ops %v", a.Ops)
	}
	return s + ": " + a.Detail
}

// checkResult is what the checkers found in one history.
type checkResult struct {
	Anomalies []anomaly

	AckedPosts     int // messages whose post was acknowledged
	AckedWrites    int // acknowledged posts, claims, deletes and releases
	StillThere     int // acknowledged messages in the final listing
	GoneByDelete   int // acknowledged messages gone after a recorded delete
	GoneByTTL      int // acknowledged messages gone after their TTL
	Unverifiable   int // acknowledged messages in a queue whose final listing is missing
	Lost           int
	Phantom        int
	DuplicatePosts int
	DoubleClaims   int
	Resurrected    int
	ServerErrors   int
	Lin            linResult
}

// count returns the number of anomalies of kind.
func (r *checkResult) count(kind string) int {
	n := 0
	for _, a := range r.Anomalies {
		if a.Kind == kind {
			n++
		}
	}
	return n
}

// historyIndex holds the lookups the checkers share.
type historyIndex struct {
	h           *chaosHistory
	bodyOfID    map[string]string          // message id -> body uid
	idsOfBody   map[string]map[string]bool // body uid -> message ids seen for it
	queueOfBody map[string]string          // body uid -> queue
	postOfBody  map[string]*opRecord       // body uid -> its post
	ttlOfBody   map[string]int             // body uid -> posted TTL
	claimsOfID  map[string][]*opRecord     // message id -> acknowledged claims that returned it
	claimOf     map[string]*opRecord       // claim id -> acknowledged claim
	releases    map[string][]*opRecord     // claim id -> releases that may have happened
	deletes     map[string][]*opRecord     // message id -> deletes that may have happened
	final       map[string]*finalListing   // queue -> final listing
	shortTTL    map[string]bool            // queues whose messages expire during the run
	seenAt      map[string][]seenAt        // message id -> operations that returned it
	lastReturn  int64                      // latest return time in the history
	unknownClms map[string][]*opRecord     // queue -> claims with unknown outcome
}

// seenAt is one operation that returned a message.
type seenAt struct {
	op   *opRecord
	seen seenMessage
}

// finalListing is the listing of one queue read after the run.
type finalListing struct {
	complete   bool
	ids        map[string]seenMessage
	firstCall  int64
	lastReturn int64
	ops        []int
}

func indexHistory(h *chaosHistory) *historyIndex {
	x := &historyIndex{
		h: h, bodyOfID: map[string]string{}, idsOfBody: map[string]map[string]bool{},
		queueOfBody: map[string]string{}, postOfBody: map[string]*opRecord{}, ttlOfBody: map[string]int{},
		claimsOfID: map[string][]*opRecord{}, claimOf: map[string]*opRecord{}, releases: map[string][]*opRecord{},
		deletes: map[string][]*opRecord{}, final: map[string]*finalListing{}, shortTTL: map[string]bool{},
		seenAt: map[string][]seenAt{}, unknownClms: map[string][]*opRecord{},
	}
	for _, q := range h.Header.ShortTTLQueues {
		x.shortTTL[q] = true
	}
	link := func(id, body string) {
		if id == "" || body == "" {
			return
		}
		x.bodyOfID[id] = body
		if x.idsOfBody[body] == nil {
			x.idsOfBody[body] = map[string]bool{}
		}
		x.idsOfBody[body][id] = true
	}
	for i := range h.Ops {
		op := &h.Ops[i]
		if op.Return > x.lastReturn {
			x.lastReturn = op.Return
		}
		mayHaveHappened := op.Outcome == outcomeUnknown || op.acked()
		switch op.Kind {
		case opPost:
			for j, b := range op.Bodies {
				x.postOfBody[b] = op
				x.queueOfBody[b] = op.Queue
				x.ttlOfBody[b] = op.TTL
				if op.acked() && j < len(op.IDs) {
					link(op.IDs[j], b)
				}
			}
		case opClaim:
			if op.acked() && op.ClaimID != "" {
				x.claimOf[op.ClaimID] = op
				for _, s := range op.Seen {
					x.claimsOfID[s.ID] = append(x.claimsOfID[s.ID], op)
				}
			}
			if op.Outcome == outcomeUnknown {
				x.unknownClms[op.Queue] = append(x.unknownClms[op.Queue], op)
			}
		case opRelease:
			if mayHaveHappened {
				x.releases[op.ClaimID] = append(x.releases[op.ClaimID], op)
			}
		case opDelete, opDeleteMany:
			// A 403 or 400 answer to a single delete is a definite refusal.
			if op.Outcome == outcomeUnknown || (op.acked() && op.Status == 204) {
				for _, id := range op.IDs {
					x.deletes[id] = append(x.deletes[id], op)
				}
			}
		}
		for _, s := range op.Seen {
			link(s.ID, s.Body)
			x.seenAt[s.ID] = append(x.seenAt[s.ID], seenAt{op: op, seen: s})
		}
		if op.Final && op.Kind == opList && op.acked() {
			f := x.final[op.Queue]
			if f == nil {
				f = &finalListing{ids: map[string]seenMessage{}, firstCall: op.Call}
				x.final[op.Queue] = f
			}
			f.firstCall = min(f.firstCall, op.Call)
			f.lastReturn = max(f.lastReturn, op.Return)
			f.complete = f.complete || op.FinalComplete
			f.ops = append(f.ops, op.ID)
			for _, s := range op.Seen {
				f.ids[s.ID] = s
			}
		}
	}
	for _, cs := range x.unknownClms {
		sort.Slice(cs, func(i, j int) bool { return cs[i].Call < cs[j].Call })
	}
	return x
}

// checkHistory runs every checker on h.
func checkHistory(h *chaosHistory, linTimeout time.Duration) *checkResult {
	x := indexHistory(h)
	r := &checkResult{}
	for i := range h.Ops {
		op := &h.Ops[i]
		if op.acked() && (op.Kind == opPost || op.Kind == opClaim || op.Kind == opDelete || op.Kind == opDeleteMany || op.Kind == opRelease) {
			r.AckedWrites++
		}
		if op.Status >= 500 && op.Status != 503 {
			r.ServerErrors++
			r.Anomalies = append(r.Anomalies, anomaly{Kind: anomalyServerError, Ops: []int{op.ID},
				Detail: fmt.Sprintf("%s %s on %s answered %d: %s", op.Transport, op.Kind, op.Node, op.Status, op.Error)})
		}
	}
	checkAcknowledgedPosts(x, r)
	checkDoubleClaims(x, r)
	checkResurrections(x, r)
	r.Lin = checkLinearizable(x, linTimeout)
	for _, b := range r.Lin.Illegal {
		r.Anomalies = append(r.Anomalies, anomaly{Kind: anomalyNonLinearizable, Message: b.Body, Ops: b.Ops, Detail: b.Detail})
	}
	if d := h.Header.Digest; d != nil && d.Problem != "" {
		kind := anomalyDigest
		if !d.Checked {
			kind = anomalyNotConverged
		}
		r.Anomalies = append(r.Anomalies, anomaly{Kind: kind, Detail: d.Problem})
	}
	for _, f := range h.Faults {
		if f.Recovered == 0 {
			r.Anomalies = append(r.Anomalies, anomaly{Kind: anomalyNoRecovery,
				Detail: fmt.Sprintf("%s of %v injected at %s: the cluster did not recover (%s)", f.Kind, f.Nodes, fmtOffset(f.Start), f.Note)})
		}
	}
	return r
}

// expiryLowerBound is the earliest moment (run offset) the message of body
// can have expired: its TTL counted from the post's call, and at least the
// claim TTL counted from the call of every acknowledged claim on it (a
// claim keeps a message alive for as long as the claim lasts).
func (x *historyIndex) expiryLowerBound(body string) int64 {
	post := x.postOfBody[body]
	if post == nil {
		return math.MaxInt64
	}
	lb := post.Call + int64(x.ttlOfBody[body])*int64(time.Second)
	for id := range x.idsOfBody[body] {
		for _, c := range x.claimsOfID[id] {
			lb = max(lb, c.Call+int64(c.TTL)*int64(time.Second))
		}
	}
	return lb
}

// checkAcknowledgedPosts: every acknowledged post is in the final listing,
// or a recorded delete may have removed it, or its TTL has passed. Posts
// answered as failed must not appear anywhere; no body is stored twice.
func checkAcknowledgedPosts(x *historyIndex, r *checkResult) {
	for i := range x.h.Ops {
		op := &x.h.Ops[i]
		if op.Kind != opPost {
			continue
		}
		if op.Outcome == outcomeFail {
			for _, b := range op.Bodies {
				for id := range x.idsOfBody[b] {
					if s := x.seenAt[id]; len(s) > 0 {
						r.Phantom++
						r.Anomalies = append(r.Anomalies, anomaly{Kind: anomalyPhantom, Message: b, Ops: []int{op.ID, s[0].op.ID},
							Detail: fmt.Sprintf("post on %s answered %d %q (no effect), but op %d returned it as message %s",
								op.Node, op.Status, op.Error, s[0].op.ID, id)})
						break
					}
				}
			}
			continue
		}
		if !op.acked() {
			continue
		}
		for j, b := range op.Bodies {
			r.AckedPosts++
			if j >= len(op.IDs) {
				continue
			}
			id := op.IDs[j]
			f := x.final[op.Queue]
			switch {
			case f == nil || !f.complete:
				r.Unverifiable++
			case f.ids[id].ID != "":
				r.StillThere++
			case len(x.deletes[id]) > 0:
				r.GoneByDelete++
			case f.lastReturn+checkSlack >= x.expiryLowerBound(b):
				r.GoneByTTL++
			default:
				r.Lost++
				r.Anomalies = append(r.Anomalies, anomaly{Kind: anomalyLost, Message: b, Ops: append([]int{op.ID}, f.ops...),
					Detail: fmt.Sprintf("post to %s acknowledged by %s at %s as message %s; not in the final listing read at %s, no delete of it was attempted, and its TTL (%ds) cannot have passed",
						op.Queue, op.Node, fmtOffset(op.Return), id, fmtOffset(f.firstCall), x.ttlOfBody[b])})
			}
		}
	}
	bodies := make([]string, 0, len(x.idsOfBody))
	for b := range x.idsOfBody {
		bodies = append(bodies, b)
	}
	sort.Strings(bodies)
	for _, b := range bodies {
		if ids := x.idsOfBody[b]; len(ids) > 1 {
			r.DuplicatePosts++
			r.Anomalies = append(r.Anomalies, anomaly{Kind: anomalyDuplicatePost, Message: b,
				Detail: fmt.Sprintf("body stored under %d message ids: %s", len(ids), strings.Join(chaosSortedKeys(ids), ", "))})
		}
	}
}

// claimEndLowerBound is the earliest moment claim c can have stopped
// holding its messages: its TTL counted from its call, or the call of a
// release of it that may have happened.
func (x *historyIndex) claimEndLowerBound(c *opRecord) int64 {
	end := c.Call + int64(c.TTL)*int64(time.Second)
	for _, rel := range x.releases[c.ClaimID] {
		end = min(end, rel.Call)
	}
	return end
}

// checkDoubleClaims: two acknowledged claims that returned the same message
// must be ordered so that the later one was created after the earlier one
// ended (expired or released).
func checkDoubleClaims(x *historyIndex, r *checkResult) {
	ids := chaosSortedKeys(x.claimsOfID)
	for _, id := range ids {
		cs := x.claimsOfID[id]
		for i := 0; i < len(cs); i++ {
			for j := i + 1; j < len(cs); j++ {
				a, b := cs[i], cs[j]
				if a.ClaimID == b.ClaimID {
					continue
				}
				aFirst := b.Return+checkSlack >= x.claimEndLowerBound(a)
				bFirst := a.Return+checkSlack >= x.claimEndLowerBound(b)
				if !aFirst && !bFirst {
					r.DoubleClaims++
					r.Anomalies = append(r.Anomalies, anomaly{Kind: anomalyDoubleClaim, Message: x.bodyOfID[id], Ops: []int{a.ID, b.ID},
						Detail: fmt.Sprintf("message %s returned by claim %s (op %d, %s..%s, ttl %ds) and by claim %s (op %d, %s..%s, ttl %ds); neither can have ended before the other began",
							id, a.ClaimID, a.ID, fmtOffset(a.Call), fmtOffset(a.Return), a.TTL, b.ClaimID, b.ID, fmtOffset(b.Call), fmtOffset(b.Return), b.TTL)})
				}
			}
		}
	}
}

// checkResurrections: no operation that began after an acknowledged delete
// returned may return the deleted message.
func checkResurrections(x *historyIndex, r *checkResult) {
	for i := range x.h.Ops {
		d := &x.h.Ops[i]
		if (d.Kind != opDelete && d.Kind != opDeleteMany) || !d.acked() || d.Status != 204 {
			continue
		}
		for _, id := range d.IDs {
			for _, s := range x.seenAt[id] {
				if s.op.Call > d.Return {
					r.Resurrected++
					r.Anomalies = append(r.Anomalies, anomaly{Kind: anomalyResurrected, Message: x.bodyOfID[id], Ops: []int{d.ID, s.op.ID},
						Detail: fmt.Sprintf("message %s deleted by op %d (%s on %s, answered 204 at %s) was returned by op %d (%s %s on %s, called %s)",
							id, d.ID, d.Kind, d.Node, fmtOffset(d.Return), s.op.ID, s.op.Transport, s.op.Kind, s.op.Node, fmtOffset(s.op.Call))})
					break
				}
			}
		}
	}
}

func chaosSortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// fmtOffset renders a run offset in seconds, e.g. "12.345s".
func fmtOffset(ns int64) string {
	if ns == math.MaxInt64 {
		return "never"
	}
	return fmt.Sprintf("%.3fs", float64(ns)/1e9)
}
