package clustertest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"time"
)

// Outcomes of a recorded operation.
const (
	outcomeOK      = "ok"      // the server gave a definite answer (Status says which)
	outcomeFail    = "fail"    // certainly no effect (refused dial, 4xx, 503 "try again")
	outcomeUnknown = "unknown" // may or may not have taken effect (timeout, reset, 503 "outcome unknown")
)

// Operation kinds.
const (
	opPost       = "post"        // POST messages (Bodies in, IDs out)
	opGet        = "get"         // GET one message by id (IDs[0])
	opList       = "list"        // GET one page of a listing
	opClaim      = "claim"       // POST a claim (ClaimID and Seen out)
	opDelete     = "delete"      // DELETE one message (IDs[0], optional ClaimID)
	opDeleteMany = "delete_many" // DELETE ?ids= (claims ignored)
	opRelease    = "release"     // DELETE a claim (ClaimID)
)

// seenMessage is one message an operation returned.
type seenMessage struct {
	ID   string `json:"id"`
	Body string `json:"body"` // the uid in its body
	// Claim is the claim the response says holds the message ("" = none);
	// ClaimShown is false when the response does not say (websocket gets).
	Claim      string `json:"claim,omitempty"`
	ClaimShown bool   `json:"claim_shown,omitempty"`
}

// opRecord is one client operation of a chaos run. Times are nanoseconds
// since the run started, from the monotonic clock.
type opRecord struct {
	ID        int    `json:"id"`
	Worker    int    `json:"worker"`
	Node      string `json:"node"`
	Transport string `json:"transport"` // rest | ws
	Kind      string `json:"kind"`
	Queue     string `json:"queue"`
	Call      int64  `json:"call"`
	Return    int64  `json:"return"`
	Outcome   string `json:"outcome"`
	Status    int    `json:"status,omitempty"`
	Error     string `json:"error,omitempty"`

	Bodies  []string `json:"bodies,omitempty"`   // post: the uids posted, in order
	TTL     int      `json:"ttl,omitempty"`      // post: message TTL; claim: claim TTL (s)
	Grace   int      `json:"grace,omitempty"`    // claim grace (s)
	Limit   int      `json:"limit,omitempty"`    // claim limit
	IDs     []string `json:"ids,omitempty"`      // post: ids assigned; get/delete/delete_many: ids named
	ClaimID string   `json:"claim_id,omitempty"` // claim: created; delete/release: named
	Marker  string   `json:"marker,omitempty"`   // list: marker sent

	Seen []seenMessage `json:"seen,omitempty"` // get/list/claim: messages returned
	// Final marks the listings read after the faults were healed and the
	// load stopped; FinalComplete marks a queue's final listing as covering
	// the whole queue (it ended with an empty page).
	Final         bool `json:"final,omitempty"`
	FinalComplete bool `json:"final_complete,omitempty"`
}

// acked reports whether the operation got a definite 2xx answer.
func (o *opRecord) acked() bool {
	return o.Outcome == outcomeOK && o.Status >= 200 && o.Status < 300
}

// faultRecord is one injected fault.
type faultRecord struct {
	Kind  string   `json:"kind"`
	Nodes []string `json:"nodes"`
	Note  string   `json:"note,omitempty"`
	Start int64    `json:"start"` // injected
	Heal  int64    `json:"heal"`  // healed (node restarted, resumed, links restored)
	// Recovered is when the nemesis saw every node up and agreeing on a
	// leader again (0 if it never did).
	Recovered int64 `json:"recovered"`
	// LeaderLoss marks faults that took the leader away (kill, pause,
	// isolation); the report gives their write recovery times, counted
	// from LeaderDown when it is set (a rolling restart stops the leader
	// last), else from Start.
	LeaderLoss bool  `json:"leader_loss,omitempty"`
	LeaderDown int64 `json:"leader_down,omitempty"`
	// Queues, when set (a run of several pools), are the queues of the
	// faulted pool: only writes to them count for its write recovery.
	Queues []string `json:"queues,omitempty"`
}

// runHeader describes a chaos run; it is the first line of a saved history.
type runHeader struct {
	Seed           int64         `json:"seed"`
	Nodes          int           `json:"nodes"`
	Duration       string        `json:"duration"`
	Started        time.Time     `json:"started"` // wall clock at offset 0
	Project        string        `json:"project"`
	Queues         []string      `json:"queues"`
	ShortTTLQueues []string      `json:"short_ttl_queues"` // not checked for linearizability (messages expire)
	ClaimTTL       int           `json:"claim_ttl"`
	TLS            bool          `json:"tls,omitempty"` // TLS on every port (CHAOS_TLS=1)
	Digest         *digestResult `json:"digest,omitempty"`
	// Placement is, in a run of several pools, the pool each queue was
	// placed on (queue -> pool, from X-Zaqar-Pool).
	Placement map[string]string `json:"placement,omitempty"`
}

// digestResult is what the final digest comparison found.
type digestResult struct {
	Checked      bool              `json:"checked"`
	AppliedIndex uint64            `json:"applied_index"`
	Digests      map[string]string `json:"digests"` // node -> digest at AppliedIndex
	Problem      string            `json:"problem,omitempty"`
	// Pools, in a run of several pools, is each pool's applied index: the
	// digests are compared inside each pool (each is its own Raft group).
	Pools map[string]uint64 `json:"pools,omitempty"`
}

// chaosHistory is everything a chaos run recorded.
type chaosHistory struct {
	Header runHeader
	Ops    []opRecord
	Faults []faultRecord
}

// opRecorder collects operations from concurrent workers.
type opRecorder struct {
	start time.Time
	mu    sync.Mutex
	ops   []opRecord
}

func newOpRecorder(start time.Time) *opRecorder { return &opRecorder{start: start} }

// now is the current offset from the start of the run.
func (r *opRecorder) now() int64 { return int64(time.Since(r.start)) }

// add stores a finished operation and returns its id.
func (r *opRecorder) add(op opRecord) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	op.ID = len(r.ops)
	r.ops = append(r.ops, op)
	return op.ID
}

func (r *opRecorder) snapshot() []opRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]opRecord(nil), r.ops...)
}

// historyLine is one line of a saved history: exactly one field is set.
type historyLine struct {
	Header *runHeader   `json:"header,omitempty"`
	Op     *opRecord    `json:"op,omitempty"`
	Fault  *faultRecord `json:"fault,omitempty"`
}

// writeHistory saves h as JSON lines (header, faults, operations).
func writeHistory(path string, h *chaosHistory) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	err = enc.Encode(historyLine{Header: &h.Header})
	for i := range h.Faults {
		if err == nil {
			err = enc.Encode(historyLine{Fault: &h.Faults[i]})
		}
	}
	for i := range h.Ops {
		if err == nil {
			err = enc.Encode(historyLine{Op: &h.Ops[i]})
		}
	}
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// readHistory loads a history saved by writeHistory (or written by hand).
func readHistory(r io.Reader) (*chaosHistory, error) {
	h := &chaosHistory{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	line := 0
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if len(b) == 0 || b[0] == '#' {
			continue
		}
		var hl historyLine
		if err := json.Unmarshal(b, &hl); err != nil {
			return nil, fmt.Errorf("history line %d: %w", line, err)
		}
		switch {
		case hl.Header != nil:
			h.Header = *hl.Header
		case hl.Fault != nil:
			h.Faults = append(h.Faults, *hl.Fault)
		case hl.Op != nil:
			h.Ops = append(h.Ops, *hl.Op)
		default:
			return nil, fmt.Errorf("history line %d: neither header, fault nor op", line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	sort.SliceStable(h.Ops, func(i, j int) bool { return h.Ops[i].ID < h.Ops[j].ID })
	return h, nil
}

// readHistoryFile loads a saved history from path.
func readHistoryFile(path string) (*chaosHistory, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readHistory(f)
}
