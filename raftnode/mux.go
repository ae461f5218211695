package raftnode

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Connection tags: the first byte a dialer writes on a node-to-node
// connection says which service it wants, so Raft and the internal
// forwarding API share one listening port.
const (
	tagRaft     byte = 'R'
	tagInternal byte = 'F'
)

// mux accepts connections on one listener and hands each to the
// sub-listener named by its first byte.
type mux struct {
	ln   net.Listener
	mu   sync.Mutex
	subs map[byte]*subListener
	done chan struct{}
	once sync.Once
}

func newMux(ln net.Listener) *mux {
	return &mux{ln: ln, subs: make(map[byte]*subListener), done: make(chan struct{})}
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

func (m *mux) route(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var tag [1]byte
	if _, err := c.Read(tag[:]); err != nil {
		c.Close()
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	m.mu.Lock()
	s := m.subs[tag[0]]
	m.mu.Unlock()
	if s == nil {
		c.Close()
		return
	}
	select {
	case s.conns <- c:
	case <-s.done:
		c.Close()
	case <-m.done:
		c.Close()
	}
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

// dialTagged connects to a node's Raft address from source (nil: the
// system's choice) and announces tag.
func dialTagged(ctx context.Context, source net.IP, addr string, tag byte) (net.Conn, error) {
	var d net.Dialer
	if source != nil {
		d.LocalAddr = &net.TCPAddr{IP: source}
	}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if _, err := c.Write([]byte{tag}); err != nil {
		c.Close()
		return nil, fmt.Errorf("raftnode: announce connection to %s: %w", addr, err)
	}
	return c, nil
}

// raftStream is the raft.StreamLayer over the mux.
type raftStream struct {
	*subListener
	advertise net.Addr
	source    net.IP
}

var _ raft.StreamLayer = (*raftStream)(nil)

func (r *raftStream) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return dialTagged(ctx, r.source, string(address), tagRaft)
}

func (r *raftStream) Addr() net.Addr {
	if r.advertise != nil {
		return r.advertise
	}
	return r.subListener.Addr()
}
