package wsapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"

	"github.com/zaqar-raft/zaqar/notify"
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
	// ConnRef names the connection subscribing itself (subscription_create
	// without a subscriber): notify.WebsocketNodeRef of the node holding it
	// and the connection's id.
	NodeRef string `json:"node_ref,omitempty"`
	Conn    string `json:"conn,omitempty"`
}

// carriedReply is the owning node's reply.
type carriedReply struct {
	Status int             `json:"status"`
	Body   json.RawMessage `json:"body"`
}

// creates lists the actions that create their queue if it does not exist.
var creates = map[string]bool{"queue_create": true, "message_post": true, "subscription_create": true}

// route runs the call here or carries it to the pool holding its queue.
func (c *call) route(ctx context.Context, a *action, op service.Operation) (reply, bool) {
	if op.Name == "" {
		return reply{}, false
	}
	rt, e := c.svc.RouteQueue(ctx, c.caller, op.Name, creates[c.name], "")
	if e != nil {
		return errorReply(e), true
	}
	if rt.Local() {
		return reply{}, false
	}
	req := carriedAction{Caller: c.caller, Name: op.Name, Action: c.name, Body: c.raw, Enc: c.enc, RequestID: raftnode.RequestID(ctx)}
	subscribesSelf := c.name == "subscription_create" && !c.has("subscriber")
	if subscribesSelf {
		// The owning pool's leader pushes to this node over the pool route.
		req.NodeRef = notify.WebsocketNodeRef(c.conn.srv.cfg.NodeID, c.conn.srv.cfg.NodeAddr)
		req.Conn = c.conn.ID
	}
	payload, _ := json.Marshal(req)
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
		c.keepConnSubscriptions(op.Name, subscribesSelf, r)
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
	if !known {
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
	} else if run := carriedRun(req); run != nil {
		out = run(ctx, c)
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

// carriedRun returns how a carried action that involves the sending
// node's connection runs here, or nil to run the action as usual. The
// connection is on the sending node, which keeps its own list of the
// subscriptions it made (keepConnSubscriptions).
func carriedRun(req carriedAction) func(ctx context.Context, c *call) reply {
	switch {
	case req.Action == "subscription_create" && req.Conn != "":
		return func(ctx context.Context, c *call) reply {
			queue := c.str("queue_name")
			res, e := c.svc.SubscribeConnection(ctx, c.caller, queue, req.NodeRef, req.Conn, c.withoutQueueName())
			switch {
			case e != nil && e.Status == http.StatusConflict:
				return reply{http.StatusConflict, "Subscription " + queue + " not created."}
			case e != nil:
				return errorReply(e)
			}
			return reply{http.StatusCreated, map[string]any{"subscription_id": res.ID, "message": "Subscription " + queue + " created."}}
		}
	case req.Action == "subscription_delete":
		return func(ctx context.Context, c *call) reply {
			id := c.str("subscription_id")
			if e := c.svc.DeleteSubscription(ctx, c.caller, c.str("queue_name"), id); e != nil {
				return errorReply(e)
			}
			return reply{http.StatusNoContent, "Subscription " + id + " removed."}
		}
	}
	return nil
}

// keepConnSubscriptions records on the connection a subscription of
// itself that another pool made, or forgets one it deleted, so that the
// connection's subscriptions end with it wherever they live.
func (c *call) keepConnSubscriptions(queue string, subscribesSelf bool, r carriedReply) {
	switch {
	case subscribesSelf && r.Status == http.StatusCreated:
		var created struct {
			ID string `json:"subscription_id"`
		}
		if json.Unmarshal(r.Body, &created) == nil && created.ID != "" {
			c.conn.subscriptions.add(c.caller, queue, created.ID)
			c.conn.notifyEnc.set(c.enc)
		}
	case c.name == "subscription_delete" && r.Status == http.StatusNoContent:
		c.conn.subscriptions.remove(queue, c.str("subscription_id"))
	}
}

// endSubscription deletes a closed connection's subscription in the pool
// that holds its queue.
func (s *Server) endSubscription(ctx context.Context, caller service.Caller, queue, id string) *service.Error {
	rt, e := s.svc.RouteQueue(ctx, caller, queue, false, "")
	if e != nil {
		return e
	}
	if rt.Local() {
		return s.svc.DeleteSubscription(ctx, caller, queue, id)
	}
	body, _ := json.Marshal(map[string]string{"queue_name": queue, "subscription_id": id})
	payload, _ := json.Marshal(carriedAction{Caller: caller, Name: queue, Action: "subscription_delete", Body: body, RequestID: raftnode.RequestID(ctx)})
	status, answer, e := s.svc.CallPool(ctx, rt, service.PoolRouteWS, payload)
	if e != nil {
		return e
	}
	var r carriedReply
	if status != http.StatusOK || json.Unmarshal(answer, &r) != nil || r.Status != http.StatusNoContent {
		return &service.Error{Status: http.StatusServiceUnavailable, Title: service.TitleServiceUnavailable,
			Description: "pool " + rt.Pool + " did not delete the subscription"}
	}
	return nil
}
