package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/time/rate"

	"github.com/zaqar-raft/zaqar/internal/tlsconf"
)

// poolsBench measures how throughput scales with pools (docs/pools.md) and
// what a request carried to another pool costs. `zaqar-bench pools`, in
// one run:
//
//  1. one pool of three nodes pinned to -pool1-cpus (taskset), loaded by
//     this process pinned to -load-cpus (phase 1a: the pool's ceiling on a
//     core of its own) and then pinned to the pool's own CPUs (phase 1b:
//     the load generator shares the pool's core, as it shares the pools'
//     cores in phase 2);
//  2. two pools, pool 1 pinned to -pool1-cpus and pool 2 to -pool2-cpus,
//     both registered, queues created until each pool holds half of them
//     (X-Zaqar-Pool), and the same load sent by this process, unpinned, to
//     a node of the pool that owns each queue;
//  3. in the same two pools, the same request sequence paced at a fixed
//     rate, first sent to a node of each queue's own pool and then to a
//     node of the other pool (carried over the node channel).
//
// The load is single-message posts (256-byte bodies) from closed-loop
// workers; CPU is user+system time from /proc of every node process and of
// this process, per message.
func poolsBench(args []string, out io.Writer) int {
	fs := flag.NewFlagSet("zaqar-bench pools", flag.ContinueOnError)
	serverBin := fs.String("server-bin", "./bin/zaqar-server", "zaqar-server binary")
	serverArgs := fs.String("server-args", "", "extra flags for every node, space-separated")
	duration := fs.Duration("duration", 12*time.Second, "measured duration of each phase (phase 3 measures twice this: direct, then proxied)")
	warmup := fs.Duration("warmup", 2*time.Second, "load before each measurement (excluded)")
	workers := fs.Int("workers", 48, "concurrent posters (closed loop) per pool: this many in phase 1, twice as many in phases 2 and 3, half on each pool's queues")
	queues := fs.Int("queues", 16, "queues the load is spread over (in phase 2, half on each pool)")
	size := fs.Int("message-size", 256, "approximate size of each message body in bytes")
	pool1CPUs := fs.String("pool1-cpus", "0", "taskset CPU list of pool 1's nodes (phases 1 and 2)")
	pool2CPUs := fs.String("pool2-cpus", "1", "taskset CPU list of pool 2's nodes")
	loadCPUs := fs.String("load-cpus", "1", "taskset CPU list of this process (the load generator) in phase 1a")
	noPin := fs.Bool("no-pin", false, "pin nothing (no taskset): the phases still run, the ratio means little")
	skipShared := fs.Bool("skip-shared", false, "skip phase 1b (the one pool with the load generator on its core)")
	proxyRate := fs.Float64("proxy-rate", 0, "posts per second in phase 3 (0: 40% of phase 2's rate, so that both the direct and the proxied run keep up)")
	project := fs.String("project", "pools-bench", "X-Project-ID to use")
	logs := fs.String("logs", "", "copy the nodes' logs into this directory (phase1-nodeN.log, phase2-nodeN.log) before they are removed")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *workers < 1 || *queues < 2 {
		fmt.Fprintln(os.Stderr, "zaqar-bench pools: -workers must be at least 1 and -queues at least 2")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b := &poolsRun{out: out, ctx: ctx, duration: *duration, warmup: *warmup, workers: *workers, size: *size, project: *project, pin: !*noPin, logs: *logs}
	tr, err := httpTransport(tlsconf.Files{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "zaqar-bench pools:", err)
		return 1
	}
	b.hc = &http.Client{Timeout: 30 * time.Second, Transport: tr}
	if err := b.run(*serverBin, strings.Fields(*serverArgs), *queues, *pool1CPUs, *pool2CPUs, *loadCPUs, *skipShared, *proxyRate); err != nil {
		fmt.Fprintln(os.Stderr, "zaqar-bench pools:", err)
		return 1
	}
	return 0
}

// poolsRun is one run of the pools benchmark.
type poolsRun struct {
	out      io.Writer
	ctx      context.Context
	hc       *http.Client
	duration time.Duration
	warmup   time.Duration
	workers  int
	size     int
	project  string
	pin      bool
	runID    string
	logs     string
}

// stop stops a cluster, first copying its nodes' logs to b.logs.
func (b *poolsRun) stop(cl *localCluster, phase string) {
	if b.logs != "" {
		_ = os.MkdirAll(b.logs, 0o755)
		for _, nd := range cl.nodes {
			if data, err := os.ReadFile(filepath.Join(cl.dir, nd.id+".log")); err == nil {
				_ = os.WriteFile(filepath.Join(b.logs, phase+"-"+nd.id+".log"), data, 0o644)
			}
		}
	}
	cl.stop()
}

// benchPool is one pool under load: its cluster, its name in the catalog,
// its node URLs and the queues it holds.
type benchPool struct {
	name   string
	cl     *localCluster
	urls   []string
	queues []string
}

// loadResult is one measurement.
type loadResult struct {
	elapsed  time.Duration
	msgs     []uint64 // per pool (of the queues' owner)
	errors   uint64
	lastErr  string
	hist     histogram
	ticks    []uint64 // node CPU per pool, 10 ms ticks
	selfTick uint64   // this process's CPU
	// elections is how much the pools' Raft terms rose over the phase
	// (warm-up included): leader elections, e.g. a starved heartbeat.
	elections uint64
	// busy is each CPU's busy time (10 ms ticks, /proc/stat: all but idle
	// and iowait) over the measurement, every process of the machine
	// included; its sum less ticks and selfTick is what else ran.
	busy []uint64
}

// others is the CPU (ticks) that neither the nodes nor this process used
// during the measurement: other processes of the machine, and kernel work
// not charged to a process.
func (r *loadResult) others() uint64 {
	var busy, ours uint64
	for _, t := range r.busy {
		busy += t
	}
	for _, t := range r.ticks {
		ours += t
	}
	ours += r.selfTick
	if busy < ours {
		return 0
	}
	return busy - ours
}

// cpuBusy reads each CPU's busy ticks from /proc/stat.
func cpuBusy() ([]uint64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil, err
	}
	return parseCPUBusy(string(b)), nil
}

// parseCPUBusy reads the per-CPU lines (cpu0, cpu1, ...) of /proc/stat.
func parseCPUBusy(stat string) []uint64 {
	var out []uint64
	for _, l := range strings.Split(stat, "\n") {
		f := strings.Fields(l)
		if len(f) < 6 || !strings.HasPrefix(f[0], "cpu") || f[0] == "cpu" {
			continue
		}
		var busy uint64
		for i, v := range f[1:] {
			n, _ := strconv.ParseUint(v, 10, 64)
			// user nice system idle iowait irq softirq steal (guest
			// time is counted in user already)
			if i != 3 && i != 4 && i < 8 {
				busy += n
			}
		}
		out = append(out, busy)
	}
	return out
}

func (r *loadResult) total() uint64 {
	var n uint64
	for _, m := range r.msgs {
		n += m
	}
	return n
}

func (r *loadResult) rate() float64 { return float64(r.total()) / r.elapsed.Seconds() }

// nodeUS is the nodes' CPU (all pools) in µs per message.
func (r *loadResult) nodeUS() float64 {
	var t uint64
	for _, x := range r.ticks {
		t += x
	}
	return perMsg(t, r.total())
}

func perMsg(ticks, msgs uint64) float64 {
	if msgs == 0 {
		return 0
	}
	return float64(ticks) * 1e6 / clockTicks / float64(msgs)
}

// coreShare is ticks as a fraction of one core over the measurement.
func (r *loadResult) coreShare(ticks uint64) float64 {
	return float64(ticks) / clockTicks / r.elapsed.Seconds()
}

func (b *poolsRun) run(bin string, extra []string, queues int, cpu1, cpu2, loadCPU string, skipShared bool, proxyRate float64) error {
	b.runID = newID()[:6]
	opts := func(cpus string, first int) spawnOpts {
		if !b.pin {
			cpus = ""
		}
		return spawnOpts{cpus: cpus, firstID: first}
	}
	all, err := onlineCPUs()
	if err != nil {
		return err
	}
	fmt.Fprintf(b.out, "pools benchmark: single-message posts (%d-byte bodies, fsync on), %d closed-loop workers per pool over %d queues, %s measured after %s of warm-up per phase; CPUs online: %s\n\n",
		b.size, b.workers, queues, b.duration, b.warmup, all)

	// Phase 1: one pool.
	fmt.Fprintf(os.Stderr, "phase 1: starting one pool of 3 nodes (CPUs %s)\n", cpu1)
	cl1, err := spawnClusterWith(b.ctx, bin, 3, false, extra, opts(cpu1, 1))
	if err != nil {
		return err
	}
	one := &benchPool{name: "(one pool)", cl: cl1, urls: cl1.urls()}
	for i := 0; i < queues; i++ {
		q := fmt.Sprintf("pb-%s-one-%d", b.runID, i)
		if _, err := b.createQueue(one.urls[0], q); err != nil {
			b.stop(cl1, "phase1")
			return err
		}
		one.queues = append(one.queues, q)
	}
	layout1 := b.layout([]*benchPool{one})
	if err := b.pinSelf(loadCPU); err != nil {
		b.stop(cl1, "phase1")
		return err
	}
	p1a, err := b.load([]*benchPool{one}, false, 0)
	if err != nil {
		b.stop(cl1, "phase1")
		return err
	}
	var p1b *loadResult
	if !skipShared {
		if err := b.pinSelf(cpu1); err != nil {
			b.stop(cl1, "phase1")
			return err
		}
		if p1b, err = b.load([]*benchPool{one}, false, 0); err != nil {
			b.stop(cl1, "phase1")
			return err
		}
	}
	b.stop(cl1, "phase1")
	if err := b.pinSelf(all); err != nil {
		return err
	}

	// Phase 2: two pools.
	fmt.Fprintf(os.Stderr, "phase 2: starting pool 1 (CPUs %s) and pool 2 (CPUs %s)\n", cpu1, cpu2)
	clA, err := spawnClusterWith(b.ctx, bin, 3, false, extra, opts(cpu1, 1))
	if err != nil {
		return err
	}
	defer b.stop(clA, "phase2")
	catalog := raftAddrs(clA)
	clB, err := spawnClusterWith(b.ctx, bin, 3, false, append([]string{"-catalog", catalog}, extra...), opts(cpu2, 4))
	if err != nil {
		return err
	}
	defer b.stop(clB, "phase2")
	pools := []*benchPool{{name: "pool1", cl: clA, urls: clA.urls()}, {name: "pool2", cl: clB, urls: clB.urls()}}
	for _, p := range pools {
		if err := b.registerPool(pools[0].urls[0], p.name, "zaqar+raft://"+raftAddrs(p.cl)); err != nil {
			return err
		}
	}
	placed, err := b.placeQueues(pools, queues)
	if err != nil {
		return err
	}
	if err := b.checkProxied(pools); err != nil {
		return err
	}
	layout2 := b.layout(pools)
	p2, err := b.load(pools, false, 0)
	if err != nil {
		return err
	}

	// Phase 3: direct against proxied, paced.
	if proxyRate <= 0 {
		proxyRate = 0.4 * p2.rate()
	}
	direct, err := b.load(pools, false, proxyRate)
	if err != nil {
		return err
	}
	proxied, err := b.load(pools, true, proxyRate)
	if err != nil {
		return err
	}

	// Report.
	w := b.out
	fmt.Fprintf(w, "layout, phase 1: %s; load generator (this process): CPUs %s in 1a", layout1, loadCPU)
	if p1b != nil {
		fmt.Fprintf(w, ", %s (the pool's) in 1b", cpu1)
	}
	fmt.Fprintf(w, "\nlayout, phases 2 and 3: %s; load generator unpinned (CPUs %s)\n", layout2, all)
	fmt.Fprintf(w, "queues: phase 1 %d on the one pool; phases 2 and 3 %s (%d PUTs to place them)\n\n", queues, placedStr(pools), placed)
	fmt.Fprintf(w, "| phase | msgs/s | post p50 / p99 ms | nodes' CPU per msg | nodes' CPU (cores) | load generator CPU per msg (cores) | CPUs busy | rest of the machine (cores) | errors | elections |\n|---|---|---|---|---|---|---|---|---|---|\n")
	row := func(name string, r *loadResult) {
		var t uint64
		for _, x := range r.ticks {
			t += x
		}
		var busy []string
		for _, t := range r.busy {
			busy = append(busy, fmt.Sprintf("%.0f%%", 100*r.coreShare(t)))
		}
		fmt.Fprintf(w, "| %s | %.0f | %.1f / %.1f | %.0f µs | %s | %.0f µs (%.2f) | %s | %.2f | %d | %d |\n", name, r.rate(),
			ms(r.hist.quantile(0.5)), ms(r.hist.quantile(0.99)), r.nodeUS(), b.shares(r), perMsg(r.selfTick, r.total()), r.coreShare(r.selfTick),
			strings.Join(busy, ", "), r.coreShare(r.others()), r.errors, r.elections)
	}
	row("1a: one pool, load generator on its own CPU", p1a)
	if p1b != nil {
		row("1b: one pool, load generator on the pool's CPU", p1b)
	}
	row("2: two pools, load generator unpinned", p2)
	for i, p := range pools {
		fmt.Fprintf(w, "| 2, %s only | %.0f | | %.0f µs | %.2f | | | | | |\n", p.name, float64(p2.msgs[i])/p2.elapsed.Seconds(), perMsg(p2.ticks[i], p2.msgs[i]), p2.coreShare(p2.ticks[i]))
	}
	row(fmt.Sprintf("3: direct (each queue's own pool), %.0f posts/s", proxyRate), direct)
	row(fmt.Sprintf("3: proxied (the other pool's nodes), %.0f posts/s", proxyRate), proxied)
	fmt.Fprintln(w)
	fmt.Fprintf(w, "scaling, two pools / one pool: %.2fx against 1a (the pool had a core to itself, the load generator another)", p2.rate()/p1a.rate())
	if p1b != nil {
		fmt.Fprintf(w, ", %.2fx against 1b (the load generator shared the pool's core, as it shares the pools' in phase 2)", p2.rate()/p1b.rate())
	}
	fmt.Fprintf(w, "\nnodes' CPU per message, two pools / one pool (1a): %.2fx\n", p2.nodeUS()/p1a.nodeUS())
	// The capacity model: a pool's ceiling is a CPU divided by what its
	// nodes spend per message; n pools on n CPUs, the sum of theirs.
	one1 := 1e6 / p1a.nodeUS()
	var two []string
	var sum float64
	for i, p := range pools {
		c := 1e6 / perMsg(p2.ticks[i], p2.msgs[i])
		sum += c
		two = append(two, fmt.Sprintf("%s %.0f", p.name, c))
	}
	fmt.Fprintf(w, "capacity if each pool had its CPU to itself (1 CPU / its nodes' CPU per message): one pool (1a) %.0f msgs/s; two pools %s = %.0f msgs/s, %.2fx\n",
		one1, strings.Join(two, " + "), sum, sum/one1)
	fmt.Fprintf(w, "proxied / direct, nodes' CPU per request (all six nodes): %.0f / %.0f µs = %.2fx; p50 %.1f / %.1f ms\n",
		proxied.nodeUS(), direct.nodeUS(), proxied.nodeUS()/direct.nodeUS(), ms(proxied.hist.quantile(0.5)), ms(direct.hist.quantile(0.5)))
	for _, r := range []*loadResult{p1a, p1b, p2, direct, proxied} {
		if r != nil && r.errors > 0 {
			fmt.Fprintf(w, "errors: %d, last: %s\n", r.errors, r.lastErr)
		}
	}
	if p1a.total() == 0 || p2.total() == 0 || direct.total() == 0 || proxied.total() == 0 {
		return errors.New("a phase posted nothing")
	}
	return nil
}

// shares lists each pool's node CPU in cores.
func (b *poolsRun) shares(r *loadResult) string {
	var parts []string
	for _, t := range r.ticks {
		parts = append(parts, fmt.Sprintf("%.2f", r.coreShare(t)))
	}
	return strings.Join(parts, " + ")
}

func placedStr(pools []*benchPool) string {
	var parts []string
	for _, p := range pools {
		parts = append(parts, fmt.Sprintf("%d on %s", len(p.queues), p.name))
	}
	return strings.Join(parts, ", ")
}

// layout says which CPUs each pool's nodes may run on, as the kernel
// reports it (Cpus_allowed_list), so that the report shows the pinning
// took.
func (b *poolsRun) layout(pools []*benchPool) string {
	var parts []string
	for _, p := range pools {
		var ids []string
		for _, nd := range p.cl.nodes {
			ids = append(ids, nd.id+" CPUs "+allowedCPUs(nd.cmd.Process.Pid))
		}
		parts = append(parts, p.name+": "+strings.Join(ids, ", "))
	}
	return strings.Join(parts, "; ")
}

func allowedCPUs(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Cpus_allowed_list:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

func onlineCPUs() (string, error) {
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	return strings.TrimSpace(string(b)), err
}

// clusterTerm is the highest Raft term the cluster's nodes report (0 if
// none answers).
func clusterTerm(cl *localCluster) uint64 {
	var term uint64
	for _, nd := range cl.nodes {
		req, err := http.NewRequest(http.MethodGet, cl.scheme+"://"+nd.api+"/admin/cluster", nil)
		if err != nil {
			continue
		}
		req.Header.Set("X-Roles", "admin")
		resp, err := cl.admin.Do(req)
		if err != nil {
			continue
		}
		var st struct {
			Nodes []struct {
				Term uint64 `json:"term"`
			} `json:"nodes"`
		}
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err != nil {
			continue
		}
		for _, n := range st.Nodes {
			term = max(term, n.Term)
		}
		if term > 0 {
			return term
		}
	}
	return term
}

func raftAddrs(cl *localCluster) string {
	var out []string
	for _, nd := range cl.nodes {
		out = append(out, nd.raft)
	}
	return strings.Join(out, ",")
}

// pinSelf pins every thread of this process to cpus (taskset -a: threads
// started later inherit the mask of the thread that starts them).
func (b *poolsRun) pinSelf(cpus string) error {
	if !b.pin {
		return nil
	}
	out, err := exec.Command("taskset", "-a", "-p", "-c", cpus, strconv.Itoa(os.Getpid())).CombinedOutput()
	if err != nil {
		return fmt.Errorf("taskset -a -p -c %s (this process): %v: %s", cpus, err, bytes.TrimSpace(out))
	}
	return nil
}

// request sends one setup request in no-auth mode (admin: with X-Roles:
// admin) and returns the status, the X-Zaqar-Pool header and the body. A
// 503 or a failed connection is tried again for up to 15 s (a pool that
// elects a leader: three nodes on one CPU miss heartbeats under load).
func (b *poolsRun) request(method, url string, body any, admin bool) (int, string, []byte, error) {
	var j []byte
	if body != nil {
		var err error
		if j, err = json.Marshal(body); err != nil {
			return 0, "", nil, err
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		status, pool, out, err := b.requestOnce(method, url, j, admin)
		if (err == nil && status != http.StatusServiceUnavailable) || time.Now().After(deadline) || b.ctx.Err() != nil {
			return status, pool, out, err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (b *poolsRun) requestOnce(method, url string, body []byte, admin bool) (int, string, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, "", nil, err
	}
	req.Header.Set("Client-ID", "3f1c2a70-0000-4000-8000-0000000000aa")
	req.Header.Set("X-Project-ID", b.project)
	req.Header.Set("Content-Type", "application/json")
	if admin {
		req.Header.Set("X-Roles", "admin")
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("X-Zaqar-Pool"), out, err
}

// registerPool registers a pool (weight 100) through node, retrying while
// the catalog answers 5xx.
func (b *poolsRun) registerPool(node, name, uri string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, _, body, err := b.request(http.MethodPut, node+"/v2/pools/"+name, map[string]any{"uri": uri, "weight": 100}, true)
		switch {
		case err == nil && (status == http.StatusCreated || status == http.StatusConflict):
			// 409: a PUT whose answer was lost to an election registered it.
			return nil
		case err == nil && status < 500:
			return fmt.Errorf("PUT /v2/pools/%s: %d %s", name, status, bytes.TrimSpace(body))
		case time.Now().After(deadline) || b.ctx.Err() != nil:
			return fmt.Errorf("PUT /v2/pools/%s: %d %s %v", name, status, bytes.TrimSpace(body), err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// createQueue creates a queue through node and returns the pool its answer
// names.
func (b *poolsRun) createQueue(node, queue string) (string, error) {
	status, pool, body, err := b.request(http.MethodPut, node+"/v2/queues/"+queue, map[string]any{}, false)
	if err != nil {
		return "", err
	}
	if status != http.StatusCreated && status != http.StatusNoContent {
		return "", fmt.Errorf("PUT /v2/queues/%s: %d %s", queue, status, bytes.TrimSpace(body))
	}
	return pool, nil
}

// placeQueues creates queues (through the nodes of both pools in turn)
// until each pool holds n/len(pools) of them by the X-Zaqar-Pool of the
// answers; the extra ones are left unused. It returns how many it created.
func (b *poolsRun) placeQueues(pools []*benchPool, n int) (int, error) {
	per := n / len(pools)
	byName := map[string]*benchPool{}
	for _, p := range pools {
		byName[p.name] = p
	}
	for i := 0; ; i++ {
		full := true
		for _, p := range pools {
			full = full && len(p.queues) >= per
		}
		if full {
			return i, nil
		}
		if i >= 20*n {
			return i, fmt.Errorf("after %d queues the pools hold %s, not %d each", i, placedStr(pools), per)
		}
		q := fmt.Sprintf("pb-%s-%d", b.runID, i)
		entry := pools[i%len(pools)]
		pool, err := b.createQueue(entry.urls[i/len(pools)%len(entry.urls)], q)
		if err != nil {
			return i, err
		}
		p := byName[pool]
		if p == nil {
			return i, fmt.Errorf("PUT /v2/queues/%s names pool %q (header X-Zaqar-Pool), not one of the two", q, pool)
		}
		if len(p.queues) < per {
			p.queues = append(p.queues, q)
		}
	}
}

// checkProxied posts one message to a queue of each pool through a node
// of the other and checks that the owning pool answered.
func (b *poolsRun) checkProxied(pools []*benchPool) error {
	for i, p := range pools {
		other := pools[(i+1)%len(pools)]
		doc := json.RawMessage(postDoc([]json.RawMessage{body(b.size, 0)}))
		status, pool, out, err := b.request(http.MethodPost, other.urls[0]+"/v2/queues/"+p.queues[0]+"/messages", doc, false)
		if err != nil {
			return err
		}
		if status != http.StatusCreated || pool != p.name {
			return fmt.Errorf("a post to %s's queue %s through %s: %d, X-Zaqar-Pool %q: %s", p.name, p.queues[0], other.name, status, pool, bytes.TrimSpace(out))
		}
	}
	return nil
}

// load runs b.workers closed-loop posters per pool (paced at rate posts/s
// in all when rate > 0) for the warm-up and then the measurement. Worker w loads pool
// w%len(pools), rotates over that pool's queues and sends every request to
// one node, the ((w/len(pools))%3)-th, of that pool or, when proxied, of
// the next pool.
func (b *poolsRun) load(pools []*benchPool, proxied bool, perSec float64) (*loadResult, error) {
	what := "saturating"
	if perSec > 0 {
		what = fmt.Sprintf("%.0f posts/s", perSec)
	}
	if proxied {
		what += ", proxied"
	}
	fmt.Fprintf(os.Stderr, "loading %d pool(s): %s, %s + %s\n", len(pools), what, b.warmup, b.duration)
	res := &loadResult{msgs: make([]uint64, len(pools)), ticks: make([]uint64, len(pools))}
	counts := make([]atomic.Uint64, len(pools))
	var measuring atomic.Bool
	var mu sync.Mutex
	limiter := rate.NewLimiter(rate.Inf, 0)
	if perSec > 0 {
		limiter = rate.NewLimiter(rate.Limit(perSec), 1)
	}
	ctx, cancel := context.WithCancel(b.ctx)
	defer cancel()
	var termsBefore uint64
	for _, p := range pools {
		termsBefore += clusterTerm(p.cl)
	}
	var seq atomic.Uint64
	var wg sync.WaitGroup
	for w := 0; w < b.workers*len(pools); w++ {
		pi := w % len(pools)
		p := pools[pi]
		entry := p
		if proxied {
			entry = pools[(pi+1)%len(pools)]
		}
		c := &restClient{http: b.hc, base: entry.urls[(w/len(pools))%len(entry.urls)], clientID: newID(), project: b.project}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w / len(pools); ctx.Err() == nil; i++ {
				if limiter.Wait(ctx) != nil {
					return
				}
				t := time.Now()
				err := c.post(ctx, p.queues[i%len(p.queues)], []json.RawMessage{body(b.size, seq.Add(1))})
				if ctx.Err() != nil {
					return
				}
				if !measuring.Load() {
					continue
				}
				if err != nil {
					mu.Lock()
					res.errors++
					res.lastErr = err.Error()
					mu.Unlock()
					sleep(ctx, 5*time.Millisecond)
					continue
				}
				d := time.Since(t)
				counts[pi].Add(1)
				mu.Lock()
				res.hist.record(d)
				mu.Unlock()
			}
		}()
	}
	sleep(ctx, b.warmup)
	before := make([]uint64, len(pools))
	for i, p := range pools {
		before[i] = clusterTicks(p.cl)
	}
	selfBefore, err := readProc(os.Getpid())
	busyBefore, err3 := cpuBusy()
	measuring.Store(true)
	began := time.Now()
	sleep(ctx, b.duration)
	measuring.Store(false)
	res.elapsed = time.Since(began)
	for i, p := range pools {
		res.ticks[i] = clusterTicks(p.cl) - before[i]
		res.msgs[i] = counts[i].Load()
	}
	selfAfter, err2 := readProc(os.Getpid())
	busyAfter, err4 := cpuBusy()
	cancel()
	wg.Wait()
	if err := errors.Join(err, err2, err3, err4); err != nil {
		return nil, err
	}
	for i := range min(len(busyBefore), len(busyAfter)) {
		res.busy = append(res.busy, busyAfter[i]-busyBefore[i])
	}
	res.selfTick = selfAfter.cpuTicks - selfBefore.cpuTicks
	var termsAfter uint64
	for _, p := range pools {
		termsAfter += clusterTerm(p.cl)
	}
	if termsAfter > termsBefore {
		res.elections = termsAfter - termsBefore
	}
	if b.ctx.Err() != nil {
		return nil, b.ctx.Err()
	}
	return res, nil
}
