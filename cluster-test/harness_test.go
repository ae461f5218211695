package clustertest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// serverBinary is the zaqar-server binary TestMain builds for this run.
var serverBinary string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "zaqar-cluster-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster-test:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster-test:", err)
		return 1
	}
	bin := filepath.Join(dir, "zaqar-server")
	start := time.Now()
	build := exec.Command("go", "build", "-o", bin, "./cmd/zaqar-server")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "cluster-test: go build ./cmd/zaqar-server: %v\n%s", err, out)
		return 1
	}
	fmt.Fprintf(os.Stderr, "cluster-test: built %s in %s\n", bin, time.Since(start).Round(time.Millisecond))
	serverBinary = bin
	return m.Run()
}

// moduleRoot returns the directory holding the module's go.mod.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside a Go module")
	}
	return filepath.Dir(gomod), nil
}

// proc is one zaqar-server process of a test cluster. Its data directory,
// ports and log file stay the same across restarts.
type proc struct {
	ID       string
	APIAddr  string
	RaftAddr string
	DataDir  string
	LogPath  string
	args     []string

	// tls, when set, holds the node's certificates: its REST port serves
	// https and wss, and clients verify it against tls's CA.
	tls *devTLS

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{} // closed when the current process has exited
	exitErr error
	starts  int
}

// URL returns the REST base URL of the node (no trailing slash).
func (p *proc) URL() string { return apiURL("http", p.APIAddr, p.tls) }

// WSURL returns the websocket URL of the node's REST port.
func (p *proc) WSURL() string { return apiURL("ws", p.APIAddr, p.tls) + "/" }

// start launches the process; its output is appended to LogPath.
func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil && !isClosed(p.done) {
		return fmt.Errorf("%s is already running", p.ID)
	}
	f, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	p.starts++
	fmt.Fprintf(f, "=== cluster-test: start #%d of %s at %s: %s %s\n", p.starts, p.ID,
		time.Now().Format(time.RFC3339Nano), serverBinary, strings.Join(p.args, " "))
	cmd := exec.Command(serverBinary, p.args...)
	cmd.Env = serverEnv()
	cmd.Stdout, cmd.Stderr = f, f
	// If the test binary dies (timeout panic), its servers die with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", p.ID, err)
	}
	done := make(chan struct{})
	p.cmd, p.done, p.exitErr = cmd, done, nil
	go func() {
		err := cmd.Wait()
		fmt.Fprintf(f, "=== cluster-test: %s (pid %d) exited at %s: %v\n", p.ID, cmd.Process.Pid,
			time.Now().Format(time.RFC3339Nano), err)
		f.Close()
		p.mu.Lock()
		p.exitErr = err
		p.mu.Unlock()
		close(done)
	}()
	return nil
}

// serverEnv is the test's environment without ZAQAR_* settings, which the
// binary would otherwise read as configuration.
func serverEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ZAQAR_") {
			env = append(env, kv)
		}
	}
	return env
}

func isClosed(ch chan struct{}) bool {
	if ch == nil {
		return true
	}
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// Running reports whether the process is alive.
func (p *proc) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil && !isClosed(p.done)
}

// send sends sig to the running process without waiting for anything
// (SIGHUP, SIGSTOP, SIGCONT).
func (p *proc) send(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || isClosed(p.done) {
		return fmt.Errorf("%s is not running", p.ID)
	}
	return p.cmd.Process.Signal(sig)
}

// waitExit waits up to timeout for the process to exit on its own and
// returns its exit error (nil for exit status 0); exited is false if it
// still runs.
func (p *proc) waitExit(timeout time.Duration) (exitErr error, exited bool) {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	select {
	case <-done:
	case <-time.After(timeout):
		return nil, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exitErr, true
}

// signal sends sig and waits up to timeout for the process to exit,
// returning its exit error (nil for a clean exit).
func (p *proc) signal(sig syscall.Signal, timeout time.Duration) error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil || isClosed(done) {
		return fmt.Errorf("%s is not running", p.ID)
	}
	if err := cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signal %s to %s: %w", sig, p.ID, err)
	}
	select {
	case <-done:
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("%s did not exit within %s of %s; killed", p.ID, timeout, sig)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exitErr
}

// Log returns everything the process (all its runs) wrote so far.
func (p *proc) Log() string {
	b, err := os.ReadFile(p.LogPath)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", p.LogPath, err)
	}
	return string(b)
}

// currentRunLog returns what the process wrote since its latest start.
func (p *proc) currentRunLog() string {
	p.mu.Lock()
	n := p.starts
	p.mu.Unlock()
	return p.LogOfRun(n)
}

// LogOfRun returns what the process wrote during its n-th start (1-based).
func (p *proc) LogOfRun(n int) string {
	marker := fmt.Sprintf("=== cluster-test: start #%d ", n)
	next := fmt.Sprintf("=== cluster-test: start #%d ", n+1)
	log := p.Log()
	i := strings.Index(log, marker)
	if i < 0 {
		return ""
	}
	log = log[i:]
	if j := strings.Index(log, next); j >= 0 {
		log = log[:j]
	}
	return log
}

// cluster is a set of zaqar-server processes started by one test.
type cluster struct {
	t     *testing.T
	Nodes []*proc
}

// startCluster starts an n-node cluster bootstrapped from all n nodes and
// waits until every node agrees on a leader. The processes are killed when
// the test ends; if the test failed, their logs are printed first.
func startCluster(t *testing.T, n int, extraArgs ...string) *cluster {
	t.Helper()
	return launchCluster(t, n, false, extraArgs)
}

// startTLSCluster is startCluster with TLS on every port: a development CA
// and node certificates are written into the test's directory (newDevTLS),
// the REST ports serve https and wss, and the node ports speak mutual TLS.
func startTLSCluster(t *testing.T, n int, extraArgs ...string) *cluster {
	t.Helper()
	return launchCluster(t, n, true, extraArgs)
}

func launchCluster(t *testing.T, n int, withTLS bool, extraArgs []string) *cluster {
	t.Helper()
	if serverBinary == "" {
		t.Fatal("the zaqar-server binary was not built (TestMain did not run)")
	}
	var lastErr error
	// Free ports are picked by binding to :0 and releasing them; another
	// process on this shared machine can take one in between, so a start
	// that fails with "address already in use" is retried on new ports.
	for attempt := 1; attempt <= 3; attempt++ {
		c := &cluster{t: t}
		base := t.TempDir()
		ports, err := freePorts(2 * n)
		if err != nil {
			t.Fatalf("pick free ports: %v", err)
		}
		var peers, ids []string
		for i := 0; i < n; i++ {
			id := fmt.Sprintf("node%d", i+1)
			p := &proc{
				ID: id, APIAddr: ports[2*i], RaftAddr: ports[2*i+1],
				DataDir: filepath.Join(base, id), LogPath: filepath.Join(base, id+".log"),
			}
			c.Nodes = append(c.Nodes, p)
			peers = append(peers, id+"="+p.RaftAddr)
			ids = append(ids, id)
		}
		var certs *devTLS
		if withTLS {
			certs = newDevTLS(t, filepath.Join(base, "tls"), nil, ids...)
		}
		for _, p := range c.Nodes {
			p.args = []string{
				"-node-id", p.ID, "-data-dir", p.DataDir, "-api-addr", p.APIAddr, "-raft-addr", p.RaftAddr,
				"-bootstrap", strings.Join(peers, ","),
				// Short Raft timeouts so that a killed leader is replaced
				// quickly. Fsync stays on.
				"-raft-heartbeat-timeout", "500ms", "-raft-election-timeout", "500ms",
			}
			if certs != nil {
				p.tls = certs
				p.args = append(p.args, certs.nodeArgs(p.ID)...)
			}
			p.args = append(p.args, extraArgs...)
		}
		t.Cleanup(c.cleanup)
		for _, p := range c.Nodes {
			if err := p.start(); err != nil {
				t.Fatal(err)
			}
		}
		_, err = c.waitForLeader(60 * time.Second)
		if err == nil {
			return c
		}
		lastErr = err
		portClash := false
		for _, p := range c.Nodes {
			portClash = portClash || (!p.Running() && strings.Contains(p.Log(), "address already in use"))
		}
		if !portClash {
			break
		}
		t.Logf("attempt %d: a port was taken by someone else; retrying on new ports", attempt)
		c.killAll()
	}
	t.Fatalf("cluster did not come up: %v", lastErr)
	return nil
}

// freePorts returns n distinct loopback addresses that were free a moment
// ago.
func freePorts(n int) ([]string, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	var out []string
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().String())
	}
	return out, nil
}

func (c *cluster) killAll() {
	for _, p := range c.Nodes {
		if p.Running() {
			_ = p.signal(syscall.SIGKILL, 10*time.Second)
		}
	}
}

func (c *cluster) cleanup() {
	c.killAll()
	if !c.t.Failed() {
		return
	}
	for _, p := range c.Nodes {
		c.t.Logf("---- log of %s (api %s, raft %s) ----\n%s", p.ID, p.APIAddr, p.RaftAddr, tailLines(p.Log(), 400))
	}
}

// tailLines returns the last n lines of s.
func tailLines(s string, n int) string {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("... (%d earlier lines)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// Node returns the process with the given id.
func (c *cluster) Node(id string) *proc {
	for _, p := range c.Nodes {
		if p.ID == id {
			return p
		}
	}
	return nil
}

// Running returns the processes that are alive.
func (c *cluster) Running() []*proc {
	var out []*proc
	for _, p := range c.Nodes {
		if p.Running() {
			out = append(out, p)
		}
	}
	return out
}

// waitForLeader waits until every running node names the same leader and
// that leader is running and says it is the leader.
func (c *cluster) waitForLeader(timeout time.Duration) (*proc, error) {
	deadline := time.Now().Add(timeout)
	var last string
	for {
		leader, why := c.agreedLeader()
		if leader != nil {
			return leader, nil
		}
		last = why
		for _, p := range c.Nodes {
			if !p.Running() && strings.Contains(p.Log(), "address already in use") {
				return nil, fmt.Errorf("%s exited: address already in use", p.ID)
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no agreed leader after %s: %s", timeout, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *cluster) agreedLeader() (*proc, string) {
	running := c.Running()
	if len(running) == 0 {
		return nil, "no node is running"
	}
	leaderID := ""
	for _, p := range running {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		st, err := adminStatus(ctx, p)
		cancel()
		if err != nil {
			return nil, fmt.Sprintf("%s: %v", p.ID, err)
		}
		if st.Leader == "" {
			return nil, fmt.Sprintf("%s knows no leader", p.ID)
		}
		if leaderID != "" && st.Leader != leaderID {
			return nil, fmt.Sprintf("nodes disagree on the leader (%s vs %s)", leaderID, st.Leader)
		}
		leaderID = st.Leader
	}
	leader := c.Node(leaderID)
	if leader == nil || !leader.Running() {
		return nil, fmt.Sprintf("leader %q is not a running node", leaderID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	own, err := ownStatus(ctx, leader)
	if err != nil {
		return nil, fmt.Sprintf("%s: %v", leaderID, err)
	}
	if own.State != "Leader" {
		return nil, fmt.Sprintf("%s is named leader but is %s", leaderID, own.State)
	}
	return leader, ""
}

// Leader waits for an agreed leader and fails the test if there is none.
func (c *cluster) Leader() *proc {
	c.t.Helper()
	p, err := c.waitForLeader(30 * time.Second)
	if err != nil {
		c.t.Fatal(err)
	}
	return p
}

// Followers returns the running nodes other than the current leader.
func (c *cluster) Followers() []*proc {
	c.t.Helper()
	leader := c.Leader()
	var out []*proc
	for _, p := range c.Running() {
		if p != leader {
			out = append(out, p)
		}
	}
	return out
}

// Kill sends SIGKILL to the node and waits for it to die.
func (c *cluster) Kill(p *proc) {
	c.t.Helper()
	err := p.signal(syscall.SIGKILL, 10*time.Second)
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		c.t.Fatalf("kill %s: %v", p.ID, err)
	}
}

// Stop sends SIGTERM and waits for a clean exit; a non-zero exit fails
// the test.
func (c *cluster) Stop(p *proc) {
	c.t.Helper()
	if err := p.signal(syscall.SIGTERM, 30*time.Second); err != nil {
		c.t.Fatalf("stop %s with SIGTERM: %v", p.ID, err)
	}
}

// Restart starts a stopped node again with the same flags and data
// directory and waits until its REST API answers.
func (c *cluster) Restart(p *proc) {
	c.t.Helper()
	if err := p.start(); err != nil {
		c.t.Fatal(err)
	}
	c.waitUntil(30*time.Second, p.ID+" answers /admin/cluster", func() (bool, string) {
		if !p.Running() {
			return false, "process exited"
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := adminStatus(ctx, p)
		return err == nil, fmt.Sprint(err)
	})
}

// waitUntil polls cond every 50ms until it holds, failing the test with
// the last reason cond gave if timeout passes first.
func (c *cluster) waitUntil(timeout time.Duration, what string, cond func() (bool, string)) {
	c.t.Helper()
	if err := poll(timeout, cond); err != nil {
		c.t.Fatalf("waiting for %s: %v", what, err)
	}
}

// poll calls cond every 50ms until it holds or timeout passes.
func poll(timeout time.Duration, cond func() (bool, string)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not true after %s: %s", timeout, why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// WaitApplied waits until every running node has applied the same index
// and that index is at least the leader's commit index seen at the start.
func (c *cluster) WaitApplied(timeout time.Duration) uint64 {
	c.t.Helper()
	var index uint64
	c.waitUntil(timeout, "all running nodes to apply the same index", func() (bool, string) {
		var seen []string
		index = 0
		equal := true
		for i, p := range c.Running() {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			st, err := ownStatus(ctx, p)
			cancel()
			if err != nil {
				return false, fmt.Sprintf("%s: %v", p.ID, err)
			}
			seen = append(seen, fmt.Sprintf("%s applied=%d commit=%d last=%d", p.ID, st.AppliedIndex, st.CommitIndex, st.LastIndex))
			if i == 0 {
				index = st.AppliedIndex
			}
			equal = equal && st.AppliedIndex == index && st.AppliedIndex == st.CommitIndex
		}
		return equal && index > 0, strings.Join(seen, "; ")
	})
	return index
}

// countLines counts the lines of log that contain every one of parts.
func countLines(log string, parts ...string) int {
	n := 0
	for _, line := range bytes.Split([]byte(log), []byte("\n")) {
		all := true
		for _, part := range parts {
			all = all && bytes.Contains(line, []byte(part))
		}
		if all {
			n++
		}
	}
	return n
}
