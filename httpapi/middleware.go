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
		ctx, cancel := context.WithTimeout(r.Context(), h.timeout+claimWait(r))
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

// admit runs a REST route through the service's admission pipeline
// (contract §2.1): service.Admit with the request's credentials and the
// operation (op's Name is the route's {queue_name} or {topic_name}, its
// Method and Resource the request's, its Framing REST's own check of
// form-encoded bodies and the Accept header, which Admit runs after the
// pre-signed URL check). The handler runs as the caller Admit returns.
func (h *handler) admit(route service.Operation, fn http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if cc := carriedCaller(r); cc != nil {
			// Admitted by the node the client reached (serveCarried).
			fn(w, r.WithContext(context.WithValue(r.Context(), callerKey, *cc)))
			return
		}
		op := route // each request fills in its own copy
		op.Name = queueName(r)
		op.Method, op.Resource = r.Method, r.URL.Path
		if !route.Unscoped {
			op.Framing = func() *service.Error { return checkFraming(r) }
		}
		c, e := h.svc.Admit(r.Context(), credentials(r), op)
		switch {
		case e == errNotAcceptable:
			writeNotAcceptable(w)
			return
		case e != nil:
			if e.Status == http.StatusTooManyRequests {
				w.Header().Set("Retry-After", "1")
			}
			writeError(w, e)
			return
		}
		if !h.route(w, r, op, c, fn) {
			return // carried to the pool that holds the queue
		}
		fn(w, r.WithContext(context.WithValue(r.Context(), callerKey, c)))
	}
}

// errNotAcceptable is checkFraming's answer to an Accept header that
// excludes JSON; admit renders it with Zaqar's help link.
var errNotAcceptable = &service.Error{Status: http.StatusNotAcceptable, Title: "406 Not Acceptable",
	Description: "Endpoint only serves `application/json`; specify client-side media type support with the \"Accept\" header."}

// checkFraming refuses form-encoded bodies and an Accept header that
// excludes JSON.
func checkFraming(r *http.Request) *service.Error {
	if r.ContentLength > 0 || r.Header.Get("Content-Length") != "" {
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "application/x-www-form-urlencoded" {
			return &service.Error{Status: http.StatusBadRequest, Title: "Invalid Content-Type",
				Description: "Form-encoded bodies are not accepted; send JSON."}
		}
	}
	if !acceptsJSON(r.Header.Values("Accept")) {
		return errNotAcceptable
	}
	return nil
}

// writeNotAcceptable writes Zaqar's 406 document, which links to help.
func writeNotAcceptable(w http.ResponseWriter) {
	writeJSON(w, http.StatusNotAcceptable, map[string]any{
		"title":       errNotAcceptable.Title,
		"description": errNotAcceptable.Description,
		"link": map[string]string{
			"text": "Documentation related to this error",
			"href": "http://docs.openstack.org/api/openstack-messaging/v2/content/",
			"rel":  "help",
		},
	})
}

// credentials reads who sends the request: Client-ID, project and roles
// headers, the Keystone identity the authenticate layer validated, the
// pre-signed URL headers, and the read consistency asked for.
func credentials(r *http.Request) service.Credentials {
	cred := service.Credentials{
		Roles:    r.Header.Get("X-Roles"),
		Identity: identityFrom(r),
		Stale:    strings.EqualFold(r.Header.Get(HeaderReadConsistency), "stale"),
	}
	cred.ClientID, cred.HasClientID = headerValue(r, "Client-Id")
	cred.Project, cred.HasProject = projectHeader(r)
	if _, signed := r.Header["Url-Signature"]; signed {
		cred.Signature = &service.SignedRequest{
			Signature: r.Header.Get("Url-Signature"),
			Expires:   r.Header.Get("Url-Expires"),
			Methods:   strings.Split(r.Header.Get("Url-Methods"), ","),
			Paths:     strings.Split(r.Header.Get("Url-Paths"), ","),
		}
	}
	return cred
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

// claimWait is how long a claim request may wait for a message, which its
// time budget covers on top of the request timeout.
func claimWait(r *http.Request) time.Duration {
	if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/claims") {
		return 0
	}
	n, _ := newQuery(r).integer("wait")
	return service.ClaimWaitBudget(n)
}
