package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/zaqar-raft/zaqar/internal/tlsconf"
)

// localCluster is a cluster of zaqar-server processes started by the tool.
type localCluster struct {
	dir   string
	nodes []*localNode
	// scheme is "https" when the nodes serve TLS; clientTLS then names
	// the development CA (and client certificate) that clients use, and
	// admin is the client of the tool's own status requests.
	scheme    string
	clientTLS tlsconf.Files
	admin     *http.Client
}

type localNode struct {
	id     string
	api    string
	raft   string
	cmd    *exec.Cmd
	mu     sync.Mutex
	exited bool
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// spawnCluster starts n nodes of bin with fsync on and waits for a leader.
// With useTLS the nodes serve https/wss and speak mutual TLS to each other,
// with certificates of a development CA written into the cluster's
// directory.
//
// The ports are picked free and then handed to the nodes, so another
// process can take one in between; a node that exits while the cluster
// starts is such a loss, and the whole cluster is started again on new
// ports (three tries).
func spawnCluster(ctx context.Context, bin string, n int, useTLS bool, extra []string) (*localCluster, error) {
	return spawnClusterWith(ctx, bin, n, useTLS, extra, spawnOpts{})
}

// spawnOpts are what spawnClusterWith adds to spawnCluster.
type spawnOpts struct {
	// cpus, when set, is a CPU list for taskset: every node is started as
	// `taskset -c cpus bin ...` (taskset execs bin, so the pid is the
	// node's and /proc figures stay per node).
	cpus string
	// firstID numbers the nodes node<firstID>, node<firstID+1>, ... (0
	// counts as 1), so that the nodes of several clusters have distinct
	// ids.
	firstID int
}

// spawnClusterWith is spawnCluster with the nodes pinned to CPUs and/or
// numbered from another id.
func spawnClusterWith(ctx context.Context, bin string, n int, useTLS bool, extra []string, opts spawnOpts) (*localCluster, error) {
	var err error
	for try := 0; try < 3; try++ {
		var cl *localCluster
		if cl, err = spawnOnce(ctx, bin, n, useTLS, extra, opts); err == nil || !errors.Is(err, errNodeExited) {
			return cl, err
		}
		fmt.Fprintln(os.Stderr, "zaqar-bench: starting the cluster again:", err)
	}
	return nil, err
}

// errNodeExited is a node that exited while its cluster started.
var errNodeExited = errors.New("a node exited while the cluster started")

// spawnOnce starts n nodes and waits until every one of them answers and
// knows the same leader (a client may send its first request to any).
func spawnOnce(ctx context.Context, bin string, n int, useTLS bool, extra []string, opts spawnOpts) (*localCluster, error) {
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("server binary %s: %w (build it with `make build`)", bin, err)
	}
	dir, err := os.MkdirTemp("", "zaqar-bench-")
	if err != nil {
		return nil, err
	}
	cl := &localCluster{dir: dir, scheme: "http", admin: &http.Client{Timeout: 2 * time.Second}}
	var peers []string
	first := max(opts.firstID, 1)
	for i := 0; i < n; i++ {
		ap, err1 := freePort()
		rp, err2 := freePort()
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		nd := &localNode{id: fmt.Sprintf("node%d", first+i), api: fmt.Sprintf("127.0.0.1:%d", ap), raft: fmt.Sprintf("127.0.0.1:%d", rp)}
		cl.nodes = append(cl.nodes, nd)
		peers = append(peers, nd.id+"="+nd.raft)
	}
	tlsDir := filepath.Join(dir, "tls")
	if useTLS {
		if err := cl.useTLS(tlsDir); err != nil {
			cl.stop()
			return nil, err
		}
	}
	for _, nd := range cl.nodes {
		args := []string{"-node-id", nd.id, "-data-dir", filepath.Join(dir, nd.id), "-api-addr", nd.api,
			"-raft-addr", nd.raft, "-bootstrap", strings.Join(peers, ","), "-log-level", "warn"}
		if useTLS {
			// The layout zaqar-server local-cluster -tls uses: one
			// certificate per node for both ports.
			cert, key := filepath.Join(tlsDir, nd.id+".pem"), filepath.Join(tlsDir, nd.id+"-key.pem")
			args = append(args, "-tls-cert", cert, "-tls-key", key,
				"-peer-tls-ca", filepath.Join(tlsDir, "ca.pem"), "-peer-tls-cert", cert, "-peer-tls-key", key)
		}
		args = append(args, extra...)
		if opts.cpus != "" {
			nd.cmd = exec.Command("taskset", append([]string{"-c", opts.cpus, bin}, args...)...)
		} else {
			nd.cmd = exec.Command(bin, args...)
		}
		logf, err := os.Create(filepath.Join(dir, nd.id+".log"))
		if err != nil {
			cl.stop()
			return nil, err
		}
		nd.cmd.Stdout, nd.cmd.Stderr = logf, logf
		if err := nd.cmd.Start(); err != nil {
			cl.stop()
			return nil, err
		}
		go func(nd *localNode) {
			_ = nd.cmd.Wait()
			nd.mu.Lock()
			nd.exited = true
			nd.mu.Unlock()
		}(nd)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		ready, err := cl.ready()
		if err != nil {
			cl.stop()
			return nil, err
		}
		if ready {
			return cl, nil
		}
		select {
		case <-ctx.Done():
			cl.stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	tails := cl.logTails()
	cl.stop()
	return nil, errors.New("the spawned cluster did not agree on a leader within 30s:\n" + tails)
}

// ready reports whether every node answers and names the same leader; an
// error (wrapping errNodeExited) if a node has exited.
func (cl *localCluster) ready() (bool, error) {
	leader := ""
	for _, nd := range cl.nodes {
		nd.mu.Lock()
		gone := nd.exited
		nd.mu.Unlock()
		if gone {
			return false, fmt.Errorf("%w: %s:\n%s", errNodeExited, nd.id, cl.logTail(nd))
		}
		l, err := cl.leaderSeenBy(nd)
		if err != nil || l == "" || (leader != "" && l != leader) {
			return false, nil
		}
		leader = l
	}
	return true, nil
}

// logTail returns the last lines of a node's log.
func (cl *localCluster) logTail(nd *localNode) string {
	b, err := os.ReadFile(filepath.Join(cl.dir, nd.id+".log"))
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-10):], "\n")
}

func (cl *localCluster) logTails() string {
	var b strings.Builder
	for _, nd := range cl.nodes {
		fmt.Fprintf(&b, "%s:\n%s\n", nd.id, cl.logTail(nd))
	}
	return b.String()
}

// useTLS writes a development CA and the nodes' certificates into dir and
// points the cluster's clients at the CA.
func (cl *localCluster) useTLS(dir string) error {
	var ids []string
	for _, nd := range cl.nodes {
		ids = append(ids, nd.id)
	}
	if err := (tlsconf.DevelopmentSet{Dir: dir, Nodes: ids}).Write(); err != nil {
		return err
	}
	cl.scheme, cl.clientTLS = "https", tlsconf.Files{CA: filepath.Join(dir, "ca.pem")}
	cfg, err := tlsconf.StaticClientConfig(cl.clientTLS)
	if err != nil {
		return err
	}
	cl.admin.Transport = &http.Transport{TLSClientConfig: cfg}
	return nil
}

func (cl *localCluster) urls() []string {
	var out []string
	for _, nd := range cl.nodes {
		out = append(out, cl.scheme+"://"+nd.api)
	}
	return out
}

// leader asks the live nodes who leads.
func (cl *localCluster) leader() (*localNode, error) {
	for _, nd := range cl.nodes {
		nd.mu.Lock()
		gone := nd.exited
		nd.mu.Unlock()
		if gone {
			continue
		}
		id, err := cl.leaderSeenBy(nd)
		if err != nil || id == "" {
			continue
		}
		for _, l := range cl.nodes {
			if l.id == id {
				return l, nil
			}
		}
	}
	return nil, errors.New("no leader")
}

// leaderSeenBy asks one node which node leads ("" if it knows none).
func (cl *localCluster) leaderSeenBy(nd *localNode) (string, error) {
	req, err := http.NewRequest(http.MethodGet, cl.scheme+"://"+nd.api+"/admin/cluster", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("X-Roles", "admin")
	resp, err := cl.admin.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var st struct{ Leader string }
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return "", err
	}
	return st.Leader, nil
}

func (cl *localCluster) killLeader() (string, error) {
	l, err := cl.leader()
	if err != nil {
		return "", err
	}
	return l.id, l.cmd.Process.Signal(syscall.SIGKILL)
}

func (cl *localCluster) stop() {
	for _, nd := range cl.nodes {
		if nd.cmd != nil && nd.cmd.Process != nil {
			_ = nd.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for _, nd := range cl.nodes {
		for nd.cmd != nil && nd.cmd.Process != nil && time.Now().Before(deadline) {
			nd.mu.Lock()
			gone := nd.exited
			nd.mu.Unlock()
			if gone {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if nd.cmd != nil && nd.cmd.Process != nil {
			_ = nd.cmd.Process.Kill()
		}
	}
	_ = os.RemoveAll(cl.dir)
}

// resourceSampler records each node's CPU time and resident memory.
type resourceSampler struct {
	cl      *localCluster
	start   map[string]procStat
	samples map[string][]float64
	mu      sync.Mutex
	done    chan struct{}
	wg      sync.WaitGroup
}

type procStat struct {
	cpuTicks uint64
	rssMB    float64
}

func readProc(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	// Fields after the command name (which may hold spaces) start after ')'.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	if len(f) < 22 {
		return procStat{}, errors.New("short /proc stat")
	}
	utime, _ := strconv.ParseUint(f[11], 10, 64)
	stime, _ := strconv.ParseUint(f[12], 10, 64)
	st := procStat{cpuTicks: utime + stime}
	sf, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return st, err
	}
	defer sf.Close()
	sc := bufio.NewScanner(sf)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			st.rssMB = kb / 1024
		}
	}
	return st, nil
}

func startSampler(cl *localCluster) *resourceSampler {
	s := &resourceSampler{cl: cl, start: map[string]procStat{}, samples: map[string][]float64{}, done: make(chan struct{})}
	for _, nd := range cl.nodes {
		if st, err := readProc(nd.cmd.Process.Pid); err == nil {
			s.start[nd.id] = st
			s.samples[nd.id] = []float64{st.rssMB}
		}
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-s.done:
				return
			case <-t.C:
			}
			for _, nd := range cl.nodes {
				if st, err := readProc(nd.cmd.Process.Pid); err == nil {
					s.mu.Lock()
					s.samples[nd.id] = append(s.samples[nd.id], st.rssMB)
					s.mu.Unlock()
				}
			}
		}
	}()
	return s
}

const clockTicks = 100 // USER_HZ on Linux

func (s *resourceSampler) stop(elapsed time.Duration) []nodeResult {
	close(s.done)
	s.wg.Wait()
	var out []nodeResult
	for _, nd := range s.cl.nodes {
		start, ok := s.start[nd.id]
		if !ok {
			continue
		}
		r := nodeResult{Node: nd.id, RSSStartMB: start.rssMB}
		samples := s.samples[nd.id]
		for _, v := range samples {
			if v > r.RSSMaxMB {
				r.RSSMaxMB = v
			}
		}
		r.RSSEndMB = samples[len(samples)-1]
		if end, err := readProc(nd.cmd.Process.Pid); err == nil {
			r.CPUPercent = float64(end.cpuTicks-start.cpuTicks) / clockTicks / elapsed.Seconds() * 100
			r.RSSEndMB = end.rssMB
		} else {
			r.Node += " (exited)"
		}
		out = append(out, r)
	}
	return out
}
