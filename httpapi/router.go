// Package httpapi is the REST transport: Zaqar's v2 HTTP API on chi. It
// checks that requests are well-formed (headers, query parameters, body
// sizes), builds the caller from the headers, calls the service layer and
// renders its answers and errors in Zaqar's shapes. It holds no queue logic.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/zaqar-raft/zaqar/raftnode"
	"github.com/zaqar-raft/zaqar/service"
)

// Cluster is the membership API the admin endpoints drive.
type Cluster interface {
	ClusterStatus(ctx context.Context) []raftnode.Status
	LocalStatus() raftnode.Status
	Join(ctx context.Context, id, addr string) error
	Remove(ctx context.Context, id string) error
	TransferLeadership(ctx context.Context, id string) error
}

// Config configures the REST handler.
type Config struct {
	Service *service.Service
	Cluster Cluster
	// Digest returns this node's applied index and the digest of its
	// replicated state at that index (for checking replicas agree).
	Digest func() (applied uint64, digest [32]byte, err error)
	// Operations drains the node and takes backups (nil: not offered).
	Operations Operations
	// Registry receives the HTTP metrics and is served on /metrics; nil
	// disables both.
	Registry *prometheus.Registry
	Logger   *slog.Logger
	// RequestTimeout bounds each request's work (default 10s).
	RequestTimeout time.Duration
	// Auth validates Keystone tokens; nil means no authentication (project
	// and roles are taken from X-Project-ID and X-Roles).
	Auth KeystoneAuth
	// CORS is the CORS policy (off unless origins are allowed).
	CORS CORSConfig
	// MaxHeaderBytes caps the request line and headers (431 beyond);
	// 0 means no cap here.
	MaxHeaderBytes int
	// MaxConcurrent caps requests served at once (503 beyond); 0 means no cap.
	MaxConcurrent int
}

// handler carries the dependencies of every route.
type handler struct {
	svc     *service.Service
	cluster Cluster
	digest  func() (uint64, [32]byte, error)
	ops     Operations
	auth    KeystoneAuth

	maxHeaderBytes int
	inFlight       chan struct{}
	log            *slog.Logger
	timeout        time.Duration
	router         *chi.Mux
	metrics        *httpMetrics
}

// New returns the REST API handler.
func New(cfg Config) http.Handler {
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	h := &handler{svc: cfg.Service, cluster: cfg.Cluster, digest: cfg.Digest, ops: cfg.Operations, log: cfg.Logger, timeout: cfg.RequestTimeout,
		auth: cfg.Auth, maxHeaderBytes: cfg.MaxHeaderBytes}
	if cfg.MaxConcurrent > 0 {
		h.inFlight = make(chan struct{}, cfg.MaxConcurrent)
	}
	if cfg.Registry != nil {
		h.metrics = newHTTPMetrics(cfg.Registry)
	}
	r := chi.NewRouter()
	h.router = r
	r.NotFound(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusNotFound, errorBody{Title: "404 Not Found"})
	})
	r.MethodNotAllowed(h.methodNotAllowed)

	r.Get("/", h.versions)
	if cfg.Registry != nil {
		r.Method(http.MethodGet, "/metrics", promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{}))
	}

	v2 := r.With(h.checkRequest)
	v2.Get("/v2", h.rule("", h.homeDocument))
	v2.Get("/v2/", h.rule("", h.homeDocument))
	v2.Get("/v2/ping", h.rule("ping:get", h.ping))
	v2.Head("/v2/ping", h.rule("ping:get", h.pingHead))
	v2.Get("/v2/health", h.rule("health:get", h.health))

	v2.Get("/v2/queues", h.rule("queues:get_all", h.listQueues))
	q := v2.With(h.checkQueueName)
	q.Put("/v2/queues/{queue_name}", h.rule("queues:create", h.createQueue))
	q.Get("/v2/queues/{queue_name}", h.rule("queues:get", h.getQueue))
	q.Head("/v2/queues/{queue_name}", h.rule("queues:get", h.headQueue))
	q.Patch("/v2/queues/{queue_name}", h.rule("queues:update", h.patchQueue))
	q.Delete("/v2/queues/{queue_name}", h.rule("queues:delete", h.deleteQueue))
	q.Get("/v2/queues/{queue_name}/stats", h.rule("queues:stats", h.queueStats))
	q.Post("/v2/queues/{queue_name}/purge", h.rule("queues:purge", h.purgeQueue))
	q.Post("/v2/queues/{queue_name}/share", h.rule("queues:share", h.shareQueue))

	q.Post("/v2/queues/{queue_name}/messages", h.rule("messages:create", h.postMessages))
	q.Get("/v2/queues/{queue_name}/messages", h.rule("messages:get_all", h.getMessages))
	q.Delete("/v2/queues/{queue_name}/messages", h.rule("messages:delete_all", h.deleteMessages))
	q.Get("/v2/queues/{queue_name}/messages/{message_id}", h.rule("messages:get", h.getMessage))
	q.Delete("/v2/queues/{queue_name}/messages/{message_id}", h.rule("messages:delete", h.deleteMessage))

	q.Post("/v2/queues/{queue_name}/claims", h.rule("claims:create", h.createClaim))
	q.Get("/v2/queues/{queue_name}/claims/{claim_id}", h.rule("claims:get", h.getClaim))
	q.Patch("/v2/queues/{queue_name}/claims/{claim_id}", h.rule("claims:update", h.renewClaim))
	q.Delete("/v2/queues/{queue_name}/claims/{claim_id}", h.rule("claims:delete", h.releaseClaim))

	for _, sub := range []struct {
		router chi.Router
		base   string
	}{{q, "/v2/queues/{queue_name}"}, {nil, "/v2/topics/{topic_name}"}} {
		rt := sub.router
		if rt == nil {
			rt = v2.With(h.topicRoutes)
		}
		rt.Get(sub.base+"/subscriptions", h.rule("subscription:get_all", h.listSubscriptions))
		rt.Post(sub.base+"/subscriptions", h.rule("subscription:create", h.createSubscription))
		rt.Get(sub.base+"/subscriptions/{subscription_id}", h.rule("subscription:get", h.getSubscription))
		rt.Patch(sub.base+"/subscriptions/{subscription_id}", h.rule("subscription:update", h.updateSubscription))
		rt.Delete(sub.base+"/subscriptions/{subscription_id}", h.rule("subscription:delete", h.deleteSubscription))
		rt.Put(sub.base+"/subscriptions/{subscription_id}/confirm", h.rule("subscription:confirm", h.confirmSubscription))
	}

	// Topics (contract §11, §19): queue-like metadata, posting only, and
	// subscriptions that every posted message fans out to.
	t := v2.With(h.topicRoutes)
	t.Get("/v2/topics", h.rule("topics:get_all", h.listQueues))
	t.Put("/v2/topics/{topic_name}", h.rule("topics:create", h.createQueue))
	t.Get("/v2/topics/{topic_name}", h.rule("topics:get", h.getQueue))
	t.Head("/v2/topics/{topic_name}", h.rule("topics:get", h.headQueue))
	t.Patch("/v2/topics/{topic_name}", h.rule("topics:update", h.patchQueue))
	t.Delete("/v2/topics/{topic_name}", h.rule("topics:delete", h.deleteQueue))
	t.Get("/v2/topics/{topic_name}/stats", h.rule("topics:stats", h.queueStats))
	t.Post("/v2/topics/{topic_name}/purge", h.rule("topics:purge", h.purgeQueue))
	t.Post("/v2/topics/{topic_name}/messages", h.rule("messages:create", h.postMessages))

	// Pools and flavors answer 501 until they are implemented (after the
	// policy check, so a denied caller still gets 403); clients get a
	// Zaqar error body rather than a 404.
	notYet := h.notImplemented
	v2.Get("/v2/pools", h.rule("pools:get_all", notYet))
	for method, rule := range map[string]string{"GET": "pools:get", "PUT": "pools:create", "PATCH": "pools:update", "DELETE": "pools:delete"} {
		v2.Method(method, "/v2/pools/{pool}", h.rule(rule, notYet))
	}
	v2.Get("/v2/flavors", h.rule("flavors:get_all", notYet))
	for method, rule := range map[string]string{"GET": "flavors:get", "PUT": "flavors:create", "PATCH": "flavors:update", "DELETE": "flavors:delete"} {
		v2.Method(method, "/v2/flavors/{flavor}", h.rule(rule, notYet))
	}

	admin := r.With(h.checkAdmin)
	admin.Get("/admin/cluster", h.clusterStatus)
	admin.Get("/admin/cluster/digest", h.clusterDigest)
	admin.Post("/admin/cluster/join", h.clusterJoin)
	admin.Post("/admin/cluster/remove", h.clusterRemove)
	admin.Post("/admin/cluster/transfer-leadership", h.clusterTransfer)
	admin.Get("/admin/cluster/backup", h.clusterBackup)
	admin.Get("/admin/node", h.nodeStatus)
	admin.Post("/admin/node/drain", h.nodeDrain)

	// Outermost first: CORS, then request id, recovery and metrics, header
	// and concurrency limits, authentication, and the router.
	return withCORS(cfg.CORS, h.outer(h.limitHeaders(h.limitConcurrency(h.refuseWhileDraining(h.authenticate(r))))))
}

// methodNotAllowed answers 405 with the Allow header listing the methods
// the path does support.
func (h *handler) methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if h.router.Match(chi.NewRouteContext(), m, r.URL.Path) {
			w.Header().Add("Allow", m)
		}
	}
	writeJSON(w, http.StatusMethodNotAllowed, errorBody{Title: "405 Method Not Allowed"})
}

// rule wraps a handler with its policy check (contract §1's policy rules);
// an empty rule is open to every caller that passed the request checks.
func (h *handler) rule(name string, fn http.HandlerFunc) http.HandlerFunc {
	if name == "" {
		return fn
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if e := h.svc.Authorize(callerFrom(r), name); e != nil {
			writeError(w, e)
			return
		}
		fn(w, r)
	}
}

func (h *handler) notImplemented(w http.ResponseWriter, _ *http.Request) {
	writeError(w, &service.Error{Status: http.StatusNotImplemented, Title: service.TitleNotImplemented,
		Description: "This resource is not available on this service yet."})
}
