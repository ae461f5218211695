package service

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/zaqar-raft/zaqar/auth"
	"github.com/zaqar-raft/zaqar/fsm"
	"github.com/zaqar-raft/zaqar/internal/bodycrypt"
	"github.com/zaqar-raft/zaqar/notify"
	"github.com/zaqar-raft/zaqar/raftnode"
	"github.com/zaqar-raft/zaqar/store"
)

// Node is what the service needs from consensus.
type Node interface {
	// Propose commits commands as one log entry and returns their results.
	Propose(ctx context.Context, cmds ...fsm.Command) (*fsm.EntryResult, error)
	// ReadBarrier makes the next local read linearizable.
	ReadBarrier(ctx context.Context) error
	// IsLeader reports whether this node leads the cluster now.
	IsLeader() bool
	// ClusterStatus reports every member's view of Raft.
	ClusterStatus(ctx context.Context) []raftnode.Status
	// ProbeGroup asks the nodes at addrs, possibly of another pool, for
	// their Raft group's members.
	ProbeGroup(ctx context.Context, addrs []string) (raftnode.GroupIdentity, error)
	// Members returns this node's group's configuration.
	Members() []raftnode.Member
	// CallGroup posts body to a pool route on a node at one of addrs,
	// possibly of another pool, trying them in turn from start.
	CallGroup(ctx context.Context, addrs []string, start int, path string, body []byte) (int, []byte, error)
}

// Config configures a Service.
type Config struct {
	// CatalogAddrs are node addresses of members of the catalog pool
	// (docs/pools.md); nil means this node's group holds the catalog.
	CatalogAddrs []string
	Limits       Limits
	// SignedURLSecret, if set, signs pre-signed URLs instead of the secret
	// the cluster generates and replicates on first start.
	SignedURLSecret string
	// GCInterval is how often the leader collects expired messages and
	// claims (default 1s). Expired items are invisible at once regardless.
	GCInterval time.Duration
	// GCBatch is the most expiry entries one GC command processes.
	GCBatch int
	// SubscriberTypes are the accepted subscriber URI schemes (nil:
	// DefaultSubscriberTypes; empty: none, clients cannot subscribe).
	SubscriberTypes []string
	// Notifications configures subscription confirmation.
	Notifications NotificationConfig
	// Confirmer sends confirmation requests; nil disables sending them.
	// The service sends them from its own last pipeline stage.
	Confirmer Confirmer
	// Stages are the pipeline's stages (see Stage), run in this order
	// before the service's own.
	Stages []Stage
	// Subscribers judges subscriber URIs (default: a notify registry with
	// no deny list).
	Subscribers SubscriberChecker
	// Trusts creates the Keystone trusts of trust+http(s) subscribers
	// (auth.Keystone); nil without Keystone, when Subscribers refuses such
	// subscribers.
	Trusts TrustMaker
	// Policy says which roles each operation needs (default: the
	// reference's, auth.DefaultPolicy).
	Policy *auth.Policy
	// RateLimit limits each project's request rate (off by default).
	RateLimit RateLimit
	// AuthRequired says that callers must be authenticated (Keystone):
	// Admit then refuses a request with neither an identity nor a
	// signature, and never believes X-Roles.
	AuthRequired bool
	// MessageKeys seal the bodies of messages posted to queues with
	// `_enable_encrypt_messages` and open them on every read; nil means
	// no key, and then the flag is refused. Every node of a cluster must
	// hold the same keys (docs/security.md).
	MessageKeys *bodycrypt.Keyring
	// MaxClaimWaiters bounds the claims waiting for a message on this node
	// (default DefaultMaxClaimWaiters); a claim asking to wait beyond it
	// answers at once, as without a wait.
	MaxClaimWaiters int
	Logger          *slog.Logger
}

// NotificationConfig is the service side of notifications (contract §10.5).
type NotificationConfig struct {
	// RequireConfirmation withholds notifications from subscriptions until
	// the subscriber confirms them through a signed URL.
	RequireConfirmation bool
	// PublicURL and PublicWebsocketURL are this service's public endpoints,
	// used to build the confirmation links sent to subscribers.
	PublicURL          string
	PublicWebsocketURL string
}

// Service implements the Zaqar operations over a Raft node and its store.
type Service struct {
	node       Node
	store      *store.Store
	limits     Limits
	secret     []byte
	gcInterval time.Duration
	gcBatch    int
	log        *slog.Logger

	subscriberTypes []string
	subscribers     SubscriberChecker
	trusts          TrustMaker
	notify          NotificationConfig
	confirmer       Confirmer
	policy          *auth.Policy
	limiter         *projectLimiter
	authRequired    bool
	pipeline        pipeline
	keys            *bodycrypt.Keyring // nil: no message encryption key
	waiters         *claimWaiters
	pools           poolRouter

	lastGC time.Time // the maintenance loop's last GC proposal
}

// New returns a Service.
func New(node Node, st *store.Store, cfg Config) *Service {
	if cfg.Limits == (Limits{}) {
		cfg.Limits = DefaultLimits()
	}
	if cfg.GCInterval == 0 {
		cfg.GCInterval = time.Second
	}
	if cfg.GCBatch == 0 {
		cfg.GCBatch = 2000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.SubscriberTypes == nil {
		cfg.SubscriberTypes = DefaultSubscriberTypes
	}
	if cfg.Policy == nil {
		cfg.Policy = auth.DefaultPolicy()
	}
	if cfg.Subscribers == nil {
		cfg.Subscribers = notify.NewRegistry(notify.Config{})
	}
	s := &Service{
		node: node, store: st, limits: cfg.Limits, gcInterval: cfg.GCInterval, gcBatch: cfg.GCBatch, log: cfg.Logger,
		subscriberTypes: cfg.SubscriberTypes, subscribers: cfg.Subscribers, trusts: cfg.Trusts, notify: cfg.Notifications, confirmer: cfg.Confirmer,
		policy: cfg.Policy, limiter: newProjectLimiter(cfg.RateLimit), authRequired: cfg.AuthRequired,
		keys: cfg.MessageKeys,
	}
	s.waiters = newClaimWaiters(cfg.MaxClaimWaiters, s.nextClaimable)
	s.pools.catalogAddrs = cfg.CatalogAddrs
	s.pools.routes = map[string]string{}
	if cfg.SignedURLSecret != "" {
		s.secret = []byte(cfg.SignedURLSecret)
	}
	s.pipeline = append(pipeline(nil), cfg.Stages...)
	if s.confirmer != nil && s.notify.RequireConfirmation {
		s.pipeline = append(s.pipeline, confirmationStage{s})
	}
	return s
}

// RequireConfirmation reports whether subscriptions must be confirmed
// before they receive notifications.
func (s *Service) RequireConfirmation() bool { return s.notify.RequireConfirmation }

// Limits returns the limits in force.
func (s *Service) Limits() Limits { return s.limits }

// Namespace says which kind of resource a request addresses: queues and
// topics of one project are separate namespaces (a topic and a queue may
// share a name).
type Namespace int

// Namespaces.
const (
	Queues Namespace = iota
	Topics
)

// Caller is who makes a request, which namespace it addresses and how it
// wants reads served.
type Caller struct {
	Project   string
	Namespace Namespace
	ClientID  string // normalised (see normalizeClientID)
	// UserID is the Keystone user ("" without Keystone).
	UserID string
	// Token is the caller's Keystone token ("" without one): trust
	// subscriptions create a trust with it. Never logged.
	Token string
	Roles []string
	// Stale serves reads from this node's state without the read barrier:
	// faster, possibly behind the cluster by a few milliseconds.
	Stale bool
}

// topicScope prefixes the project of topic resources in the store. A NUL
// byte cannot occur in an HTTP header, so no real project collides with it.
const topicScope = "\x00topics\x00"

// SplitScope turns a store project key and queue name back into the
// project and the name shown to operators ("topics/<name>" for topics).
func SplitScope(scope, queue string) (project, name string) {
	if rest, ok := strings.CutPrefix(scope, topicScope); ok {
		return rest, "topics/" + queue
	}
	return scope, queue
}

// scope is the project key the store files the caller's resources under.
func (c Caller) scope() string {
	if c.Namespace == Topics {
		return topicScope + c.Project
	}
	return c.Project
}

// authorize checks the policy rule of an operation (e.g. "queues:create",
// contract §1) against the caller's roles and project, the target being
// the caller's own project: 403 Not authorized if denied.
func (s *Service) authorize(c Caller, rule string) *Error {
	creds := auth.Credentials{Roles: c.Roles, ProjectID: c.Project, UserID: c.UserID}
	if s.policy.Enforce(rule, creds, map[string]string{"project_id": c.Project}) {
		return nil
	}
	return &Error{Status: http.StatusForbidden, Title: TitleNotAuthorized, Description: "You are not authorized to complete this action."}
}

// view opens a consistent view for a read, after the read barrier unless
// the caller asked for a stale read. now is the time reads are judged at.
func (s *Service) view(ctx context.Context, c Caller, what string) (*store.View, int64, *Error) {
	if !c.Stale {
		if err := s.node.ReadBarrier(ctx); err != nil {
			return nil, 0, unavailable(what, err)
		}
	}
	return s.store.View(), time.Now().UnixNano(), nil
}

// propose commits one command and returns its result and the entry's time.
func (s *Service) propose(ctx context.Context, what string, cmd fsm.Command) (fsm.Result, int64, *Error) {
	res, err := s.node.Propose(ctx, cmd)
	if err != nil {
		s.log.Warn("propose failed", "what", what, "err", err)
		return fsm.Result{}, 0, unavailable(what, err)
	}
	if len(res.Results) != 1 {
		return fsm.Result{}, 0, &Error{Status: 500, Title: TitleInternalServerError, Description: "command produced no result"}
	}
	if res.Results[0].Status == fsm.StatusMisplaced {
		return fsm.Result{}, 0, errMisplaced
	}
	return res.Results[0], res.Now, nil
}

func storeFailure(what string, err error) *Error {
	return &Error{Status: 503, Title: TitleServiceUnavailable, Description: what + " Please try again in a few seconds. (" + err.Error() + ")"}
}
