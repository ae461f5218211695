package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"
)

// compare prints, for each operation, the rates and latencies of two runs
// saved with -json and the ratio of the second's rate to the first's:
// "zaqar-bench compare reference.json ours.json".
func compare(args []string, out io.Writer) int {
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: zaqar-bench compare BASELINE.json CANDIDATE.json")
		return 2
	}
	var runs [2]results
	for i, path := range args {
		b, err := os.ReadFile(path)
		if err == nil {
			err = json.Unmarshal(b, &runs[i])
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "zaqar-bench compare: %s: %v\n", path, err)
			return 1
		}
	}
	writeComparison(out, args[0], args[1], runs[0], runs[1])
	return 0
}

func writeComparison(w io.Writer, baseName, candName string, base, cand results) {
	fmt.Fprintf(w, "baseline:  %s (%s, %s, %.0fs)\ncandidate: %s (%s, %s, %.0fs)\n",
		baseName, base.Targets, base.Workers, base.Seconds, candName, cand.Targets, cand.Workers, cand.Seconds)
	byOp := func(r results) map[string]opResult {
		m := map[string]opResult{}
		for _, o := range r.Ops {
			m[o.Op] = o
		}
		return m
	}
	b, c := byOp(base), byOp(cand)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "op\tbaseline msgs/s\tcandidate msgs/s\tratio\tbaseline p50/p99 ms\tcandidate p50/p99 ms\t")
	for _, op := range []string{"post", "claim", "delete", "list"} {
		bo, co := b[op], c[op]
		if bo.Requests == 0 && co.Requests == 0 {
			continue
		}
		ratio := "-"
		if bo.MessagesPerS > 0 {
			ratio = fmt.Sprintf("%.1fx", co.MessagesPerS/bo.MessagesPerS)
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%s\t%.1f/%.1f\t%.1f/%.1f\t\n", op, bo.MessagesPerS, co.MessagesPerS, ratio,
			bo.P50Ms, bo.P99Ms, co.P50Ms, co.P99Ms)
	}
	tw.Flush()
	// Both runs spawned their nodes: the CPU they spent per request.
	if bc, cc := base.cpuPerRequest(), cand.cpuPerRequest(); bc > 0 && cc > 0 {
		us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
		fmt.Fprintf(w, "nodes' CPU per request: baseline %.0f µs, candidate %.0f µs, ratio %.2fx\n", us(bc), us(cc), float64(cc)/float64(bc))
	}
}
