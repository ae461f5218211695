// Package testcluster starts real in-process clusters for tests: every node
// is a full server (Pebble on disk, Raft over TCP on loopback, the REST API
// on its own port), only sharing the test's process.
package testcluster

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/zaqar-raft/zaqar/internal/tlsconf"
	"github.com/zaqar-raft/zaqar/raftnode"
	"github.com/zaqar-raft/zaqar/server"
)

// Node is one member of a test cluster.
type Node struct {
	ID       string
	Dir      string
	RaftAddr string
	APIAddr  string
	Server   *server.Server // nil while stopped
	https    bool           // the REST port serves TLS
}

// URL returns the node's REST base URL (https:// when it serves TLS).
func (n *Node) URL() string {
	if n.https {
		return "https://" + n.APIAddr
	}
	return "http://" + n.APIAddr
}

// Cluster is a running test cluster.
type Cluster struct {
	t      testing.TB
	Nodes  []*Node
	peers  []raftnode.Peer
	modify func(*server.Config)
}

// Option changes every node's configuration.
type Option func(*server.Config)

// WithRESTTLS serves every node's REST port over TLS with its certificate
// from a development set in dir (tlsconf.DevelopmentSet: NODE.pem and
// NODE-key.pem), verifying client certificates against dir/ca.pem as auth
// says.
func WithRESTTLS(t testing.TB, dir string, auth tlsconf.ClientAuth) Option {
	return func(c *server.Config) {
		f := tlsconf.Files{Cert: filepath.Join(dir, c.NodeID+".pem"), Key: filepath.Join(dir, c.NodeID+"-key.pem")}
		if auth != tlsconf.NoClientCert {
			f.CA = filepath.Join(dir, "ca.pem")
		}
		src, err := tlsconf.Load(f)
		if err != nil {
			t.Fatalf("REST TLS of %s: %v", c.NodeID, err)
		}
		c.TLS, c.TLSClientAuth = src, auth
	}
}

// WithConfig applies fn to every node's configuration.
func WithConfig(fn func(*server.Config)) Option { return Option(fn) }

// Start starts an n-node cluster and waits until it has a leader. The
// cluster is closed when the test ends.
func Start(t testing.TB, n int, opts ...Option) *Cluster {
	t.Helper()
	c := &Cluster{t: t}
	c.modify = func(cfg *server.Config) {
		for _, o := range opts {
			o(cfg)
		}
	}
	base := t.TempDir()
	raftLns := make([]net.Listener, n)
	apiLns := make([]net.Listener, n)
	for i := 0; i < n; i++ {
		raftLns[i] = listen(t)
		apiLns[i] = listen(t)
		node := &Node{
			ID: fmt.Sprintf("node%d", i+1), Dir: fmt.Sprintf("%s/node%d", base, i+1),
			RaftAddr: raftLns[i].Addr().String(), APIAddr: apiLns[i].Addr().String(),
		}
		c.Nodes = append(c.Nodes, node)
		c.peers = append(c.peers, raftnode.Peer{ID: node.ID, Address: node.RaftAddr})
	}
	for i, node := range c.Nodes {
		c.startNode(node, raftLns[i], apiLns[i], c.peers, nil)
	}
	t.Cleanup(c.Close)
	c.Leader()
	// A follower learns the leader from its first append; until then it
	// answers "no leader" (zaqarctl status, forwarding), which tests on a
	// loaded machine would otherwise see.
	c.Eventually(10*time.Second, func() bool {
		for _, n := range c.Nodes {
			if id, _ := n.Server.Node().Leader(); id == "" {
				return false
			}
		}
		return true
	}, "every node to know the leader")
	return c
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	return ln
}

// Config returns the configuration a node of this cluster starts with.
func (c *Cluster) config(node *Node, bootstrap []raftnode.Peer, join []string) server.Config {
	level := slog.LevelWarn
	if os.Getenv("ZAQAR_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	var out io.Writer = io.Discard
	if os.Getenv("ZAQAR_TEST_LOG") != "" {
		out = os.Stderr
	}
	cfg := server.Config{
		NodeID: node.ID, DataDir: node.Dir, APIAddr: node.APIAddr,
		Raft: raftnode.Config{
			RaftAddr: node.RaftAddr, Bootstrap: bootstrap, Join: join,
			HeartbeatTimeout: 500 * time.Millisecond, ElectionTimeout: 500 * time.Millisecond,
			NoFsync: true, RaftLogLevel: "error",
		},
		GCInterval: 200 * time.Millisecond,
		Logger:     slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: level})),
	}
	if out != io.Discard {
		cfg.Raft.RaftLogLevel = "info"
	}
	c.modify(&cfg)
	return cfg
}

func (c *Cluster) startNode(node *Node, raftLn, apiLn net.Listener, bootstrap []raftnode.Peer, join []string) {
	c.t.Helper()
	cfg := c.config(node, bootstrap, join)
	cfg.Raft.Listener, cfg.APIListener = raftLn, apiLn
	srv, err := server.Start(cfg)
	if err != nil {
		c.t.Fatalf("start %s: %v", node.ID, err)
	}
	node.Server, node.https = srv, cfg.TLS != nil
}

// Close stops every running node.
func (c *Cluster) Close() {
	for _, n := range c.Nodes {
		if n.Server != nil {
			_ = n.Server.Close()
			n.Server = nil
		}
	}
}

// Leader waits (up to 10 s) for a running node to be leader and returns it.
func (c *Cluster) Leader() *Node {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, n := range c.Nodes {
			if n.Server != nil && n.Server.Node().IsLeader() {
				return n
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatalf("no leader elected within 10s")
	return nil
}

// Followers returns the running nodes other than the leader.
func (c *Cluster) Followers() []*Node {
	c.t.Helper()
	leader := c.Leader()
	var out []*Node
	for _, n := range c.Nodes {
		if n != leader && n.Server != nil {
			out = append(out, n)
		}
	}
	return out
}

// Stop stops a node gracefully, keeping its data directory.
func (c *Cluster) Stop(n *Node) {
	c.t.Helper()
	if n.Server == nil {
		return
	}
	if err := n.Server.Close(); err != nil {
		c.t.Logf("stop %s: %v", n.ID, err)
	}
	n.Server = nil
}

// Restart starts a stopped node again on its old addresses and data.
func (c *Cluster) Restart(n *Node) {
	c.t.Helper()
	var raftLn, apiLn net.Listener
	var err error
	for i := 0; i < 50; i++ {
		if raftLn, err = net.Listen("tcp", n.RaftAddr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		c.t.Fatalf("restart %s: %v", n.ID, err)
	}
	if apiLn, err = net.Listen("tcp", n.APIAddr); err != nil {
		c.t.Fatalf("restart %s: %v", n.ID, err)
	}
	c.startNode(n, raftLn, apiLn, c.peers, nil)
}

// AddNode starts a new empty node that joins the cluster through the
// current leader and returns it once it is a voter.
func (c *Cluster) AddNode() *Node {
	c.t.Helper()
	raftLn, apiLn := listen(c.t), listen(c.t)
	node := &Node{
		ID: fmt.Sprintf("node%d", len(c.Nodes)+1), Dir: fmt.Sprintf("%s/node%d", c.t.TempDir(), len(c.Nodes)+1),
		RaftAddr: raftLn.Addr().String(), APIAddr: apiLn.Addr().String(),
	}
	c.Nodes = append(c.Nodes, node)
	c.startNode(node, raftLn, apiLn, nil, []string{c.Leader().RaftAddr})
	c.Eventually(10*time.Second, func() bool {
		for _, m := range c.Leader().Server.Node().Members() {
			if m.ID == node.ID && m.Suffrage == "Voter" {
				return true
			}
		}
		return false
	}, "node %s did not become a voter", node.ID)
	return node
}

// Eventually polls cond until it holds or timeout passes.
func (c *Cluster) Eventually(timeout time.Duration, cond func() bool, format string, args ...any) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatalf(format, args...)
}

// WaitConverged waits until every running node has applied the same index
// and holds byte-identical state, and returns that state's digest.
func (c *Cluster) WaitConverged(timeout time.Duration) [32]byte {
	c.t.Helper()
	var digest [32]byte
	c.Eventually(timeout, func() bool {
		leader := c.Leader()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := leader.Server.Node().ReadBarrier(ctx); err != nil {
			return false
		}
		target := leader.Server.Node().FSM().AppliedIndex()
		var first *[32]byte
		for _, n := range c.Nodes {
			if n.Server == nil {
				continue
			}
			before := n.Server.Node().FSM().AppliedIndex()
			if before != target {
				return false
			}
			d, err := n.Server.Store().Digest()
			if err != nil || n.Server.Node().FSM().AppliedIndex() != before {
				return false
			}
			if first == nil {
				first = &d
			} else if *first != d {
				return false
			}
		}
		digest = *first
		return true
	}, "nodes did not converge to identical state within %s", timeout)
	return digest
}
