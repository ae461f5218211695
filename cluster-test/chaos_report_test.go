package clustertest

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// faultCounts counts the injected faults by kind.
func (rep *chaosReport) faultCounts() map[string]int {
	out := map[string]int{}
	for _, f := range rep.hist.Faults {
		if f.Kind != "final-heal" {
			out[f.Kind]++
		}
	}
	return out
}

// isWrite reports whether op changes state.
func isWriteOp(op *opRecord) bool {
	switch op.Kind {
	case opPost, opClaim, opDelete, opDeleteMany, opRelease:
		return true
	}
	return false
}

// writeRecovery returns how long after the fault took the leader away the
// first write that was sent after that was acknowledged, or -1 if none was.
func writeRecovery(h *chaosHistory, f faultRecord) time.Duration {
	from := f.Start
	if f.LeaderDown > 0 {
		from = f.LeaderDown
	}
	best := int64(-1)
	for i := range h.Ops {
		op := &h.Ops[i]
		if op.Final || !isWriteOp(op) || !op.acked() || op.Call < from {
			continue
		}
		if len(f.Queues) > 0 && !contains(f.Queues, op.Queue) {
			continue // a write to another pool's queue says nothing about this one
		}
		if best < 0 || op.Return < best {
			best = op.Return
		}
	}
	if best < 0 {
		return -1
	}
	return time.Duration(best - from)
}

func countsLine(m map[string]int, order []string) string {
	var parts []string
	seen := map[string]bool{}
	for _, k := range order {
		if m[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
		}
		seen[k] = true
	}
	var rest []string
	for k := range m {
		if !seen[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	for _, k := range rest {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

// lines renders the report: the summary line first, then details.
func (rep *chaosReport) lines() []string {
	h, r := rep.hist, rep.result
	ops := map[string]int{}
	transports := map[string]int{}
	outcomes := map[string]int{}
	for i := range h.Ops {
		op := &h.Ops[i]
		if op.Final {
			continue
		}
		ops[op.Kind]++
		transports[op.Transport]++
		outcomes[op.Outcome]++
	}
	kinds := []string{opPost, opClaim, opDelete, opDeleteMany, opRelease, opGet, opList}
	var recov []string
	for _, f := range h.Faults {
		if !f.LeaderLoss {
			continue
		}
		d := writeRecovery(h, f)
		s := fmt.Sprintf("%s(%s)=", f.Kind, strings.Join(f.Nodes, ","))
		if d < 0 {
			s += "none"
		} else {
			s += d.Round(10 * time.Millisecond).String()
		}
		recov = append(recov, s)
	}
	verdict := "PASS"
	if len(r.Anomalies) > 0 || rep.harnessErr != nil {
		verdict = fmt.Sprintf("FAIL (%d anomalies)", len(r.Anomalies))
	}
	digest := "not compared"
	if d := h.Header.Digest; d != nil {
		switch {
		case d.Problem != "":
			digest = "MISMATCH"
		case d.Checked && len(d.Pools) > 0:
			digest = "identical@" + poolIndexes(d.Pools)
		case d.Checked:
			digest = fmt.Sprintf("identical@%d", d.AppliedIndex)
		}
	}
	nodes := fmt.Sprint(rep.cfg.Nodes)
	if rep.cfg.Pools > 0 {
		nodes += fmt.Sprintf(" pools=%d", rep.cfg.Pools)
	}
	tlsNote, tlsEnv := "", ""
	if rep.cfg.TLS {
		tlsNote, tlsEnv = " tls=on", "CHAOS_TLS=1 "
	}
	summary := fmt.Sprintf("chaos: %s seed=%d nodes=%s%s load=%s | ops %s | faults %s | acked-writes=%d (posts=%d) lost=%d duplicated-claims=%d resurrected=%d phantom=%d | linearizability=%s | digests=%s | leader-loss recovery %s",
		verdict, rep.cfg.Seed, nodes, tlsNote, rep.cfg.Duration, countsLine(ops, kinds), countsLine(rep.faultCounts(), allFaults),
		r.AckedWrites, r.AckedPosts, r.Lost, r.DoubleClaims, r.Resurrected, r.Phantom, strings.ReplaceAll(r.Lin.Verdict, " ", "-"), digest,
		noneIfEmpty(strings.Join(recov, " ")))
	lines := []string{summary}
	add := func(format string, args ...any) { lines = append(lines, "chaos:   "+fmt.Sprintf(format, args...)) }
	add("run took %s; operations by transport %s; outcomes %s", rep.elapsed.Round(time.Second),
		countsLine(transports, []string{"rest", "ws"}), countsLine(outcomes, []string{outcomeOK, outcomeFail, outcomeUnknown}))
	add("acknowledged messages: %d still there, %d gone after a recorded delete, %d gone after their TTL, %d unverifiable, %d lost; %d duplicate posts; %d server errors",
		r.StillThere, r.GoneByDelete, r.GoneByTTL, r.Unverifiable, r.Lost, r.DuplicatePosts, r.ServerErrors)
	add("linearizability (porcupine, per message): %s: %d messages, %d projected operations, %d needed ghost claims, %d timed out, took %s",
		r.Lin.Verdict, r.Lin.Messages, r.Lin.Operations, r.Lin.WithGhosts, r.Lin.TimedOut, r.Lin.Took.Round(time.Millisecond))
	for _, l := range rep.extra {
		add("%s", l)
	}
	if d := h.Header.Digest; d != nil {
		switch {
		case d.Problem != "":
			add("digests: %s", d.Problem)
		case len(d.Pools) > 0:
			add("digests: compared inside each pool: %d nodes, identical at applied index %s", len(d.Digests), poolIndexes(d.Pools))
		default:
			add("digests: %d nodes identical at applied index %d", len(d.Digests), d.AppliedIndex)
		}
	}
	for _, f := range h.Faults {
		rec := "never"
		if f.Recovered > 0 {
			rec = time.Duration(f.Recovered - f.Start).Round(10 * time.Millisecond).String()
		}
		extra := ""
		if f.LeaderLoss {
			if d := writeRecovery(h, f); d >= 0 {
				extra = fmt.Sprintf(", writes back after %s", d.Round(10*time.Millisecond))
			}
		}
		add("fault at %s: %s %v (%s); healthy again after %s%s", fmtOffset(f.Start), f.Kind, f.Nodes, f.Note, rec, extra)
	}
	for i, a := range r.Anomalies {
		if i == 50 {
			add("... %d more anomalies", len(r.Anomalies)-50)
			break
		}
		add("ANOMALY %s", a)
	}
	if rep.harnessErr != nil {
		add("HARNESS ERROR %v", rep.harnessErr)
	}
	if rep.dir != "" {
		add("history, report and node logs: %s", rep.dir)
		for _, v := range rep.visuals {
			add("porcupine visualization: %s", v)
		}
		add("re-check this history: CHAOS_CHECK=%s go test -count=1 -run TestChaos_RecheckHistory ./cluster-test/", rep.dir+"/history.jsonl")
	}
	if (verdict != "PASS" || rep.dir != "") && rep.cfg.Pools > 0 {
		add("reproduce the run: %sCHAOS_SEED=%d CHAOS_DURATION=%s CHAOS_POOLS_DURATION=%s go test -count=1 -timeout 60m -v -run TestChaos_TwoPools ./cluster-test/",
			tlsEnv, rep.cfg.Seed, map[bool]string{true: "75s", false: "10m"}[rep.cfg.Short], rep.cfg.Duration)
	} else if verdict != "PASS" || rep.dir != "" {
		add("reproduce the run: %sCHAOS_SEED=%d CHAOS_NODES=%d CHAOS_DURATION=%s go test -count=1 -timeout 60m -v -run TestChaos_Nothing ./cluster-test/",
			tlsEnv, rep.cfg.Seed, rep.cfg.Nodes, rep.cfg.Duration)
	}
	return lines
}

func noneIfEmpty(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// poolIndexes renders pool -> applied index as "pool-a:123,pool-b:456".
func poolIndexes(m map[string]uint64) string {
	var parts []string
	for pool, idx := range m {
		parts = append(parts, fmt.Sprintf("%s:%d", pool, idx))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}
