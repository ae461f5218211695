package raftnode

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/zaqar-raft/zaqar/internal/tlsconf"
)

// Connection tags: the first byte a dialer writes on a node-to-node
// connection (inside TLS when peer TLS is on) says which service it wants,
// so Raft and the internal API share one listening port.
const (
	tagRaft     byte = 'R'
	tagInternal byte = 'F'
)

// handshakeTimeout bounds everything a connection must do before it is
// handed to Raft or the internal API: the TLS handshake, the tag, and for
// Raft the first byte of the first RPC.
const handshakeTimeout = 5 * time.Second

// nodeUsages are the extended key usages a node certificate must allow: it
// serves and dials the node port.
var nodeUsages = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}

// outcomeTLSRequired is the X-Raftnode-Outcome of the answer a node with
// peer TLS gives to a plain-text connection.
const outcomeTLSRequired = "tls-required"

// tlsRequiredAnswer is written, in plain text, to a connection that does
// not start with a TLS handshake on a node with peer TLS, so that a node
// started without certificates says why it cannot join instead of reporting
// a broken connection. Nothing the connection sent is interpreted.
var tlsRequiredAnswer = func() []byte {
	msg := "this node requires mutual TLS on its node port: start the dialling node with -peer-tls-ca, -peer-tls-cert and -peer-tls-key\n"
	return fmt.Appendf(nil, "HTTP/1.1 426 Upgrade Required\r\nConnection: close\r\nContent-Type: text/plain\r\n%s: %s\r\nContent-Length: %d\r\n\r\n%s",
		headerOutcome, outcomeTLSRequired, len(msg), msg)
}()

// mux accepts connections on one listener, authenticates them when peer
// TLS is on, and hands each to the sub-listener named by its tag.
type mux struct {
	ln  net.Listener
	tls *tlsconf.Source // nil: plain text
	// admitRaft says whether a peer (its certificate's name) may open a
	// Raft connection; nil admits everyone (plain text has no names).
	admitRaft func(peer string) bool
	log       *slog.Logger

	mu   sync.Mutex
	subs map[byte]*subListener
	done chan struct{}
	once sync.Once
}

func newMux(ln net.Listener, peerTLS *tlsconf.Source, log *slog.Logger) *mux {
	return &mux{ln: ln, tls: peerTLS, log: log, subs: make(map[byte]*subListener), done: make(chan struct{})}
}

// listener returns the sub-listener for tag. Call before serve.
func (m *mux) listener(tag byte) *subListener {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := &subListener{m: m, conns: make(chan net.Conn, 16), done: make(chan struct{})}
	m.subs[tag] = s
	return s
}

func (m *mux) serve() {
	for {
		c, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		go m.route(c)
	}
}

// route authenticates c (with peer TLS), reads its tag and hands it over.
// Every step runs under handshakeTimeout; a connection that fails one is
// closed without a byte of it reaching Raft or the internal API.
func (m *mux) route(raw net.Conn) {
	_ = raw.SetDeadline(time.Now().Add(handshakeTimeout))
	c, peer, err := m.authenticate(raw)
	if err != nil {
		m.log.Warn("node port: connection refused", "remote", raw.RemoteAddr().String(), "err", err)
		raw.Close()
		return
	}
	var tag [1]byte
	if _, err := io.ReadFull(c, tag[:]); err != nil {
		c.Close()
		return
	}
	m.mu.Lock()
	s := m.subs[tag[0]]
	m.mu.Unlock()
	if s == nil {
		c.Close()
		return
	}
	if tag[0] == tagRaft {
		if m.admitRaft != nil && m.tls != nil && !m.admitRaft(peer) {
			m.log.Warn("node port: Raft connection from a node that is not a member refused", "remote", raw.RemoteAddr().String(), "peer", peer)
			c.Close()
			return
		}
		// A Raft connection is opened to send an RPC at once; one that stays
		// silent is not a peer. After the first byte Raft's own timeouts rule.
		c = &firstReadDeadline{Conn: c}
		_ = c.SetWriteDeadline(time.Time{})
	} else {
		// The internal API's HTTP server sets its own deadlines.
		_ = c.SetDeadline(time.Time{})
	}
	select {
	case s.conns <- c:
	case <-s.done:
		c.Close()
	case <-m.done:
		c.Close()
	}
}

// authenticate runs the TLS handshake when peer TLS is on and returns the
// connection to read the tag from and the peer's name (its certificate's
// common name; "" in plain text). A connection that does not open with a
// TLS handshake is answered in plain text and refused.
func (m *mux) authenticate(raw net.Conn) (net.Conn, string, error) {
	if m.tls == nil {
		return raw, "", nil
	}
	var first [1]byte
	if _, err := io.ReadFull(raw, first[:]); err != nil {
		return nil, "", fmt.Errorf("read: %w", err)
	}
	if !tlsconf.LooksLikeTLS(first[:]) {
		refusePlainText(raw)
		return nil, "", errors.New("plain-text connection on a node with peer TLS")
	}
	tc := tls.Server(&prefixConn{Conn: raw, prefix: first[:]}, m.tls.ServerConfig(tlsconf.RequireClientCert, nodeUsages...))
	if err := tc.Handshake(); err != nil {
		return nil, "", fmt.Errorf("TLS handshake: %w", err)
	}
	return tc, tlsconf.PeerName(tc.ConnectionState().PeerCertificates[0]), nil
}

// refusePlainText answers a plain-text dialler and lets it read the answer
// before the connection closes (closing with its request unread would reset
// the connection and lose the answer). What it sent is discarded unread.
func refusePlainText(c net.Conn) {
	_, _ = c.Write(tlsRequiredAnswer)
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	_, _ = io.Copy(io.Discard, io.LimitReader(c, 64<<10))
}

// prefixConn gives back bytes already read from a connection.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.prefix) > 0 {
		n := copy(b, p.prefix)
		p.prefix = p.prefix[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}

// firstReadDeadline keeps the connection's read deadline until the first
// read returns data, then clears it.
type firstReadDeadline struct {
	net.Conn
	once sync.Once
}

func (f *firstReadDeadline) Read(b []byte) (int, error) {
	n, err := f.Conn.Read(b)
	if n > 0 {
		f.once.Do(func() { _ = f.Conn.SetReadDeadline(time.Time{}) })
	}
	return n, err
}

func (m *mux) close() error {
	var err error
	m.once.Do(func() {
		close(m.done)
		err = m.ln.Close()
	})
	return err
}

// subListener is the net.Listener of one tag.
type subListener struct {
	m     *mux
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (s *subListener) Accept() (net.Conn, error) {
	select {
	case c := <-s.conns:
		return c, nil
	case <-s.done:
		return nil, net.ErrClosed
	case <-s.m.done:
		return nil, net.ErrClosed
	}
}

func (s *subListener) Close() error {
	s.once.Do(func() { close(s.done) })
	return nil
}

func (s *subListener) Addr() net.Addr { return s.m.ln.Addr() }

// raftStream is the raft.StreamLayer over the mux and the node dialer.
type raftStream struct {
	*subListener
	advertise net.Addr
	dialer    *peerDialer
}

var _ raft.StreamLayer = (*raftStream)(nil)

func (r *raftStream) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return r.dialer.dial(ctx, string(address), tagRaft)
}

func (r *raftStream) Addr() net.Addr {
	if r.advertise != nil {
		return r.advertise
	}
	return r.subListener.Addr()
}
