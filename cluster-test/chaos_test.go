package clustertest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The chaos suite (docs/testing.md): a real cluster of zaqar-server
// processes under concurrent REST and websocket load while a nemesis kills,
// pauses, partitions, replaces and restarts nodes; then the recorded
// history is checked and a report printed.
//
// Settings (environment):
//
//	CHAOS_DURATION  load time of each run (default 75s: the short run of make test)
//	CHAOS_NODES     cluster sizes, e.g. "3,5" (default 3; 3,5 when CHAOS_DURATION > 2m)
//	CHAOS_SEED      seed of the fault schedule and the workload (default: random)
//	CHAOS_KEEP      "1": keep the history and logs even when the run passes
//	CHAOS_ARTIFACTS directory for them (default: a new directory under $TMPDIR)
//	CHAOS_STALE_READS "1": the REST reader reads with X-Read-Consistency: stale;
//	                the run must then fail (a demonstration that the checkers see it)
//	CHAOS_TLS       "1": TLS on every port (https/wss load, mutual TLS between nodes)

// chaosConfig is one chaos run's settings.
type chaosConfig struct {
	Nodes    int
	Duration time.Duration // load time; the run adds start-up, recovery and checking
	Seed     int64
	Keep     bool
	Dir      string
	Short    bool
	// StaleReads lets the REST reader read stale (CHAOS_STALE_READS=1):
	// a run that must fail, to show the checkers catch stale reads.
	StaleReads bool
	// TLS runs every node with TLS on both ports (CHAOS_TLS=1): https
	// and wss for the workload, mutual TLS through the fault proxies.
	TLS bool
	// Pools is the number of pools of a run of several pools
	// (chaos_pools_test.go; Nodes counts every pool's nodes), 0 otherwise.
	Pools int
}

// chaosConfigs reads the environment.
func chaosConfigs(t *testing.T) []chaosConfig {
	t.Helper()
	total := 75 * time.Second
	if v := os.Getenv("CHAOS_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 30*time.Second {
			t.Fatalf("CHAOS_DURATION=%q: want a duration of at least 30s", v)
		}
		total = d
	}
	short := total <= 2*time.Minute
	sizes := []int{3}
	if !short {
		sizes = []int{3, 5}
	}
	if v := os.Getenv("CHAOS_NODES"); v != "" {
		sizes = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 3 || n > 9 {
				t.Fatalf("CHAOS_NODES=%q: want sizes between 3 and 9", v)
			}
			sizes = append(sizes, n)
		}
	}
	seed := time.Now().UnixNano() % 1_000_000_000
	if v := os.Getenv("CHAOS_SEED"); v != "" {
		s, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("CHAOS_SEED=%q: %v", v, err)
		}
		seed = s
	}
	var out []chaosConfig
	for i, n := range sizes {
		out = append(out, chaosConfig{
			Nodes: n, Duration: total / time.Duration(len(sizes)), Seed: seed + int64(i),
			Keep: os.Getenv("CHAOS_KEEP") == "1", Dir: os.Getenv("CHAOS_ARTIFACTS"), Short: short,
			StaleReads: os.Getenv("CHAOS_STALE_READS") == "1", TLS: os.Getenv("CHAOS_TLS") == "1",
		})
	}
	return out
}

func TestChaos_NothingAcknowledgedIsLostUnderKillsPausesAndPartitions(t *testing.T) {
	for _, cfg := range chaosConfigs(t) {
		t.Run(fmt.Sprintf("%d-nodes", cfg.Nodes), func(t *testing.T) {
			rep := runChaos(t, cfg)
			for _, line := range rep.lines() {
				fmt.Println(line)
			}
			if rep.harnessErr != nil {
				t.Errorf("chaos harness: %v", rep.harnessErr)
			}
			checkRanFaultsAndLoad(t, cfg, rep)
			reportAnomalies(t, rep)
		})
	}
}

// checkRanFaultsAndLoad fails a run that did not do what it is for: a
// short run without a kill, a pause and a partition of a leader, or any run
// in which no post was acknowledged.
func checkRanFaultsAndLoad(t *testing.T, cfg chaosConfig, rep *chaosReport) {
	t.Helper()
	if cfg.Short {
		for _, k := range []string{faultKillLeader, faultPauseLeader, faultIsolateLeader} {
			if rep.faultCounts()[k] == 0 {
				t.Errorf("the short run injected no %s fault (faults: %v)", k, rep.faultCounts())
			}
		}
	}
	if rep.result.AckedPosts == 0 {
		t.Errorf("no post was acknowledged during the run; the workload did not run")
	}
}

// reportAnomalies fails the test with the run's anomalies, at most 30.
func reportAnomalies(t *testing.T, rep *chaosReport) {
	t.Helper()
	for i, a := range rep.result.Anomalies {
		if i == 30 {
			t.Errorf("... and %d more anomalies (see %s)", len(rep.result.Anomalies)-30, rep.dir)
			break
		}
		t.Errorf("anomaly: %s", a)
	}
}

// chaosReport is the outcome of one run.
type chaosReport struct {
	cfg        chaosConfig
	hist       *chaosHistory
	result     *checkResult
	harnessErr error
	elapsed    time.Duration
	dir        string // where the history and logs were saved ("" = not saved)
	visuals    []string
	// extra are report lines of a particular run (the pools' placement),
	// printed after the summary's first details.
	extra []string
}

// runChaos runs one chaos run and checks it. It fails the test only for
// problems of the harness itself; anomalies are in the report.
func runChaos(t *testing.T, cfg chaosConfig) *chaosReport {
	began := time.Now()
	rep := &chaosReport{cfg: cfg}
	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0xc4a05))
	t.Logf("chaos: seed %d, %d nodes, %s of load", cfg.Seed, cfg.Nodes, cfg.Duration)
	cc, err := startChaosCluster(t, cfg.Nodes, cfg.TLS)
	if err != nil {
		t.Fatalf("start the chaos cluster: %v", err)
	}
	start := time.Now()
	rec := newOpRecorder(start)
	// Messages of the checked queues must outlive the run: the model does
	// not track message expiry.
	longTTL := int(min(max(2*cfg.Duration+10*time.Minute, time.Hour), 1209600*time.Second) / time.Second)
	w := newChaosWorkload(rec, cfg.Seed, cc.endpoints(), longTTL)
	w.staleReads = cfg.StaleReads
	hist := &chaosHistory{Header: runHeader{
		Seed: cfg.Seed, Nodes: cfg.Nodes, Duration: cfg.Duration.String(), Started: start, Project: w.project,
		Queues: append(append([]string(nil), w.queues...), probeQueue), ShortTTLQueues: []string{w.short}, ClaimTTL: w.claimTTL,
		TLS: cfg.TLS,
	}}
	rep.hist = hist
	if err := createQueues(cc, w); err != nil {
		t.Fatalf("create the queues: %v", err)
	}
	w.start()
	nem := &nemesis{cc: cc, rng: rng, rec: rec, recoveryTimeout: 2 * time.Minute, logf: t.Logf}
	opening, mandatory := shortRunFaults, shortRunMandatory
	if !cfg.Short {
		opening, mandatory = nil, 0
	}
	plan := nem.schedule(opening, 1000)
	time.Sleep(3 * time.Second) // load before the first fault
	// Stop starting faults when the remaining time could not hold one.
	quietEnd := cfg.Duration - 8*time.Second
	for i, kind := range plan {
		// The mandatory faults of a short run happen however slow the
		// machine is; later ones only while time remains.
		if i >= mandatory && time.Since(start) > quietEnd {
			break
		}
		f, err := nem.inject(kind)
		hist.Faults = append(hist.Faults, f)
		t.Logf("chaos: %s %v at %s, healed %s, recovered %s: %s", f.Kind, f.Nodes, fmtOffset(f.Start), fmtOffset(f.Heal), fmtOffset(f.Recovered), f.Note)
		if err != nil {
			rep.harnessErr = err
			break
		}
		time.Sleep(nem.between(2*time.Second, 4*time.Second))
	}
	for time.Since(start) < cfg.Duration && rep.harnessErr == nil {
		time.Sleep(100 * time.Millisecond)
	}
	w.halt()
	cc.net.heal()
	for _, s := range cc.slots {
		_ = s.proc.send(syscall.SIGCONT) // in case the harness failed mid-pause
		if !s.proc.Running() {
			if err := cc.restart(s); err != nil && rep.harnessErr == nil {
				rep.harnessErr = err
			}
		}
	}
	final := faultRecord{Kind: "final-heal", Start: rec.now(), Heal: rec.now()}
	if err := cc.waitHealthy(3 * time.Minute); err != nil {
		final.Note = err.Error()
		hist.Faults = append(hist.Faults, final)
	} else {
		if err := readFinalState(cc, w, rec); err != nil && rep.harnessErr == nil {
			rep.harnessErr = fmt.Errorf("final read: %w", err)
		}
		hist.Header.Digest = cc.compareDigests(2 * time.Minute)
	}
	hist.Ops = rec.snapshot()
	rep.result = checkHistory(hist, 30*time.Second)
	rep.elapsed = time.Since(began)
	failed := len(rep.result.Anomalies) > 0 || rep.harnessErr != nil
	if failed || cfg.Keep {
		rep.save(t, cc)
	}
	return rep
}

// createQueues creates the workload's queues, retrying until a leader
// answers.
func createQueues(cc *chaosCluster, w *chaosWorkload) error {
	first := cc.slots[0].proc
	c := &restClient{base: first.URL(), clientID: "00000000-0000-4000-8000-00000000c0de", project: w.project, http: first.httpClient(chaosOpTimeout)}
	for _, q := range w.allQueues() {
		err := poll(60*time.Second, func() (bool, string) {
			ctx, cancel := context.WithTimeout(context.Background(), chaosOpTimeout)
			defer cancel()
			r, err := c.do(ctx, http.MethodPut, "/v2/queues/"+q, map[string]any{})
			if err != nil {
				return false, err.Error()
			}
			return r.Status == http.StatusCreated || r.Status == http.StatusNoContent, r.String()
		})
		if err != nil {
			return fmt.Errorf("queue %s: %w", q, err)
		}
	}
	return nil
}

// readFinalState lists every queue in full through the leader (pages of
// linearizable reads on a quiet cluster) and records the pages as the
// final listing. A listing that fails midway is started again.
func readFinalState(cc *chaosCluster, w *chaosWorkload, rec *opRecorder) error {
	for _, q := range w.allQueues() {
		var lastErr error
		done := false
		for attempt := 0; attempt < 5 && !done; attempt++ {
			leader, err := cc.leader(60 * time.Second)
			if err != nil {
				lastErr = err
				continue
			}
			c := &restClient{base: leader.proc.URL(), clientID: "00000000-0000-4000-8000-0000000f1a1e", project: w.project, http: leader.proc.httpClient(30 * time.Second)}
			var pages []opRecord
			marker := ""
			for page := 0; page < 100000; page++ {
				op := opRecord{Worker: len(chaosRoles), Node: leader.name, Transport: "rest", Kind: opList, Queue: q, Call: rec.now(), Marker: marker, Final: true}
				next := restList(c, &op, marker)
				op.Return = rec.now()
				if !op.acked() {
					lastErr = fmt.Errorf("page %d of %s: %s %s", page, q, op.Outcome, op.Error)
					break
				}
				if len(op.Seen) == 0 || next == "" {
					op.FinalComplete = len(op.Seen) == 0
					pages = append(pages, op)
					done = op.FinalComplete
					if !done {
						lastErr = fmt.Errorf("%s: a non-empty page without a next link", q)
					}
					break
				}
				pages = append(pages, op)
				marker = next
			}
			if done {
				for _, op := range pages {
					rec.add(op)
				}
			}
		}
		if !done {
			return lastErr
		}
	}
	return nil
}

// save writes the history, the report and the node logs to the artifacts
// directory.
func (rep *chaosReport) save(t *testing.T, cc *chaosCluster) {
	dir := rep.cfg.Dir
	var err error
	if dir == "" {
		dir, err = os.MkdirTemp("", fmt.Sprintf("zaqar-chaos-%d-", rep.cfg.Seed))
	} else {
		dir = filepath.Join(dir, fmt.Sprintf("seed-%d-%dnodes-%s", rep.cfg.Seed, rep.cfg.Nodes, time.Now().Format("20060102-150405")))
		err = os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		t.Logf("chaos: cannot create the artifacts directory: %v", err)
		return
	}
	rep.dir = dir
	if err := writeHistory(filepath.Join(dir, "history.jsonl"), rep.hist); err != nil {
		t.Logf("chaos: write history: %v", err)
	}
	rep.visuals = rep.result.Lin.writeVisualizations(dir)
	for _, p := range cc.procs {
		if b, err := os.ReadFile(p.LogPath); err == nil {
			_ = os.WriteFile(filepath.Join(dir, p.ID+".log"), b, 0o644)
		}
	}
	_ = os.WriteFile(filepath.Join(dir, "report.txt"), []byte(strings.Join(rep.lines(), "\n")+"\n"), 0o644)
}
