package clustertest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// chaosSlot is one position of a chaos cluster: a loopback IP of its own,
// fixed REST, Raft and proxy ports, and the node currently running there
// (a replaced node gets a new id and an empty data directory in the same
// slot).
type chaosSlot struct {
	idx       int
	name      string // n1, n2, ...
	ip        string // 127.0.0.(11+idx)
	apiAddr   string
	raftAddr  string // where the node listens for Raft
	proxyAddr string // what other nodes dial (the proxy in front of raftAddr)
	proc      *proc
	gen       int
}

// chaosCluster is a cluster of zaqar-server processes whose node-to-node
// links run through the test's proxies.
type chaosCluster struct {
	t     *testing.T
	base  string
	net   *chaosNet
	slots []*chaosSlot
	view  *cluster // the harness's view of the current processes
	procs []*proc  // every process ever started, replaced ones included
	// tls, when set, gives every node TLS on both ports (CHAOS_TLS=1): the
	// proxies in front of the node ports pass the mutual TLS through, since
	// peers are identified by their certificates' names, not addresses.
	tls *devTLS
	// extraArgs are added to every node's command line (a pool's -catalog,
	// chaos_pools_test.go), replacement nodes included.
	extraArgs []string
	// outside are the slots of the deployment's other groups (pools) that
	// share net: a partition cuts its minority off from them too, and
	// slow links are slow towards them too.
	outside []int
}

// chaosNodeArgs are the settings every chaos node runs with: Raft's
// default 1 s timeouts (a loaded 2-core machine must not elect all the
// time), fsync on, and frequent snapshots so that restarted and replaced
// nodes also catch up from snapshots.
var chaosNodeArgs = []string{
	"-raft-heartbeat-timeout", "1s", "-raft-election-timeout", "1s",
	"-raft-snapshot-interval", "5s", "-raft-snapshot-threshold", "2000", "-raft-trailing-logs", "1000",
	"-log-level", "warn",
}

// slotIP is the loopback address of slot i.
func slotIP(i int) string { return fmt.Sprintf("127.0.0.%d", 11+i) }

// freePortOn returns host:port for a port of ip that was free a moment ago.
func freePortOn(ip string) (string, error) {
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startChaosCluster starts n nodes behind proxies and waits for a leader,
// with TLS on every port when withTLS is set.
func startChaosCluster(t *testing.T, n int, withTLS bool) (*chaosCluster, error) {
	if serverBinary == "" {
		return nil, errors.New("the zaqar-server binary was not built (TestMain did not run)")
	}
	var lastErr error
	for attempt := 1; attempt <= 3; attempt++ {
		cc, err := tryStartChaosCluster(t, n, withTLS)
		if err == nil {
			return cc, nil
		}
		lastErr = err
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
		t.Logf("chaos: attempt %d: a port was taken meanwhile; retrying on new ports", attempt)
	}
	return nil, lastErr
}

func tryStartChaosCluster(t *testing.T, n int, withTLS bool) (*chaosCluster, error) {
	base := t.TempDir()
	var tls *devTLS
	if withTLS {
		tls = chaosDevTLS(t, base, n)
	}
	return startChaosGroup(t, base, newChaosNet(), 0, n, tls, nil)
}

// chaosDevTLS is a development CA in base/tls whose certificates name the
// addresses of slots 0..n-1 (the REST clients check them); certificates
// are issued as nodes are made.
func chaosDevTLS(t *testing.T, base string, n int) *devTLS {
	var ips []string
	for i := 0; i < n; i++ {
		ips = append(ips, slotIP(i))
	}
	return newDevTLS(t, filepath.Join(base, "tls"), ips)
}

// startChaosGroup starts one Raft group of n nodes in slots first..first+n-1
// of net, each with extraArgs, and waits for its leader. A deployment of
// several groups (pools) shares one net, so that links between the groups
// run through the proxies too.
func startChaosGroup(t *testing.T, base string, net *chaosNet, first, n int, tls *devTLS, extraArgs []string) (*chaosCluster, error) {
	cc := &chaosCluster{t: t, base: base, net: net, tls: tls, extraArgs: extraArgs}
	cc.view = &cluster{t: t}
	var peers []string
	for i := first; i < first+n; i++ {
		s := &chaosSlot{idx: i, name: fmt.Sprintf("n%d", i+1), ip: slotIP(i), gen: 1}
		var err error
		if s.apiAddr, err = freePortOn(s.ip); err != nil {
			return nil, fmt.Errorf("bind %s (needs 127/8 on lo): %w", s.ip, err)
		}
		if s.raftAddr, err = freePortOn(s.ip); err != nil {
			return nil, err
		}
		p, err := cc.net.addProxy(i, s.ip, s.ip+":0", s.raftAddr)
		if err != nil {
			return nil, err
		}
		s.proxyAddr = p.Addr()
		cc.slots = append(cc.slots, s)
		peers = append(peers, s.name+"="+s.proxyAddr)
	}
	t.Cleanup(cc.close)
	for _, s := range cc.slots {
		var err error
		if s.proc, err = cc.newProc(s, s.name, "-bootstrap", strings.Join(peers, ",")); err != nil {
			return nil, err
		}
		if err := s.proc.start(); err != nil {
			return nil, err
		}
	}
	cc.syncView()
	if _, err := cc.view.waitForLeader(90 * time.Second); err != nil {
		for _, s := range cc.slots {
			if strings.Contains(s.proc.Log(), "address already in use") {
				cc.close()
				return nil, fmt.Errorf("%s: address already in use", s.name)
			}
		}
		return nil, err
	}
	return cc, nil
}

// newProc prepares (does not start) node id in slot s, issuing its
// certificate when the cluster runs TLS.
func (cc *chaosCluster) newProc(s *chaosSlot, id string, membership ...string) (*proc, error) {
	p := &proc{
		ID: id, APIAddr: s.apiAddr, RaftAddr: s.proxyAddr,
		DataDir: filepath.Join(cc.base, id), LogPath: filepath.Join(cc.base, id+".log"),
	}
	p.args = append([]string{
		"-node-id", id, "-data-dir", p.DataDir, "-api-addr", s.apiAddr,
		"-raft-addr", s.raftAddr, "-raft-advertise", s.proxyAddr, "-raft-source-ip", s.ip,
	}, membership...)
	p.args = append(p.args, cc.extraArgs...)
	p.args = append(p.args, chaosNodeArgs...)
	if cc.tls != nil {
		if err := cc.tls.issue(id); err != nil {
			return nil, err
		}
		p.tls = cc.tls
		p.args = append(p.args, cc.tls.nodeArgs(id)...)
	}
	cc.procs = append(cc.procs, p)
	return p, nil
}

// syncView points the harness view at the current processes.
func (cc *chaosCluster) syncView() {
	cc.view.Nodes = nil
	for _, s := range cc.slots {
		cc.view.Nodes = append(cc.view.Nodes, s.proc)
	}
}

// endpoints returns the slots' API addresses for the workload.
func (cc *chaosCluster) endpoints() []chaosEndpoint {
	var out []chaosEndpoint
	for _, s := range cc.slots {
		out = append(out, chaosEndpoint{Name: s.name, API: s.apiAddr, TLS: cc.tls})
	}
	return out
}

func (cc *chaosCluster) close() {
	cc.net.heal()
	for _, p := range cc.procs {
		if p.Running() {
			_ = p.signal(syscall.SIGKILL, 10*time.Second)
		}
	}
	cc.net.close()
}

// slotOf returns the slot running process p.
func (cc *chaosCluster) slotOf(p *proc) *chaosSlot {
	for _, s := range cc.slots {
		if s.proc == p {
			return s
		}
	}
	return nil
}

// leader waits for every running node to agree on a leader.
func (cc *chaosCluster) leader(timeout time.Duration) (*chaosSlot, error) {
	cc.syncView()
	p, err := cc.view.waitForLeader(timeout)
	if err != nil {
		return nil, err
	}
	return cc.slotOf(p), nil
}

// others returns every slot except s.
func (cc *chaosCluster) others(s *chaosSlot) []*chaosSlot {
	var out []*chaosSlot
	for _, o := range cc.slots {
		if o != s {
			out = append(out, o)
		}
	}
	return out
}

func slotIndexes(slots []*chaosSlot) []int {
	var out []int
	for _, s := range slots {
		out = append(out, s.idx)
	}
	return out
}

func slotNames(slots []*chaosSlot) []string {
	var out []string
	for _, s := range slots {
		out = append(out, s.proc.ID)
	}
	return out
}

// kill sends SIGKILL and waits for the process to die.
func (cc *chaosCluster) kill(s *chaosSlot) error {
	err := s.proc.signal(syscall.SIGKILL, 10*time.Second)
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return err
	}
	return nil
}

// stop sends SIGTERM and waits for a clean exit.
func (cc *chaosCluster) stop(s *chaosSlot) error {
	return s.proc.signal(syscall.SIGTERM, 60*time.Second)
}

// restart starts the slot's process again with its data directory.
func (cc *chaosCluster) restart(s *chaosSlot) error {
	if err := s.proc.start(); err != nil {
		return err
	}
	return poll(60*time.Second, func() (bool, string) {
		if !s.proc.Running() {
			return false, s.proc.ID + " exited"
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := adminStatus(ctx, s.proc)
		return err == nil, fmt.Sprint(err)
	})
}

// adminPost sends an admin request to slot s.
func adminPost(ctx context.Context, s *chaosSlot, path string, body any) (int, string, error) {
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.proc.URL()+path, bytes.NewReader(b))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("X-Roles", "admin")
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.proc.httpClient(0).Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(out)), nil
}

// replace removes the slot's node from the cluster, destroys it with its
// data directory, and joins a new empty node in the same slot.
func (cc *chaosCluster) replace(s *chaosSlot) (string, error) {
	old := s.proc.ID
	var last string
	err := poll(90*time.Second, func() (bool, string) {
		for _, o := range cc.others(s) {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			code, body, err := adminPost(ctx, o, "/admin/cluster/remove", map[string]string{"id": old})
			cancel()
			if err == nil && (code == http.StatusNoContent || code == http.StatusNotFound) {
				return true, ""
			}
			last = fmt.Sprintf("remove %s via %s: %d %s %v", old, o.name, code, body, err)
		}
		return false, last
	})
	if err != nil {
		return "", err
	}
	if err := cc.kill(s); err != nil {
		return "", err
	}
	if err := os.RemoveAll(s.proc.DataDir); err != nil {
		return "", err
	}
	s.gen++
	id := fmt.Sprintf("%s-g%d", s.name, s.gen)
	var join []string
	for _, o := range cc.others(s) {
		join = append(join, o.proxyAddr)
	}
	if s.proc, err = cc.newProc(s, id, "-join", strings.Join(join, ",")); err != nil {
		return "", err
	}
	cc.syncView()
	if err := cc.restart(s); err != nil {
		return "", err
	}
	return fmt.Sprintf("removed %s, joined %s with an empty data directory", old, id), nil
}

// waitHealthy waits until every slot's process runs, all agree on a leader
// that lists every one of them as a voter, and every node has applied what
// the leader had committed when the wait began.
func (cc *chaosCluster) waitHealthy(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var target uint64
	return poll(timeout, func() (bool, string) {
		for _, s := range cc.slots {
			if !s.proc.Running() {
				return false, s.proc.ID + " is not running"
			}
		}
		remaining := time.Until(deadline)
		if remaining < time.Second {
			remaining = time.Second
		}
		leader, err := cc.leader(min(remaining, 10*time.Second))
		if err != nil {
			return false, err.Error()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st, err := membershipStatus(ctx, leader)
		if err != nil {
			return false, err.Error()
		}
		voters := map[string]bool{}
		for _, m := range st.Members {
			if m.Suffrage == "Voter" {
				voters[m.ID] = true
			}
		}
		for _, s := range cc.slots {
			if !voters[s.proc.ID] {
				return false, fmt.Sprintf("%s is not a voter yet (members %+v)", s.proc.ID, st.Members)
			}
		}
		var commit uint64
		for _, n := range st.Nodes {
			if n.ID == leader.proc.ID {
				commit = n.CommitIndex
			}
		}
		if target == 0 {
			target = commit
		}
		var behind []string
		for _, n := range st.Nodes {
			if n.AppliedIndex < target {
				behind = append(behind, fmt.Sprintf("%s applied %d (error %q)", n.ID, n.AppliedIndex, n.Error))
			}
		}
		if len(behind) > 0 {
			return false, fmt.Sprintf("behind leader %s's commit index %d: %s", leader.proc.ID, target, strings.Join(behind, ", "))
		}
		return true, ""
	})
}

// chaosMembership is GET /admin/cluster with the Raft configuration.
type chaosMembership struct {
	clusterStatus
	Members []struct {
		ID       string `json:"id"`
		Address  string `json:"address"`
		Suffrage string `json:"suffrage"`
	} `json:"members"`
}

func membershipStatus(ctx context.Context, s *chaosSlot) (*chaosMembership, error) {
	var m chaosMembership
	if err := adminGet(ctx, s.proc, "/admin/cluster", &m); err != nil {
		return nil, err
	}
	return &m, nil
}

func fetchDigest(ctx context.Context, s *chaosSlot) (*nodeDigest, error) {
	var d nodeDigest
	if err := adminGet(ctx, s.proc, "/admin/cluster/digest", &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// compareDigests polls every node's digest until all report the same
// applied index, then compares the digests at that index.
func (cc *chaosCluster) compareDigests(timeout time.Duration) *digestResult {
	res := &digestResult{Digests: map[string]string{}}
	var last string
	err := poll(timeout, func() (bool, string) {
		got := map[string]*nodeDigest{}
		for _, s := range cc.slots {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			d, err := fetchDigest(ctx, s)
			cancel()
			if err != nil {
				return false, err.Error()
			}
			got[s.proc.ID] = d
		}
		var idx []string
		same := true
		var first *nodeDigest
		for id, d := range got {
			idx = append(idx, fmt.Sprintf("%s@%d", id, d.AppliedIndex))
			if first == nil {
				first = d
			}
			same = same && d.AppliedIndex == first.AppliedIndex
		}
		last = strings.Join(idx, " ")
		if !same {
			return false, "applied indexes differ: " + last
		}
		res.Checked, res.AppliedIndex = true, first.AppliedIndex
		for id, d := range got {
			res.Digests[id] = d.Digest
			if d.Digest != first.Digest {
				res.Problem = fmt.Sprintf("at applied index %d the digests differ: %v", first.AppliedIndex, res.Digests)
			}
		}
		return true, ""
	})
	if err != nil {
		res.Problem = fmt.Sprintf("the nodes never reported the same applied index: %v", err)
	}
	return res
}
