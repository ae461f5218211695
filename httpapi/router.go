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
	// Registry receives the HTTP metrics and is served on /metrics; nil
	// disables both.
	Registry *prometheus.Registry
	Logger   *slog.Logger
	// RequestTimeout bounds each request's work (default 10s).
	RequestTimeout time.Duration
	// MaxHeaderBytes is informational here; the server enforces it.
	MaxHeaderBytes int
}

// handler carries the dependencies of every route.
type handler struct {
	svc     *service.Service
	cluster Cluster
	log     *slog.Logger
	timeout time.Duration
	router  *chi.Mux
	metrics *httpMetrics
}

// New returns the REST API handler.
func New(cfg Config) http.Handler {
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	h := &handler{svc: cfg.Service, cluster: cfg.Cluster, log: cfg.Logger, timeout: cfg.RequestTimeout}
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
	v2.Get("/v2", h.homeDocument)
	v2.Get("/v2/", h.homeDocument)
	v2.Get("/v2/ping", h.ping)
	v2.Head("/v2/ping", h.pingHead)
	v2.Get("/v2/health", h.health)

	v2.Get("/v2/queues", h.listQueues)
	q := v2.With(h.checkQueueName)
	q.Put("/v2/queues/{queue_name}", h.createQueue)
	q.Get("/v2/queues/{queue_name}", h.getQueue)
	q.Head("/v2/queues/{queue_name}", h.headQueue)
	q.Patch("/v2/queues/{queue_name}", h.patchQueue)
	q.Delete("/v2/queues/{queue_name}", h.deleteQueue)
	q.Get("/v2/queues/{queue_name}/stats", h.queueStats)
	q.Post("/v2/queues/{queue_name}/purge", h.purgeQueue)
	q.Post("/v2/queues/{queue_name}/share", h.shareQueue)

	q.Post("/v2/queues/{queue_name}/messages", h.postMessages)
	q.Get("/v2/queues/{queue_name}/messages", h.getMessages)
	q.Delete("/v2/queues/{queue_name}/messages", h.deleteMessages)
	q.Get("/v2/queues/{queue_name}/messages/{message_id}", h.getMessage)
	q.Delete("/v2/queues/{queue_name}/messages/{message_id}", h.deleteMessage)

	q.Post("/v2/queues/{queue_name}/claims", h.createClaim)
	q.Get("/v2/queues/{queue_name}/claims/{claim_id}", h.getClaim)
	q.Patch("/v2/queues/{queue_name}/claims/{claim_id}", h.renewClaim)
	q.Delete("/v2/queues/{queue_name}/claims/{claim_id}", h.releaseClaim)

	q.Get("/v2/queues/{queue_name}/subscriptions", h.listSubscriptions)
	q.Post("/v2/queues/{queue_name}/subscriptions", h.createSubscription)
	q.Get("/v2/queues/{queue_name}/subscriptions/{subscription_id}", h.getSubscription)
	q.Patch("/v2/queues/{queue_name}/subscriptions/{subscription_id}", h.updateSubscription)
	q.Delete("/v2/queues/{queue_name}/subscriptions/{subscription_id}", h.deleteSubscription)
	q.Put("/v2/queues/{queue_name}/subscriptions/{subscription_id}/confirm", h.confirmSubscription)

	// Topics (contract §11, §19): queue-like metadata, posting only, and
	// subscriptions that every posted message fans out to.
	t := v2.With(h.topicRoutes)
	t.Get("/v2/topics", h.listQueues)
	t.Put("/v2/topics/{topic_name}", h.createQueue)
	t.Get("/v2/topics/{topic_name}", h.getQueue)
	t.Head("/v2/topics/{topic_name}", h.headQueue)
	t.Patch("/v2/topics/{topic_name}", h.patchQueue)
	t.Delete("/v2/topics/{topic_name}", h.deleteQueue)
	t.Get("/v2/topics/{topic_name}/stats", h.queueStats)
	t.Post("/v2/topics/{topic_name}/purge", h.purgeQueue)
	t.Post("/v2/topics/{topic_name}/messages", h.postMessages)
	t.Get("/v2/topics/{topic_name}/subscriptions", h.listSubscriptions)
	t.Post("/v2/topics/{topic_name}/subscriptions", h.createSubscription)
	t.Get("/v2/topics/{topic_name}/subscriptions/{subscription_id}", h.getSubscription)
	t.Patch("/v2/topics/{topic_name}/subscriptions/{subscription_id}", h.updateSubscription)
	t.Delete("/v2/topics/{topic_name}/subscriptions/{subscription_id}", h.deleteSubscription)
	t.Put("/v2/topics/{topic_name}/subscriptions/{subscription_id}/confirm", h.confirmSubscription)

	// Pools and flavors answer 501 until they are implemented; clients get
	// a Zaqar error body rather than a 404.
	notYet := h.notImplemented
	v2.Get("/v2/pools", notYet)
	v2.HandleFunc("/v2/pools/{pool}", notYet)
	v2.Get("/v2/flavors", notYet)
	v2.HandleFunc("/v2/flavors/{flavor}", notYet)

	admin := r.With(h.checkAdmin)
	admin.Get("/admin/cluster", h.clusterStatus)
	admin.Post("/admin/cluster/join", h.clusterJoin)
	admin.Post("/admin/cluster/remove", h.clusterRemove)
	admin.Post("/admin/cluster/transfer-leadership", h.clusterTransfer)

	return h.outer(r)
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
