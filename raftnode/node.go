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
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/zaqar-raft/zaqar/fsm"
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
	cfg    Config
	log    *slog.Logger
	raft   *raft.Raft
	fsm    *fsm.FSM
	store  *store.Store
	logs   logStore
	snaps  *raft.FileSnapshotStore
	trans  *raft.NetworkTransport
	mux    *mux
	server *http.Server
	client *http.Client
	// internalMux routes the node-to-node API; other packages add routes
	// with HandleInternal.
	internalMux *http.ServeMux

	verify verifier

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
// that snapshot first.
func Open(cfg Config, st *store.Store) (*Node, error) {
	cfg.setDefaults()
	if cfg.NodeID == "" {
		return nil, errors.New("raftnode: node id is required")
	}
	dir := filepath.Join(cfg.DataDir, "raft")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("raftnode: create %s: %w", dir, err)
	}
	n := &Node{cfg: cfg, log: cfg.Logger, store: st, closed: make(chan struct{}), internalMux: http.NewServeMux()}
	ok := false
	defer func() {
		if !ok {
			n.closeStores()
		}
	}()

	var err error
	if n.logs, err = openLogStore(dir, cfg.LogStore, cfg.NoFsync); err != nil {
		return nil, err
	}
	hlog := hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.LevelFromString(cfg.RaftLogLevel), Output: os.Stderr})
	n.snaps, err = raft.NewFileSnapshotStoreWithLogger(dir, 2, hlog)
	if err != nil {
		return nil, fmt.Errorf("raftnode: open snapshot store: %w", err)
	}
	if n.fsm, err = fsm.New(st); err != nil {
		return nil, err
	}
	n.fsm.Observe = cfg.ApplyObserver
	n.fsm.OnApply = cfg.OnApply
	n.fsm.ObserveSnapshot = cfg.ObserveSnapshot
	if err := n.catchUpFromSnapshot(); err != nil {
		return nil, err
	}

	ln := cfg.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.RaftAddr); err != nil {
			return nil, fmt.Errorf("raftnode: listen on %s: %w", cfg.RaftAddr, err)
		}
	}
	if cfg.Advertise == "" {
		n.cfg.Advertise = ln.Addr().String()
	}
	n.mux = newMux(ln)
	adv, err := net.ResolveTCPAddr("tcp", n.cfg.Advertise)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("raftnode: advertise address %q: %w", n.cfg.Advertise, err)
	}
	var source net.IP
	if cfg.SourceIP != "" {
		if source = net.ParseIP(cfg.SourceIP); source == nil {
			ln.Close()
			return nil, fmt.Errorf("raftnode: source address %q is not an IP", cfg.SourceIP)
		}
	}
	stream := &raftStream{subListener: n.mux.listener(tagRaft), advertise: adv, source: source}
	internal := n.mux.listener(tagInternal)
	n.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: stream, MaxPool: 8, Timeout: 10 * time.Second, Logger: hlog,
	})
	go n.mux.serve()

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
		n.mux.close()
		return nil, fmt.Errorf("raftnode: inspect raft state: %w", err)
	}
	// The newest entries stay in memory too: the leader reads each entry
	// back to send it to every follower, and without the cache each of
	// those reads is a Bolt transaction.
	logs, err := raft.NewLogCache(logCacheEntries, n.logs)
	if err != nil {
		n.mux.close()
		return nil, fmt.Errorf("raftnode: log cache: %w", err)
	}
	n.raft, err = raft.NewRaft(rc, n.fsm, logs, n.logs, n.snaps, n.trans)
	if err != nil {
		n.mux.close()
		return nil, fmt.Errorf("raftnode: start raft: %w", err)
	}
	if !hasState && len(cfg.Bootstrap) > 0 {
		var conf raft.Configuration
		for _, p := range cfg.Bootstrap {
			conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.Address)})
		}
		if err := n.raft.BootstrapCluster(conf).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			n.raft.Shutdown()
			n.mux.close()
			return nil, fmt.Errorf("raftnode: bootstrap: %w", err)
		}
	}

	n.client = &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return dialTagged(ctx, source, addr, tagInternal)
		},
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
	}}
	n.server = &http.Server{Handler: n.internalHandler(), ReadHeaderTimeout: 10 * time.Second}
	n.bg.Add(1)
	go func() {
		defer n.bg.Done()
		_ = n.server.Serve(internal)
	}()

	if !hasState && len(cfg.Join) > 0 {
		n.bg.Add(1)
		go func() {
			defer n.bg.Done()
			n.joinLoop()
		}()
	}
	ok = true
	n.log.Info("raft node started", "id", cfg.NodeID, "raft_addr", n.cfg.Advertise, "existing_state", hasState)
	return n, nil
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
			err := n.requestJoin(ctx, addr, n.cfg.NodeID, n.cfg.Advertise)
			cancel()
			if err == nil {
				n.log.Info("joined cluster", "via", addr)
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
			if terr := n.HandOver(ctx); terr != nil {
				n.log.Warn("leadership transfer before shutdown failed", "err", terr)
			}
			cancel()
		}
		close(n.closed)
		err = n.raft.Shutdown().Error()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = n.server.Shutdown(ctx)
		cancel()
		n.trans.Close()
		n.mux.close()
		n.bg.Wait()
		n.closeStores()
	})
	return err
}

func (n *Node) closeStores() {
	if n.logs != nil {
		n.logs.Close()
	}
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
