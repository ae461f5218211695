package clustertest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// opsDashboardFile is the Grafana dashboard docs/operations.md points to,
// opsAlertsFile the Prometheus alerting rules.
const (
	opsDashboardFile = "docs/grafana/zaqar-dashboard.json"
	opsAlertsFile    = "docs/grafana/zaqar-alerts.yml"
)

// opsMetricNameRE finds the node's metric names in a PromQL expression
// (Prometheus's own series such as up are not the node's business).
var opsMetricNameRE = regexp.MustCompile(`\b(?:zaqar|go|process)_[a-zA-Z0-9_]+`)

// opsDashboardMetrics returns every metric name the dashboard's queries,
// template variables and annotations, and the alerting rules' expressions,
// use.
func opsDashboardMetrics(t *testing.T) []string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, opsDashboardFile))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
			Panels []json.RawMessage `json:"panels"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
		Annotations struct {
			List []struct {
				Expr string `json:"expr"`
			} `json:"list"`
		} `json:"annotations"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("%s: %v", opsDashboardFile, err)
	}
	var exprs []string
	queries := 0
	for _, p := range dash.Panels {
		if len(p.Panels) > 0 {
			t.Fatalf("%s: row %q holds collapsed panels; this test reads only top-level panels", opsDashboardFile, p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
			queries++
		}
	}
	for _, v := range dash.Templating.List {
		exprs = append(exprs, v.Definition)
	}
	for _, a := range dash.Annotations.List {
		exprs = append(exprs, a.Expr)
	}
	alerts, err := os.ReadFile(filepath.Join(root, opsAlertsFile))
	if err != nil {
		t.Fatal(err)
	}
	rules := 0
	for _, line := range strings.Split(string(alerts), "\n") {
		if e, ok := strings.CutPrefix(strings.TrimSpace(line), "expr:"); ok {
			exprs = append(exprs, e)
			rules++
		}
	}
	if rules < 5 {
		t.Fatalf("%s: only %d expressions found", opsAlertsFile, rules)
	}
	seen := map[string]bool{}
	for _, e := range exprs {
		for _, name := range opsMetricNameRE.FindAllString(e, -1) {
			seen[name] = true
		}
	}
	var names []string
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	if queries < 20 || len(names) < 20 {
		t.Fatalf("%s: only %d queries naming %d metrics were found; is the file a dashboard?", opsDashboardFile, queries, len(names))
	}
	return names
}

// opsScrape is one node's /metrics: family types and every sample.
type opsScrape struct {
	types   map[string]string  // family -> counter, gauge, histogram, summary, untyped
	samples map[string]float64 // name{labels} -> value
	names   map[string][]string
}

// opsScrapeNode reads and parses p's /metrics (Prometheus text format).
func opsScrapeNode(t *testing.T, p *proc) *opsScrape {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL()+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := p.httpClient(0).Do(req)
	if err != nil {
		t.Fatalf("scrape %s: %v", p.ID, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %d", p.ID, resp.StatusCode)
	}
	s := &opsScrape{types: map[string]string{}, samples: map[string]float64{}, names: map[string][]string{}}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			f := strings.Fields(rest)
			if len(f) == 2 {
				s.types[f[0]] = f[1]
			}
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, series, value, err := opsParseSample(line)
		if err != nil {
			t.Fatalf("scrape %s: %v in %q", p.ID, err, line)
		}
		s.samples[series] = value
		s.names[name] = append(s.names[name], series)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("scrape %s: %v", p.ID, err)
	}
	return s
}

// opsParseSample splits `name{labels} value [timestamp]`; label values may
// hold braces and escaped quotes.
func opsParseSample(line string) (name, series string, value float64, err error) {
	i := strings.IndexAny(line, "{ ")
	if i < 0 {
		return "", "", 0, fmt.Errorf("no value")
	}
	name = line[:i]
	end := i
	if line[i] == '{' {
		inQuote := false
		for end = i + 1; end < len(line); end++ {
			c := line[end]
			if inQuote && c == '\\' {
				end++
				continue
			}
			if c == '"' {
				inQuote = !inQuote
			}
			if c == '}' && !inQuote {
				break
			}
		}
		if end >= len(line) {
			return "", "", 0, fmt.Errorf("unterminated labels")
		}
		end++
	}
	series = line[:end]
	f := strings.Fields(line[end:])
	if len(f) == 0 {
		return "", "", 0, fmt.Errorf("no value")
	}
	value, err = strconv.ParseFloat(f[0], 64)
	return name, series, value, err
}

// family resolves a name used in a query (x, x_total, x_bucket, x_sum,
// x_count) to the exposed family and its type.
func (s *opsScrape) family(name string) (string, string, bool) {
	if typ, ok := s.types[name]; ok {
		return name, typ, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if typ := s.types[base]; typ == "histogram" || (typ == "summary" && suffix != "_bucket") {
				return base, typ, true
			}
		}
	}
	return "", "", false
}

// series returns the samples of a family (for histograms and summaries,
// all their sub-series).
func (s *opsScrape) series(family, typ string) map[string]float64 {
	out := map[string]float64{}
	names := []string{family}
	if typ == "histogram" || typ == "summary" {
		names = append(names, family+"_bucket", family+"_sum", family+"_count")
	}
	for _, n := range names {
		for _, k := range s.names[n] {
			out[k] = s.samples[k]
		}
	}
	return out
}

// total is a counter's sum over its series, or a histogram's or
// summary's observation count.
func (s *opsScrape) total(family, typ string) float64 {
	n := family
	if typ == "histogram" || typ == "summary" {
		n = family + "_count"
	}
	sum := 0.0
	for _, k := range s.names[n] {
		sum += s.samples[k]
	}
	return sum
}

// opsMetricRule says how a dashboard metric must behave under the test's
// load.
type opsMetricRule struct {
	// moves: "grows" (a counter, or a histogram's count, increases on some
	// node), "changes" (a gauge's value or series set changes on some
	// node) or "steady" (checked by check instead; why says why it cannot
	// be made to move in a short test).
	moves string
	// leaderOnly: only a node that led exposes it (label vectors whose
	// series appear on first use).
	leaderOnly bool
	why        string
	check      func(v float64) bool
}

var opsMetricRules = map[string]opsMetricRule{
	"zaqar_http_requests_total":           {moves: "grows"},
	"zaqar_http_request_duration_seconds": {moves: "grows"},
	"zaqar_raft_state":                    {moves: "changes"}, // the leadership transfer
	"zaqar_raft_is_leader":                {moves: "changes"},
	"zaqar_raft_term":                     {moves: "changes"},
	"zaqar_raft_last_index":               {moves: "changes"},
	"zaqar_raft_commit_index":             {moves: "changes"},
	"zaqar_raft_applied_index":            {moves: "changes"},
	"zaqar_raft_last_contact_seconds":     {moves: "changes"},
	"zaqar_raft_voters": {moves: "steady", why: "membership does not change under load; it must equal the cluster size",
		check: func(v float64) bool { return v == 3 }},
	"zaqar_raft_commit_seconds":              {moves: "grows", leaderOnly: true},
	"zaqar_raft_snapshot_seconds":            {moves: "grows"},
	"zaqar_raft_snapshot_bytes":              {moves: "changes"},
	"zaqar_raft_snapshots_total":             {moves: "grows"},
	"zaqar_fsm_apply_batch_entries":          {moves: "grows"},
	"zaqar_fsm_apply_batch_seconds":          {moves: "grows"},
	"zaqar_queue_messages":                   {moves: "changes"},
	"zaqar_queue_oldest_message_age_seconds": {moves: "changes"},
	"zaqar_claims_active":                    {moves: "changes"},
	"zaqar_ws_connections_open":              {moves: "changes"},
	"zaqar_ws_connections_total":             {moves: "grows"},
	"zaqar_ws_frames_in_total":               {moves: "grows"},
	"zaqar_ws_frames_out_total":              {moves: "grows"},
	"zaqar_notify_deliveries_total":          {moves: "grows", leaderOnly: true},
	"zaqar_notify_attempts_total":            {moves: "grows", leaderOnly: true},
	"zaqar_notify_retries_total":             {moves: "grows", leaderOnly: true},
	"zaqar_notify_delivery_lag_seconds":      {moves: "grows", leaderOnly: true},
	"zaqar_notify_subscriptions":             {moves: "changes"},
	"zaqar_pebble_disk_usage_bytes":          {moves: "changes"},
	"zaqar_pebble_memtable_bytes":            {moves: "changes"},
	// A 32 MiB memtable is not flushed by a test-sized load, so level 0,
	// read amplification, compactions and stalls stay where they are.
	"zaqar_pebble_l0_files":            {moves: "steady", why: "no memtable flush under a test-sized load", check: func(v float64) bool { return v >= 0 }},
	"zaqar_pebble_read_amplification":  {moves: "steady", why: "no memtable flush under a test-sized load", check: func(v float64) bool { return v >= 0 }},
	"zaqar_pebble_compactions":         {moves: "steady", why: "no memtable flush under a test-sized load", check: func(v float64) bool { return v >= 0 }},
	"zaqar_pebble_write_stalls":        {moves: "steady", why: "no stalls without flushes", check: func(v float64) bool { return v >= 0 }},
	"zaqar_pebble_write_stall_seconds": {moves: "steady", why: "no stalls without flushes", check: func(v float64) bool { return v >= 0 }},
	"process_cpu_seconds_total":        {moves: "grows"},
	"process_resident_memory_bytes":    {moves: "changes"},
	"process_open_fds":                 {moves: "changes"},
	"go_goroutines":                    {moves: "changes"},
	"go_memstats_heap_alloc_bytes":     {moves: "changes"},
	"go_gc_duration_seconds":           {moves: "grows"},
}

// TestOps_EveryDashboardMetricExistsAndMovesUnderLoad reads the metric
// names out of the Grafana dashboard's queries (and the alerting rules),
// scrapes /metrics on every
// node before and after a load that exercises what the dashboard shows
// (REST posts and reads, claims, websocket frames, a webhook subscription
// whose endpoint fails now and then, snapshots, a leadership transfer),
// and checks that every name exists and moves as its rule says. A
// dashboard that names a metric no node exposes, or one without a rule
// here, fails the test.
func TestOps_EveryDashboardMetricExistsAndMovesUnderLoad(t *testing.T) {
	names := opsDashboardMetrics(t)
	c := opsStartCluster(t, 3, "-raft-snapshot-threshold", "200", "-raft-trailing-logs", "100", "-raft-snapshot-interval", "1s")
	const project = "p-metrics"
	ctx := context.Background()

	// A webhook that fails every third delivery attempt (so that retries
	// happen; the first retries come without delay).
	var hooks, hookFailures atomic.Int64
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if hooks.Add(1)%3 == 0 {
			hookFailures.Add(1)
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(hook.Close)
	rc := newRESTClient(c.Nodes[0], "0e0e0e0e-1111-4222-8333-444444444444", project)
	r, err := rc.do(ctx, http.MethodPost, "/v2/queues/metrics-notify/subscriptions", map[string]any{"subscriber": hook.URL + "/hook", "ttl": 3600})
	if err != nil || r.Status != http.StatusCreated {
		t.Fatalf("subscribe: %v %v", r, err)
	}

	before := map[*proc]*opsScrape{}
	for _, p := range c.Nodes {
		before[p] = opsScrapeNode(t, p)
	}
	scrapedAt := time.Now()

	lb := opsNewBalancer(t, c.Nodes...)
	load := opsStartLoad(t, lb, project, 3, "metrics-a", "metrics-notify")

	// Websocket clients, one per node, each sending a few frames; they
	// stay connected until the second scrape.
	for i, p := range c.Nodes {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		conn, err := p.dialWS(cctx)
		cancel()
		if err != nil {
			t.Fatalf("websocket to %s: %v", p.ID, err)
		}
		t.Cleanup(func() { conn.CloseNow() })
		for j := 0; j < 3; j++ {
			frame := fmt.Sprintf(`{"action": "queue_list", "headers": {"Client-ID": "0e0e0e0e-1111-4222-8333-%012d", "X-Project-ID": %q}, "body": {}}`, i, project)
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := conn.Write(cctx, websocket.MessageText, []byte(frame))
			if err == nil {
				_, _, err = conn.Read(cctx)
			}
			cancel()
			if err != nil {
				t.Fatalf("websocket frame on %s: %v", p.ID, err)
			}
		}
	}

	// Consumers claim messages (claims stay active) and delete some.
	var claimErrs []string
	var claimMu sync.Mutex
	stopClaims := make(chan struct{})
	var claimWG sync.WaitGroup
	claimWG.Add(1)
	go func() {
		defer claimWG.Done()
		cc := newRESTClient(c.Nodes[1], "0e0e0e0e-2222-4222-8333-444444444444", project)
		for i := 0; ; i++ {
			select {
			case <-stopClaims:
				return
			case <-time.After(200 * time.Millisecond):
			}
			cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			r, err := cc.do(cctx, http.MethodPost, "/v2/queues/metrics-a/claims?limit=2", map[string]any{"ttl": 300, "grace": 60})
			if err == nil && r.Status == http.StatusCreated && i%2 == 0 {
				var claimed []listedMessage
				if json.Unmarshal(r.Body, &claimed) == nil && len(claimed) > 0 {
					r, err = cc.do(cctx, http.MethodDelete, claimed[0].Href, nil)
				}
			}
			cancel()
			if err != nil || (r.Status != http.StatusCreated && r.Status != http.StatusNoContent) {
				claimMu.Lock()
				claimErrs = append(claimErrs, fmt.Sprintf("%v %v", r, err))
				claimMu.Unlock()
			}
		}
	}()

	load.WaitAcked(t, 150, 60*time.Second)
	// A leadership transfer moves the state, leader and term gauges.
	var handoffs []opsHandoff
	from := c.Leader()
	start := time.Now()
	opsMustCtl(t, c.Nodes[2], "transfer-leader")
	c.waitUntil(30*time.Second, "a new leader", func() (bool, string) {
		l, why := c.agreedLeader()
		return l != nil && l != from, why
	})
	handoffs = append(handoffs, opsHandoff{Node: from.ID, From: start, To: time.Now()})

	// Queue gauges are recomputed at most every 10 s: the second scrape
	// comes later than that, after a snapshot and some failed deliveries.
	c.waitUntil(90*time.Second, "snapshots, retried deliveries and 11 s since the first scrape", func() (bool, string) {
		snaps := 0.0
		for _, p := range c.Nodes {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			n, _ := metric(cctx, p, "zaqar_raft_snapshots_total")
			cancel()
			snaps += n
		}
		ok := snaps >= 1 && hookFailures.Load() >= 2 && time.Since(scrapedAt) > 11*time.Second
		return ok, fmt.Sprintf("%v snapshots, %d webhook calls (%d failed), %s since the first scrape", snaps, hooks.Load(), hookFailures.Load(), time.Since(scrapedAt).Round(time.Second))
	})
	// A delivery retry is counted once the retry has been attempted.
	time.Sleep(500 * time.Millisecond)
	after := map[*proc]*opsScrape{}
	for _, p := range c.Nodes {
		after[p] = opsScrapeNode(t, p)
	}
	close(stopClaims)
	claimWG.Wait()
	load.Stop()
	t.Logf("load while scraping: %s; %d webhook calls (%d answered 500)", load.Summary(), hooks.Load(), hookFailures.Load())
	opsCheckClientErrors(t, load, handoffs)
	for _, e := range claimErrs {
		t.Errorf("claim or delete: %s", e)
	}

	// Every dashboard metric exists and moves as its rule says.
	checked := map[string]bool{}
	for _, name := range names {
		var family, typ string
		for _, p := range c.Nodes {
			if f, ty, ok := after[p].family(name); ok {
				family, typ = f, ty
				break
			}
		}
		if family == "" {
			t.Errorf("the dashboard uses %s, which no node exposes", name)
			continue
		}
		if checked[family] {
			continue
		}
		checked[family] = true
		rule, ok := opsMetricRules[family]
		if !ok {
			t.Errorf("the dashboard uses %s (family %s, %s), which has no rule in opsMetricRules: say how it should move under load", name, family, typ)
			continue
		}
		var moved []string
		var missing []string
		for _, p := range c.Nodes {
			b, a := before[p], after[p]
			if len(a.series(family, typ)) == 0 {
				missing = append(missing, p.ID)
				continue
			}
			switch rule.moves {
			case "grows":
				if a.total(family, typ) > b.total(family, typ) {
					moved = append(moved, fmt.Sprintf("%s %g→%g", p.ID, b.total(family, typ), a.total(family, typ)))
				}
			case "changes":
				bs, as := b.series(family, typ), a.series(family, typ)
				for k, v := range as {
					if old, ok := bs[k]; !ok || old != v {
						moved = append(moved, fmt.Sprintf("%s %s %g→%g", p.ID, k, old, v))
						break
					}
				}
			case "steady":
				for k, v := range a.series(family, typ) {
					if !rule.check(v) {
						t.Errorf("%s on %s is %g, out of range (%s)", k, p.ID, v, rule.why)
					}
				}
			}
		}
		if len(missing) == len(c.Nodes) || (!rule.leaderOnly && len(missing) > 0) {
			t.Errorf("%s (used by the dashboard) is not exposed by %v", family, missing)
			continue
		}
		switch {
		case rule.moves == "steady":
			t.Logf("%-40s %-9s exists on every node; steady (%s)", family, typ, rule.why)
		case len(moved) == 0:
			t.Errorf("%s (%s, used by the dashboard) did not %s on any node under load", family, typ, strings.TrimSuffix(rule.moves, "s"))
		default:
			t.Logf("%-40s %-9s %s: %s", family, typ, rule.moves, moved[0])
		}
	}
	t.Logf("checked %d metric families named by %s and %s", len(checked), opsDashboardFile, opsAlertsFile)
}
