// Package server assembles one node of the service: the Pebble store, the
// Raft node, the service layer, the REST API and the metrics registry. The
// binary and the in-process cluster tests both start nodes through it.
package server

import (
	"context"
	"errors"
	"fmt"
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
	"github.com/zaqar-raft/zaqar/notify"
	"github.com/zaqar-raft/zaqar/raftnode"
	"github.com/zaqar-raft/zaqar/service"
	"github.com/zaqar-raft/zaqar/store"
	"github.com/zaqar-raft/zaqar/wsapi"
)

// Config configures one node.
type Config struct {
	NodeID   string
	DataDir  string
	APIAddr  string // REST listen address
	RaftAddr string // Raft and node-to-node listen address
	// RaftAdvertise is the Raft address other nodes dial (default RaftAddr).
	RaftAdvertise string
	// RaftSourceIP is the local address to dial other nodes from.
	RaftSourceIP string
	Bootstrap    []raftnode.Peer
	Join         []string
	// APIListener and RaftListener, if set, are used instead of listening
	// on the addresses above (tests bind first so addresses are known).
	APIListener  net.Listener
	RaftListener net.Listener

	// WSAddr, if set, is an extra listener that serves the websocket API on
	// any path (upstream Zaqar's separate websocket port). The websocket
	// API is always served on the REST port at "/" too.
	WSAddr string
	// PprofAddr, if set, serves Go's profiler (net/http/pprof) on its own
	// listener; keep it private.
	PprofAddr string
	// WS tunes the websocket transport (limits and timeouts).
	WS wsapi.Config
	// Notify configures notification delivery (email relay, workers, the
	// webhook deny list, which the service applies to subscriber URLs too)
	// and Notifications the subscription confirmation flow.
	Notify        notify.Config
	Notifications service.NotificationConfig

	// Keystone, when its AuthURL is set, turns authentication on.
	Keystone auth.KeystoneConfig
	// PolicyFile overrides the default policy rules (JSON).
	PolicyFile string
	// CORS is the REST API's CORS policy (off unless origins are given).
	CORS httpapi.CORSConfig
	// MaxHeaderBytes caps request headers (431 beyond; default 64 KiB).
	MaxHeaderBytes int
	// MaxConcurrentRequests caps REST requests served at once (503 beyond;
	// 0: no cap).
	MaxConcurrentRequests int
	// RateLimit limits each project's requests (off by default).
	RateLimit service.RateLimit

	Limits          service.Limits
	SignedURLSecret string
	RequestTimeout  time.Duration
	GCInterval      time.Duration

	HeartbeatTimeout  time.Duration
	ElectionTimeout   time.Duration
	SnapshotInterval  time.Duration
	SnapshotThreshold uint64
	TrailingLogs      uint64
	// NoFsync turns off fsync of the Raft log (tests and benchmarks only).
	NoFsync bool
	// RaftLogStore is the Raft log store of a new data directory
	// (raftnode.LogStoreBolt, the default, or raftnode.LogStoreWAL).
	RaftLogStore string
	// CacheBytes is Pebble's block cache (0: the store's default).
	CacheBytes int64

	Logger       *slog.Logger
	RaftLogLevel string
}

// Server is one running node.
type Server struct {
	cfg      Config
	log      *slog.Logger
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

	draining atomic.Bool

	cancel    context.CancelFunc
	bg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// Start opens the node's storage, joins or forms the Raft cluster and
// starts serving the REST API.
func Start(cfg Config) (*Server, error) {
	if cfg.NodeID == "" {
		return nil, errors.New("server: node id is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if cfg.Limits == (service.Limits{}) {
		cfg.Limits = service.DefaultLimits()
	}
	log := cfg.Logger.With("node", cfg.NodeID)
	if cfg.MaxHeaderBytes == 0 {
		cfg.MaxHeaderBytes = 64 << 10
	}
	policy := auth.DefaultPolicy()
	if cfg.PolicyFile != "" {
		p, err := auth.LoadPolicy(cfg.PolicyFile)
		if err != nil {
			return nil, err
		}
		policy = p
	}
	var keystone *auth.Keystone
	if cfg.Keystone.AuthURL != "" {
		k, err := auth.NewKeystone(cfg.Keystone)
		if err != nil {
			return nil, err
		}
		keystone = k
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("server: create data dir: %w", err)
	}
	st, err := store.Open(filepath.Join(cfg.DataDir, "pebble"), store.Options{CacheBytes: cfg.CacheBytes})
	if err != nil {
		return nil, err
	}
	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// The notifier needs the node, and the node's FSM reports applies to
	// the notifier: the hook is connected once both exist.
	var applyHook atomic.Pointer[notify.Notifier]
	nm := newNodeMetrics(registry)
	node, err := raftnode.Open(raftnode.Config{
		NodeID: cfg.NodeID, DataDir: cfg.DataDir, RaftAddr: cfg.RaftAddr, Advertise: cfg.RaftAdvertise, SourceIP: cfg.RaftSourceIP,
		Listener: cfg.RaftListener, Bootstrap: cfg.Bootstrap, Join: cfg.Join,
		HeartbeatTimeout: cfg.HeartbeatTimeout, ElectionTimeout: cfg.ElectionTimeout,
		SnapshotInterval: cfg.SnapshotInterval, SnapshotThreshold: cfg.SnapshotThreshold,
		TrailingLogs: cfg.TrailingLogs, NoFsync: cfg.NoFsync, LogStore: cfg.RaftLogStore,
		Logger: log, RaftLogLevel: cfg.RaftLogLevel, ApplyObserver: newApplyMetrics(registry),
		ObserveSnapshot: nm.snapshot, ObserveCommit: nm.commit,
		OnApply: func(results []*fsm.EntryResult) {
			if n := applyHook.Load(); n != nil {
				n.OnApply(results)
			}
		},
	}, st)
	if err != nil {
		st.Close()
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, store: st, node: node, registry: registry}
	// The service refuses literal subscriber addresses the notifier would
	// refuse to dial.
	notifications := cfg.Notifications
	notifications.DenyCIDRs = cfg.Notify.DenyCIDRs
	s.svc = service.New(node, st, service.Config{
		Limits: cfg.Limits, SignedURLSecret: cfg.SignedURLSecret, GCInterval: cfg.GCInterval, Logger: log,
		Notifications: notifications, Policy: policy, RateLimit: cfg.RateLimit,
	})
	registerNodeMetrics(registry, node, st)

	s.api = cfg.APIListener
	if s.api == nil {
		if s.api, err = net.Listen("tcp", cfg.APIAddr); err != nil {
			node.Close()
			st.Close()
			return nil, fmt.Errorf("server: listen on %s: %w", cfg.APIAddr, err)
		}
	}
	wsCfg := cfg.WS
	wsCfg.Service, wsCfg.Registry, wsCfg.Logger, wsCfg.NodeID = s.svc, registry, log, cfg.NodeID
	if keystone != nil {
		wsCfg.Auth = keystone
	}
	if wsCfg.RequestTimeout == 0 {
		wsCfg.RequestTimeout = cfg.RequestTimeout
	}
	s.ws = wsapi.New(wsCfg)
	nc := cfg.Notify
	nc.Store, nc.Node, nc.Pusher, nc.Registry, nc.Logger = st, node, s.ws, registry, log.With("component", "notify")
	nc.RequireConfirmation = cfg.Notifications.RequireConfirmation
	s.notifier = notify.New(nc)
	s.svc.SetConfirmer(s.notifier)
	node.HandleInternal(s.notifier.PushHandler())
	applyHook.Store(s.notifier)
	restCfg := httpapi.Config{
		Service: s.svc, Cluster: node, Registry: s.registry, Logger: log, RequestTimeout: cfg.RequestTimeout,
		Digest: s.digest, Operations: s, CORS: cfg.CORS, MaxHeaderBytes: cfg.MaxHeaderBytes, MaxConcurrent: cfg.MaxConcurrentRequests,
	}
	if keystone != nil {
		restCfg.Auth = keystone
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
	if cfg.WSAddr != "" {
		if s.wsLn, err = net.Listen("tcp", cfg.WSAddr); err != nil {
			s.api.Close()
			node.Close()
			st.Close()
			return nil, fmt.Errorf("server: listen on %s: %w", cfg.WSAddr, err)
		}
		s.wsHTTP = &http.Server{Handler: s.ws, ReadHeaderTimeout: 10 * time.Second}
	}
	s.http = &http.Server{
		Handler:           root,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    4 * cfg.MaxHeaderBytes, // the handler answers 431 with a Zaqar body past MaxHeaderBytes
		WriteTimeout:      2 * time.Minute,
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.bg.Add(2)
	go func() {
		defer s.bg.Done()
		if err := s.http.Serve(s.api); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("REST server stopped", "err", err)
		}
	}()
	go func() {
		defer s.bg.Done()
		s.svc.RunMaintenance(ctx)
	}()
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		s.notifier.Run(ctx)
	}()
	if cfg.PprofAddr != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		s.pprof = &http.Server{Addr: cfg.PprofAddr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		s.bg.Add(1)
		go func() {
			defer s.bg.Done()
			if err := s.pprof.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("profiler server stopped", "err", err)
			}
		}()
	}
	if s.wsHTTP != nil {
		s.bg.Add(1)
		go func() {
			defer s.bg.Done()
			if err := s.wsHTTP.Serve(s.wsLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("websocket server stopped", "err", err)
			}
		}()
	}
	log.Info("node started", "api", s.api.Addr().String(), "raft", node.Addr(), "data_dir", cfg.DataDir)
	return s, nil
}

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
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.ws.Close()
		if s.pprof != nil {
			_ = s.pprof.Shutdown(ctx)
		}
		if s.wsHTTP != nil {
			_ = s.wsHTTP.Shutdown(ctx)
		}
		_ = s.http.Shutdown(ctx)
		s.cancel()
		if err := s.node.Close(); err != nil {
			s.closeErr = err
		}
		s.bg.Wait()
		if err := s.store.Close(); err != nil && s.closeErr == nil {
			s.closeErr = err
		}
		s.log.Info("node stopped")
	})
	return s.closeErr
}
