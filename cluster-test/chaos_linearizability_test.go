package clustertest

import (
	"fmt"
	"hash/fnv"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// Linearizability is checked per message with porcupine. Every operation
// of the history is projected onto the messages it names or returns: a
// post onto each posted body, a claim onto each message it returned, a
// listing onto each message on the page, and so on. Linearizability is
// local (Herlihy & Wing): if a per-message projection has no
// linearization, neither has the history. The projection is weaker than
// the whole (it does not check FIFO order or that a claim took the oldest
// messages) but small enough to check in seconds.
//
// A message's state is a small register: not yet posted, present (maybe
// held by a claim), or deleted. Claims expire, so the model is timed: a
// claim created by an operation called at c and returning at r has its
// stamp in [c, r] (the leader stamps the entry while the request is in
// flight, on the same machine's clock), so it has certainly expired for an
// operation that returns after r+ttl and is certainly live for one called
// before c+ttl; in between the model allows both.
//
// Operations whose outcome is unknown (timeouts, resets, 503 "outcome
// unknown") follow porcupine's convention: they return at the end of time
// and the model lets them take effect or not. A claim with an unknown
// outcome is a "ghost": nobody learnt its id or its messages, so it cannot
// be projected onto any message. Instead, an observation that only a
// claim nobody was told about can explain (a read naming an unknown claim
// id, a 403 to a delete) may, in a second pass over projections that have
// no linearization without it, find the message freshly claimed by a ghost:
// allowed when a claim with unknown outcome of the same queue was called
// before the observation returned (and recently enough to be live, see
// ghostWindow); the ghost's stamp lies between that call and the
// observation. Modelling ghosts inside the observation, not as extra
// operations that return "at infinity", keeps the search linear.
//
// Messages of short-TTL queues are left out: they expire during the run
// and the model does not track message expiry (other queues use TTLs far
// longer than the run).

// lzKind is the kind of a projected operation.
type lzKind int8

const (
	lzPost        lzKind = iota // the message's post
	lzRead                      // a get or listing showed the message (or not)
	lzClaim                     // an acknowledged claim returned the message
	lzDelete                    // delete by id (optionally with a claim id)
	lzDeleteForce               // bulk delete (claims ignored)
	lzRelease                   // release of a claim that holds it
)

var lzKindNames = [...]string{"post", "read", "claim", "delete", "delete-many", "release"}

// lzInput is a projected operation.
type lzInput struct {
	Op     int // history operation id
	Kind   lzKind
	Call   int64
	Return int64 // math.MaxInt64 when the outcome is unknown
	Claim  string
	TTL    int64 // claim TTL (ns)
	// GhostLo, if not zero, is the earliest call of a claim with unknown
	// outcome that may explain this observation (reads naming an unknown
	// claim, 403s); GhostTTL is its TTL.
	GhostLo, GhostTTL int64
}

// lzOutput is what the projected operation observed.
type lzOutput struct {
	Unknown    bool
	Present    bool   // reads
	ClaimShown bool   // reads: the response says whether it is claimed
	ClaimedBy  string // reads: the claim the response named ("" = none)
	KnownClaim bool   // ClaimedBy is an acknowledged claim's id
	Status     int    // deletes
}

// Message phases.
const (
	phaseUnposted int8 = iota
	phasePresent
	phaseDeleted
)

// lzState is one possible state of a message.
type lzState struct {
	Phase int8
	// Claim is the claim holding it: "" none, "?" a ghost claim whose id
	// is not known yet, else the claim id. Lo..Hi bounds the claim's
	// stamp; TTL is its duration.
	Claim  string
	Lo, Hi int64
	TTL    int64
}

func addSaturating(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// claimLive: the claim may still be live at some moment of in's window.
func claimLive(s lzState, in lzInput) bool {
	return s.Claim != "" && in.Call-checkSlack < addSaturating(s.Hi, s.TTL)
}

// claimOver: the message may be unclaimed at some moment of in's window.
func claimOver(s lzState, in lzInput) bool {
	return s.Claim == "" || addSaturating(in.Return, checkSlack) >= s.Lo+s.TTL
}

func unclaimed(s lzState) lzState { return lzState{Phase: s.Phase} }

// lzStep returns every state the message can be in after in, observed as
// out, from state s.
func lzStep(s lzState, in lzInput, out lzOutput) []lzState {
	present := s.Phase == phasePresent
	deleted := lzState{Phase: phaseDeleted}
	maybe := func(ok bool, next lzState) []lzState {
		if out.Unknown {
			if ok {
				return []lzState{s, next}
			}
			return []lzState{s}
		}
		if ok {
			return []lzState{next}
		}
		return nil
	}
	// ghost: a claim with unknown outcome took the message just before in
	// observed it (only offered where in.GhostLo is set).
	ghost := func(id string) []lzState {
		if in.GhostLo == 0 || !present || !claimOver(s, in) {
			return nil
		}
		return []lzState{{Phase: phasePresent, Claim: id, Lo: in.GhostLo, Hi: in.Return, TTL: in.GhostTTL}}
	}
	switch in.Kind {
	case lzPost:
		return maybe(s.Phase == phaseUnposted, lzState{Phase: phasePresent})
	case lzRead:
		switch {
		case !out.Present:
			if !present {
				return []lzState{s}
			}
		case !present:
		case !out.ClaimShown:
			return []lzState{s}
		case out.ClaimedBy == "":
			if claimOver(s, in) {
				return []lzState{unclaimed(s)}
			}
		case s.Claim == out.ClaimedBy && claimLive(s, in):
			return []lzState{s}
		case s.Claim == "?" && !out.KnownClaim && claimLive(s, in):
			bound := s
			bound.Claim = out.ClaimedBy
			return []lzState{bound}
		case !out.KnownClaim:
			return ghost(out.ClaimedBy)
		}
		return nil
	case lzClaim:
		return maybe(present && claimOver(s, in),
			lzState{Phase: phasePresent, Claim: in.Claim, Lo: in.Call, Hi: in.Return, TTL: in.TTL})
	case lzDeleteForce:
		if !present {
			return []lzState{s}
		}
		return maybe(true, deleted)
	case lzDelete:
		if out.Unknown {
			if !present {
				return []lzState{s}
			}
			if in.Claim == "" {
				return maybe(claimOver(s, in), deleted)
			}
			return maybe(s.Claim == in.Claim && claimLive(s, in), deleted)
		}
		switch out.Status {
		case 204: // deleted, or there was nothing to delete
			if !present {
				return []lzState{s}
			}
			if in.Claim == "" && claimOver(s, in) {
				return []lzState{deleted}
			}
			if in.Claim != "" && s.Claim == in.Claim && claimLive(s, in) {
				return []lzState{deleted}
			}
		case 403: // held by another live claim
			if present && s.Claim != "" && s.Claim != in.Claim && claimLive(s, in) {
				return []lzState{s}
			}
			return ghost("?")
		case 400: // a claim id was given but the message is not claimed
			if present && in.Claim != "" && claimOver(s, in) {
				return []lzState{unclaimed(s)}
			}
		}
		return nil
	case lzRelease:
		return maybe(true, func() lzState {
			if s.Claim == in.Claim {
				return unclaimed(s)
			}
			return s
		}())
	}
	return nil
}

// lzModel is the per-message model (partitioned by the caller).
func lzModel() porcupine.Model {
	nm := porcupine.NondeterministicModel{
		Init: func() []any { return []any{lzState{}} },
		Step: func(state, input, output any) []any {
			next := lzStep(state.(lzState), input.(lzInput), output.(lzOutput))
			out := make([]any, len(next))
			for i, s := range next {
				out[i] = s
			}
			return out
		},
		Equal: func(a, b any) bool { return a.(lzState) == b.(lzState) },
		Hash: func(state any) uint64 {
			s := state.(lzState)
			h := fnv.New64a()
			fmt.Fprintf(h, "%d|%s|%d|%d|%d", s.Phase, s.Claim, s.Lo, s.Hi, s.TTL)
			return h.Sum64()
		},
		DescribeOperation: func(input, output any) string {
			in, out := input.(lzInput), output.(lzOutput)
			s := fmt.Sprintf("op%d %s", in.Op, lzKindNames[in.Kind])
			if in.Claim != "" {
				s += " claim=" + shortClaimID(in.Claim)
			}
			if in.GhostLo != 0 {
				s += fmt.Sprintf(" (ghost claim possible from %s)", fmtOffset(in.GhostLo))
			}
			switch {
			case out.Unknown:
				s += " -> ?"
			case in.Kind == lzRead && !out.Present:
				s += " -> absent"
			case in.Kind == lzRead && out.ClaimShown && out.ClaimedBy != "":
				s += " -> claimed by " + shortClaimID(out.ClaimedBy)
			case in.Kind == lzRead && out.ClaimShown:
				s += " -> unclaimed"
			case in.Kind == lzRead:
				s += " -> present"
			case out.Status != 0:
				s += fmt.Sprintf(" -> %d", out.Status)
			default:
				s += " -> ok"
			}
			return s
		},
		DescribeState: func(state any) string {
			s := state.(lzState)
			name := [...]string{"unposted", "present", "deleted"}[s.Phase]
			if s.Claim != "" {
				hi := fmtOffset(s.Hi)
				name += fmt.Sprintf(" claimed by %s (stamped %s..%s, ttl %s)", shortClaimID(s.Claim), fmtOffset(s.Lo), hi, time.Duration(s.TTL))
			}
			return name
		},
	}
	return nm.ToModel()
}

func shortClaimID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// illegalMessage is a message whose projection has no linearization.
type illegalMessage struct {
	Body   string
	Ops    []int
	Detail string
}

// linResult is the linearizability verdict of a history.
type linResult struct {
	Verdict    string // "linearizable", "NOT linearizable", "unknown (timed out)", "not checked"
	Messages   int    // projections checked
	Operations int    // projected operations
	WithGhosts int    // projections that needed ghost claims
	TimedOut   int    // projections porcupine could not decide in time
	Illegal    []illegalMessage
	Took       time.Duration
	// Visualizations are porcupine HTML files of illegal projections,
	// written by writeVisualizations.
	failing []lzProjection
}

// lzProjection is the projected history of one message.
type lzProjection struct {
	Body  string
	Queue string
	Ops   []porcupine.Operation
}

// projectHistory builds the per-message projections; with ghosts, the
// observations a claim with unknown outcome may explain say so.
func projectHistory(x *historyIndex, ghosts bool) map[string]*lzProjection {
	h := x.h
	inf := int64(math.MaxInt64)
	proj := map[string]*lzProjection{}
	add := func(body string, op *opRecord, in lzInput, out lzOutput) {
		q := x.queueOfBody[body]
		if body == "" || x.shortTTL[q] || x.shortTTL[op.Queue] {
			return
		}
		p := proj[body]
		if p == nil {
			p = &lzProjection{Body: body, Queue: op.Queue}
			proj[body] = p
		}
		in.Op, in.Call = op.ID, op.Call
		ret := op.Return
		if out.Unknown {
			ret = inf
		}
		in.Return = ret
		p.Ops = append(p.Ops, porcupine.Operation{ClientId: op.Worker, Input: in, Call: op.Call, Output: out, Return: ret})
	}
	readOut := func(s seenMessage) lzOutput {
		_, known := x.claimOf[s.Claim]
		return lzOutput{Present: true, ClaimShown: s.ClaimShown, ClaimedBy: s.Claim, KnownClaim: known}
	}
	// withGhost marks in as explainable by a ghost claim when there is one.
	withGhost := func(op *opRecord, in lzInput) lzInput {
		if ghosts {
			in.GhostLo, in.GhostTTL = x.ghostFor(op)
		}
		return in
	}
	readIn := func(op *opRecord, s seenMessage) lzInput {
		in := lzInput{Kind: lzRead}
		if _, known := x.claimOf[s.Claim]; s.Claim != "" && !known {
			in = withGhost(op, in)
		}
		return in
	}
	for i := range h.Ops {
		op := &h.Ops[i]
		unknown := op.Outcome == outcomeUnknown
		if !unknown && !op.acked() && !(op.Outcome == outcomeOK && (op.Kind == opDelete || op.Kind == opGet)) {
			continue // certainly no effect and nothing observed
		}
		switch op.Kind {
		case opPost:
			for _, b := range op.Bodies {
				add(b, op, lzInput{Kind: lzPost}, lzOutput{Unknown: unknown})
			}
		case opGet:
			if unknown || len(op.IDs) == 0 {
				continue
			}
			switch op.Status {
			case 200:
				for _, s := range op.Seen {
					add(x.bodyOfID[s.ID], op, readIn(op, s), readOut(s))
				}
			case 404:
				add(x.bodyOfID[op.IDs[0]], op, lzInput{Kind: lzRead}, lzOutput{Present: false})
			}
		case opList:
			if unknown {
				continue
			}
			for _, s := range op.Seen {
				add(x.bodyOfID[s.ID], op, readIn(op, s), readOut(s))
			}
		case opClaim:
			if unknown {
				continue // a ghost: see ghostFor
			}
			for _, s := range op.Seen {
				add(x.bodyOfID[s.ID], op, lzInput{Kind: lzClaim, Claim: op.ClaimID, TTL: int64(op.TTL) * int64(time.Second)}, lzOutput{})
			}
		case opDelete:
			if len(op.IDs) == 0 {
				continue
			}
			in := lzInput{Kind: lzDelete, Claim: op.ClaimID}
			if op.Status == 403 {
				in = withGhost(op, in)
			}
			add(x.bodyOfID[op.IDs[0]], op, in, lzOutput{Unknown: unknown, Status: op.Status})
		case opDeleteMany:
			for _, id := range op.IDs {
				add(x.bodyOfID[id], op, lzInput{Kind: lzDeleteForce}, lzOutput{Unknown: unknown})
			}
		case opRelease:
			c := x.claimOf[op.ClaimID]
			if c == nil {
				continue
			}
			for _, s := range c.Seen {
				add(x.bodyOfID[s.ID], op, lzInput{Kind: lzRelease, Claim: op.ClaimID}, lzOutput{Unknown: unknown})
			}
		}
	}
	// The final listing of a queue covers the whole queue: a message of the
	// queue that it did not show was absent then.
	for body, p := range proj {
		f := x.final[p.Queue]
		if f == nil || !f.complete {
			continue
		}
		shown := false
		for id := range x.idsOfBody[body] {
			shown = shown || f.ids[id].ID != ""
		}
		if !shown {
			in := lzInput{Op: -1, Kind: lzRead, Call: f.firstCall, Return: f.lastReturn}
			p.Ops = append(p.Ops, porcupine.Operation{ClientId: 0, Input: in, Call: f.firstCall, Output: lzOutput{Present: false}, Return: f.lastReturn})
		}
	}
	return proj
}

// ghostWindow bounds how long after its call a claim with unknown outcome
// can take effect. An entry that is neither committed nor overwritten
// within a minute of its proposal would itself be a liveness bug.
const ghostWindow = 60 * time.Second

// ghostFor returns the earliest call of a claim with unknown outcome in
// op's queue that can explain what op observed (it was called before op
// returned, and late enough to be live when op was called), and its TTL;
// zero if there is none.
func (x *historyIndex) ghostFor(op *opRecord) (int64, int64) {
	for _, c := range x.unknownClms[op.Queue] { // in call order
		ttl := int64(c.TTL) * int64(time.Second)
		if c.Call > op.Return {
			break
		}
		if c.Call+int64(ghostWindow)+ttl >= op.Call {
			return c.Call, ttl
		}
	}
	return 0, 0
}

// checkLinearizable checks every projection, in parallel, each with the
// given timeout.
func checkLinearizable(x *historyIndex, timeout time.Duration) linResult {
	start := time.Now()
	proj := projectHistory(x, false)
	ghostProj := projectHistory(x, true)
	bodies := chaosSortedKeys(proj)
	res := linResult{Messages: len(bodies)}
	for _, b := range bodies {
		res.Operations += len(proj[b].Ops)
	}
	model := lzModel()
	type verdict struct {
		body    string
		result  porcupine.CheckResult
		ghosts  bool
		opsUsed []porcupine.Operation
	}
	verdicts := make([]verdict, len(bodies))
	// However many projections porcupine finds hard, the check ends: after
	// the budget the rest count as timed out.
	budget := time.Now().Add(max(3*time.Minute, 4*timeout))
	var wg sync.WaitGroup
	next := make(chan int)
	workers := max(1, min(runtime.GOMAXPROCS(0), 4))
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				p := proj[bodies[i]]
				v := verdict{body: p.Body, opsUsed: p.Ops, result: porcupine.Unknown}
				if time.Now().After(budget) {
					verdicts[i] = v
					continue
				}
				v.result = porcupine.CheckOperationsTimeout(model, p.Ops, timeout)
				if g := ghostProj[bodies[i]]; v.result == porcupine.Illegal && hasGhostChoice(g.Ops) {
					v.ghosts, v.opsUsed = true, g.Ops
					v.result = porcupine.CheckOperationsTimeout(model, g.Ops, timeout)
				}
				verdicts[i] = v
			}
		}()
	}
	for i := range bodies {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, v := range verdicts {
		if v.ghosts {
			res.WithGhosts++
		}
		switch v.result {
		case porcupine.Unknown:
			res.TimedOut++
		case porcupine.Illegal:
			p := proj[v.body]
			var ids []int
			for _, o := range v.opsUsed {
				if id := o.Input.(lzInput).Op; id >= 0 {
					ids = append(ids, id)
				}
			}
			sort.Ints(ids)
			res.Illegal = append(res.Illegal, illegalMessage{Body: v.body, Ops: ids,
				Detail: fmt.Sprintf("the %d operations on this message in %s have no linearization: %s", len(v.opsUsed), p.Queue, describeProjection(model, v.opsUsed))})
			res.failing = append(res.failing, lzProjection{Body: v.body, Queue: p.Queue, Ops: v.opsUsed})
		}
	}
	switch {
	case len(res.Illegal) > 0:
		res.Verdict = "NOT linearizable"
	case res.TimedOut > 0:
		res.Verdict = "unknown (timed out)"
	default:
		res.Verdict = "linearizable"
	}
	res.Took = time.Since(start)
	return res
}

// hasGhostChoice reports whether any operation may be explained by a
// ghost claim.
func hasGhostChoice(ops []porcupine.Operation) bool {
	for _, o := range ops {
		if o.Input.(lzInput).GhostLo != 0 {
			return true
		}
	}
	return false
}

// describeProjection lists a projection's operations in call order, for
// the report.
func describeProjection(model porcupine.Model, ops []porcupine.Operation) string {
	sorted := append([]porcupine.Operation(nil), ops...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Call < sorted[j].Call })
	s := ""
	for i, o := range sorted {
		if i > 0 {
			s += "; "
		}
		s += fmt.Sprintf("[%s..%s] %s", fmtOffset(o.Call), fmtOffset(o.Return), model.DescribeOperation(o.Input, o.Output))
	}
	return s
}

// writeVisualizations writes porcupine's HTML view of each illegal
// projection (at most 10) into dir and returns the file names.
func (r *linResult) writeVisualizations(dir string) []string {
	model := lzModel()
	var files []string
	for i, p := range r.failing {
		if i == 10 {
			break
		}
		// Unknown outcomes return at "infinity"; the visualization wants a
		// finite time.
		ops := make([]porcupine.Operation, len(p.Ops))
		var last int64
		for j, o := range p.Ops {
			if o.Return != math.MaxInt64 {
				last = max(last, o.Return)
			}
			ops[j] = o
		}
		for j := range ops {
			if ops[j].Return == math.MaxInt64 {
				ops[j].Return = last + int64(time.Second)
			}
		}
		_, info := porcupine.CheckOperationsVerbose(model, ops, 10*time.Second)
		name := filepath.Join(dir, fmt.Sprintf("linearizability-%s.html", p.Body))
		if err := porcupine.VisualizePath(model, info, name); err == nil {
			files = append(files, name)
		} else {
			fmt.Fprintf(os.Stderr, "chaos: visualization of %s: %v\n", p.Body, err)
		}
	}
	return files
}
