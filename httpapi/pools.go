package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/zaqar-raft/zaqar/raftnode"
	"github.com/zaqar-raft/zaqar/service"
)

// Routing REST requests between pools (docs/pools.md). After admission a
// request on a queue of another pool, or a pool or flavor request on a
// node outside the catalog pool, is carried to a node of the owning pool
// with the admitted caller. That node runs the same route handler as for a
// request of its own, without admitting the caller again, and its answer
// (status, headers, body) is copied back.

// carriedREST is a REST request carried to another pool.
type carriedREST struct {
	Caller    service.Caller `json:"caller"`
	Name      string         `json:"name,omitempty"` // the queue or topic; "" for the catalog's routes
	Catalog   bool           `json:"catalog,omitempty"`
	RequestID string         `json:"request_id"`
	Method    string         `json:"method"`
	Path      string         `json:"path"`
	Query     string         `json:"query,omitempty"`
	Header    http.Header    `json:"header,omitempty"`
	Body      []byte         `json:"body,omitempty"`
}

// carriedAnswer is the owning node's answer.
type carriedAnswer struct {
	Status int         `json:"status"`
	Header http.Header `json:"header,omitempty"`
	Body   []byte      `json:"body,omitempty"`
}

// carriedBodyLimit is how much of a body is carried: one byte more than
// the largest any route reads (readBody), so the owning node sees exactly
// what it would have read from the client and answers an oversized body
// as it would have.
func (h *handler) carriedBodyLimit() int {
	l := h.svc.Limits()
	return max(l.MaxBodyBytes, l.MaxMessagesPostSize, l.MaxQueueMetadata) + 1
}

const carriedKey ctxKey = 1

// carriedCaller returns the caller of a carried request, nil for a
// request a client sent to this node. Only serveCarried, behind the node
// channel's authentication, sets it.
func carriedCaller(r *http.Request) *service.Caller {
	c, _ := r.Context().Value(carriedKey).(*service.Caller)
	return c
}

// createsQueue lists the rules whose requests create their queue if it
// does not exist, and so place it when it has no placement.
var createsQueue = map[string]bool{
	"queues:create": true, "topics:create": true, "messages:create": true, "subscription:create": true,
}

// route decides where an admitted request is served. It returns false
// when the request was carried to another pool (and answered).
func (h *handler) route(w http.ResponseWriter, r *http.Request, op service.Operation, c service.Caller, fn http.HandlerFunc) bool {
	catalog := strings.HasPrefix(op.Rule, "pools:") || strings.HasPrefix(op.Rule, "flavors:")
	if op.Name == "" && !catalog {
		return true
	}
	ctx := r.Context()
	var rt service.Route
	var e *service.Error
	if catalog {
		rt, e = h.svc.RouteCatalog(ctx)
	} else {
		rt, e = h.svc.RouteQueue(ctx, c, op.Name, createsQueue[op.Rule], h.flavorOf(r, op.Rule))
	}
	if e != nil {
		writeError(w, e)
		return false
	}
	if rt.Local() {
		if !catalog && rt.Pool != "" {
			w.Header().Set(service.HeaderPool, rt.Pool)
		}
		return true
	}
	h.carry(w, r, c, op, catalog, rt, fn)
	return false
}

// flavorOf returns the `_flavor` a queue PUT names, leaving the body to be
// read again; "" for every other request.
func (h *handler) flavorOf(r *http.Request, rule string) string {
	if rule != "queues:create" || r.Body == nil {
		return ""
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(h.svc.Limits().MaxQueueMetadata)+1))
	r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), r.Body))
	if err != nil {
		return ""
	}
	var meta struct {
		Flavor string `json:"_flavor"`
	}
	_ = json.Unmarshal(body, &meta)
	return meta.Flavor
}

// carry sends the request to a node of route's pool and copies its answer.
// A pool that no longer holds the queue (its cached placement was stale)
// refuses it; the route is then asked of the catalog again, once.
func (h *handler) carry(w http.ResponseWriter, r *http.Request, c service.Caller, op service.Operation, catalog bool, rt service.Route, fn http.HandlerFunc) {
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(h.carriedBodyLimit())))
	if err != nil {
		writeError(w, &service.Error{Status: http.StatusBadRequest, Title: service.TitleInvalidBody, Description: "Request body could not be read."})
		return
	}
	req := carriedREST{Caller: c, Name: op.Name, Catalog: catalog, RequestID: raftnode.RequestID(r.Context()),
		Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: body}
	payload, _ := json.Marshal(req)
	for attempt := 0; ; attempt++ {
		status, answer, e := h.svc.CallPool(r.Context(), rt, service.PoolRouteREST, payload)
		if e != nil {
			writeError(w, e)
			return
		}
		if status == service.StatusMisdirected && attempt == 0 && !catalog {
			h.svc.ForgetRoute(c, op.Name)
			if rt, e = h.svc.RouteQueue(r.Context(), c, op.Name, createsQueue[op.Rule], ""); e != nil {
				writeError(w, e)
				return
			}
			if rt.Local() {
				r.Body = io.NopCloser(bytes.NewReader(body))
				fn(w, r.WithContext(context.WithValue(r.Context(), callerKey, c)))
				return
			}
			continue
		}
		var ans carriedAnswer
		if status != http.StatusOK || json.Unmarshal(answer, &ans) != nil {
			h.log.Warn("carried request failed", "pool", rt.Pool, "status", status, "answer", string(answer))
			writeError(w, &service.Error{Status: http.StatusServiceUnavailable, Title: service.TitleServiceUnavailable,
				Description: "The pool holding this queue could not serve the request. Please try again."})
			return
		}
		for k, vs := range ans.Header {
			if k == "X-Openstack-Request-Id" {
				continue
			}
			w.Header()[k] = vs
		}
		if !catalog && rt.Pool != "" {
			w.Header().Set(service.HeaderPool, rt.Pool)
		}
		w.WriteHeader(ans.Status)
		_, _ = w.Write(ans.Body)
		return
	}
}

// serveCarried serves a request carried from a node of another pool
// (service.PoolRouteREST): the same route handler as for a client's own
// request, as the caller the sending node admitted, with the sender's
// request id. A queue this pool does not hold is refused
// (service.StatusMisdirected).
func (h *handler) serveCarried(w http.ResponseWriter, r *http.Request) {
	var req carriedREST
	if err := json.NewDecoder(io.LimitReader(r.Body, 2*int64(h.carriedBodyLimit())+1<<20)).Decode(&req); err != nil {
		http.Error(w, "bad carried request", http.StatusBadRequest)
		return
	}
	ctx := r.Context()
	if req.Catalog {
		if rt, _ := h.svc.RouteCatalog(ctx); !rt.Local() {
			w.WriteHeader(service.StatusMisdirected)
			return
		}
	} else {
		held, e := h.svc.Holds(ctx, req.Caller, req.Name)
		if e == nil && !held {
			w.WriteHeader(service.StatusMisdirected)
			return
		}
	}
	ctx = raftnode.WithRequestID(ctx, req.RequestID)
	ctx = context.WithValue(ctx, carriedKey, &req.Caller)
	ctx = context.WithValue(ctx, chi.RouteCtxKey, chi.NewRouteContext())
	target := req.Path
	if req.Query != "" {
		target += "?" + req.Query
	}
	inner, err := http.NewRequestWithContext(ctx, req.Method, target, bytes.NewReader(req.Body))
	if err != nil {
		http.Error(w, "bad carried request", http.StatusBadRequest)
		return
	}
	inner.Header = req.Header
	inner.ContentLength = int64(len(req.Body))
	rec := &recorder{header: http.Header{}, status: http.StatusOK}
	func() {
		defer func() {
			if p := recover(); p != nil {
				h.log.Error("panic serving carried request", "path", req.Path, "panic", p)
				rec.header, rec.body = http.Header{}, bytes.Buffer{}
				writeError(rec, &service.Error{Status: http.StatusInternalServerError, Title: service.TitleInternalServerError, Description: "Unexpected error."})
			}
		}()
		h.router.ServeHTTP(rec, inner)
	}()
	out, _ := json.Marshal(carriedAnswer{Status: rec.status, Header: rec.header, Body: rec.body.Bytes()})
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}

// recorder keeps a carried request's answer to send it back.
type recorder struct {
	header http.Header
	status int
	wrote  bool
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.body.Write(b)
}
