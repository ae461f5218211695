package raftnode_test

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

	"github.com/zaqar-raft/zaqar/fsm"
	"github.com/zaqar-raft/zaqar/internal/tlsconf"
	"github.com/zaqar-raft/zaqar/raftnode"
	"github.com/zaqar-raft/zaqar/store"
)

// peerCluster is a cluster of bare Raft members (no REST API): a store on
// disk and a raftnode.Node each, over real TCP on loopback.
type peerCluster struct {
	t      *testing.T
	tlsDir string // "" without peer TLS
	nodes  []*peerNode
	// configure, if set, adjusts each node's configuration.
	configure func(id string, cfg *raftnode.Config)
}

type peerNode struct {
	id    string
	dir   string
	addr  string
	node  *raftnode.Node
	store *store.Store
}

// startPeerCluster starts n voters, with peer TLS from a development CA
// when withTLS is set, and waits for a leader.
func startPeerCluster(t *testing.T, n int, withTLS bool) *peerCluster {
	t.Helper()
	return (&peerCluster{t: t}).startAll(n, withTLS)
}

func (c *peerCluster) startAll(n int, withTLS bool) *peerCluster {
	t := c.t
	t.Helper()
	if withTLS {
		c.tlsDir = t.TempDir()
		var ids []string
		for i := 1; i <= n+2; i++ { // spare certificates for joiners
			ids = append(ids, fmt.Sprintf("node%d", i))
		}
		if err := (tlsconf.DevelopmentSet{Dir: c.tlsDir, Nodes: ids}).Write(); err != nil {
			t.Fatal(err)
		}
	}
	lns := make([]net.Listener, n)
	var peers []raftnode.Peer
	for i := range lns {
		lns[i] = listenLoopback(t)
		peers = append(peers, raftnode.Peer{ID: fmt.Sprintf("node%d", i+1), Address: lns[i].Addr().String()})
	}
	for i, ln := range lns {
		c.start(peers[i].ID, ln, peers, nil, c.peerTLS(peers[i].ID))
	}
	c.leader()
	return c
}

// testLogger discards logs unless ZAQAR_TEST_LOG is set.
func testLogger(id string) *slog.Logger {
	if os.Getenv("ZAQAR_TEST_LOG") == "" {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, nil)).With("node", id)
}

func listenLoopback(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// peerTLS is the identity of the node id from the cluster's CA (nil
// without peer TLS).
func (c *peerCluster) peerTLS(id string) *tlsconf.Source {
	if c.tlsDir == "" {
		return nil
	}
	src, err := tlsconf.Load(c.files(id))
	if err != nil {
		c.t.Fatal(err)
	}
	return src
}

func (c *peerCluster) files(id string) tlsconf.Files {
	return tlsconf.Files{
		Cert: filepath.Join(c.tlsDir, id+".pem"), Key: filepath.Join(c.tlsDir, id+"-key.pem"),
		CA: filepath.Join(c.tlsDir, "ca.pem"),
	}
}

// start opens a node; it is closed when the test ends.
func (c *peerCluster) start(id string, ln net.Listener, bootstrap []raftnode.Peer, join []string, peerTLS *tlsconf.Source) *peerNode {
	c.t.Helper()
	pn := &peerNode{id: id, dir: c.t.TempDir(), addr: ln.Addr().String()}
	c.open(pn, ln, bootstrap, join, peerTLS)
	c.nodes = append(c.nodes, pn)
	c.t.Cleanup(func() { c.stop(pn) })
	return pn
}

// open opens pn's store and node on its directory.
func (c *peerCluster) open(pn *peerNode, ln net.Listener, bootstrap []raftnode.Peer, join []string, peerTLS *tlsconf.Source) {
	c.t.Helper()
	st, err := store.Open(filepath.Join(pn.dir, "pebble"), store.Options{})
	if err != nil {
		c.t.Fatal(err)
	}
	cfg := raftnode.Config{
		NodeID: pn.id, DataDir: pn.dir, Listener: ln, RaftAddr: ln.Addr().String(),
		Bootstrap: bootstrap, Join: join, PeerTLS: peerTLS, NoFsync: true, RaftLogLevel: "off",
		Logger: testLogger(pn.id),
	}
	if c.configure != nil {
		c.configure(pn.id, &cfg)
	}
	node, err := raftnode.Open(cfg, st)
	if err != nil {
		st.Close()
		c.t.Fatalf("open %s: %v", pn.id, err)
	}
	pn.node, pn.store = node, st
}

// stop closes pn's node and store (again is a no-op).
func (c *peerCluster) stop(pn *peerNode) {
	if pn.node != nil {
		_ = pn.node.Close()
		_ = pn.store.Close()
		pn.node, pn.store = nil, nil
	}
}

// restart stops pn and opens it again on its address and data.
func (c *peerCluster) restart(pn *peerNode) {
	c.t.Helper()
	c.stop(pn)
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", pn.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		c.t.Fatalf("restart %s: %v", pn.id, err)
	}
	c.open(pn, ln, nil, nil, c.peerTLS(pn.id))
}

// leader waits for a leader among the nodes.
func (c *peerCluster) leader() *peerNode {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, n := range c.nodes {
			if n.node != nil && n.node.IsLeader() {
				return n
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatal("no leader within 10s")
	return nil
}

// propose commits cmd through node.
func (c *peerCluster) propose(via *peerNode, cmd fsm.Command) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := via.node.Propose(ctx, cmd); err != nil {
		c.t.Fatalf("propose through %s: %v", via.id, err)
	}
}

// state is what a hostile attempt must not change: every node's last log
// index and store digest, after the nodes have converged.
type clusterState struct {
	lastIndex map[string]uint64
	digest    map[string][32]byte
}

func (c *peerCluster) state() clusterState {
	c.t.Helper()
	leader := c.leader()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, n := range c.nodes {
		if err := n.node.ReadBarrier(ctx); err != nil {
			c.t.Fatalf("read barrier on %s: %v", n.id, err)
		}
	}
	s := clusterState{lastIndex: map[string]uint64{}, digest: map[string][32]byte{}}
	for _, n := range c.nodes {
		s.lastIndex[n.id] = n.node.Raft().LastIndex()
		d, err := n.store.Digest()
		if err != nil {
			c.t.Fatal(err)
		}
		s.digest[n.id] = d
	}
	_ = leader
	return s
}

// unchanged fails the test if any node's log gained a command or its
// state changed since before. Entries Raft writes itself (a new leader's
// no-op after an election on a loaded machine) do not count.
func (c *peerCluster) unchanged(before clusterState) {
	c.t.Helper()
	after := c.state()
	for _, n := range c.nodes {
		id := n.id
		added, err := raftnode.CommandsAfter(n.node, before.lastIndex[id])
		if err != nil {
			c.t.Fatalf("%s: %v", id, err)
		}
		if len(added) > 0 {
			c.t.Errorf("%s: commands entered the log at %v (log %d → %d)", id, added, before.lastIndex[id], after.lastIndex[id])
		}
		if after.digest[id] != before.digest[id] {
			c.t.Errorf("%s: the state digest changed", id)
		}
	}
}
