// Package wsapi is the websocket transport: Zaqar's websocket API (contract
// §13) on coder/websocket. Each frame is one request; the response goes
// back in the request's encoding (JSON text or MessagePack binary), in
// request order. Every action calls the same service layer as REST, so
// validation, limits, status codes and error texts are shared.
package wsapi

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/zaqar-raft/zaqar/auth"
	"github.com/zaqar-raft/zaqar/internal/ids"
	"github.com/zaqar-raft/zaqar/service"
)

// Config configures the websocket transport.
type Config struct {
	Service *service.Service
	// Registry receives the websocket metrics; nil disables them.
	Registry *prometheus.Registry
	Logger   *slog.Logger
	// Auth validates Keystone tokens for the authenticate action; nil means
	// no authentication (X-Project-ID and X-Roles are trusted).
	Auth auth.Validator
	// NodeID names this node in the addresses of connection subscriptions,
	// so the leader can route notifications to the node holding them.
	NodeID string
	// NodeAddr is this node's node address: with NodeID it names this node
	// to the pools that push to connections subscribed to their queues
	// from here (docs/pools.md).
	NodeAddr string
	// MaxFrameBytes is the largest frame accepted; a bigger one closes the
	// connection with 1009 (default 1 MiB + the message post limit).
	MaxFrameBytes int64
	// MaxInFlight is how many decoded requests may wait for processing per
	// connection; when full, the node stops reading from that client.
	MaxInFlight int
	// PoolRoutes, if set, registers the handler of actions carried from
	// other pools (service.PoolRouteWS) on the node channel.
	PoolRoutes func(name string, h http.Handler)
	// RequestTimeout bounds the work of one request (default 10s).
	RequestTimeout time.Duration
	// WriteTimeout bounds one frame write; a client that does not read
	// for that long is disconnected (default 10s).
	WriteTimeout time.Duration
	// PingInterval is how often the server pings (default 20s); a ping
	// not answered within PongTimeout (default 30s) closes the connection.
	PingInterval time.Duration
	PongTimeout  time.Duration
	// IdleTimeout closes a connection that sent no frame for this long
	// and holds no subscriptions (default 30m; negative disables).
	IdleTimeout time.Duration
}

func (c *Config) setDefaults() {
	if c.MaxFrameBytes == 0 {
		c.MaxFrameBytes = 1<<20 + int64(c.Service.Limits().MaxMessagesPostSize)
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = 32
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 10 * time.Second
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.PingInterval == 0 {
		c.PingInterval = 20 * time.Second
	}
	if c.PongTimeout == 0 {
		c.PongTimeout = 30 * time.Second
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 30 * time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

// Server accepts websocket connections and keeps the registry of the open
// ones (the node-local registry notifications are delivered through).
type Server struct {
	cfg     Config
	svc     *service.Service
	log     *slog.Logger
	metrics *wsMetrics

	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	conns   map[string]*Conn
	closing bool // set by Close; no connection is registered after it
	wg      sync.WaitGroup
}

// New returns a websocket server.
func New(cfg Config) *Server {
	cfg.setDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, svc: cfg.Service, log: cfg.Logger, ctx: ctx, cancel: cancel, conns: map[string]*Conn{}}
	if cfg.Registry != nil {
		s.metrics = newWSMetrics(cfg.Registry, s)
	}
	if cfg.PoolRoutes != nil {
		cfg.PoolRoutes(service.PoolRouteWS, http.HandlerFunc(s.serveCarried))
	}
	return s
}

// IsUpgrade reports whether r asks to switch to the websocket protocol.
func IsUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket") &&
		strings.Contains(strings.ToLower(r.Header.Get("Connection")), "upgrade")
}

// ServeHTTP upgrades the request and serves the connection until it ends.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	closing := s.closing
	s.mu.Unlock()
	if closing {
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return
	}
	// Zaqar clients are not browsers and authenticate per connection, so
	// the Origin check that protects cookie-based sites does not apply.
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		s.log.Debug("websocket upgrade refused", "err", err)
		return
	}
	ws.SetReadLimit(s.cfg.MaxFrameBytes)
	if s.metrics != nil {
		s.metrics.opened.Inc()
	}
	c := &Conn{ID: ids.New(), srv: s, ws: ws, remote: r.RemoteAddr}
	c.lastFrame.Store(time.Now().UnixNano())
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		_ = ws.Close(websocket.StatusGoingAway, "server shutting down")
		return
	}
	s.conns[c.ID] = c
	s.wg.Add(1)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c.ID)
		s.mu.Unlock()
		c.endSubscriptions()
		c.authMu.Lock()
		if c.authTimer != nil {
			c.authTimer.Stop()
		}
		c.authMu.Unlock()
		s.wg.Done()
	}()
	c.serve(s.ctx)
}

// Conn returns the open connection with the given id, if any.
func (s *Server) Conn(id string) (*Conn, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.conns[id]
	return c, ok
}

// OpenConnections returns how many connections are open.
func (s *Server) OpenConnections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Drain closes every connection with 1001 (going away) and refuses new
// ones, without waiting: the node is about to stop serving clients.
func (s *Server) Drain() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing = true
	for _, c := range s.conns {
		c.close(websocket.StatusGoingAway, "server draining")
	}
}

// Close closes every connection with 1001 (going away) and waits for them.
// The connections' contexts are cancelled only afterwards: cancelling a
// read drops the TCP connection at once, before the close frame is sent.
func (s *Server) Close() {
	s.mu.Lock()
	s.closing = true
	for _, c := range s.conns {
		c.close(websocket.StatusGoingAway, "server shutting down")
	}
	s.mu.Unlock()
	s.wg.Wait()
	s.cancel()
}

// Conn is one open websocket connection.
type Conn struct {
	// ID names the connection in the node's registry.
	ID     string
	srv    *Server
	ws     *websocket.Conn
	remote string

	lastFrame     atomic.Int64 // unix ns of the last frame received
	subscriptions connSubscriptions
	notifyEnc     notifyEncoding

	identity  atomic.Pointer[auth.Identity] // set by authenticate (Keystone mode)
	authMu    sync.Mutex
	authTimer *time.Timer
	closeOnce sync.Once
}

type inbound struct {
	enc   Encoding
	frame []byte
}

func (c *Conn) close(code websocket.StatusCode, reason string) {
	c.closeOnce.Do(func() {
		go func() { _ = c.ws.Close(code, reason) }()
	})
}

// serve runs the connection: a reader goroutine decodes nothing, it only
// queues frames (at most MaxInFlight, then it stops reading, which pushes
// back on the client through TCP); this goroutine answers them in order.
func (c *Conn) serve(parent context.Context) {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	cfg := c.srv.cfg
	queue := make(chan inbound, cfg.MaxInFlight)
	go func() {
		defer close(queue)
		for {
			typ, data, err := c.ws.Read(ctx)
			if err != nil {
				if websocket.CloseStatus(err) == -1 && ctx.Err() == nil {
					c.srv.log.Debug("websocket read ended", "conn", c.ID, "err", err)
				}
				cancel()
				return
			}
			c.lastFrame.Store(time.Now().UnixNano())
			enc := JSON
			if typ == websocket.MessageBinary {
				enc = MsgPack
			}
			select {
			case queue <- inbound{enc: enc, frame: data}:
			case <-ctx.Done():
				return
			}
		}
	}()
	go c.keepAlive(ctx)
	for in := range queue {
		resp := c.handle(ctx, in)
		if err := c.write(ctx, in.enc, resp); err != nil {
			c.srv.log.Debug("websocket write failed; closing", "conn", c.ID, "err", err)
			c.close(websocket.StatusPolicyViolation, "client is not reading")
			cancel()
		}
	}
	c.close(websocket.StatusNormalClosure, "")
}

// keepAlive pings the client and enforces the idle timeout.
func (c *Conn) keepAlive(ctx context.Context) {
	cfg := c.srv.cfg
	t := time.NewTicker(cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// Closing ends the reader once the handshake is done, which
		// cancels ctx; cancelling here would drop the connection before
		// the close frame is written.
		if cfg.IdleTimeout > 0 && c.subscriptions.count() == 0 &&
			time.Since(time.Unix(0, c.lastFrame.Load())) > cfg.IdleTimeout {
			c.close(websocket.StatusGoingAway, "idle timeout")
			return
		}
		pctx, pcancel := context.WithTimeout(ctx, cfg.PongTimeout)
		err := c.ws.Ping(pctx)
		pcancel()
		if err != nil && ctx.Err() == nil {
			c.close(websocket.StatusGoingAway, "ping timeout")
			return
		}
	}
}

// write sends one frame with the write timeout.
func (c *Conn) write(ctx context.Context, enc Encoding, doc []byte) error {
	frame, err := encodeFrame(enc, doc)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, c.srv.cfg.WriteTimeout)
	defer cancel()
	typ := websocket.MessageText
	if enc == MsgPack {
		typ = websocket.MessageBinary
	}
	return c.ws.Write(wctx, typ, frame)
}

// Push sends a bare frame (a notification) to the connection.
func (c *Conn) Push(ctx context.Context, enc Encoding, doc []byte) error {
	if err := c.write(ctx, enc, doc); err != nil {
		return err
	}
	if c.srv.metrics != nil {
		c.srv.metrics.out("notification", 0)
	}
	return nil
}
