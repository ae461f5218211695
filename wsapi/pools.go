package wsapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"

	"github.com/zaqar-raft/zaqar/raftnode"
	"github.com/zaqar-raft/zaqar/service"
)

// Routing websocket actions between pools (docs/pools.md). The connection
// stays on the node the client reached; an action on a queue of another
// pool is carried to a node of that pool as one call, with the caller this
// node admitted, and the reply is written to the socket as if served here.

// carriedAction is an action carried to another pool.
type carriedAction struct {
	Caller    service.Caller  `json:"caller"`
	Name      string          `json:"name"` // the queue
	Action    string          `json:"action"`
	Body      json.RawMessage `json:"body,omitempty"`
	Enc       Encoding        `json:"enc"`
	RequestID string          `json:"request_id,omitempty"`
}

// carriedReply is the owning node's reply.
type carriedReply struct {
	Status int             `json:"status"`
	Body   json.RawMessage `json:"body"`
}

// bindsConnection lists the actions that tie a subscription to this
// connection; the owning pool's leader would have to push to a node of
// another pool, which the node channel does not offer yet.
var bindsConnection = map[string]bool{"subscription_create": true, "subscription_delete": true}

// creates lists the actions that create their queue if it does not exist.
var creates = map[string]bool{"queue_create": true, "message_post": true, "subscription_create": true}

// route runs the call here or carries it to the pool holding its queue.
func (c *call) route(ctx context.Context, a *action, op service.Operation) (reply, bool) {
	if op.Name == "" || !c.svc.PoolsInUse(ctx) {
		return reply{}, false
	}
	rt, e := c.svc.RouteQueue(ctx, c.caller, op.Name, creates[c.name], "")
	if e != nil {
		return errorReply(e), true
	}
	if rt.Local() {
		return reply{}, false
	}
	if bindsConnection[c.name] {
		return plainError(http.StatusBadRequest, "Queue "+op.Name+" is held by pool "+rt.Pool+": subscribe this connection on a node of that pool."), true
	}
	payload, _ := json.Marshal(carriedAction{Caller: c.caller, Name: op.Name, Action: c.name, Body: c.raw, Enc: c.enc, RequestID: raftnode.RequestID(ctx)})
	for attempt := 0; ; attempt++ {
		status, answer, e := c.svc.CallPool(ctx, rt, service.PoolRouteWS, payload)
		if e != nil {
			return errorReply(e), true
		}
		if status == service.StatusMisdirected && attempt == 0 {
			c.svc.ForgetRoute(c.caller, op.Name)
			if rt, e = c.svc.RouteQueue(ctx, c.caller, op.Name, creates[c.name], ""); e != nil {
				return errorReply(e), true
			}
			if rt.Local() {
				return a.run(ctx, c), true
			}
			continue
		}
		var r carriedReply
		if status != http.StatusOK || json.Unmarshal(answer, &r) != nil {
			return plainError(http.StatusServiceUnavailable, "The pool holding this queue could not serve the request. Please try again."), true
		}
		return reply{status: r.Status, body: r.Body}, true
	}
}

// serveCarried runs an action carried from a node of another pool
// (service.PoolRouteWS) as the caller that node admitted.
func (s *Server) serveCarried(w http.ResponseWriter, r *http.Request) {
	var req carriedAction
	if err := json.NewDecoder(io.LimitReader(r.Body, 32<<20)).Decode(&req); err != nil {
		http.Error(w, "bad carried action", http.StatusBadRequest)
		return
	}
	a, known := actions[req.Action]
	if !known || bindsConnection[req.Action] {
		http.Error(w, "action not carried", http.StatusBadRequest)
		return
	}
	ctx := r.Context()
	if held, e := s.svc.Holds(ctx, req.Caller, req.Name); e == nil && !held {
		w.WriteHeader(service.StatusMisdirected)
		return
	}
	ctx = raftnode.WithRequestID(ctx, req.RequestID)
	c := &call{enc: req.Enc, name: req.Action, svc: s.svc, raw: req.Body, caller: req.Caller}
	var out reply
	if msg := c.decodeBody(a); msg != "" {
		out = plainError(http.StatusBadRequest, msg)
	} else {
		budget := s.cfg.RequestTimeout
		if req.Action == "claim_create" {
			budget += service.ClaimWaitBudget(c.int("wait"))
		}
		rctx, cancel := context.WithTimeout(ctx, budget)
		out = a.run(rctx, c)
		cancel()
	}
	body, err := json.Marshal(out.body)
	if err != nil {
		out, body = plainError(http.StatusInternalServerError, "Unexpected error."), nil
		body, _ = json.Marshal(out.body)
	}
	ans, _ := json.Marshal(carriedReply{Status: out.status, Body: body})
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(ans)
}
