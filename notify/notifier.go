// Package notify delivers notifications of posted messages to the
// subscriptions of their queue or topic: webhooks (trust+http(s) ones
// with a Keystone trust's token), email and websocket connections
// (contract §10). Delivery runs on the leader only. What has
// been handled is recorded through the Raft log as per-subscription cursors
// (fsm.AdvanceCursors), so a new leader resumes where the old one stopped:
// every notification is delivered at least once, never silently skipped.
package notify

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zaqar-raft/zaqar/fsm"
	"github.com/zaqar-raft/zaqar/internal/bodycrypt"
	"github.com/zaqar-raft/zaqar/store"
)

// Node is what the notifier needs from the Raft node.
type Node interface {
	Propose(ctx context.Context, cmds ...fsm.Command) (*fsm.EntryResult, error)
	IsLeader() bool
	ID() string
	// PostToNode calls another member's internal API; an error wrapping
	// raftnode.ErrNoSuchNode means no member has that id.
	PostToNode(ctx context.Context, id, path string, body []byte) (int, []byte, error)
	// Addr is this node's node address.
	Addr() string
	// CallGroup calls a pool route on a node of any pool (docs/pools.md).
	CallGroup(ctx context.Context, addrs []string, start int, path string, body []byte) (int, []byte, error)
}

// Pusher delivers a frame to a websocket connection held by this node.
type Pusher interface {
	// PushToConnection sends payload to the connection; ErrGone if it is
	// not open on this node.
	PushToConnection(ctx context.Context, connID string, payload []byte) error
}

// Config configures a Notifier.
type Config struct {
	Store *store.Store
	Node  Node
	// Workers bounds deliveries in progress on the node (default 10);
	// PerSubscriber bounds them per subscription (default 4).
	Workers       int
	PerSubscriber int
	// FlushInterval is how often delivery progress is proposed (default
	// 200ms): the most a new leader re-delivers is what completed since.
	FlushInterval time.Duration
	// AttemptTimeout bounds one delivery attempt (default 10s).
	AttemptTimeout time.Duration
	// DenyCIDRs are address ranges no webhook is sent to, on top of the
	// always-refused link-local and unspecified ones (CheckAddress). The
	// address checked is the one each connection dials, after name
	// resolution and on every redirect.
	DenyCIDRs []netip.Prefix
	Email     EmailConfig
	// Trusts issues and deletes the Keystone trusts of trust+http(s)
	// subscribers; nil (no Keystone) refuses such subscribers.
	Trusts Trusts
	// RequireConfirmation withholds notifications from unconfirmed
	// subscriptions.
	RequireConfirmation bool
	// MessageKeys open the bodies of messages of encrypted queues, which
	// the store holds sealed in the notification payloads (nil: no key;
	// such notifications are then not delivered by this node).
	MessageKeys *bodycrypt.Keyring
	Registry    *prometheus.Registry
	Logger      *slog.Logger
}

// Notifier delivers notifications while this node leads.
type Notifier struct {
	cfg      Config
	log      *slog.Logger
	metrics  *metrics
	registry *Registry
	// websocket is the registry's websocket transport, which receives the
	// node's connections late (SetPusher).
	websocket *websocketDeliverer
	// trust is the registry's trust transport, which the leader also asks
	// to delete the trusts no subscription holds (retire.go).
	trust  *trustDeliverer
	global chan struct{} // semaphore of Workers
	// cleaning is set while a deletion of retired trusts runs.
	cleaning atomic.Bool

	mu      sync.Mutex
	workers map[subKey]*worker
	byQueue map[queueKey]map[subKey]*worker
	leading bool

	resync chan struct{}
}

type queueKey struct{ project, queue string }

type subKey struct {
	queueKey
	id string
}

// New returns a notifier; Run starts it.
func New(cfg Config) *Notifier {
	if cfg.Workers <= 0 {
		cfg.Workers = 10
	}
	if cfg.PerSubscriber <= 0 {
		cfg.PerSubscriber = 4
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = 200 * time.Millisecond
	}
	if cfg.AttemptTimeout <= 0 {
		cfg.AttemptTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = discardLogger()
	}
	n := &Notifier{
		cfg: cfg, log: cfg.Logger, registry: NewRegistry(cfg), global: make(chan struct{}, cfg.Workers),
		workers: map[subKey]*worker{}, byQueue: map[queueKey]map[subKey]*worker{},
		resync: make(chan struct{}, 1),
	}
	n.websocket = n.registry.byScheme[WebsocketScheme].(*websocketDeliverer)
	n.trust = n.registry.byScheme["trust+http"].(*trustDeliverer)
	n.metrics = newMetrics(cfg.Registry, n)
	n.trust.stopped = func(reason string) { n.metrics.trustStops.WithLabelValues(reason).Inc() }
	return n
}

// OnApply is the FSM hook: it wakes the workers of queues that received
// messages and resynchronises when subscriptions may have changed. It runs
// on Raft's FSM goroutine and never blocks.
func (n *Notifier) OnApply(results []*fsm.EntryResult) {
	resync := false
	for _, r := range results {
		for i, c := range r.Commands {
			switch cmd := c.(type) {
			case *fsm.PostMessages:
				n.wakeQueue(queueKey{cmd.Project, cmd.Queue})
			case *fsm.Subscribe, *fsm.SubscribeLong, *fsm.UpdateSubscription, *fsm.UpdateSubscriptionLong,
				*fsm.DeleteSubscription, *fsm.ConfirmSubscription, *fsm.DeleteQueue, *fsm.PurgeQueue, *fsm.HoldTrust:
				resync = true
			case *fsm.CollectGarbage:
				resync = resync || (i < len(r.Results) && r.Results[i].Count > 0)
			}
		}
	}
	if resync {
		select {
		case n.resync <- struct{}{}:
		default:
		}
	}
}

func (n *Notifier) wakeQueue(q queueKey) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, w := range n.byQueue[q] {
		w.wakeup()
	}
}

// Run delivers notifications whenever this node is the leader, until ctx
// ends.
func (n *Notifier) Run(ctx context.Context) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n.cfg.Node.IsLeader() {
			n.lead(ctx)
		}
	}
}

// lead runs the workers for as long as this node stays leader.
func (n *Notifier) lead(parent context.Context) {
	ctx, cancel := context.WithCancel(parent)
	n.mu.Lock()
	n.leading = true
	n.mu.Unlock()
	defer func() {
		cancel()
		n.stopAll()
	}()
	n.log.Info("notifier started: this node leads")
	n.sync(ctx)
	n.cleanTrusts(ctx)
	flush := time.NewTicker(n.cfg.FlushInterval)
	defer flush.Stop()
	check := time.NewTicker(100 * time.Millisecond)
	defer check.Stop()
	safety := time.NewTicker(10 * time.Second)
	defer safety.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.resync:
			n.sync(ctx)
			n.cleanTrusts(ctx)
		case <-safety.C:
			n.sync(ctx)
			n.cleanTrusts(ctx)
		case <-flush.C:
			n.flush(ctx)
		case <-check.C:
			if !n.cfg.Node.IsLeader() {
				n.log.Info("notifier stopped: leadership lost")
				return
			}
		}
	}
}

// sync reconciles the workers with the subscriptions in the store.
func (n *Notifier) sync(ctx context.Context) {
	v := n.cfg.Store.View()
	subs, err := v.Subscribers("", "", time.Now().UnixNano())
	policies := map[queueKey][]byte{}
	for _, s := range subs {
		q := queueKey{s.Project, s.Source}
		if _, ok := policies[q]; ok {
			continue
		}
		policies[q] = nil
		if qr, err := v.Queue(s.Project, s.Source); err == nil && qr != nil {
			var meta map[string]json.RawMessage
			if json.Unmarshal(qr.Metadata, &meta) == nil {
				policies[q] = meta["_retry_policy"]
			}
		}
	}
	v.Close()
	if err != nil {
		n.log.Warn("notifier cannot read subscriptions", "err", err)
		return
	}
	live := map[subKey]bool{}
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, s := range subs {
		k := subKey{queueKey{s.Project, s.Source}, s.ID}
		live[k] = true
		if w, ok := n.workers[k]; ok {
			w.update(s.Subscription, policies[k.queueKey])
			continue
		}
		w := newWorker(n, k, s, policies[k.queueKey])
		n.workers[k] = w
		if n.byQueue[k.queueKey] == nil {
			n.byQueue[k.queueKey] = map[subKey]*worker{}
		}
		n.byQueue[k.queueKey][k] = w
		go w.run(ctx)
	}
	for k, w := range n.workers {
		if !live[k] {
			w.stop()
			n.remove(k)
		}
	}
}

func (n *Notifier) remove(k subKey) {
	delete(n.workers, k)
	if m := n.byQueue[k.queueKey]; m != nil {
		delete(m, k)
		if len(m) == 0 {
			delete(n.byQueue, k.queueKey)
		}
	}
}

func (n *Notifier) stopAll() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for k, w := range n.workers {
		w.stop()
		n.remove(k)
	}
	n.leading = false
}

// flush proposes the cursors that moved since the last flush.
func (n *Notifier) flush(ctx context.Context) {
	n.mu.Lock()
	var adv []struct {
		w   *worker
		seq uint64
	}
	var cmd fsm.AdvanceCursors
	for k, w := range n.workers {
		if seq, ok := w.progress(); ok {
			adv = append(adv, struct {
				w   *worker
				seq uint64
			}{w, seq})
			cmd.Advances = append(cmd.Advances, store.CursorAdvance{Project: k.project, Queue: k.queue, ID: k.id, Seq: seq})
		}
	}
	n.mu.Unlock()
	if len(cmd.Advances) == 0 || !n.cfg.Node.IsLeader() {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := n.cfg.Node.Propose(pctx, &cmd); err != nil {
		n.log.Warn("could not record delivery progress", "err", err)
		return
	}
	for _, a := range adv {
		a.w.proposed(a.seq)
	}
}

// SubscriptionCount returns how many subscriptions this node is delivering
// to (zero on followers).
func (n *Notifier) SubscriptionCount() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.workers)
}

// attempt makes one delivery attempt of payload to sub through its
// scheme's deliverer.
func (n *Notifier) attempt(ctx context.Context, sub *store.Subscription, payload []byte) error {
	d, err := n.registry.deliverer(sub.Subscriber)
	if err != nil {
		return err
	}
	actx, cancel := context.WithTimeout(ctx, n.cfg.AttemptTimeout)
	defer cancel()
	return d.Deliver(actx, sub, payload)
}

// Registry is the notifier's registry of transports (for validating
// subscribers where subscriptions are made).
func (n *Notifier) Registry() *Registry { return n.registry }

// SetPusher installs the websocket connections of this node (the websocket
// transport is built after the notifier). Call before Run.
func (n *Notifier) SetPusher(p Pusher) { n.websocket.setPusher(p) }

// PushHandler is the internal route on which this node receives the
// leader's pushes to websocket connections it holds.
func (n *Notifier) PushHandler() (string, http.Handler) { return n.websocket.pushHandler() }
