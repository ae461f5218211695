// Package server assembles one node of the service: the Pebble store, the
// Raft node, the service layer, the REST API and the metrics registry. The
// binary and the in-process cluster tests both start nodes through it.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/zaqar-raft/zaqar/auth"
	"github.com/zaqar-raft/zaqar/fsm"
	"github.com/zaqar-raft/zaqar/httpapi"
	"github.com/zaqar-raft/zaqar/internal/bodycrypt"
	"github.com/zaqar-raft/zaqar/internal/tlsconf"
	"github.com/zaqar-raft/zaqar/msgschema"
	"github.com/zaqar-raft/zaqar/notify"
	"github.com/zaqar-raft/zaqar/raftnode"
	"github.com/zaqar-raft/zaqar/service"
	"github.com/zaqar-raft/zaqar/store"
	"github.com/zaqar-raft/zaqar/wsapi"
)

// Config configures one node.
type Config struct {
	NodeID  string
	DataDir string
	APIAddr string // REST listen address
	// APIListener, if set, is used instead of listening on APIAddr (tests
	// bind first so addresses are known).
	APIListener net.Listener
	// Raft configures the node's Raft member: its node port, peers, timeouts,
	// log store and peer TLS. Start fills in NodeID, DataDir, the logger and
	// the observers.
	Raft raftnode.Config

	// WSAddr, if set, is an extra listener that serves the websocket API on
	// any path (upstream Zaqar's separate websocket port). The websocket
	// API is always served on the REST port at "/" too.
	WSAddr string
	// PprofAddr, if set, serves Go's profiler (net/http/pprof) on its own
	// listener; keep it private.
	PprofAddr string
	// CatalogAddrs are node addresses of members of the catalog pool, for
	// the nodes of every other pool (docs/pools.md); nil: this node's group
	// holds the catalog.
	CatalogAddrs []string
	// WS tunes the websocket transport (limits and timeouts).
	WS wsapi.Config
	// Notify configures notification delivery (email relay, workers, the
	// webhook deny list, which the service applies to subscriber URLs too)
	// and Notifications the subscription confirmation flow.
	Notify        notify.Config
	Notifications service.NotificationConfig
	// SubscriberTypes are the subscriber URI schemes clients may subscribe
	// (default service.DefaultSubscriberTypes; empty: none). Start refuses
	// a scheme no registered notification transport serves.
	SubscriberTypes []string

	// Keystone, when its AuthURL is set, turns authentication on.
	Keystone auth.KeystoneConfig
	// PolicyFile lays oslo.policy rules (policy.yaml or policy.json) over
	// the defaults (auth.LoadPolicy).
	PolicyFile string
	// CORS is the REST API's CORS policy (off unless origins are given).
	CORS httpapi.CORSConfig
	// MaxHeaderBytes caps request headers (431 beyond; default 64 KiB).
	MaxHeaderBytes int
	// MaxConcurrentRequests caps REST requests served at once (503 beyond;
	// 0: no cap).
	MaxConcurrentRequests int
	// MaxClaimWaiters bounds the claims waiting for a message on this node
	// (default service.DefaultMaxClaimWaiters); beyond it a claim answers
	// at once. Waiting REST claims count toward MaxConcurrentRequests.
	MaxClaimWaiters int
	// RateLimit limits each project's requests (off by default).
	RateLimit service.RateLimit

	Limits          service.Limits
	SignedURLSecret string
	RequestTimeout  time.Duration
	GCInterval      time.Duration

	// MessageKeys encrypt the bodies of messages of queues with
	// `_enable_encrypt_messages` (nil: no key, and the flag is refused).
	// Every node must hold the same keys.
	MessageKeys *bodycrypt.Keyring

	// CacheBytes is Pebble's block cache (0: the store's default).
	CacheBytes int64

	// TLS, if set, serves the REST and websocket ports over TLS (https://,
	// wss://) with this reloadable certificate; TLSClientAuth says what is
	// asked of client certificates (verified against TLS's CA bundle).
	TLS           *tlsconf.Source
	TLSClientAuth tlsconf.ClientAuth
	// InsecurePeers silences the warning about a plain-text node port on a
	// non-loopback address.
	InsecurePeers bool

	Logger *slog.Logger
}

// Server is one running node.
type Server struct {
	cfg      Config
	log      *slog.Logger
	policy   *auth.Policy
	keystone *auth.Keystone // nil: noauth
	store    *store.Store
	node     *raftnode.Node
	svc      *service.Service
	http     *http.Server
	api      net.Listener
	ws       *wsapi.Server
	notifier *notify.Notifier
	wsHTTP   *http.Server
	pprof    *http.Server
	wsLn     net.Listener
	registry *prometheus.Registry
	// applyHook and claimHook connect the node's FSM to the notifier and
	// to the service's waiting claims, which are built after the node.
	applyHook atomic.Pointer[notify.Notifier]
	claimHook atomic.Pointer[service.Service]

	draining atomic.Bool

	cancel    context.CancelFunc
	bg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// Start opens the node's storage, joins or forms the Raft cluster and
// starts serving the REST API. On error everything it opened is closed
// again.
func Start(cfg Config) (*Server, error) {
	if cfg.NodeID == "" {
		return nil, errors.New("server: node id is required")
	}
	cfg.setDefaults()
	if err := cfg.Limits.Check(); err != nil {
		return nil, fmt.Errorf("server: limits: %w", err)
	}
	if err := notify.NewRegistry(cfg.Notify).CheckSubscriberTypes(cfg.SubscriberTypes); err != nil {
		return nil, fmt.Errorf("server: subscriber types: %w", err)
	}
	if err := cfg.Notify.Email.Check(); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s := &Server{cfg: cfg, log: cfg.Logger.With("node", cfg.NodeID)}
	steps := []struct {
		name string
		run  func() error
	}{
		{"load the policy and Keystone settings", s.loadAuth},
		{"open the store", s.openStore},
		{"open the Raft node", s.openNode},
		{"listen", s.listen},
		{"build the API", s.buildAPI},
	}
	for _, step := range steps {
		if err := step.run(); err != nil {
			s.teardown()
			return nil, fmt.Errorf("server: %s: %w", step.name, err)
		}
	}
	s.serve()
	s.warnIfNodePortOpen()
	s.log.Info("node started", "api", s.APIAddr(), "tls", cfg.TLS != nil, "raft", s.node.Addr(), "peer_tls", cfg.Raft.PeerTLS != nil, "data_dir", cfg.DataDir)
	if cfg.MessageKeys != nil {
		// The id, never the key: operators compare it across nodes.
		s.log.Info("message encryption at rest available", "key_id", cfg.MessageKeys.SealingKeyID().String())
	}
	return s, nil
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if c.Limits == (service.Limits{}) {
		c.Limits = service.DefaultLimits()
	}
	if c.SubscriberTypes == nil {
		c.SubscriberTypes = service.DefaultSubscriberTypes
	}
	if c.MaxHeaderBytes == 0 {
		c.MaxHeaderBytes = 64 << 10
	}
}

func (s *Server) loadAuth() error {
	s.policy = auth.DefaultPolicy()
	if s.cfg.PolicyFile != "" {
		p, notes, err := auth.LoadPolicy(s.cfg.PolicyFile)
		if err != nil {
			return err
		}
		// oslo.policy warns of these and so do we: the file loads, but these
		// rules are most likely misspelt (Unknown) or refer to nothing
		// (Undefined, which then denies unless "default" is defined).
		if len(notes.Unknown) > 0 {
			s.log.Warn("policy file defines rules nothing uses", "file", s.cfg.PolicyFile, "rules", notes.Unknown)
		}
		if len(notes.Undefined) > 0 {
			s.log.Warn("policy rules refer to rules nobody defines", "file", s.cfg.PolicyFile, "rules", notes.Undefined)
		}
		s.policy = p
	}
	if s.cfg.Keystone.AuthURL != "" {
		k, err := auth.NewKeystone(s.cfg.Keystone)
		if err != nil {
			return err
		}
		s.keystone = k
	}
	return nil
}

func (s *Server) openStore() error {
	if err := os.MkdirAll(s.cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	st, err := store.Open(filepath.Join(s.cfg.DataDir, "pebble"), store.Options{CacheBytes: s.cfg.CacheBytes})
	if err != nil {
		return err
	}
	s.store = st
	return nil
}

// openNode opens the Raft member, the notifier and the service over it.
func (s *Server) openNode() error {
	s.registry = prometheus.NewRegistry()
	s.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	nm := newNodeMetrics(s.registry)
	rc := s.cfg.Raft
	rc.NodeID, rc.DataDir, rc.Logger = s.cfg.NodeID, s.cfg.DataDir, s.log
	rc.ApplyObserver, rc.ObserveSnapshot, rc.ObserveCommit = newApplyMetrics(s.registry), nm.snapshot, nm.commit
	rc.OnApply = func(results []*fsm.EntryResult) {
		if n := s.applyHook.Load(); n != nil {
			n.OnApply(results)
		}
		if svc := s.claimHook.Load(); svc != nil {
			svc.OnApply(results)
		}
	}
	node, err := raftnode.Open(rc, s.store)
	if err != nil {
		return err
	}
	s.node = node
	nc := s.cfg.Notify
	nc.Store, nc.Node, nc.Registry, nc.Logger = s.store, s.node, s.registry, s.log.With("component", "notify")
	nc.RequireConfirmation = s.cfg.Notifications.RequireConfirmation
	nc.MessageKeys = s.cfg.MessageKeys
	var trusts service.TrustMaker
	if s.keystone != nil {
		// Trust subscribers deliver with trusts to the service account
		// that validates tokens.
		nc.Trusts, trusts = s.keystone, s.keystone
	}
	s.notifier = notify.New(nc)
	s.node.HandleInternal(s.notifier.PushHandler())
	_, push := s.notifier.PushHandler()
	s.node.PoolHandler(notify.PoolPushRoute, push)
	s.applyHook.Store(s.notifier)
	// The notifier's registry of transports judges subscriber URIs, so a
	// subscription is refused when it is made if its transport would
	// refuse it (a literal address on the deny list, say).
	s.svc = service.New(node, s.store, service.Config{
		Limits: s.cfg.Limits, SignedURLSecret: s.cfg.SignedURLSecret, GCInterval: s.cfg.GCInterval, Logger: s.log,
		Notifications: s.cfg.Notifications, Confirmer: s.notifier, Subscribers: s.notifier.Registry(), SubscriberTypes: s.cfg.SubscriberTypes,
		Policy: s.policy, RateLimit: s.cfg.RateLimit, AuthRequired: s.keystone != nil, MessageKeys: s.cfg.MessageKeys,
		Stages: pipelineStages(), Trusts: trusts, MaxClaimWaiters: s.cfg.MaxClaimWaiters,
		CatalogAddrs: s.cfg.CatalogAddrs,
	})
	node.PoolHandler(service.PoolRouteCatalog, poolRoute(s.svc.ServeCatalog))
	node.PoolHandler(service.PoolRouteQueues, poolRoute(s.svc.ServePoolQueues))
	s.claimHook.Store(s.svc)
	s.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "zaqar_claim_waiters", Help: "Claims waiting for a message on this node (?wait=).",
	}, func() float64 { return float64(s.svc.ClaimWaiters()) }))
	registerNodeMetrics(s.registry, node, s.store)
	return nil
}

// listen binds the REST port (and the extra websocket port, if any), with
// TLS when a certificate is configured.
func (s *Server) listen() error {
	s.api = s.cfg.APIListener
	if s.api == nil {
		ln, err := net.Listen("tcp", s.cfg.APIAddr)
		if err != nil {
			return err
		}
		s.api = ln
	}
	if s.cfg.WSAddr != "" {
		ln, err := net.Listen("tcp", s.cfg.WSAddr)
		if err != nil {
			return err
		}
		s.wsLn = ln
	}
	return nil
}

// buildAPI builds the websocket and REST transports and the HTTP servers
// that carry them.
func (s *Server) buildAPI() error {
	cfg := s.cfg
	wsCfg := cfg.WS
	wsCfg.Service, wsCfg.Registry, wsCfg.Logger, wsCfg.NodeID = s.svc, s.registry, s.log, cfg.NodeID
	wsCfg.PoolRoutes, wsCfg.NodeAddr = s.node.PoolHandler, s.node.Addr()
	if s.keystone != nil {
		wsCfg.Auth = s.keystone
	}
	if wsCfg.RequestTimeout == 0 {
		wsCfg.RequestTimeout = cfg.RequestTimeout
	}
	s.ws = wsapi.New(wsCfg)
	s.notifier.SetPusher(websocketPusher{s.ws})
	restCfg := httpapi.Config{
		Service: s.svc, Cluster: s.node, Registry: s.registry, Logger: s.log, RequestTimeout: cfg.RequestTimeout,
		Digest: s.digest, Operations: s, CORS: cfg.CORS, MaxHeaderBytes: cfg.MaxHeaderBytes, MaxConcurrent: cfg.MaxConcurrentRequests,
		PoolRoutes: s.node.PoolHandler,
	}
	if s.keystone != nil {
		restCfg.Auth = s.keystone
	}
	rest := httpapi.New(restCfg)
	// A websocket upgrade on "/" goes to the websocket API, everything
	// else to REST: ws://HOST:PORT/ beside http://HOST:PORT/.
	root := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" && wsapi.IsUpgrade(r) {
			s.ws.ServeHTTP(w, r)
			return
		}
		rest.ServeHTTP(w, r)
	})
	s.http = &http.Server{
		Handler:           root,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    4 * cfg.MaxHeaderBytes, // the handler answers 431 with a Zaqar body past MaxHeaderBytes
		WriteTimeout:      2 * time.Minute,
	}
	if s.wsLn != nil {
		s.wsHTTP = &http.Server{Handler: s.ws, ReadHeaderTimeout: 10 * time.Second}
	}
	if cfg.TLS != nil {
		// HTTP/2 is offered to REST clients (net/http adds h2 when it
		// serves TLS); websocket clients upgrade over HTTP/1.1.
		s.http.TLSConfig = cfg.TLS.ServerConfig(cfg.TLSClientAuth)
		if s.wsHTTP != nil {
			s.wsHTTP.TLSConfig = cfg.TLS.ServerConfig(cfg.TLSClientAuth)
		}
	}
	if cfg.PprofAddr != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		s.pprof = &http.Server{Addr: cfg.PprofAddr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	}
	return nil
}

// websocketPusher hands the notifier's pushes to this node's websocket
// connections, translating "no such connection" into notify.ErrGone.
type websocketPusher struct{ ws *wsapi.Server }

func (p websocketPusher) PushToConnection(ctx context.Context, connID string, payload []byte) error {
	if err := p.ws.PushToConnection(ctx, connID, payload); err != nil {
		if errors.Is(err, wsapi.ErrNoConnection) {
			return fmt.Errorf("%w: %v", notify.ErrGone, err)
		}
		return err
	}
	return nil
}

// serve starts the background work: the HTTP servers, maintenance, the
// notifier and the TLS file watchers.
func (s *Server) serve() {
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.goServe("REST", s.http, s.api)
	if s.wsHTTP != nil {
		s.goServe("websocket", s.wsHTTP, s.wsLn)
	}
	if s.pprof != nil {
		s.goServe("profiler", s.pprof, nil)
	}
	s.goRun(func() { s.svc.RunMaintenance(ctx) })
	s.goRun(func() { s.notifier.Run(ctx) })
	for _, src := range s.tlsSources() {
		s.goRun(func() { src.Watch(ctx, tlsWatchInterval, s.log) })
	}
}

// tlsWatchInterval is how often the TLS files are checked for changes.
const tlsWatchInterval = 2 * time.Second

func (s *Server) goRun(fn func()) {
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		fn()
	}()
}

// goServe runs srv on ln (on srv.Addr if ln is nil), with TLS when srv has
// a TLS configuration.
func (s *Server) goServe(name string, srv *http.Server, ln net.Listener) {
	s.goRun(func() {
		var err error
		switch {
		case ln == nil:
			err = srv.ListenAndServe()
		case srv.TLSConfig != nil:
			err = srv.ServeTLS(ln, "", "")
		default:
			err = srv.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error(name+" server stopped", "err", err)
		}
	})
}

// tlsSources are the node's reloadable TLS identities.
func (s *Server) tlsSources() []*tlsconf.Source {
	var out []*tlsconf.Source
	for _, src := range []*tlsconf.Source{s.cfg.TLS, s.cfg.Raft.PeerTLS} {
		if src != nil {
			out = append(out, src)
		}
	}
	return out
}

// ReloadTLS reads the REST and peer certificates again if their files
// changed (the binary calls it on SIGHUP; the files are also watched).
// Connections in progress keep the certificate they started with.
func (s *Server) ReloadTLS() error {
	var errs []error
	for _, src := range s.tlsSources() {
		changed, err := src.Reload()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if changed {
			s.log.Info("TLS certificate reloaded", "cert", src.Files().Cert, "subject", src.Subject())
		}
	}
	return errors.Join(errs...)
}

// warnIfNodePortOpen warns loudly when the node port is plain text on an
// address other hosts can reach, unless the operator said it is meant.
func (s *Server) warnIfNodePortOpen() {
	if s.cfg.Raft.PeerTLS != nil || s.cfg.InsecurePeers {
		return
	}
	addr := s.cfg.Raft.RaftAddr
	if s.cfg.Raft.Listener != nil {
		addr = s.cfg.Raft.Listener.Addr().String()
	}
	if host, _, err := net.SplitHostPort(addr); err == nil {
		if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() || host == "localhost" {
			return
		}
	}
	s.log.Warn("!!! THE NODE PORT " + addr + " IS PLAIN TEXT AND UNAUTHENTICATED ON A NON-LOOPBACK ADDRESS: anyone who can reach it can " +
		"write any project's data, change membership and read cluster state. Start every node with -peer-tls-ca, -peer-tls-cert and " +
		"-peer-tls-key (docs/security.md), or pass -insecure-peers if the network is private and this is meant. !!!")
}

// Fatal delivers an error when the node cannot run as configured (for
// example the cluster it should join refuses it); the binary exits.
func (s *Server) Fatal() <-chan error { return s.node.Fatal() }

// APIAddr returns the REST listen address.
func (s *Server) APIAddr() string { return s.api.Addr().String() }

// Node returns the Raft node.
func (s *Server) Node() *raftnode.Node { return s.node }

// Service returns the service layer.
func (s *Server) Service() *service.Service { return s.svc }

// digest returns the applied index and the state digest at it, retrying
// until no entry was applied while the digest was computed.
func (s *Server) digest() (uint64, [32]byte, error) {
	for i := 0; ; i++ {
		before := s.node.FSM().AppliedIndex()
		d, err := s.store.Digest()
		if err != nil {
			return 0, d, err
		}
		if after := s.node.FSM().AppliedIndex(); after == before || i == 20 {
			if after != before {
				return 0, d, errors.New("server: the store kept changing while its digest was computed")
			}
			return before, d, nil
		}
	}
}

// Websocket returns the websocket server (its registry of connections).
func (s *Server) Websocket() *wsapi.Server { return s.ws }

// WSAddr returns the extra websocket listener's address, or "".
func (s *Server) WSAddr() string {
	if s.wsLn == nil {
		return ""
	}
	return s.wsLn.Addr().String()
}

// Store returns the store.
func (s *Server) Store() *store.Store { return s.store }

// Close stops the node gracefully: the REST server stops taking requests
// and finishes those in flight, leadership is handed to another voter, Raft
// shuts down and the store is closed.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.closeErr = s.teardown()
		s.log.Info("node stopped")
	})
	return s.closeErr
}

// teardown stops and closes whatever the server has started or opened, in
// reverse order; each part may be missing (Start failed before it).
func (s *Server) teardown() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if s.svc != nil {
		s.svc.StopWaiting() // the REST server's shutdown waits for them
	}
	if s.ws != nil {
		s.ws.Close()
	}
	for _, srv := range []*http.Server{s.pprof, s.wsHTTP, s.http} {
		if srv != nil {
			_ = srv.Shutdown(ctx)
		}
	}
	// Listeners no server has taken over yet (closing one twice is
	// harmless).
	for _, ln := range []net.Listener{s.api, s.wsLn} {
		if ln != nil {
			_ = ln.Close()
		}
	}
	if s.cancel != nil {
		s.cancel()
	}
	var err error
	if s.node != nil {
		err = s.node.Close()
	}
	s.bg.Wait()
	if s.store != nil {
		if cerr := s.store.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// pipelineStages are the service pipeline's stages, in order (see
// service.Stage; docs/architecture.md shows how to write one). A new
// stage is one package and one line here.
func pipelineStages() []service.Stage {
	return []service.Stage{
		msgschema.New(1024), // per-queue JSON Schema of message bodies
	}
}

// poolRoute serves a service pool route: the request body in, the answer
// out, both JSON.
func poolRoute(serve func(ctx context.Context, body []byte) []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "could not read the request", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(serve(r.Context(), body))
	})
}
