package clustertest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The chaos suite over a deployment of two pools (docs/pools.md,
// docs/testing.md "Two pools"): pool-a (n1-n3, the catalog pool) and
// pool-b (n4-n6, started with -catalog naming pool-a's node addresses),
// both registered over REST. The workload, the nemesis, the checkers and
// the digest comparison are the single-group ones, unchanged: the
// workload's queues are spread over both pools and its workers send to
// all six nodes, so about half of the requests are carried to the other
// pool over the node channel; the nemesis runs one per pool (faults in one
// pool, or in both at once), each taking at most a minority of its pool;
// every node-to-node link, between the pools too, runs through the fault
// proxies (the pools' uris and -catalog name the proxies), and a
// partitioned node loses the other pool's nodes as well. Digests are
// compared inside each pool. A long run then takes each pool's majority
// down in turn and checks that the other pool's queues answer 2xx from
// every surviving node while the downed pool's answer 503.
//
// Settings: those of the chaos suite (chaos_test.go), and
//
//	CHAOS_POOLS_DURATION  load time of the two-pool run (default: 20s in a
//	                      short run, CHAOS_DURATION's share of one cluster
//	                      size in a long one)

// chaosPoolsShortLoad is the load time of the two-pool run of make test.
const chaosPoolsShortLoad = 20 * time.Second

// Anomaly kinds only a run of several pools reports.
const (
	anomalyPoolIsolation = "pool-isolation" // a queue of a pool with quorum failed, or one of a pool without answered other than 503
	anomalyPlacement     = "placement"      // a node names another pool for a queue than its creation did
)

// chaosPoolNames are the registered pools; the first holds the catalog.
var chaosPoolNames = []string{"pool-a", "pool-b"}

// netFaults are the fault kinds that set link rules. The proxies hold one
// set of rules for the whole deployment, so two pools never hold one at
// the same time.
var netFaults = map[string]bool{
	faultIsolateLeader: true, faultPartitionRandom: true, faultLeaderDeaf: true, faultLeaderMute: true, faultSlowNode: true,
}

// chaosPoolsOpening is the fixed opening of a short two-pool run: each
// step faults both pools at once (at most one of the two a link fault),
// so that kills, pauses and partitions hit both pools and the catalog's
// leader within the first two steps.
var chaosPoolsOpening = [][2]string{
	{faultKillLeader, faultPauseLeader},
	{faultIsolateLeader, faultKillLeader},
	{faultPauseLeader, faultIsolateLeader},
	{faultLeaderDeaf, faultReplaceNode},
}

// chaosPoolsMandatory is how many opening steps a short run takes even
// when it runs out of time.
const chaosPoolsMandatory = 2

// chaosPools is a deployment of pools whose links share one chaosNet.
type chaosPools struct {
	names  []string
	groups []*chaosCluster // groups[0] holds the catalog
	net    *chaosNet
}

// startChaosPools starts the pools, retrying on new ports when one was
// taken meanwhile.
func startChaosPools(t *testing.T, withTLS bool) (*chaosPools, error) {
	if serverBinary == "" {
		return nil, fmt.Errorf("the zaqar-server binary was not built (TestMain did not run)")
	}
	var lastErr error
	for attempt := 1; attempt <= 3; attempt++ {
		cp, err := tryStartChaosPools(t, withTLS)
		if err == nil {
			return cp, nil
		}
		lastErr = err
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
		t.Logf("chaos: attempt %d: a port was taken meanwhile; retrying on new ports", attempt)
	}
	return nil, lastErr
}

// tryStartChaosPools starts pool-a in slots 0-2 and pool-b in slots 3-5
// (with -catalog naming pool-a's proxies) and registers both, weight 100,
// through pool-a as an admin.
func tryStartChaosPools(t *testing.T, withTLS bool) (*chaosPools, error) {
	base := t.TempDir()
	cp := &chaosPools{names: chaosPoolNames, net: newChaosNet()}
	var tls *devTLS
	if withTLS {
		tls = chaosDevTLS(t, base, 3*len(cp.names))
	}
	for i := range cp.names {
		var extra []string
		if i > 0 {
			extra = []string{"-catalog", opsRaftAddrs(cp.groups[0].view.Nodes)}
		}
		cc, err := startChaosGroup(t, base, cp.net, 3*i, 3, tls, extra)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cp.names[i], err)
		}
		cp.groups = append(cp.groups, cc)
	}
	for _, cc := range cp.groups {
		for _, o := range cp.groups {
			if o != cc {
				cc.outside = append(cc.outside, slotIndexes(o.slots)...)
			}
		}
	}
	admin := adminREST(cp.groups[0].slots[0].proc, "chaos-pools-admin")
	for i, cc := range cp.groups {
		body := map[string]any{"uri": "zaqar+raft://" + opsRaftAddrs(cc.view.Nodes), "weight": 100}
		var fatal error
		err := poll(60*time.Second, func() (bool, string) {
			ctx, cancel := context.WithTimeout(context.Background(), chaosOpTimeout)
			defer cancel()
			r, err := admin.do(ctx, http.MethodPut, "/v2/pools/"+cp.names[i], body)
			switch {
			case err != nil:
				return false, err.Error()
			case r.Status == http.StatusCreated || r.Status == http.StatusNoContent:
				return true, ""
			case r.Status >= 500:
				return false, r.String()
			}
			fatal = fmt.Errorf("PUT /v2/pools/%s %v: %s", cp.names[i], body, r)
			return true, ""
		})
		if fatal != nil {
			return nil, fatal
		}
		if err != nil {
			return nil, fmt.Errorf("register %s: %w", cp.names[i], err)
		}
	}
	return cp, nil
}

// slots returns every slot of every pool, pool by pool.
func (cp *chaosPools) slots() []*chaosSlot {
	var out []*chaosSlot
	for _, cc := range cp.groups {
		out = append(out, cc.slots...)
	}
	return out
}

// endpoints returns every node's API address for the workload.
func (cp *chaosPools) endpoints() []chaosEndpoint {
	var out []chaosEndpoint
	for _, cc := range cp.groups {
		out = append(out, cc.endpoints()...)
	}
	return out
}

// poolOfNode returns the pool of the slot named name (n1, ...).
func (cp *chaosPools) poolOfNode(name string) string {
	for i, cc := range cp.groups {
		for _, s := range cc.slots {
			if s.name == name {
				return cp.names[i]
			}
		}
	}
	return ""
}

// all is a chaosCluster holding every process of every pool, for saving
// their logs.
func (cp *chaosPools) all() *chaosCluster {
	out := &chaosCluster{}
	for _, cc := range cp.groups {
		out.procs = append(out.procs, cc.procs...)
	}
	return out
}

// chaosPoolsConfig is the two-pool run's settings: the chaos suite's, with
// the load time of CHAOS_POOLS_DURATION (default 20 s in a short run, one
// cluster size's share of CHAOS_DURATION in a long one).
func chaosPoolsConfig(t *testing.T) chaosConfig {
	cfg := chaosConfigs(t)[0]
	cfg.Pools, cfg.Nodes = len(chaosPoolNames), 3*len(chaosPoolNames)
	if cfg.Short {
		cfg.Duration = min(cfg.Duration, chaosPoolsShortLoad)
	}
	if v := os.Getenv("CHAOS_POOLS_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 20*time.Second {
			t.Fatalf("CHAOS_POOLS_DURATION=%q: want a duration of at least 20s", v)
		}
		cfg.Duration = d
	}
	return cfg
}

func TestChaos_TwoPools(t *testing.T) {
	cfg := chaosPoolsConfig(t)
	rep := runPoolsChaos(t, cfg)
	for _, line := range rep.lines() {
		fmt.Println(line)
	}
	if rep.harnessErr != nil {
		t.Errorf("chaos harness: %v", rep.harnessErr)
	}
	if rep.hist == nil || rep.result == nil {
		return
	}
	faulted := map[string]bool{}
	for _, f := range rep.hist.Faults {
		if pool, _, ok := strings.Cut(f.Note, ":"); ok {
			faulted[pool] = true
		}
	}
	for _, pool := range chaosPoolNames {
		if !faulted[pool] {
			t.Errorf("no fault was injected into %s (faults: %v)", pool, rep.faultCounts())
		}
	}
	checkRanFaultsAndLoad(t, cfg, rep)
	if carried, _ := carriedOps(rep.hist); carried == 0 {
		t.Errorf("no acknowledged operation was carried to the other pool")
	}
	reportAnomalies(t, rep)
}

// carriedOps counts the acknowledged operations (final listings excluded)
// sent to a node of another pool than their queue's, and all of them.
func carriedOps(h *chaosHistory) (carried, acked int) {
	poolOfNode := map[string]string{}
	for i, pool := range chaosPoolNames {
		for j := 0; j < 3; j++ {
			poolOfNode[fmt.Sprintf("n%d", 3*i+j+1)] = pool
		}
	}
	for i := range h.Ops {
		op := &h.Ops[i]
		if op.Final || !op.acked() {
			continue
		}
		acked++
		if pool := h.Header.Placement[op.Queue]; pool != "" && poolOfNode[op.Node] != pool {
			carried++
		}
	}
	return carried, acked
}

// runPoolsChaos is runChaos over two pools: the same workload, nemesis and
// checkers.
func runPoolsChaos(t *testing.T, cfg chaosConfig) *chaosReport {
	began := time.Now()
	rep := &chaosReport{cfg: cfg}
	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x9001))
	t.Logf("chaos: seed %d, %d pools of 3 nodes, %s of load", cfg.Seed, cfg.Pools, cfg.Duration)
	cp, err := startChaosPools(t, cfg.TLS)
	if err != nil {
		t.Fatalf("start the pools: %v", err)
	}
	start := time.Now()
	rec := newOpRecorder(start)
	longTTL := int(min(max(2*cfg.Duration+10*time.Minute, time.Hour), 1209600*time.Second) / time.Second)
	w := newChaosWorkload(rec, cfg.Seed, cp.endpoints(), longTTL)
	w.staleReads = cfg.StaleReads
	placement, spares, err := placeChaosQueues(cp, w)
	if err != nil {
		t.Fatalf("place the queues: %v", err)
	}
	hist := &chaosHistory{Header: runHeader{
		Seed: cfg.Seed, Nodes: cfg.Nodes, Duration: cfg.Duration.String(), Started: start, Project: w.project,
		Queues: append(append([]string(nil), w.queues...), probeQueue), ShortTTLQueues: []string{w.short}, ClaimTTL: w.claimTTL,
		TLS: cfg.TLS, Placement: placement,
	}}
	rep.hist = hist
	queuesOf := map[string][]string{}
	for _, q := range w.allQueues() {
		queuesOf[placement[q]] = append(queuesOf[placement[q]], q)
	}
	for _, pool := range cp.names {
		rep.extra = append(rep.extra, fmt.Sprintf("pools: %s (%s) holds %v (spare %s)", pool,
			strings.Join(slotNames(cp.groups[indexOf(cp.names, pool)].slots), ","), queuesOf[pool], spares[pool]))
	}
	t.Logf("chaos: placement %v, spares %v", placement, spares)
	w.start()

	// One nemesis per pool, each with its own schedule; a step faults one
	// pool or both at once.
	nems := make([]*nemesis, len(cp.groups))
	plans := make([][]string, len(cp.groups))
	for i, cc := range cp.groups {
		nems[i] = &nemesis{cc: cc, rng: rand.New(rand.NewPCG(uint64(cfg.Seed), uint64(0xfa017+i))), rec: rec, recoveryTimeout: 2 * time.Minute, logf: t.Logf}
		plans[i] = nems[i].schedule(nil, 1000)
	}
	var steps [][2]string
	mandatory := 0
	if cfg.Short {
		steps, mandatory = append(steps, chaosPoolsOpening...), chaosPoolsMandatory
	}
	next := make([]int, len(cp.groups))
	for len(steps) < 1000 {
		var step [2]string
		switch mode := rng.IntN(3); mode {
		case 0, 1: // one pool
			step[mode] = plans[mode][next[mode]]
			next[mode]++
		default: // both, at most one of them a link fault
			step[0] = plans[0][next[0]]
			next[0]++
			if !netFaults[step[0]] || !netFaults[plans[1][next[1]]] {
				step[1] = plans[1][next[1]]
				next[1]++
			}
		}
		steps = append(steps, step)
	}
	time.Sleep(3 * time.Second) // load before the first fault
	quietEnd := cfg.Duration - 8*time.Second
	for i, step := range steps {
		if i >= mandatory && time.Since(start) > quietEnd {
			break
		}
		faults := make([]faultRecord, len(step))
		errs := make([]error, len(step))
		var wg sync.WaitGroup
		for p, kind := range step {
			if kind == "" {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				faults[p], errs[p] = nems[p].inject(kind)
			}()
		}
		wg.Wait()
		for p, kind := range step {
			if kind == "" {
				continue
			}
			f := faults[p]
			f.Note = cp.names[p] + ": " + f.Note
			f.Queues = queuesOf[cp.names[p]]
			hist.Faults = append(hist.Faults, f)
			t.Logf("chaos: %s %s %v at %s, healed %s, recovered %s: %s", cp.names[p], f.Kind, f.Nodes, fmtOffset(f.Start), fmtOffset(f.Heal), fmtOffset(f.Recovered), f.Note)
			if errs[p] != nil && rep.harnessErr == nil {
				rep.harnessErr = fmt.Errorf("%s: %w", cp.names[p], errs[p])
			}
		}
		if rep.harnessErr != nil {
			break
		}
		time.Sleep(nems[0].between(2*time.Second, 4*time.Second))
	}
	for time.Since(start) < cfg.Duration && rep.harnessErr == nil {
		time.Sleep(100 * time.Millisecond)
	}
	w.halt()
	cp.net.heal()
	for _, cc := range cp.groups {
		for _, s := range cc.slots {
			_ = s.proc.send(syscall.SIGCONT)
			if !s.proc.Running() {
				if err := cc.restart(s); err != nil && rep.harnessErr == nil {
					rep.harnessErr = err
				}
			}
		}
	}
	final := faultRecord{Kind: "final-heal", Start: rec.now(), Heal: rec.now()}
	healthy := true
	for i, cc := range cp.groups {
		if err := cc.waitHealthy(3 * time.Minute); err != nil {
			final.Note += cp.names[i] + ": " + err.Error() + "; "
			healthy = false
		}
	}
	var extraAnomalies []anomaly
	if !healthy {
		hist.Faults = append(hist.Faults, final)
	} else {
		if !cfg.Short && rep.harnessErr == nil {
			// Each pool's majority down in turn, the catalog pool last.
			for _, down := range []int{1, 0} {
				f, as, err := cp.quorumLoss(rec, w.project, down, placement, spares)
				f.Queues = queuesOf[cp.names[down]]
				hist.Faults = append(hist.Faults, f)
				extraAnomalies = append(extraAnomalies, as...)
				t.Logf("chaos: %s %v at %s, healed %s, recovered %s: %s", f.Kind, f.Nodes, fmtOffset(f.Start), fmtOffset(f.Heal), fmtOffset(f.Recovered), f.Note)
				if err != nil {
					rep.harnessErr = err
					break
				}
				if f.Recovered == 0 {
					break
				}
			}
		}
		extraAnomalies = append(extraAnomalies, cp.checkPlacement(w.project, placement)...)
		if err := readFinalState(cp.groups[0], w, rec); err != nil && rep.harnessErr == nil {
			rep.harnessErr = fmt.Errorf("final read: %w", err)
		}
		hist.Header.Digest = cp.compareDigests(2 * time.Minute)
	}
	hist.Ops = rec.snapshot()
	rep.result = checkHistory(hist, 30*time.Second)
	rep.result.Anomalies = append(rep.result.Anomalies, extraAnomalies...)
	carried, acked := carriedOps(hist)
	rep.extra = append(rep.extra, fmt.Sprintf("pools: %d of %d acknowledged operations were sent to a node of the other pool and carried there", carried, acked))
	rep.elapsed = time.Since(began)
	if len(rep.result.Anomalies) > 0 || rep.harnessErr != nil || cfg.Keep {
		rep.save(t, cp.all())
	}
	return rep
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

// placeChaosQueues creates the workload's queues through nodes of both
// pools and reads where each was placed from X-Zaqar-Pool. The checked
// queues are the first two of q0, q1, ... placed on each pool; the probe
// and short-TTL queues land where they land; one spare queue per pool
// (spare-N, not in the history) serves the quorum-loss checks. It returns
// queue -> pool for the workload's queues, and pool -> spare queue.
func placeChaosQueues(cp *chaosPools, w *chaosWorkload) (map[string]string, map[string]string, error) {
	slots := cp.slots()
	n := 0
	create := func(q string) (string, error) {
		s := slots[n%len(slots)]
		n++
		c := &restClient{base: s.proc.URL(), clientID: "00000000-0000-4000-8000-00000000c0de", project: w.project, http: s.proc.httpClient(chaosOpTimeout)}
		var pool string
		err := poll(60*time.Second, func() (bool, string) {
			ctx, cancel := context.WithTimeout(context.Background(), chaosOpTimeout)
			defer cancel()
			r, err := c.do(ctx, http.MethodPut, "/v2/queues/"+q, map[string]any{})
			if err != nil {
				return false, err.Error()
			}
			pool = r.Header.Get(poolHeader)
			return r.Status == http.StatusCreated || r.Status == http.StatusNoContent, r.String()
		})
		if err != nil {
			return "", fmt.Errorf("queue %s through %s: %w", q, s.name, err)
		}
		if indexOf(cp.names, pool) < 0 {
			return "", fmt.Errorf("PUT /v2/queues/%s through %s: %s %q is not a registered pool", q, s.name, poolHeader, pool)
		}
		return pool, nil
	}
	placement := map[string]string{}
	for _, q := range []string{probeQueue, w.short} {
		pool, err := create(q)
		if err != nil {
			return nil, nil, err
		}
		placement[q] = pool
	}
	const perPool = 2
	counts := map[string]int{}
	var checked []string
	for i := 0; len(checked) < perPool*len(cp.names); i++ {
		if i == 40 {
			return nil, nil, fmt.Errorf("40 queues did not give %d on each pool: %v", perPool, counts)
		}
		q := fmt.Sprintf("q%d", i)
		pool, err := create(q)
		if err != nil {
			return nil, nil, err
		}
		if counts[pool] < perPool {
			counts[pool]++
			checked = append(checked, q)
			placement[q] = pool
		}
	}
	w.queues = checked
	spares := map[string]string{}
	for i := 0; len(spares) < len(cp.names); i++ {
		if i == 40 {
			return nil, nil, fmt.Errorf("40 spare queues did not give one on each pool: %v", spares)
		}
		q := fmt.Sprintf("spare-%d", i)
		pool, err := create(q)
		if err != nil {
			return nil, nil, err
		}
		if spares[pool] == "" {
			spares[pool] = q
		}
	}
	return placement, spares, nil
}

// checkPlacement asks every node where every queue lives: each must name
// the pool the queue's creation named (placement never moves).
func (cp *chaosPools) checkPlacement(project string, placement map[string]string) []anomaly {
	var out []anomaly
	for _, s := range cp.slots() {
		c := &restClient{base: s.proc.URL(), clientID: "00000000-0000-4000-8000-0000000f1a1e", project: project, http: s.proc.httpClient(chaosOpTimeout)}
		for q, want := range placement {
			ctx, cancel := context.WithTimeout(context.Background(), chaosOpTimeout)
			r, err := c.do(ctx, http.MethodGet, "/v2/queues/"+q, nil)
			cancel()
			switch {
			case err != nil:
				out = append(out, anomaly{Kind: anomalyPlacement, Detail: fmt.Sprintf("GET /v2/queues/%s through %s after the run: %v", q, s.name, err)})
			case r.Status != http.StatusOK:
				out = append(out, anomaly{Kind: anomalyPlacement, Detail: fmt.Sprintf("GET /v2/queues/%s through %s after the run: %s", q, s.name, r)})
			case r.Header.Get(poolHeader) != want:
				out = append(out, anomaly{Kind: anomalyPlacement, Detail: fmt.Sprintf("GET /v2/queues/%s through %s names %s %q; its creation named %q", q, s.name, poolHeader, r.Header.Get(poolHeader), want)})
			}
		}
	}
	return out
}

// compareDigests compares the digests inside each pool (each is its own
// Raft group with its own applied index).
func (cp *chaosPools) compareDigests(timeout time.Duration) *digestResult {
	res := &digestResult{Checked: true, Digests: map[string]string{}, Pools: map[string]uint64{}}
	var problems []string
	for i, cc := range cp.groups {
		d := cc.compareDigests(timeout)
		res.Checked = res.Checked && d.Checked
		res.Pools[cp.names[i]] = d.AppliedIndex
		for id, dg := range d.Digests {
			res.Digests[id] = dg
		}
		if d.Problem != "" {
			problems = append(problems, cp.names[i]+": "+d.Problem)
		}
	}
	res.Problem = strings.Join(problems, "; ")
	return res
}

// faultPoolQuorumLoss is the quorum-loss phase of a long two-pool run.
const faultPoolQuorumLoss = "pool-quorum-loss"

// quorumLoss kills the leader and one follower of pool down, with the
// load stopped, and checks every queue from every surviving node at once:
// a listing of each queue, and a post to each pool's spare queue, must
// answer 2xx for the queues of the pools that keep their quorum and 503
// for those of pool down (never another status, never no answer). Every
// node first reads every queue, so that it holds the placements in its
// cache: with the catalog pool down, only cached placements can be
// served (docs/pools.md). Then the nodes are restarted and the pool must
// recover.
func (cp *chaosPools) quorumLoss(rec *opRecorder, project string, down int, placement, spares map[string]string) (faultRecord, []anomaly, error) {
	cc := cp.groups[down]
	pool := cp.names[down]
	f := faultRecord{Kind: faultPoolQuorumLoss, Note: pool + ": "}
	var out []anomaly
	bad := func(format string, args ...any) {
		out = append(out, anomaly{Kind: anomalyPoolIsolation, Detail: pool + " without quorum: " + fmt.Sprintf(format, args...)})
	}
	queues := map[string]string{} // queue -> pool
	for q, p := range placement {
		queues[q] = p
	}
	for p, q := range spares {
		queues[q] = p
	}
	client := func(s *chaosSlot) *restClient {
		return &restClient{base: s.proc.URL(), clientID: "00000000-0000-4000-8000-0000000900e5", project: project, http: s.proc.httpClient(20 * time.Second)}
	}
	list := func(s *chaosSlot, q string) (*response, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		return client(s).do(ctx, http.MethodGet, "/v2/queues/"+q+"/messages?echo=true&include_claimed=true&limit=1", nil)
	}
	// Warm every node's placement cache.
	for _, s := range cp.slots() {
		for q := range queues {
			if r, err := list(s, q); err != nil || r.Status/100 != 2 {
				f.Note += fmt.Sprintf("warm-up %s through %s: %v %v; ", q, s.name, r, err)
			}
		}
	}
	leader, err := cc.leader(60 * time.Second)
	if err != nil {
		f.Start, f.Heal = rec.now(), rec.now()
		f.Note += "no leader before the fault: " + err.Error()
		return f, out, nil
	}
	victims := []*chaosSlot{leader, cc.others(leader)[0]}
	f.Nodes, f.LeaderLoss = slotNames(victims), true
	f.Start = rec.now()
	for _, v := range victims {
		if err := cc.kill(v); err != nil {
			return f, out, err
		}
	}
	var survivors []*chaosSlot
	for _, s := range cp.slots() {
		if !hasSlot(victims, s) {
			survivors = append(survivors, s)
		}
	}
	// Until the pool's survivor notices, its queues may still answer 2xx;
	// wait for the 503, through a node of another pool.
	via := cp.groups[(down+1)%len(cp.groups)].slots[0]
	probe := spares[pool]
	err = poll(60*time.Second, func() (bool, string) {
		r, err := list(via, probe)
		if err != nil {
			return false, err.Error()
		}
		if r.Status != http.StatusServiceUnavailable && r.Status/100 != 2 {
			bad("list %s (on %s) through %s while it loses its quorum: %s, want 2xx or 503", probe, pool, via.name, r)
		}
		return r.Status == http.StatusServiceUnavailable, r.String()
	})
	if err != nil {
		bad("list %s through %s never answered 503: %v", probe, via.name, err)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	checked := 0
	for _, s := range survivors {
		for q, qp := range queues {
			ops := []string{"list"}
			if spares[qp] == q {
				ops = append(ops, "post")
			}
			for _, op := range ops {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var r *response
					var err error
					if op == "list" {
						r, err = list(s, q)
					} else {
						ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
						r, err = client(s).do(ctx, http.MethodPost, "/v2/queues/"+q+"/messages",
							map[string]any{"messages": []map[string]any{{"ttl": 3600, "body": map[string]any{"quorum-loss": pool, "via": s.name}}}})
						cancel()
					}
					mu.Lock()
					defer mu.Unlock()
					checked++
					switch {
					case err != nil:
						bad("%s %s (on %s) through %s: %v", op, q, qp, s.name, err)
					case qp == pool && r.Status != http.StatusServiceUnavailable:
						bad("%s %s (on %s) through %s: %s, want 503", op, q, qp, s.name, r)
					case qp != pool && r.Status/100 != 2:
						bad("%s %s (on %s, which has its quorum) through %s: %s, want 2xx", op, q, qp, s.name, r)
					}
				}()
			}
		}
	}
	wg.Wait()
	f.Note += fmt.Sprintf("%v killed; %d requests from the %d surviving nodes, %d answered wrong", f.Nodes, checked, len(survivors), len(out))
	for _, v := range victims {
		if err := cc.restart(v); err != nil {
			return f, out, fmt.Errorf("restart %s: %w", v.proc.ID, err)
		}
	}
	f.Heal = rec.now()
	if err := cc.waitHealthy(2 * time.Minute); err != nil {
		f.Note += "; " + err.Error()
		return f, out, nil
	}
	f.Recovered = rec.now()
	return f, out, nil
}
