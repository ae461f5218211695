package httpapi

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/zaqar-raft/zaqar/raftnode"
	"github.com/zaqar-raft/zaqar/service"
)

type ctxKey int

const callerKey ctxKey = 0

func callerFrom(r *http.Request) service.Caller {
	c, _ := r.Context().Value(callerKey).(service.Caller)
	return c
}

// HeaderReadConsistency selects how a read is served: "linearizable" (the
// default) or "stale" (from this node's state, without the read barrier).
const HeaderReadConsistency = "X-Read-Consistency"

// outer wraps every request: request id, panic recovery, timeout, metrics.
func (h *handler) outer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		reqID := "req-" + uuid4()
		w.Header().Set("X-Openstack-Request-Id", reqID)
		rw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
		defer cancel()
		// chi reuses a route context it finds in the request, so the route
		// pattern it matches is readable here afterwards for metrics.
		rctx := chi.NewRouteContext()
		ctx = raftnode.WithRequestID(ctx, reqID)
		r = r.WithContext(context.WithValue(ctx, chi.RouteCtxKey, rctx))
		defer func() {
			if p := recover(); p != nil {
				h.log.Error("panic serving request", "method", r.Method, "path", r.URL.Path, "panic", p, "stack", string(debug.Stack()))
				if !rw.wrote {
					writeError(rw, &service.Error{Status: http.StatusInternalServerError, Title: service.TitleInternalServerError, Description: "Unexpected error."})
				}
			}
			route := "unmatched"
			if p := rctx.RoutePattern(); p != "" {
				route = p
			}
			if h.metrics != nil {
				h.metrics.observe(r.Method, route, rw.status, time.Since(start))
			}
			level := slog.LevelDebug
			if rw.status >= 500 {
				level = slog.LevelWarn
			}
			h.log.Log(r.Context(), level, "request", "request_id", reqID, "method", r.Method, "route", route,
				"status", rw.status, "duration", time.Since(start))
		}()
		next.ServeHTTP(rw, r)
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (s *statusWriter) WriteHeader(code int) {
	if !s.wrote {
		s.status, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	s.wrote = true
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func uuid4() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// checkRequest runs Zaqar's per-request hooks in order (contract §2.1):
// signature, form bodies, Accept, Client-ID, project; then builds the
// caller. Queue names are checked by checkQueueName.
func (h *handler) checkRequest(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		project, projectPresent := projectHeader(r)
		if id := identityFrom(r); id != nil {
			project, projectPresent = id.ProjectID, true
		}
		if _, signed := r.Header["Url-Signature"]; signed {
			if !h.svc.VerifySigned(r.Context(), r.Method, r.URL.Path, signedRequest(r, project)) {
				writeJSON(w, http.StatusNotFound, errorBody{Title: "404 Not Found"})
				return
			}
		}
		if r.ContentLength > 0 || r.Header.Get("Content-Length") != "" {
			if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "application/x-www-form-urlencoded" {
				writeError(w, &service.Error{Status: http.StatusBadRequest, Title: "Invalid Content-Type",
					Description: "Form-encoded bodies are not accepted; send JSON."})
				return
			}
		}
		if !acceptsJSON(r.Header.Values("Accept")) {
			writeJSON(w, http.StatusNotAcceptable, map[string]any{
				"title":       "406 Not Acceptable",
				"description": "Endpoint only serves `application/json`; specify client-side media type support with the \"Accept\" header.",
				"link": map[string]string{
					"text": "Documentation related to this error",
					"href": "http://docs.openstack.org/api/openstack-messaging/v2/content/",
					"rel":  "help",
				},
			})
			return
		}
		clientID, cidPresent := headerValue(r, "Client-Id")
		cid, e := h.svc.NormalizeClientID(cidPresent, clientID)
		if e != nil {
			writeError(w, e)
			return
		}
		if e := service.CheckProject(projectPresent, project); e != nil {
			writeError(w, e)
			return
		}
		c := service.Caller{Project: project, ClientID: cid}
		switch id := identityFrom(r); {
		case id != nil:
			// Keystone decides who this is; client identity headers are
			// ignored (keystonemiddleware overwrites them upstream).
			c.Project, c.Roles = id.ProjectID, id.Roles
		case h.auth == nil:
			c.Roles = splitRoles(r.Header.Get("X-Roles"))
		}
		c.Stale = strings.EqualFold(r.Header.Get(HeaderReadConsistency), "stale")
		if e := h.svc.Throttle(c); e != nil {
			w.Header().Set("Retry-After", "1")
			writeError(w, e)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey, c)))
	})
}

// checkQueueName validates {queue_name} together with the project.
func (h *handler) checkQueueName(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if e := service.ValidateQueueName(callerFrom(r).Project, chi.URLParam(r, "queue_name")); e != nil {
			writeError(w, e)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// topicRoutes marks the request as addressing topics and validates
// {topic_name}.
func (h *handler) topicRoutes(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := callerFrom(r)
		c.Namespace = service.Topics
		if name := chi.URLParam(r, "topic_name"); name != "" {
			if e := service.ValidateTopicName(c.Project, name); e != nil {
				writeError(w, e)
				return
			}
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey, c)))
	})
}

// checkAdmin guards the cluster administration endpoints with the policy
// rule "cluster:admin" (the admin role by default).
func (h *handler) checkAdmin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := service.Caller{}
		if id := identityFrom(r); id != nil {
			c.Project, c.Roles = id.ProjectID, id.Roles
		} else if h.auth == nil {
			c.Roles = splitRoles(r.Header.Get("X-Roles"))
		}
		if e := h.svc.Authorize(c, "cluster:admin"); e != nil {
			writeError(w, e)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// projectHeader returns the first present of X-Project-Id, X-Tenant-Id and
// X-Tenant.
func projectHeader(r *http.Request) (string, bool) {
	for _, name := range []string{"X-Project-Id", "X-Tenant-Id", "X-Tenant"} {
		if v, ok := headerValue(r, name); ok {
			return v, true
		}
	}
	return "", false
}

func headerValue(r *http.Request, name string) (string, bool) {
	vs, ok := r.Header[http.CanonicalHeaderKey(name)]
	if !ok || len(vs) == 0 {
		return "", false
	}
	return strings.TrimSpace(vs[0]), true
}

func splitRoles(s string) []string {
	var out []string
	for _, r := range strings.Split(s, ",") {
		if r = strings.TrimSpace(r); r != "" {
			out = append(out, r)
		}
	}
	return out
}

func signedRequest(r *http.Request, project string) service.SignedRequest {
	return service.SignedRequest{
		Signature: r.Header.Get("Url-Signature"),
		Expires:   r.Header.Get("Url-Expires"),
		Methods:   strings.Split(r.Header.Get("Url-Methods"), ","),
		Paths:     strings.Split(r.Header.Get("Url-Paths"), ","),
		Project:   project,
	}
}

// acceptsJSON reports whether Accept headers allow application/json.
func acceptsJSON(values []string) bool {
	if len(values) == 0 {
		return true
	}
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil {
				continue
			}
			if q, ok := params["q"]; ok && (q == "0" || q == "0.0" || q == "0.00" || q == "0.000") {
				continue
			}
			switch mt {
			case "*/*", "application/*", "application/json":
				return true
			}
		}
	}
	return false
}
