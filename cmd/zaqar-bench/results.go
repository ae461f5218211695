package main

import (
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"
)

// opResult is one operation type's summary.
type opResult struct {
	Op           string  `json:"op"`
	Requests     uint64  `json:"requests"`
	Messages     uint64  `json:"messages"`
	MessagesPerS float64 `json:"messages_per_second"`
	RequestsPerS float64 `json:"requests_per_second"`
	Empty        uint64  `json:"empty"`
	Errors       uint64  `json:"errors"`
	LastError    string  `json:"last_error,omitempty"`
	MeanMs       float64 `json:"mean_ms"`
	P50Ms        float64 `json:"p50_ms"`
	P90Ms        float64 `json:"p90_ms"`
	P99Ms        float64 `json:"p99_ms"`
	MaxMs        float64 `json:"max_ms"`
}

// nodeResult is one spawned node's resource use over the measurement.
type nodeResult struct {
	Node       string  `json:"node"`
	CPUPercent float64 `json:"cpu_percent"` // of one core
	RSSStartMB float64 `json:"rss_start_mb"`
	RSSEndMB   float64 `json:"rss_end_mb"`
	RSSMaxMB   float64 `json:"rss_max_mb"`
}

// results are a run's report.
type results struct {
	Started     time.Time    `json:"started"`
	Seconds     float64      `json:"seconds"`
	Transport   string       `json:"transport"`
	Targets     []string     `json:"targets"`
	Workers     string       `json:"workers"`
	MessageSize int          `json:"message_size"`
	PerPost     int          `json:"messages_per_post"`
	PostRate    float64      `json:"post_rate_limit,omitempty"`
	Ops         []opResult   `json:"ops"`
	MaxPostGap  float64      `json:"longest_post_gap_seconds"`
	Nodes       []nodeResult `json:"nodes,omitempty"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func newResults(c config, rec *recorder, elapsed time.Duration) *results {
	r := &results{
		Started: time.Now().Add(-elapsed).UTC(), Seconds: elapsed.Seconds(), Transport: c.transport, Targets: c.targets,
		Workers: fmt.Sprintf("producers %dx%d, consumers %dx%d, observers %dx%d",
			c.producers, c.producerWorkers, c.consumers, c.consumerWorkers, c.observers, c.observerWorkers),
		MessageSize: c.messageSize, PerPost: c.perPost, PostRate: c.postRate, MaxPostGap: rec.maxGap.Seconds(),
	}
	for _, op := range []string{"post", "claim", "delete", "list"} {
		s := rec.ops[op]
		s.mu.Lock()
		h := &s.hist
		r.Ops = append(r.Ops, opResult{
			Op: op, Requests: h.n, Messages: s.messages, Empty: s.empty, Errors: s.errors, LastError: s.lastErr,
			MessagesPerS: float64(s.messages) / elapsed.Seconds(), RequestsPerS: float64(h.n) / elapsed.Seconds(),
			MeanMs: ms(h.mean()), P50Ms: ms(h.quantile(.5)), P90Ms: ms(h.quantile(.9)), P99Ms: ms(h.quantile(.99)), MaxMs: ms(h.max),
		})
		s.mu.Unlock()
	}
	return r
}

// cpuPerRequest is the spawned nodes' CPU time, all nodes together, per
// successful request of the measurement (0 without node figures).
func (r *results) cpuPerRequest() time.Duration {
	n := r.totalOps()
	if len(r.Nodes) == 0 || n == 0 {
		return 0
	}
	cores := nodesCPUPercent(r.Nodes) / 100 // busy cores, summed over the nodes
	return time.Duration(cores * r.Seconds / float64(n) * float64(time.Second))
}

// nodesCPUPercent is the spawned nodes' CPU over the measurement, all
// nodes together, in percent of one core.
func nodesCPUPercent(nodes []nodeResult) float64 {
	var pct float64
	for _, nd := range nodes {
		pct += nd.CPUPercent
	}
	return pct
}

func (r *results) totalOps() uint64 {
	var n uint64
	for _, o := range r.Ops {
		n += o.Requests
	}
	return n
}

func (r *results) print(w io.Writer) {
	fmt.Fprintf(w, "zaqar-bench: %s over %s for %.1fs; %s; %d-byte messages, %d per post\n",
		r.Transport, r.Targets, r.Seconds, r.Workers, r.MessageSize, r.PerPost)
	if r.PostRate > 0 {
		fmt.Fprintf(w, "posts paced at %.0f requests/s\n", r.PostRate)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "op\tmsgs/s\treq/s\tp50 ms\tp90 ms\tp99 ms\tmax ms\terrors\tempty\t")
	for _, o := range r.Ops {
		if o.Requests == 0 && o.Errors == 0 {
			continue
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%.2f\t%.2f\t%.2f\t%.1f\t%d\t%d\t\n",
			o.Op, o.MessagesPerS, o.RequestsPerS, o.P50Ms, o.P90Ms, o.P99Ms, o.MaxMs, o.Errors, o.Empty)
	}
	tw.Flush()
	for _, o := range r.Ops {
		if o.LastError != "" {
			fmt.Fprintf(w, "  last %s error: %.200s\n", o.Op, o.LastError)
		}
	}
	fmt.Fprintf(w, "longest gap between successful posts: %.3fs\n", r.MaxPostGap)
	if len(r.Nodes) > 0 {
		sort.Slice(r.Nodes, func(i, j int) bool { return r.Nodes[i].Node < r.Nodes[j].Node })
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "node\tcpu %\trss start MB\trss end MB\trss max MB\t")
		for _, n := range r.Nodes {
			fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%.1f\t%.1f\t\n", n.Node, n.CPUPercent, n.RSSStartMB, n.RSSEndMB, n.RSSMaxMB)
		}
		tw.Flush()
		fmt.Fprintf(w, "nodes' CPU per request (all nodes): %.0f µs\n", float64(r.cpuPerRequest())/float64(time.Microsecond))
		fmt.Fprintf(w, "nodes' CPU, all nodes together: %.2f%% of one core\n", nodesCPUPercent(r.Nodes))
	}
}
