// Package raftnode runs this server's member of the Raft group: it opens the
// log, stable and snapshot stores, wires the FSM, bootstraps or joins the
// cluster, and offers the two things the service needs from consensus:
// Propose (commit commands, forwarding to the leader when this node is a
// follower) and ReadBarrier (make a following read linearizable).
package raftnode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/zaqar-raft/zaqar/fsm"
	"github.com/zaqar-raft/zaqar/internal/tlsconf"
	"github.com/zaqar-raft/zaqar/store"
)

// Sentinel errors callers switch on.
var (
	// ErrNoLeader means no leader could be reached before the deadline; the
	// request had no effect and may be retried.
	ErrNoLeader = errors.New("raftnode: no leader available")
	// ErrUnknownOutcome means the command was handed to Raft but its fate is
	// unknown (leadership was lost or the deadline passed): it may or may not
	// be committed.
	ErrUnknownOutcome = errors.New("raftnode: outcome unknown")
	// ErrUnknownMember means a membership change named no current member.
	ErrUnknownMember = errors.New("raftnode: no such member")
	// ErrShutdown means the node is closing.
	ErrShutdown = errors.New("raftnode: shut down")
)

// Peer names a voter for bootstrapping.
type Peer struct {
	ID      string
	Address string // Raft address (host:port)
}

// Config configures a node.
type Config struct {
	NodeID  string
	DataDir string // the Raft log and snapshots live in DataDir/raft
	// RaftAddr is where the node listens for Raft and internal traffic;
	// Advertise is the address other nodes use (defaults to RaftAddr).
	RaftAddr  string
	Advertise string
	// SourceIP, if set, is the local address this node dials other nodes
	// from (multi-homed hosts; fault-injection tests that tell nodes apart
	// by source address).
	SourceIP string
	// Listener, if set, is used instead of listening on RaftAddr (tests
	// pass pre-bound listeners so addresses are known before start).
	Listener net.Listener
	// Bootstrap lists the initial voters (this node included). A node with
	// no Raft state and a non-empty Bootstrap forms the cluster.
	Bootstrap []Peer
	// Join lists Raft addresses of existing members; a node with no Raft
	// state asks them to add it as a voter.
	Join []string
	// CommandLevel is the highest command type this node reports it can
	// apply (0: fsm.MaxType, what this build knows). Tests set a lower one
	// to stand in for an older build in a mixed-version cluster.
	CommandLevel fsm.Type
	// PeerTLS, if set, is this node's certificate and the CA of its peers:
	// the node port then speaks only mutual TLS, for Raft and the internal
	// API alike, and the certificate's common name must be NodeID. Without
	// it the node port is plain text and trusts whoever reaches it.
	PeerTLS *tlsconf.Source

	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	MaxAppendEntries   int
	SnapshotInterval   time.Duration
	SnapshotThreshold  uint64
	TrailingLogs       uint64
	// NoFsync disables fsync of the Raft log (tests and benchmarks only;
	// bolt log store only).
	NoFsync bool
	// LogStore is the Raft log store of a new data directory, LogStoreBolt
	// (the default) or LogStoreWAL; an existing directory must hold the
	// same kind.
	LogStore string

	// ApplyObserver, if set, receives the size and duration of every batch
	// the FSM applies.
	ApplyObserver func(entries int, d time.Duration)
	// OnApply, if set, receives the results of every applied batch (see
	// fsm.FSM.OnApply).
	OnApply func(results []*fsm.EntryResult)
	// ObserveSnapshot, if set, receives each persisted snapshot's size and
	// streaming time; ObserveCommit the time from proposal to applied
	// result of each entry this node leads, and whether it succeeded.
	ObserveSnapshot func(bytes int64, d time.Duration)
	ObserveCommit   func(d time.Duration, ok bool)

	Logger *slog.Logger
	// RaftLogLevel is hashicorp/raft's own log level (default "warn").
	RaftLogLevel string
}

func (c *Config) setDefaults() {
	if c.HeartbeatTimeout == 0 {
		c.HeartbeatTimeout = 500 * time.Millisecond
	}
	if c.ElectionTimeout == 0 {
		c.ElectionTimeout = 500 * time.Millisecond
	}
	if c.LeaderLeaseTimeout == 0 {
		c.LeaderLeaseTimeout = c.HeartbeatTimeout / 2
	}
	if c.CommitTimeout == 0 {
		c.CommitTimeout = 20 * time.Millisecond
	}
	if c.MaxAppendEntries == 0 {
		c.MaxAppendEntries = 256
	}
	if c.SnapshotInterval == 0 {
		c.SnapshotInterval = 60 * time.Second
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = 16384
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = 10240
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.RaftLogLevel == "" {
		c.RaftLogLevel = "warn"
	}
	if c.Advertise == "" {
		c.Advertise = c.RaftAddr
	}
}

// Node is this server's Raft member.
type Node struct {
	cfg   Config
	log   *slog.Logger
	raft  *raft.Raft
	fsm   *fsm.FSM
	store *store.Store
	logs  logStore
	snaps *raft.FileSnapshotStore
	trans *raft.NetworkTransport
	mux   *mux
	// internal serves the node-to-node API; internalMux routes it and
	// other packages add routes with HandleInternal.
	internal    *http.Server
	internalMux *http.ServeMux
	// dialer and peerHTTP are the one node-to-node client (peer.go).
	dialer   *peerDialer
	peerHTTP *http.Client
	// liveRaft is raft for the code that runs on connections (admission,
	// dial checks), which can start before Open has set the raft field.
	liveRaft atomic.Pointer[raft.Raft]

	verify verifier
	gate   commandGate

	// existingState: the node had Raft state when it opened (so it neither
	// bootstraps nor joins).
	existingState bool

	// fatal receives an error that stops this node from ever joining (its
	// peers refuse it for good); Fatal exposes it.
	fatal chan error

	closeOnce sync.Once
	closed    chan struct{}
	bg        sync.WaitGroup
}

// logCacheEntries is how many of the newest log entries are kept in memory
// for replication: one full AppendEntries batch (MaxAppendEntries). Typical
// entries are a few KiB; at the default post size limit the cache holds at
// most 64 MiB.
const logCacheEntries = 256

// Open starts the node over st. The FSM resumes from the index st has
// applied; if st is behind the newest snapshot's data it is restored from
// that snapshot first. st stays the caller's to close.
func Open(cfg Config, st *store.Store) (*Node, error) {
	cfg.setDefaults()
	if err := cfg.check(); err != nil {
		return nil, err
	}
	n := &Node{
		cfg: cfg, log: cfg.Logger, store: st, closed: make(chan struct{}),
		internalMux: http.NewServeMux(), fatal: make(chan error, 1),
	}
	hlog := hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.LevelFromString(cfg.RaftLogLevel), Output: os.Stderr})
	steps := []struct {
		name string
		run  func() error
	}{
		{"open the log and snapshot stores", func() error { return n.openStores(hlog) }},
		{"catch up from the newest snapshot", n.catchUpFromSnapshot},
		{"listen on the node port", func() error { return n.listen(hlog) }},
		{"start raft", func() error { return n.startRaft(hlog) }},
		{"serve the node port", n.serve},
	}
	for _, step := range steps {
		if err := step.run(); err != nil {
			_ = n.teardown()
			return nil, fmt.Errorf("raftnode: %s: %w", step.name, err)
		}
	}
	n.startJoin()
	n.log.Info("raft node started", "id", cfg.NodeID, "raft_addr", n.cfg.Advertise, "existing_state", n.existingState, "peer_tls", cfg.PeerTLS != nil)
	return n, nil
}

// check refuses configurations that cannot work.
func (c *Config) check() error {
	if c.NodeID == "" {
		return errors.New("raftnode: node id is required")
	}
	if c.PeerTLS != nil {
		if c.PeerTLS.Certificate() == nil {
			return errors.New("raftnode: peer TLS needs this node's certificate and key")
		}
		if name := c.PeerTLS.Name(); name != c.NodeID {
			return fmt.Errorf("raftnode: the peer certificate is for %q, but this node is %q (its common name must be the node id)", name, c.NodeID)
		}
	}
	return nil
}

// openStores opens the log store and the snapshot store under
// DataDir/raft and the FSM over the store.
func (n *Node) openStores(hlog hclog.Logger) error {
	dir := filepath.Join(n.cfg.DataDir, "raft")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	var err error
	if n.logs, err = openLogStore(dir, n.cfg.LogStore, n.cfg.NoFsync); err != nil {
		return err
	}
	if n.snaps, err = raft.NewFileSnapshotStoreWithLogger(dir, 2, hlog); err != nil {
		return fmt.Errorf("open snapshot store: %w", err)
	}
	if n.fsm, err = fsm.New(n.store); err != nil {
		return err
	}
	n.fsm.Observe = n.cfg.ApplyObserver
	n.fsm.OnApply = n.cfg.OnApply
	n.fsm.ObserveSnapshot = n.cfg.ObserveSnapshot
	return nil
}

// listen binds the node port (unless a listener was given) and builds the
// mux, the dialer and the Raft transport over them. Nothing is accepted
// until serve.
func (n *Node) listen(hlog hclog.Logger) error {
	ln := n.cfg.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", n.cfg.RaftAddr); err != nil {
			return err
		}
	}
	n.mux = newMux(ln, n.cfg.PeerTLS, n.log)
	n.mux.admitRaft = n.admits
	if n.cfg.Advertise == "" {
		n.cfg.Advertise = ln.Addr().String()
	}
	adv, err := net.ResolveTCPAddr("tcp", n.cfg.Advertise)
	if err != nil {
		return fmt.Errorf("advertise address %q: %w", n.cfg.Advertise, err)
	}
	n.dialer = &peerDialer{tls: n.cfg.PeerTLS, expect: n.memberAt}
	if n.cfg.SourceIP != "" {
		if n.dialer.source = net.ParseIP(n.cfg.SourceIP); n.dialer.source == nil {
			return fmt.Errorf("source address %q is not an IP", n.cfg.SourceIP)
		}
	}
	n.peerHTTP = newPeerHTTP(n.dialer)
	stream := &raftStream{subListener: n.mux.listener(tagRaft), advertise: adv, dialer: n.dialer}
	n.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: stream, MaxPool: 8, Timeout: 10 * time.Second, Logger: hlog,
	})
	return nil
}

// startRaft creates the Raft instance and, on a node with no state and a
// bootstrap list, bootstraps the cluster.
func (n *Node) startRaft(hlog hclog.Logger) error {
	cfg := n.cfg
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.CommitTimeout = cfg.CommitTimeout
	rc.MaxAppendEntries = cfg.MaxAppendEntries
	rc.BatchApplyCh = true
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.TrailingLogs = cfg.TrailingLogs
	rc.NoSnapshotRestoreOnStart = true
	rc.NoLegacyTelemetry = true
	rc.Logger = hlog

	hasState, err := raft.HasExistingState(n.logs, n.logs, n.snaps)
	if err != nil {
		return fmt.Errorf("inspect raft state: %w", err)
	}
	n.existingState = hasState
	// The newest entries stay in memory too: the leader reads each entry
	// back to send it to every follower, and without the cache each of
	// those reads is a Bolt transaction.
	logs, err := raft.NewLogCache(logCacheEntries, n.logs)
	if err != nil {
		return fmt.Errorf("log cache: %w", err)
	}
	if n.raft, err = raft.NewRaft(rc, n.fsm, logs, n.logs, n.snaps, n.trans); err != nil {
		return err
	}
	n.liveRaft.Store(n.raft)
	if hasState || len(cfg.Bootstrap) == 0 {
		return nil
	}
	var conf raft.Configuration
	for _, p := range cfg.Bootstrap {
		conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.Address)})
	}
	if err := n.raft.BootstrapCluster(conf).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		return fmt.Errorf("bootstrap: %w", err)
	}
	return nil
}

// serve starts accepting node-to-node connections and serving the
// internal API.
func (n *Node) serve() error {
	n.internal = &http.Server{
		Handler:           n.internalHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	internal := n.mux.listener(tagInternal)
	n.bg.Add(3)
	go func() {
		defer n.bg.Done()
		n.pollLevels()
	}()
	go func() {
		defer n.bg.Done()
		n.mux.serve()
	}()
	go func() {
		defer n.bg.Done()
		_ = n.internal.Serve(internal)
	}()
	return nil
}

// startJoin asks the -join addresses to add this node, in the background,
// when the node has no Raft state of its own.
func (n *Node) startJoin() {
	if n.existingState || len(n.cfg.Join) == 0 {
		return
	}
	n.bg.Add(1)
	go func() {
		defer n.bg.Done()
		n.joinLoop()
	}()
}

// teardown releases whatever Open or the node's life acquired, in reverse
// order; each part may be missing (Open failed before it).
func (n *Node) teardown() error {
	var err error
	if n.raft != nil {
		err = n.raft.Shutdown().Error()
	}
	if n.internal != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = n.internal.Shutdown(ctx)
		cancel()
	}
	if n.trans != nil {
		n.trans.Close()
	}
	if n.mux != nil {
		n.mux.close()
	} else if n.cfg.Listener != nil {
		n.cfg.Listener.Close()
	}
	n.bg.Wait()
	if n.logs != nil {
		if cerr := n.logs.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// catchUpFromSnapshot restores the store from the newest snapshot when the
// store holds less than that snapshot (e.g. Pebble lost unsynced writes that
// a crash cut off, or the data directory was replaced).
func (n *Node) catchUpFromSnapshot() error {
	metas, err := n.snaps.List()
	if err != nil {
		return fmt.Errorf("raftnode: list snapshots: %w", err)
	}
	// Newest first; a snapshot that cannot be read is skipped for the next
	// one, as Raft itself does on start.
	for _, meta := range metas {
		_, rc, err := n.snaps.Open(meta.ID)
		if err != nil {
			n.log.Warn("cannot open snapshot; trying an older one", "id", meta.ID, "err", err)
			continue
		}
		snapApplied, err := store.ReadSnapshotHeader(rc)
		rc.Close()
		if err != nil {
			n.log.Warn("cannot read snapshot; trying an older one", "id", meta.ID, "err", err)
			continue
		}
		if n.fsm.AppliedIndex() >= snapApplied {
			return nil
		}
		n.log.Warn("store is behind the newest snapshot; restoring it", "store_applied", n.fsm.AppliedIndex(), "snapshot_applied", snapApplied, "snapshot", meta.ID)
		if _, rc, err = n.snaps.Open(meta.ID); err != nil {
			return fmt.Errorf("raftnode: open snapshot %s: %w", meta.ID, err)
		}
		return n.fsm.Restore(rc)
	}
	return nil
}

func (n *Node) joinLoop() {
	backoff := 200 * time.Millisecond
	for {
		for _, addr := range n.cfg.Join {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := n.callAdmin(ctx, addr, pathJoin, joinRequest{ID: n.cfg.NodeID, Address: n.cfg.Advertise})
			cancel()
			switch {
			case err == nil:
				n.log.Info("joined cluster", "via", addr)
				return
			case errors.Is(err, ErrPeerTLSRequired), errors.Is(err, ErrPeerRefused):
				// The cluster refuses this node as it is configured;
				// asking again changes nothing.
				n.log.Error("the cluster refuses this node; it will not join", "via", addr, "err", err)
				n.fatal <- fmt.Errorf("raftnode: join through %s: %w", addr, err)
				return
			}
			n.log.Warn("join attempt failed", "via", addr, "err", err)
		}
		select {
		case <-n.closed:
			return
		case <-time.After(backoff):
		}
		if backoff < 5*time.Second {
			backoff *= 2
		}
	}
}

// Fatal delivers an error when the node can never become a member as
// configured (for example its -join cluster requires peer TLS and this node
// has none); the caller should stop it and report the error.
func (n *Node) Fatal() <-chan error { return n.fatal }

// FSM returns the node's state machine.
func (n *Node) FSM() *fsm.FSM { return n.fsm }

// Raft exposes the underlying Raft instance for metrics and tests.
func (n *Node) Raft() *raft.Raft { return n.raft }

// ID returns this node's id.
func (n *Node) ID() string { return n.cfg.NodeID }

// Addr returns the Raft address this node advertises.
func (n *Node) Addr() string { return n.cfg.Advertise }

// IsLeader reports whether this node is the leader right now.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Leader returns the current leader's id and Raft address, if known.
func (n *Node) Leader() (id, addr string) {
	a, i := n.raft.LeaderWithID()
	return string(i), string(a)
}

// WaitForLeader blocks until some leader is known or ctx ends.
func (n *Node) WaitForLeader(ctx context.Context) error {
	for {
		if _, addr := n.Leader(); addr != "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %v", ErrNoLeader, ctx.Err())
		case <-n.closed:
			return ErrShutdown
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Close leaves the cluster's leadership gracefully (handing it to another
// voter first if this node leads) and shuts the node down. It does not close
// the store.
func (n *Node) Close() error {
	var err error
	n.closeOnce.Do(func() {
		if n.IsLeader() && n.voters() > 1 {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := n.HandOver(ctx); err != nil {
				n.log.Warn("leadership transfer before shutdown failed", "err", err)
			}
			cancel()
		}
		close(n.closed)
		err = n.teardown()
	})
	return err
}

func (n *Node) voters() int {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return 0
	}
	v := 0
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			v++
		}
	}
	return v
}

// ParsePeers parses "id=host:port,id=host:port". Every id and every
// address must be distinct.
func ParsePeers(s string) ([]Peer, error) {
	var out []Peer
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, addr, ok := strings.Cut(part, "=")
		if !ok || id == "" || addr == "" {
			return nil, fmt.Errorf("raftnode: peer %q is not id=host:port", part)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("raftnode: peer %q: %w", part, err)
		}
		if seen["id "+id] || seen["addr "+addr] {
			return nil, fmt.Errorf("raftnode: peer %q repeats an id or an address", part)
		}
		seen["id "+id], seen["addr "+addr] = true, true
		out = append(out, Peer{ID: id, Address: addr})
	}
	return out, nil
}
