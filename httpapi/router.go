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
	// PoolRoutes, if set, registers the handler of requests carried from
	// other pools (service.PoolRouteREST) on the node channel.
	PoolRoutes func(name string, h http.Handler)
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
	if cfg.PoolRoutes != nil {
		cfg.PoolRoutes(service.PoolRouteREST, http.HandlerFunc(h.serveCarried))
	}
	r.NotFound(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusNotFound, errorBody{Title: "404 Not Found"})
	})
	r.MethodNotAllowed(h.methodNotAllowed)

	r.Get("/", h.versions)
	if cfg.Registry != nil {
		r.Method(http.MethodGet, "/metrics", promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{}))
	}

	// Every /v2 route goes through the admission pipeline with its policy
	// rule and the namespace of its {queue_name} or {topic_name}.
	queues := func(rule string, fn http.HandlerFunc) http.HandlerFunc {
		return h.admit(service.Operation{Rule: rule, Namespace: service.Queues}, fn)
	}
	topics := func(rule string, fn http.HandlerFunc) http.HandlerFunc {
		return h.admit(service.Operation{Rule: rule, Namespace: service.Topics}, fn)
	}
	r.Get("/v2", queues("", h.homeDocument))
	r.Get("/v2/", queues("", h.homeDocument))
	r.Get("/v2/ping", queues("ping:get", h.ping))
	r.Head("/v2/ping", queues("ping:get", h.pingHead))
	r.Get("/v2/health", queues("health:get", h.health))

	r.Get("/v2/queues", queues("queues:get_all", h.listQueues))
	r.Put("/v2/queues/{queue_name}", queues("queues:create", h.createQueue))
	r.Get("/v2/queues/{queue_name}", queues("queues:get", h.getQueue))
	r.Head("/v2/queues/{queue_name}", queues("queues:get", h.headQueue))
	r.Patch("/v2/queues/{queue_name}", queues("queues:update", h.patchQueue))
	r.Delete("/v2/queues/{queue_name}", queues("queues:delete", h.deleteQueue))
	r.Get("/v2/queues/{queue_name}/stats", queues("queues:stats", h.queueStats))
	r.Post("/v2/queues/{queue_name}/purge", queues("queues:purge", h.purgeQueue))
	r.Post("/v2/queues/{queue_name}/share", queues("queues:share", h.shareQueue))

	r.Post("/v2/queues/{queue_name}/messages", queues("messages:create", h.postMessages))
	r.Get("/v2/queues/{queue_name}/messages", queues("messages:get_all", h.getMessages))
	r.Delete("/v2/queues/{queue_name}/messages", queues("messages:delete_all", h.deleteMessages))
	r.Get("/v2/queues/{queue_name}/messages/{message_id}", queues("messages:get", h.getMessage))
	r.Delete("/v2/queues/{queue_name}/messages/{message_id}", queues("messages:delete", h.deleteMessage))

	r.Post("/v2/queues/{queue_name}/claims", queues("claims:create", h.createClaim))
	r.Get("/v2/queues/{queue_name}/claims/{claim_id}", queues("claims:get", h.getClaim))
	r.Patch("/v2/queues/{queue_name}/claims/{claim_id}", queues("claims:update", h.renewClaim))
	r.Delete("/v2/queues/{queue_name}/claims/{claim_id}", queues("claims:delete", h.releaseClaim))

	for _, sub := range []struct {
		ns   func(string, http.HandlerFunc) http.HandlerFunc
		base string
	}{{queues, "/v2/queues/{queue_name}"}, {topics, "/v2/topics/{topic_name}"}} {
		r.Get(sub.base+"/subscriptions", sub.ns("subscription:get_all", h.listSubscriptions))
		r.Post(sub.base+"/subscriptions", sub.ns("subscription:create", h.createSubscription))
		r.Get(sub.base+"/subscriptions/{subscription_id}", sub.ns("subscription:get", h.getSubscription))
		r.Patch(sub.base+"/subscriptions/{subscription_id}", sub.ns("subscription:update", h.updateSubscription))
		r.Delete(sub.base+"/subscriptions/{subscription_id}", sub.ns("subscription:delete", h.deleteSubscription))
		r.Put(sub.base+"/subscriptions/{subscription_id}/confirm", sub.ns("subscription:confirm", h.confirmSubscription))
	}

	// Topics (contract §11, §19): queue-like metadata, posting only, and
	// subscriptions that every posted message fans out to.
	r.Get("/v2/topics", topics("topics:get_all", h.listQueues))
	r.Put("/v2/topics/{topic_name}", topics("topics:create", h.createQueue))
	r.Get("/v2/topics/{topic_name}", topics("topics:get", h.getQueue))
	r.Head("/v2/topics/{topic_name}", topics("topics:get", h.headQueue))
	r.Patch("/v2/topics/{topic_name}", topics("topics:update", h.patchQueue))
	r.Delete("/v2/topics/{topic_name}", topics("topics:delete", h.deleteQueue))
	r.Get("/v2/topics/{topic_name}/stats", topics("topics:stats", h.queueStats))
	r.Post("/v2/topics/{topic_name}/purge", topics("topics:purge", h.purgeQueue))
	r.Post("/v2/topics/{topic_name}/messages", topics("messages:create", h.postMessages))

	// Pools and flavors (contract §12, docs/pools.md): the catalog.
	r.Get(poolsPath, queues("pools:get_all", h.listPools))
	r.Put(poolsPath+"/{pool}", queues("pools:create", h.createPool))
	r.Get(poolsPath+"/{pool}", queues("pools:get", h.getPool))
	r.Patch(poolsPath+"/{pool}", queues("pools:update", h.updatePool))
	r.Delete(poolsPath+"/{pool}", queues("pools:delete", h.deletePool))
	r.Get(flavorsPath, queues("flavors:get_all", h.listFlavors))
	r.Put(flavorsPath+"/{flavor}", queues("flavors:create", h.createFlavor))
	r.Get(flavorsPath+"/{flavor}", queues("flavors:get", h.getFlavor))
	r.Patch(flavorsPath+"/{flavor}", queues("flavors:update", h.updateFlavor))
	r.Delete(flavorsPath+"/{flavor}", queues("flavors:delete", h.deleteFlavor))

	// Cluster administration: outside /v2, no Client-ID or project, the
	// policy rule "cluster:admin" (the admin role by default).
	admin := func(fn http.HandlerFunc) http.HandlerFunc {
		return h.admit(service.Operation{Rule: "cluster:admin", Unscoped: true}, fn)
	}
	r.Get("/admin/cluster", admin(h.clusterStatus))
	r.Get("/admin/cluster/digest", admin(h.clusterDigest))
	r.Post("/admin/cluster/join", admin(h.clusterJoin))
	r.Post("/admin/cluster/remove", admin(h.clusterRemove))
	r.Post("/admin/cluster/transfer-leadership", admin(h.clusterTransfer))
	r.Get("/admin/cluster/backup", admin(h.clusterBackup))
	r.Get("/admin/node", admin(h.nodeStatus))
	r.Post("/admin/node/drain", admin(h.nodeDrain))

	// Outermost first: CORS, then request id, recovery and metrics, header
	// and concurrency limits, the draining refusal, authentication, and the
	// router (see DESIGN.md for why in this order).
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

func (h *handler) notImplemented(w http.ResponseWriter, _ *http.Request) {
	writeError(w, &service.Error{Status: http.StatusNotImplemented, Title: service.TitleNotImplemented,
		Description: "This resource is not available on this service yet."})
}
