package raftnode_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/zaqar-raft/zaqar/fsm"
	"github.com/zaqar-raft/zaqar/internal/tlsconf"
	"github.com/zaqar-raft/zaqar/raftnode"
)

// victimQueue creates another project's queue that the attacks try to
// delete, and returns the entry that would delete it.
func victimQueue(t *testing.T, c *peerCluster) []byte {
	t.Helper()
	c.propose(c.leader(), &fsm.CreateQueue{Project: "victim", Queue: "payroll"})
	return fsm.EncodeEntry(0, &fsm.DeleteQueue{Project: "victim", Queue: "payroll"})
}

// internalRequest is a raw internal API request as a peer would send it
// after the tag.
func internalRequest(method, path, from string, body []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: node\r\nContent-Length: %d\r\n", method, path, len(body))
	if from != "" {
		fmt.Fprintf(&b, "X-Raftnode-Node: %s\r\n", from)
	}
	b.WriteString("Connection: close\r\n\r\n")
	b.Write(body)
	return b.Bytes()
}

// send writes the tag and payload on conn and returns what comes back
// until the peer closes (or 10 s pass).
func send(t *testing.T, conn net.Conn, tag byte, payload []byte) ([]byte, error) {
	t.Helper()
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write(append([]byte{tag}, payload...)); err != nil {
		return nil, err
	}
	return io.ReadAll(conn)
}

func TestNodePort_PlainTextInternalRequestsAreRefusedBeforeTheyAreRead(t *testing.T) {
	c := startPeerCluster(t, 3, true)
	entry := victimQueue(t, c)
	var pushed atomic.Int32
	for _, n := range c.nodes {
		n.node.HandleInternal("POST /internal/v1/ws-push", http.HandlerFunc(func(http.ResponseWriter, *http.Request) { pushed.Add(1) }))
	}
	before := c.state()
	attacks := []struct{ name, method, path string }{
		{"apply another project's delete", "POST", "/internal/v1/apply"},
		{"join a made-up voter", "POST", "/internal/v1/join"},
		{"push a forged notification", "POST", "/internal/v1/ws-push"},
		{"read the status", "GET", "/internal/v1/status"},
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			body := entry
			if a.path == "/internal/v1/join" {
				body = []byte(`{"id":"evil","address":"127.0.0.1:1"}`)
			}
			for _, n := range c.nodes {
				conn, err := net.Dial("tcp", n.addr)
				if err != nil {
					t.Fatal(err)
				}
				answer, _ := send(t, conn, 'F', internalRequest(a.method, a.path, "node1", body))
				if !bytes.Contains(answer, []byte("426 Upgrade Required")) || !bytes.Contains(answer, []byte("requires mutual TLS")) {
					t.Errorf("%s answered %q, want the plain-text refusal", n.id, answer)
				}
				if bytes.Contains(answer, []byte(`"state"`)) {
					t.Errorf("%s leaked its status in plain text", n.id)
				}
			}
		})
	}
	if pushed.Load() != 0 {
		t.Errorf("a forged push reached the websocket push handler %d times", pushed.Load())
	}
	c.unchanged(before)
	for _, m := range c.leader().node.Members() {
		if m.ID == "evil" {
			t.Fatal("a made-up voter joined")
		}
	}
}

func TestNodePort_PlainTextRaftRPCIsRefused(t *testing.T) {
	c := startPeerCluster(t, 3, true)
	before := c.state()
	leader := c.leader()
	term := leader.node.Raft().CurrentTerm()
	// A vote request with a far higher term would depose the leader if any
	// node read it.
	trans := raft.NewNetworkTransport(&plainTagged{tag: 'R'}, 1, 2*time.Second, io.Discard)
	defer trans.Close()
	for _, n := range c.nodes {
		var resp raft.RequestVoteResponse
		err := trans.RequestVote(raft.ServerID(n.id), raft.ServerAddress(n.addr), &raft.RequestVoteRequest{
			RPCHeader: raft.RPCHeader{ID: []byte("evil"), Addr: []byte("127.0.0.1:1")}, Term: term + 100,
			LastLogIndex: 1 << 40, LastLogTerm: term + 99,
		}, &resp)
		if err == nil {
			t.Errorf("%s answered a plain-text vote request: %+v", n.id, resp)
		}
	}
	if got := leader.node.Raft().CurrentTerm(); got != term {
		t.Fatalf("the term moved from %d to %d", term, got)
	}
	c.unchanged(before)
}

// plainTagged is a raft.StreamLayer that dials in plain text and sends a
// tag, as a node without peer TLS would.
type plainTagged struct{ tag byte }

func (p *plainTagged) Accept() (net.Conn, error) { select {} }
func (p *plainTagged) Close() error              { return nil }
func (p *plainTagged) Addr() net.Addr            { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }
func (p *plainTagged) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", string(addr), timeout)
	if err != nil {
		return nil, err
	}
	_, err = c.Write([]byte{p.tag})
	return c, err
}

func TestNodePort_TLSWithoutAValidNodeCertificateFailsTheHandshake(t *testing.T) {
	c := startPeerCluster(t, 3, true)
	entry := victimQueue(t, c)
	before := c.state()
	pool := x509.NewCertPool()
	caPEM, err := os.ReadFile(filepath.Join(c.tlsDir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(caPEM)

	otherCA := t.TempDir()
	if err := (tlsconf.DevelopmentSet{Dir: otherCA, Nodes: []string{"node2"}}).Write(); err != nil {
		t.Fatal(err)
	}
	foreign, err := tls.LoadX509KeyPair(filepath.Join(otherCA, "node2.pem"), filepath.Join(otherCA, "node2-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	selfCA, err := tlsconf.NewAuthority("node2", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	selfSigned := tls.Certificate{Certificate: [][]byte{selfCA.Cert.Raw}, PrivateKey: selfCA.Key}
	client, err := tls.LoadX509KeyPair(filepath.Join(c.tlsDir, "client.pem"), filepath.Join(c.tlsDir, "client-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]tls.Certificate{
		"no certificate":                   nil,
		"a self-signed certificate":        {selfSigned},
		"a node certificate of another CA": {foreign},
		"a client certificate of the CA":   {client},
	}
	for name, certs := range cases {
		t.Run(name, func(t *testing.T) {
			for _, n := range c.nodes {
				conn, err := tls.Dial("tcp", n.addr, &tls.Config{RootCAs: pool, ServerName: n.id, Certificates: certs})
				if err != nil {
					continue // refused during the handshake
				}
				// With TLS 1.3 the client finishes before the server has
				// judged its certificate: the server's refusal arrives on
				// the first read.
				answer, err := send(t, conn, 'F', internalRequest("POST", "/internal/v1/apply", "node2", entry))
				if err == nil || len(answer) > 0 {
					t.Errorf("%s: the request got an answer (%q, %v)", n.id, answer, err)
				}
			}
		})
	}
	c.unchanged(before)
}

// dialAs opens a mutual TLS connection to addr with the certificate of id
// from the cluster's CA.
func dialAs(t *testing.T, c *peerCluster, id, addr string) *tls.Conn {
	t.Helper()
	src := c.peerTLS(id)
	cfg := src.ClientConfig("", x509.ExtKeyUsageServerAuth)
	conn, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatalf("dial %s as %s: %v", addr, id, err)
	}
	return conn
}

func TestNodePort_AMemberCertificateCannotActAsAnotherNode(t *testing.T) {
	c := startPeerCluster(t, 3, true)
	entry := victimQueue(t, c)
	before := c.state()
	leader := c.leader()

	t.Run("forward as node3 with node2's certificate", func(t *testing.T) {
		answer, _ := send(t, dialAs(t, c, "node2", leader.addr), 'F', internalRequest("POST", "/internal/v1/apply", "node3", entry))
		if !bytes.HasPrefix(answer, []byte("HTTP/1.1 403")) || !bytes.Contains(answer, []byte(`certificate names "node2"`)) {
			t.Errorf("answer %q, want 403 naming the certificate", answer)
		}
	})
	t.Run("join as node4 with node2's certificate", func(t *testing.T) {
		// The address is the attacker's own listener, which presents
		// node2's certificate when the leader checks who listens there.
		ln := listenLoopback(t)
		defer ln.Close()
		go serveTLSAs(t, c, "node2", ln)
		body := []byte(fmt.Sprintf(`{"id":"node4","address":%q}`, ln.Addr().String()))
		answer, _ := send(t, dialAs(t, c, "node2", leader.addr), 'F', internalRequest("POST", "/internal/v1/join", "node2", body))
		if !bytes.HasPrefix(answer, []byte("HTTP/1.1 403")) {
			t.Errorf("answer %q, want 403", answer)
		}
	})
	t.Run("join as node4 with the certificate of node5, which is no member", func(t *testing.T) {
		body := []byte(fmt.Sprintf(`{"id":"node4","address":%q}`, "127.0.0.1:1"))
		answer, _ := send(t, dialAs(t, c, "node5", leader.addr), 'F', internalRequest("POST", "/internal/v1/join", "node5", body))
		if !bytes.HasPrefix(answer, []byte("HTTP/1.1 403")) || !bytes.Contains(answer, []byte("may only join as itself")) {
			t.Errorf("answer %q, want 403", answer)
		}
	})
	t.Run("apply with the certificate of node5, which is no member", func(t *testing.T) {
		answer, _ := send(t, dialAs(t, c, "node5", leader.addr), 'F', internalRequest("POST", "/internal/v1/apply", "node5", entry))
		if !bytes.HasPrefix(answer, []byte("HTTP/1.1 403")) || !bytes.Contains(answer, []byte("not a member")) {
			t.Errorf("answer %q, want 403", answer)
		}
	})
	c.unchanged(before)
	for _, m := range leader.node.Members() {
		if m.ID == "node4" {
			t.Fatal("node4 joined")
		}
	}
}

// serveTLSAs completes TLS handshakes on ln with id's certificate.
func serveTLSAs(t *testing.T, c *peerCluster, id string, ln net.Listener) {
	src := c.peerTLS(id)
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer conn.Close()
			tc := tls.Server(conn, src.ServerConfig(tlsconf.RequireClientCert))
			_ = tc.Handshake()
			_, _ = io.Copy(io.Discard, tc)
		}()
	}
}

func TestNodePort_ANodeWithACertificateFromTheCAJoinsAndServes(t *testing.T) {
	c := startPeerCluster(t, 3, true)
	ln := listenLoopback(t)
	joiner := c.start("node4", ln, nil, []string{c.nodes[1].addr}, c.peerTLS("node4"))
	deadline := time.Now().Add(15 * time.Second)
	for !isVoter(c.leader().node, "node4") {
		if time.Now().After(deadline) {
			t.Fatal("node4 did not become a voter")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// It serves: a write through it is forwarded to the leader over mutual TLS.
	c.propose(joiner, &fsm.CreateQueue{Project: "p", Queue: "through-node4"})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := joiner.node.ReadBarrier(ctx); err != nil {
		t.Fatalf("read barrier on the new node: %v", err)
	}
}

func isVoter(n *raftnode.Node, id string) bool {
	for _, m := range n.Members() {
		if m.ID == id && m.Suffrage == "Voter" {
			return true
		}
	}
	return false
}

func TestNodePort_ANodeWithoutCertificatesCannotJoinATLSClusterAndSaysWhy(t *testing.T) {
	c := startPeerCluster(t, 3, true)
	joiner := c.start("node4", listenLoopback(t), nil, []string{c.nodes[0].addr}, nil)
	select {
	case err := <-joiner.node.Fatal():
		if !errors.Is(err, raftnode.ErrPeerTLSRequired) || !strings.Contains(err.Error(), "-peer-tls-cert") {
			t.Fatalf("fatal error %v, want one naming the peer TLS flags", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the plain-text node neither joined nor gave up")
	}
	if isVoter(c.leader().node, "node4") {
		t.Fatal("the plain-text node joined")
	}
}

func TestNodePort_ACertificateForAnotherNodeIsRefusedAtStart(t *testing.T) {
	c := startPeerCluster(t, 1, true)
	dir := t.TempDir()
	st := c.nodes[0].store
	_, err := raftnode.Open(raftnode.Config{NodeID: "node3", DataDir: dir, Listener: listenLoopback(t), PeerTLS: c.peerTLS("node2")}, st)
	if err == nil || !strings.Contains(err.Error(), `is for "node2"`) {
		t.Fatalf("Open = %v, want a refusal naming the certificate's node", err)
	}
}

func TestNodePort_ARaftTagFollowedBySilenceIsClosed(t *testing.T) {
	for _, withTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("peer TLS %v", withTLS), func(t *testing.T) {
			c := startPeerCluster(t, 1, withTLS)
			var conn net.Conn
			if withTLS {
				conn = dialAs(t, c, "node1", c.nodes[0].addr)
			} else {
				var err error
				if conn, err = net.Dial("tcp", c.nodes[0].addr); err != nil {
					t.Fatal(err)
				}
			}
			defer conn.Close()
			if _, err := conn.Write([]byte{'R'}); err != nil {
				t.Fatal(err)
			}
			_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			_, err := bufio.NewReader(conn).ReadByte()
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("the silent Raft connection is still open after 30 s")
			}
		})
	}
}

func TestNodePort_PlainTextClusterStillWorks(t *testing.T) {
	c := startPeerCluster(t, 3, false)
	for _, n := range c.nodes {
		c.propose(n, &fsm.CreateQueue{Project: "p", Queue: "q-" + n.id})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, n := range c.nodes {
		if err := n.node.ReadBarrier(ctx); err != nil {
			t.Fatalf("read barrier on %s: %v", n.id, err)
		}
	}
}
