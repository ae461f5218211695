package clustertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// This file is the operations tests' toolkit: the zaqarctl binary, a load
// balancer that behaves like a production one (health checks on /v2/ping,
// connection draining), a load generator that records every client-visible
// error, and digest and membership helpers. Its identifiers start with
// "ops" so they do not collide with the other suites of this package.

// opsNodeArgs are the settings of the operations tests' nodes: Raft's
// default one-second timeouts (the 500 ms of startCluster elect spuriously
// on a loaded 2-core machine, and a spurious election is a client-visible
// error these tests would have to excuse), fsync on.
var opsNodeArgs = []string{"-raft-heartbeat-timeout", "1s", "-raft-election-timeout", "1s", "-log-level", "info"}

var (
	opsCtlOnce sync.Once
	opsCtlPath string
	opsCtlErr  error
)

// opsCtlBinary builds cmd/zaqarctl once per run, next to the server binary
// (TestMain removes that directory at the end).
func opsCtlBinary(t *testing.T) string {
	t.Helper()
	opsCtlOnce.Do(func() {
		root, err := moduleRoot()
		if err != nil {
			opsCtlErr = err
			return
		}
		bin := filepath.Join(filepath.Dir(serverBinary), "zaqarctl")
		build := exec.Command("go", "build", "-o", bin, "./cmd/zaqarctl")
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			opsCtlErr = fmt.Errorf("go build ./cmd/zaqarctl: %v\n%s", err, out)
			return
		}
		opsCtlPath = bin
	})
	if opsCtlErr != nil {
		t.Fatal(opsCtlErr)
	}
	return opsCtlPath
}

// opsCtl runs zaqarctl against node p (or offline when p is nil) and
// returns its combined output; a non-zero exit is an error.
func opsCtl(t *testing.T, p *proc, args ...string) (string, error) {
	t.Helper()
	bin := opsCtlBinary(t)
	if p != nil {
		args = append([]string{"-addr", p.URL(), "-timeout", "30s"}, args...)
		if p.tls != nil {
			args = append([]string{"-ca", p.tls.CA()}, args...)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = serverEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("zaqarctl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// opsMustCtl is opsCtl that fails the test on an error.
func opsMustCtl(t *testing.T, p *proc, args ...string) string {
	t.Helper()
	out, err := opsCtl(t, p, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// opsStartCluster starts an n-node cluster with opsNodeArgs plus extra.
func opsStartCluster(t *testing.T, n int, extra ...string) *cluster {
	t.Helper()
	opsCtlBinary(t) // built before anything is timed
	start := time.Now()
	c := startCluster(t, n, append(append([]string{}, opsNodeArgs...), extra...)...)
	t.Logf("started a %d-node cluster in %s", n, time.Since(start).Round(time.Millisecond))
	return c
}

// opsNewCluster returns an empty cluster whose processes are killed, and
// their logs printed if the test failed, before base (for their data
// directories and logs) is removed.
func opsNewCluster(t *testing.T) (*cluster, string) {
	base := t.TempDir() // removed after c.cleanup: cleanups run last-in first-out
	c := &cluster{t: t}
	t.Cleanup(c.cleanup)
	return c, base
}

// opsBase returns the directory holding the data directories and logs of
// c's nodes.
func opsBase(c *cluster) string { return filepath.Dir(c.Nodes[0].LogPath) }

// opsNewProc makes a process description for a new node with fresh ports
// and an empty data directory under base, adds it to c (so it is killed
// and its log printed with the others) and returns it without starting
// it. args come after the identity flags.
func opsNewProc(t *testing.T, c *cluster, base, id string, args ...string) *proc {
	t.Helper()
	ports, err := freePorts(2)
	if err != nil {
		t.Fatalf("pick free ports: %v", err)
	}
	if _, err := os.Stat(filepath.Join(base, id)); err == nil {
		base = filepath.Join(base, fmt.Sprintf("%s-%d", id, time.Now().UnixNano()))
		if err := os.MkdirAll(base, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	p := &proc{
		ID: id, APIAddr: ports[0], RaftAddr: ports[1],
		DataDir: filepath.Join(base, id), LogPath: filepath.Join(base, id+".log"),
	}
	p.args = append([]string{"-node-id", id, "-data-dir", p.DataDir, "-api-addr", p.APIAddr, "-raft-addr", p.RaftAddr}, opsNodeArgs...)
	p.args = append(p.args, args...)
	c.Nodes = append(c.Nodes, p)
	return p
}

// opsRaftAddrs returns the Raft addresses of ps, comma-separated (the form
// -join takes).
func opsRaftAddrs(ps []*proc) string {
	var out []string
	for _, p := range ps {
		out = append(out, p.RaftAddr)
	}
	return strings.Join(out, ",")
}

// opsPeers returns ps as id=raft-address,... (the form -bootstrap, recover
// and snapshot restore take).
func opsPeers(ps []*proc) string {
	var out []string
	for _, p := range ps {
		out = append(out, p.ID+"="+p.RaftAddr)
	}
	return strings.Join(out, ",")
}

// opsWaitServing waits until p's /v2/ping answers 204: it knows a leader
// and has caught up to a read index.
func opsWaitServing(t *testing.T, p *proc, timeout time.Duration) {
	t.Helper()
	hc := p.httpClient(3 * time.Second)
	if err := poll(timeout, func() (bool, string) {
		if !p.Running() {
			return false, p.ID + " exited"
		}
		code, err := opsPing(hc, p)
		return code == http.StatusNoContent, fmt.Sprintf("ping %d %v", code, err)
	}); err != nil {
		t.Fatalf("waiting for %s to serve: %v", p.ID, err)
	}
}

// opsPing sends GET /v2/ping to p.
func opsPing(hc *http.Client, p *proc) (int, error) {
	req, err := http.NewRequest(http.MethodGet, p.URL()+"/v2/ping", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Client-ID", "0b0b0b0b-1111-4222-8333-444444444444")
	req.Header.Set("X-Project-ID", "lb-health")
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// opsAdminGet sends an admin GET to p and decodes the JSON answer.
func opsAdminGet(ctx context.Context, p *proc, path string, out any) error {
	return adminGet(ctx, p, path, out)
}

// opsDigest returns p's applied index and state digest.
func opsDigest(p *proc) (*nodeDigest, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var d nodeDigest
	return &d, opsAdminGet(ctx, p, "/admin/cluster/digest", &d)
}

// opsWaitConverged waits until every node of nodes reports the same
// applied index and the same digest, and returns them.
func opsWaitConverged(t *testing.T, nodes []*proc, timeout time.Duration) nodeDigest {
	t.Helper()
	var agreed nodeDigest
	start := time.Now()
	if err := poll(timeout, func() (bool, string) {
		var seen []string
		same := true
		for i, p := range nodes {
			d, err := opsDigest(p)
			if err != nil {
				return false, err.Error()
			}
			seen = append(seen, fmt.Sprintf("%s %d %.12s", p.ID, d.AppliedIndex, d.Digest))
			if i == 0 {
				agreed = *d
			}
			same = same && *d == agreed
		}
		return same, strings.Join(seen, "; ")
	}); err != nil {
		t.Fatalf("waiting for %d nodes to converge: %v", len(nodes), err)
	}
	t.Logf("%d nodes converged at applied index %d, digest %.16s… (waited %s)", len(nodes), agreed.AppliedIndex, agreed.Digest, time.Since(start).Round(time.Millisecond))
	return agreed
}

// opsMembers returns the voters p's configuration lists.
func opsMembers(p *proc) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var st struct {
		Members []struct {
			ID       string `json:"id"`
			Suffrage string `json:"suffrage"`
		} `json:"members"`
	}
	if err := opsAdminGet(ctx, p, "/admin/cluster", &st); err != nil {
		return nil, err
	}
	var out []string
	for _, m := range st.Members {
		if m.Suffrage == "Voter" {
			out = append(out, m.ID)
		}
	}
	sort.Strings(out)
	return out, nil
}

// opsWaitVoters waits until every node of nodes lists exactly want as
// voters.
func opsWaitVoters(t *testing.T, nodes []*proc, want []*proc, timeout time.Duration) {
	t.Helper()
	var ids []string
	for _, p := range want {
		ids = append(ids, p.ID)
	}
	sort.Strings(ids)
	wantS := strings.Join(ids, ",")
	if err := poll(timeout, func() (bool, string) {
		for _, p := range nodes {
			got, err := opsMembers(p)
			if err != nil {
				return false, err.Error()
			}
			if strings.Join(got, ",") != wantS {
				return false, fmt.Sprintf("%s lists voters %v, want %s", p.ID, got, wantS)
			}
		}
		return true, ""
	}); err != nil {
		t.Fatalf("waiting for the voters to be %s: %v", wantS, err)
	}
}

// opsNodeState returns GET /admin/node of p.
func opsNodeState(p *proc) (state string, draining bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var st struct {
		ID       string `json:"id"`
		State    string `json:"state"`
		Draining bool   `json:"draining"`
	}
	err = opsAdminGet(ctx, p, "/admin/node", &st)
	return st.State, st.Draining, err
}

// ---- the load balancer ----

// opsBackend is one node behind the load balancer.
type opsBackend struct {
	p        *proc
	healthy  bool
	inflight int
}

// opsBalancer spreads client requests over the healthy nodes like a
// production load balancer: it health-checks GET /v2/ping every 100 ms
// (204 = in rotation; a draining node answers 503 and leaves rotation) and
// counts each node's requests in flight, so an operator can wait until a
// drained node has none before stopping it.
type opsBalancer struct {
	hc   *http.Client
	mu   sync.Mutex
	bes  []*opsBackend
	next int

	stop chan struct{}
	wg   sync.WaitGroup
}

func opsNewBalancer(t *testing.T, nodes ...*proc) *opsBalancer {
	lb := &opsBalancer{hc: nodes[0].httpClient(2 * time.Second), stop: make(chan struct{})}
	for _, p := range nodes {
		lb.bes = append(lb.bes, &opsBackend{p: p})
	}
	lb.checkAll()
	lb.wg.Add(1)
	go func() {
		defer lb.wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-lb.stop:
				return
			case <-tick.C:
				lb.checkAll()
			}
		}
	}()
	t.Cleanup(lb.Close)
	return lb
}

// Close stops the health checks.
func (lb *opsBalancer) Close() {
	select {
	case <-lb.stop:
		return
	default:
	}
	close(lb.stop)
	lb.wg.Wait()
}

func (lb *opsBalancer) checkAll() {
	lb.mu.Lock()
	bes := append([]*opsBackend(nil), lb.bes...)
	lb.mu.Unlock()
	var wg sync.WaitGroup
	for _, b := range bes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, _ := opsPing(lb.hc, b.p)
			lb.mu.Lock()
			b.healthy = code == http.StatusNoContent
			lb.mu.Unlock()
		}()
	}
	wg.Wait()
}

// Add puts a node behind the balancer (it enters rotation once healthy).
func (lb *opsBalancer) Add(p *proc) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	lb.bes = append(lb.bes, &opsBackend{p: p})
}

// Remove takes a node from behind the balancer.
func (lb *opsBalancer) Remove(p *proc) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	for i, b := range lb.bes {
		if b.p == p {
			lb.bes = append(lb.bes[:i], lb.bes[i+1:]...)
			return
		}
	}
}

// InRotation reports whether p is healthy behind the balancer.
func (lb *opsBalancer) InRotation(p *proc) bool {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	for _, b := range lb.bes {
		if b.p == p {
			return b.healthy
		}
	}
	return false
}

// Inflight returns the requests in flight to p.
func (lb *opsBalancer) Inflight(p *proc) int {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	for _, b := range lb.bes {
		if b.p == p {
			return b.inflight
		}
	}
	return 0
}

// pick returns a healthy node (round robin), preferring one not in avoid,
// and a release function; it waits while no node is healthy.
func (lb *opsBalancer) pick(ctx context.Context, avoid map[*proc]bool) (*proc, func(), error) {
	for round := 0; ; round++ {
		lb.mu.Lock()
		n := len(lb.bes)
		for i := 0; i < 2*n; i++ {
			b := lb.bes[(lb.next+i)%n]
			if b.healthy && (i >= n || !avoid[b.p]) {
				lb.next = (lb.next + i + 1) % n
				b.inflight++
				lb.mu.Unlock()
				return b.p, func() {
					lb.mu.Lock()
					b.inflight--
					lb.mu.Unlock()
				}, nil
			}
		}
		lb.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, nil, errors.New("no healthy node behind the load balancer")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// opsTakeOut is the operator's half of taking a node out of service
// without a failed request: drain it with zaqarctl, wait until the
// balancer has taken it out of rotation and it has no request in flight.
// It returns how long that took, and appends the drain's span to
// *handoffs if the node was the leader.
func opsTakeOut(t *testing.T, lb *opsBalancer, p *proc, handoffs *[]opsHandoff) time.Duration {
	t.Helper()
	start := time.Now()
	before, _, err := opsNodeState(p)
	if err != nil {
		t.Fatal(err)
	}
	if out := opsMustCtl(t, p, "drain"); !strings.Contains(out, "ok") {
		t.Fatalf("zaqarctl drain on %s said %q", p.ID, out)
	}
	if err := poll(30*time.Second, func() (bool, string) {
		in, n := lb.InRotation(p), lb.Inflight(p)
		return !in && n == 0, fmt.Sprintf("in rotation %v, %d in flight", in, n)
	}); err != nil {
		t.Fatalf("waiting for the balancer to let go of drained %s: %v", p.ID, err)
	}
	if state, _, err := opsNodeState(p); err != nil || state == "Leader" {
		t.Fatalf("%s is still %s after drain (%v); drain must hand leadership over", p.ID, state, err)
	}
	if before == "Leader" {
		*handoffs = append(*handoffs, opsHandoff{Node: p.ID, From: start, To: time.Now()})
	}
	return time.Since(start)
}

// ---- the load generator ----

// opsAck is one acknowledged post.
type opsAck struct {
	ID, Queue string
	N         int64
	Start     time.Time // when the client sent it
	End       time.Time // when the client had the 201
}

// opsClientError is one request that failed in a way a client would see.
type opsClientError struct {
	At     time.Time
	Node   string
	Op     string
	N      int64 // the post's body n (posts only)
	Detail string
}

// UnknownOutcome reports whether the error is the documented 503 for a
// write that may or may not have been applied.
func (e opsClientError) UnknownOutcome() bool {
	return strings.HasPrefix(e.Detail, "503 ") && strings.Contains(e.Detail, "outcome is unknown")
}

func (e opsClientError) String() string {
	return fmt.Sprintf("%s %s on %s: %s", e.At.Format("15:04:05.000"), e.Op, e.Node, e.Detail)
}

// opsLoad posts messages and reads each one back (a linearizable GET by
// id, which must find it) through the balancer, from several workers,
// until stopped. A 503 from a draining node is retried on another node
// (that is the documented contract) and a refused connection too (the
// request never left the client); both are counted. Every other failure is
// recorded as a client error.
type opsLoad struct {
	lb      *opsBalancer
	project string
	queues  []string
	hc      *http.Client

	seq           atomic.Int64
	ops           atomic.Int64
	drainRetries  atomic.Int64
	refusedRetry  atomic.Int64
	mu            sync.Mutex
	acked         []opsAck
	errs          []opsClientError
	lat           []opsLatency
	stopc         chan struct{}
	wg            sync.WaitGroup
	stopOnce      sync.Once
	startedAt     time.Time
	stoppedAt     time.Time
	pauseInterval time.Duration
}

// opsLatency is one successful request's end time and duration.
type opsLatency struct {
	End time.Time
	D   time.Duration
}

// opsStartLoad starts workers posting to len(queues) queues of project.
func opsStartLoad(t *testing.T, lb *opsBalancer, project string, workers int, queues ...string) *opsLoad {
	l := &opsLoad{
		lb: lb, project: project, queues: queues, stopc: make(chan struct{}),
		hc:        &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16, TLSClientConfig: lb.bes[0].p.tls.clientConfig()}},
		startedAt: time.Now(),
		// A little think time per worker keeps the load steady instead of
		// saturating the two cores the whole machine shares.
		pauseInterval: 5 * time.Millisecond,
	}
	for w := 0; w < workers; w++ {
		l.wg.Add(1)
		go l.worker(w)
	}
	t.Cleanup(l.Stop)
	return l
}

// Stop stops the workers and waits for them.
func (l *opsLoad) Stop() {
	l.stopOnce.Do(func() {
		close(l.stopc)
		l.wg.Wait()
		l.stoppedAt = time.Now()
	})
}

func (l *opsLoad) stopped() bool {
	select {
	case <-l.stopc:
		return true
	default:
		return false
	}
}

func (l *opsLoad) worker(w int) {
	defer l.wg.Done()
	clientID := fmt.Sprintf("0a0a0a0a-0000-4000-8000-%012d", w)
	for i := 0; !l.stopped(); i++ {
		n := l.seq.Add(1)
		queue := l.queues[int(n)%len(l.queues)]
		start := time.Now()
		body := map[string]any{"messages": []map[string]any{{"ttl": 3600, "body": map[string]any{"n": n, "w": w}}}}
		r, node := l.request(clientID, "post", n, http.MethodPost, "/v2/queues/"+queue+"/messages", body, http.StatusCreated)
		if r == nil {
			continue
		}
		var out struct {
			Resources []string `json:"resources"`
		}
		if err := json.Unmarshal(r.Body, &out); err != nil || len(out.Resources) != 1 {
			l.fail("post", node, n, fmt.Sprintf("bad 201 body %q", r.Body))
			continue
		}
		id := out.Resources[0][strings.LastIndex(out.Resources[0], "/")+1:]
		l.mu.Lock()
		l.acked = append(l.acked, opsAck{ID: id, Queue: queue, N: n, Start: start, End: time.Now()})
		l.mu.Unlock()

		// Read it back: linearizable, through any node.
		g, node := l.request(clientID, "get", 0, http.MethodGet, "/v2/queues/"+queue+"/messages/"+id, nil, http.StatusOK)
		if g != nil {
			var m listedMessage
			if err := json.Unmarshal(g.Body, &m); err != nil || m.ID != id || m.Body["n"] != float64(n) {
				l.fail("get", node, 0, fmt.Sprintf("read back %s: %s", id, g.Body))
			}
		}
		select {
		case <-l.stopc:
		case <-time.After(l.pauseInterval):
		}
	}
}

// request sends one request through the balancer, retrying on another
// node when the node is draining or refused the connection. It returns
// nil after recording a client error.
func (l *opsLoad) request(clientID, op string, n int64, method, path string, body any, want int) (*response, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	avoid := map[*proc]bool{}
	for attempt := 0; ; attempt++ {
		p, release, err := l.lb.pick(ctx, avoid)
		if err != nil {
			l.fail(op, "-", n, err.Error())
			return nil, ""
		}
		c := &restClient{base: p.URL(), clientID: clientID, project: l.project, http: l.hc}
		start := time.Now()
		r, err := c.do(ctx, method, path, body)
		release()
		l.ops.Add(1)
		switch {
		case err == nil && r.Status == want:
			l.mu.Lock()
			l.lat = append(l.lat, opsLatency{End: time.Now(), D: time.Since(start)})
			l.mu.Unlock()
			return r, p.ID
		case err == nil && r.Status == http.StatusServiceUnavailable && strings.Contains(string(r.Body), "draining"):
			l.drainRetries.Add(1)
		case err != nil && errors.Is(err, syscall.ECONNREFUSED):
			l.refusedRetry.Add(1)
		case err != nil:
			l.fail(op, p.ID, n, err.Error())
			return nil, p.ID
		default:
			l.fail(op, p.ID, n, r.String())
			return nil, p.ID
		}
		avoid[p] = true
		if attempt >= 20 {
			l.fail(op, p.ID, n, "gave up after 20 retries")
			return nil, p.ID
		}
		if attempt > 3 {
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func (l *opsLoad) fail(op, node string, n int64, detail string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, opsClientError{At: time.Now(), Node: node, Op: op, N: n, Detail: detail})
}

// Acked returns the acknowledged posts so far.
func (l *opsLoad) Acked() []opsAck {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]opsAck(nil), l.acked...)
}

// Errors returns the client errors so far.
func (l *opsLoad) Errors() []opsClientError {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]opsClientError(nil), l.errs...)
}

// WaitAcked waits until n more posts than now have been acknowledged
// (10n with OPS_LONG=1).
func (l *opsLoad) WaitAcked(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	if opsLong() {
		n, timeout = 10*n, 10*timeout
	}
	target := len(l.Acked()) + n
	if err := poll(timeout, func() (bool, string) {
		got := len(l.Acked())
		return got >= target, fmt.Sprintf("%d of %d acknowledged; %d client errors", got, target, len(l.Errors()))
	}); err != nil {
		t.Fatalf("load: %v", err)
	}
}

// opsWindow summarizes what clients saw between two instants.
type opsWindow struct {
	Requests int
	MaxLat   time.Duration
	P99      time.Duration
}

// Window returns the successful requests that ended in [from, to] and
// their latencies.
func (l *opsLoad) Window(from, to time.Time) opsWindow {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ds []time.Duration
	for _, x := range l.lat {
		if !x.End.Before(from) && !x.End.After(to) {
			ds = append(ds, x.D)
		}
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	w := opsWindow{Requests: len(ds)}
	if len(ds) > 0 {
		w.MaxLat = ds[len(ds)-1]
		w.P99 = ds[(len(ds)*99)/100]
	}
	return w
}

// Summary is a one-line account of the load for the test log.
func (l *opsLoad) Summary() string {
	end := l.stoppedAt
	if end.IsZero() {
		end = time.Now()
	}
	w := l.Window(l.startedAt, end)
	return fmt.Sprintf("%d requests (%d posts acknowledged), %d client errors, %d retried 503s from draining nodes, %d retried refused connections; latency p99 %s, max %s",
		l.ops.Load(), len(l.Acked()), len(l.Errors()), l.drainRetries.Load(), l.refusedRetry.Load(),
		w.P99.Round(time.Millisecond), w.MaxLat.Round(time.Millisecond))
}

// opsCheckAllPresent lists every queue of the load through p (stale reads
// when stale is set, so that p's own store answers) and checks that every
// acknowledged post is there exactly once, that a post whose request
// failed is there at most once, and that nothing else is. It returns the
// number of messages listed.
func opsCheckAllPresent(t *testing.T, p *proc, l *opsLoad, stale bool) int {
	t.Helper()
	var optional []int64
	for _, e := range l.Errors() {
		if e.Op == "post" {
			optional = append(optional, e.N)
		}
	}
	return opsCheckPresent(t, p, l.project, l.queues, l.Acked(), optional, stale)
}

// opsCheckPresent lists the queues through p and checks that every post
// of acked is there exactly once, every post numbered in optional at most
// once, and nothing else is.
func opsCheckPresent(t *testing.T, p *proc, project string, queues []string, acked []opsAck, optional []int64, stale bool) int {
	t.Helper()
	c := newRESTClient(p, "0c0c0c0c-1111-4222-8333-444444444444", project)
	c.stale = stale
	c.http.Timeout = 30 * time.Second
	seen := map[int64][]string{} // n -> ids
	total := 0
	for _, q := range queues {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		ms, err := c.listAll(ctx, q)
		cancel()
		if err != nil {
			t.Fatalf("list %s on %s: %v", q, p.ID, err)
		}
		total += len(ms)
		for _, m := range ms {
			n, _ := m.Body["n"].(float64)
			seen[int64(n)] = append(seen[int64(n)], m.ID)
		}
	}
	bad := 0
	report := func(format string, args ...any) {
		if bad < 5 {
			t.Errorf("%s: "+format, append([]any{p.ID}, args...)...)
		}
		bad++
	}
	expected := map[int64]bool{}
	for _, a := range acked {
		expected[a.N] = true
		if ids := seen[a.N]; len(ids) != 1 || ids[0] != a.ID {
			report("acknowledged post n=%d (%s, acknowledged at %s) is listed as %v", a.N, a.ID, a.End.Format("15:04:05.000"), ids)
		}
	}
	for _, n := range optional {
		expected[n] = true
		if len(seen[n]) > 1 {
			report("post n=%d is listed %d times", n, len(seen[n]))
		}
	}
	for n, ids := range seen {
		if !expected[n] {
			report("message n=%d %v was never posted by the load", n, ids)
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d problems with %d acknowledged posts (%d listed)", p.ID, bad, len(acked), total)
	}
	return total
}

// opsHandoff is the time span of one leadership hand-over by a drain.
type opsHandoff struct {
	Node     string
	From, To time.Time
}

// opsStrictHandoff reports whether OPS_STRICT_HANDOFF=1 is set: then the
// 503s with an unknown outcome that a leader's drain causes fail the tests
// (see opsCheckClientErrors).
func opsStrictHandoff() bool { return os.Getenv("OPS_STRICT_HANDOFF") == "1" }

// opsLong reports whether OPS_LONG=1 is set: the procedures then run with
// ten times as many acknowledged posts before and between their steps.
func opsLong() bool { return os.Getenv("OPS_LONG") == "1" }

// opsCheckClientErrors fails the test for every client error recorded,
// except 503 "outcome unknown" answers to posts during a drain's
// leadership hand-over: the product does not avoid them yet (writes in
// flight on the old leader when it hands over come back as
// raft.ErrLeadershipLost; see docs/operations.md, "Known limitation").
// Those are logged and counted (the presence check makes sure each such
// post is stored at most once); OPS_STRICT_HANDOFF=1 fails on them too.
func opsCheckClientErrors(t *testing.T, l *opsLoad, handoffs []opsHandoff) {
	t.Helper()
	excused, failed := 0, 0
	for _, e := range l.Errors() {
		if !opsStrictHandoff() && e.Op == "post" && e.UnknownOutcome() && opsDuringHandoff(e.At, handoffs) {
			excused++
			t.Logf("KNOWN LIMITATION (leader hand-over during drain): %s", e)
			continue
		}
		if failed++; failed <= 20 {
			t.Errorf("client error: %s", e)
		}
	}
	if failed > 20 {
		t.Errorf("... %d client errors in all", failed)
	}
	if excused > 0 {
		t.Logf("%d posts answered 503 \"outcome unknown\" while a drained leader handed over leadership (tolerated; OPS_STRICT_HANDOFF=1 fails on them)", excused)
	}
}

func opsDuringHandoff(at time.Time, hs []opsHandoff) bool {
	for _, h := range hs {
		if !at.Before(h.From) && !at.After(h.To.Add(time.Second)) {
			return true
		}
	}
	return false
}

// opsTempFile returns a path in the test's temporary directory.
func opsTempFile(t *testing.T, name string) string {
	return filepath.Join(t.TempDir(), name)
}

// opsFileSize returns the size of path, or -1.
func opsFileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return -1
	}
	return fi.Size()
}
