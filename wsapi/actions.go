package wsapi

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"

	"github.com/zaqar-raft/zaqar/service"
)

// kind is the JSON type a request field must have.
type kind int

const (
	kString kind = iota
	kInt
	kBool
	kArray
	kObject
	// kStrings is an array whose items are all strings (ids): an item of
	// another type would otherwise be read as "" and silently match
	// nothing.
	kStrings
)

// action describes one websocket action: the body fields it accepts (with
// their JSON types), which of them are required, and its handler.
type action struct {
	fields   map[string]kind
	required []string
	// method is the HTTP method a pre-signed URL must grant for the
	// action ("" means the action cannot be performed with a signature).
	method string
	// rule is the policy rule the action is authorized by ("" = open).
	rule string
	run  func(ctx context.Context, c *call) reply
}

// call is one request being handled.
type call struct {
	conn   *Conn
	enc    Encoding // the request frame's encoding
	name   string
	caller service.Caller
	body   map[string]json.RawMessage
	raw    json.RawMessage // the body as sent
	svc    *service.Service
}

// reply is an action's answer before framing.
type reply struct {
	status int
	body   any
}

func errorReply(e *service.Error) reply {
	msg := e.Description
	if msg == "" {
		msg = e.Title
	}
	return reply{status: e.Status, body: map[string]any{"exception": e.Title, "error": msg}}
}

func plainError(status int, msg string) reply {
	return reply{status: status, body: map[string]any{"error": msg}}
}

func (c *call) str(name string) string {
	var s string
	_ = json.Unmarshal(c.body[name], &s)
	return s
}

func (c *call) has(name string) bool {
	v, ok := c.body[name]
	return ok && !bytes.Equal(bytes.TrimSpace(v), []byte("null"))
}

func (c *call) int(name string) *int {
	if !c.has(name) {
		return nil
	}
	var n int
	if json.Unmarshal(c.body[name], &n) != nil {
		return nil
	}
	return &n
}

func (c *call) boolean(name string) bool {
	var b bool
	_ = json.Unmarshal(c.body[name], &b)
	return b
}

func (c *call) strings(name string) []string {
	var out []string
	_ = json.Unmarshal(c.body[name], &out)
	return out
}

var queueField = map[string]kind{"queue_name": kString}

func fields(extra map[string]kind) map[string]kind {
	m := map[string]kind{"queue_name": kString}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

// actions is the action table (contract §13.4).
var actions = map[string]*action{
	"queue_list":      {rule: "queues:get_all", fields: map[string]kind{"marker": kString, "limit": kInt, "detailed": kBool}, run: queueList},
	"queue_create":    {rule: "queues:create", fields: fields(map[string]kind{"metadata": kObject}), required: []string{"queue_name"}, run: queueCreate},
	"queue_delete":    {rule: "queues:delete", fields: queueField, required: []string{"queue_name"}, run: queueDelete},
	"queue_get":       {rule: "queues:get", fields: queueField, required: []string{"queue_name"}, run: queueGet},
	"queue_get_stats": {rule: "queues:stats", fields: queueField, required: []string{"queue_name"}, run: queueStats},
	"queue_purge":     {rule: "queues:purge", fields: fields(map[string]kind{"resource_types": kArray}), required: []string{"queue_name"}, run: queuePurge},

	"message_list": {rule: "messages:get_all", fields: fields(map[string]kind{"marker": kString, "limit": kInt, "echo": kBool, "include_claimed": kBool, "include_delayed": kBool}),
		required: []string{"queue_name"}, method: http.MethodGet, run: messageList},
	"message_get":         {rule: "messages:get", fields: fields(map[string]kind{"message_id": kString}), required: []string{"queue_name", "message_id"}, method: http.MethodGet, run: messageGet},
	"message_get_many":    {rule: "messages:get_all", fields: fields(map[string]kind{"message_ids": kStrings}), required: []string{"queue_name", "message_ids"}, method: http.MethodGet, run: messageGetMany},
	"message_post":        {rule: "messages:create", fields: fields(map[string]kind{"messages": kArray}), required: []string{"queue_name", "messages"}, method: http.MethodPost, run: messagePost},
	"message_delete":      {rule: "messages:delete", fields: fields(map[string]kind{"message_id": kString, "claim_id": kString}), required: []string{"queue_name", "message_id"}, method: http.MethodDelete, run: messageDelete},
	"message_delete_many": {rule: "messages:delete_all", fields: fields(map[string]kind{"message_ids": kStrings, "claim_ids": kStrings, "pop": kInt}), required: []string{"queue_name"}, method: http.MethodDelete, run: messageDeleteMany},

	"claim_create": {rule: "claims:create", fields: fields(map[string]kind{"limit": kInt, "ttl": kInt, "grace": kInt, "wait": kInt}), required: []string{"queue_name"}, run: claimCreate},
	"claim_get":    {rule: "claims:get", fields: fields(map[string]kind{"claim_id": kString}), required: []string{"queue_name", "claim_id"}, run: claimGet},
	"claim_update": {rule: "claims:update", fields: fields(map[string]kind{"claim_id": kString, "ttl": kInt, "grace": kInt}), required: []string{"queue_name", "claim_id"}, run: claimUpdate},
	"claim_delete": {rule: "claims:delete", fields: fields(map[string]kind{"claim_id": kString}), required: []string{"queue_name", "claim_id"}, run: claimDelete},

	"subscription_create": {rule: "subscription:create", fields: fields(map[string]kind{"subscriber": kString, "ttl": kInt, "options": kObject}), required: []string{"queue_name"}, run: subscriptionCreate},
	"subscription_get":    {rule: "subscription:get", fields: fields(map[string]kind{"subscription_id": kString}), required: []string{"queue_name", "subscription_id"}, run: subscriptionGet},
	"subscription_list":   {rule: "subscription:get_all", fields: fields(map[string]kind{"marker": kString, "limit": kInt}), required: []string{"queue_name"}, run: subscriptionList},
	"subscription_delete": {rule: "subscription:delete", fields: fields(map[string]kind{"subscription_id": kString}), required: []string{"queue_name", "subscription_id"}, run: subscriptionDelete},

	"get_home_doc": {run: func(_ context.Context, c *call) reply {
		doc, _ := c.svc.HomeDocumentFor(c.caller)
		return reply{200, json.RawMessage(doc)}
	}},
	"check_node_health": {rule: "health:get", run: nodeHealth},
	"ping_node":         {rule: "ping:get", run: pingNode},
}

// restOnly lists actions that exist in the protocol's schema but that
// upstream never implemented over the websocket: the pool and flavor admin
// API is REST only (/v2/pools, /v2/flavors). They answer 501, never a
// dropped connection.
var restOnly = map[string]bool{
	"pool_list": true, "pool_create": true, "pool_update": true, "pool_get": true, "pool_delete": true,
	"flavor_list": true, "flavor_create": true, "flavor_update": true, "flavor_get": true, "flavor_delete": true,
}

// wsMessage is a message as the websocket API returns it (contract §13.4).
type wsMessage struct {
	ID      string          `json:"id"`
	ClaimID *string         `json:"claim_id"`
	TTL     int64           `json:"ttl"`
	Age     int64           `json:"age"`
	Body    json.RawMessage `json:"body"`
}

// renderMessages shows claimID as every message's claim ("" for null:
// listings do not name claims, claim answers name their own).
func renderMessages(msgs []service.Message, claimID string) []wsMessage {
	out := make([]wsMessage, len(msgs))
	for i, m := range msgs {
		out[i] = renderMessage(m, claimID)
	}
	return out
}

func renderMessage(m service.Message, claimID string) wsMessage {
	w := wsMessage{ID: m.ID, TTL: m.TTL, Age: m.Age, Body: m.Body}
	if claimID != "" {
		cid := claimID
		w.ClaimID = &cid
	}
	return w
}

func queueList(ctx context.Context, c *call) reply {
	o := service.QueueListOptions{Marker: c.str("marker"), Detailed: c.boolean("detailed"), Limit: c.int("limit")}
	list, e := c.svc.ListQueues(ctx, c.caller, o)
	if e != nil {
		return errorReply(e)
	}
	queues := make([]map[string]any, 0, len(list.Queues))
	for _, q := range list.Queues {
		entry := map[string]any{"name": q.Name}
		if o.Detailed {
			entry["metadata"] = q.Metadata
		}
		queues = append(queues, entry)
	}
	return reply{200, map[string]any{"queues": queues}}
}

func queueCreate(ctx context.Context, c *call) reply {
	name := c.str("queue_name")
	var meta []byte
	if c.has("metadata") {
		meta = c.body["metadata"]
	}
	created, e := c.svc.CreateQueue(ctx, c.caller, name, meta)
	if e != nil {
		return errorReply(e)
	}
	status := http.StatusNoContent
	if created {
		status = http.StatusCreated
	}
	return reply{status, "Queue " + name + " created."}
}

func queueDelete(ctx context.Context, c *call) reply {
	name := c.str("queue_name")
	if e := c.svc.DeleteQueue(ctx, c.caller, name); e != nil {
		return errorReply(e)
	}
	return reply{http.StatusNoContent, "Queue " + name + " removed."}
}

func queueGet(ctx context.Context, c *call) reply {
	info, e := c.svc.GetQueue(ctx, c.caller, c.str("queue_name"))
	if e != nil {
		return errorReply(e)
	}
	return reply{200, info.Metadata}
}

func queueStats(ctx context.Context, c *call) reply {
	st, e := c.svc.Stats(ctx, c.caller, c.str("queue_name"))
	if e != nil {
		return errorReply(e)
	}
	msgs := map[string]any{"claimed": st.Claimed, "free": st.Total - st.Claimed, "total": st.Total}
	if !st.Exists {
		return reply{http.StatusNotFound, map[string]any{"messages": msgs}}
	}
	edge := func(m *service.StatsEdge) map[string]any {
		return map[string]any{"id": m.ID, "age": m.Age, "created": m.Created}
	}
	if st.Total > 0 {
		msgs["oldest"] = edge(st.Oldest)
		msgs["newest"] = edge(st.Newest)
	}
	return reply{200, map[string]any{"messages": msgs}}
}

func queuePurge(ctx context.Context, c *call) reply {
	var body []byte
	if c.has("resource_types") {
		body, _ = json.Marshal(map[string]json.RawMessage{"resource_types": c.body["resource_types"]})
	}
	if e := c.svc.PurgeQueue(ctx, c.caller, c.str("queue_name"), body); e != nil {
		return errorReply(e)
	}
	return reply{http.StatusNoContent, map[string]any{}}
}

func messageList(ctx context.Context, c *call) reply {
	o := service.MessageListOptions{
		Marker: c.str("marker"), Echo: c.boolean("echo"), Limit: c.int("limit"),
		IncludeClaimed: c.boolean("include_claimed"), IncludeDelayed: c.boolean("include_delayed"),
	}
	list, e := c.svc.ListMessages(ctx, c.caller, c.str("queue_name"), o)
	if e != nil {
		return errorReply(e)
	}
	body := map[string]any{"messages": renderMessages(list.Messages, "")}
	if list.Marker != "" {
		// Not in upstream's websocket API, which offers no way to page:
		// pass it back as "marker" to get the next page.
		body["marker"] = list.Marker
	}
	return reply{200, body}
}

func messageGet(ctx context.Context, c *call) reply {
	m, e := c.svc.GetMessage(ctx, c.caller, c.str("queue_name"), c.str("message_id"))
	if e != nil {
		return errorReply(e)
	}
	return reply{200, map[string]any{"messages": renderMessage(m, "")}}
}

func messageGetMany(ctx context.Context, c *call) reply {
	msgs, e := c.svc.GetMessages(ctx, c.caller, c.str("queue_name"), c.strings("message_ids"))
	if e != nil {
		return errorReply(e)
	}
	return reply{200, map[string]any{"messages": renderMessages(msgs, "")}}
}

func messagePost(ctx context.Context, c *call) reply {
	// The same document REST receives, so size limits and validation are
	// applied to the same bytes (its JSON length, as decided in §13.4).
	doc, _ := json.Marshal(map[string]json.RawMessage{"messages": c.body["messages"]})
	ids, e := c.svc.PostMessages(ctx, c.caller, c.str("queue_name"), doc)
	if e != nil {
		return errorReply(e)
	}
	return reply{http.StatusCreated, map[string]any{"message_ids": ids}}
}

func messageDelete(ctx context.Context, c *call) reply {
	if e := c.svc.DeleteMessage(ctx, c.caller, c.str("queue_name"), c.str("message_id"), c.str("claim_id")); e != nil {
		return errorReply(e)
	}
	return reply{http.StatusNoContent, map[string]any{}}
}

func messageDeleteMany(ctx context.Context, c *call) reply {
	var req service.BulkDelete
	if c.has("message_ids") {
		req.IDs = c.strings("message_ids")
		if req.IDs == nil {
			req.IDs = []string{}
		}
	}
	if c.has("claim_ids") {
		req.ClaimIDs = c.strings("claim_ids")
	}
	if p := c.int("pop"); p != nil {
		req.Pop, req.HasPop = *p, true
	}
	popped, e := c.svc.DeleteMessages(ctx, c.caller, c.str("queue_name"), req)
	if e != nil {
		return errorReply(e)
	}
	if req.HasPop {
		return reply{200, map[string]any{"messages": popped}}
	}
	return reply{http.StatusNoContent, map[string]any{}}
}

func claimCreate(ctx context.Context, c *call) reply {
	p, e := c.svc.ParseClaimBody(c.raw, false)
	if e != nil {
		return errorReply(e)
	}
	p.Wait = c.int("wait")
	res, e := c.svc.CreateClaim(ctx, c.caller, c.str("queue_name"), c.int("limit"), p)
	if e != nil {
		return errorReply(e)
	}
	if res.ID == "" {
		return reply{http.StatusNoContent, map[string]any{"claim_id": nil}}
	}
	return reply{http.StatusCreated, map[string]any{"claim_id": res.ID, "messages": renderMessages(res.Messages, res.ID)}}
}

func claimGet(ctx context.Context, c *call) reply {
	res, e := c.svc.GetClaim(ctx, c.caller, c.str("queue_name"), c.str("claim_id"))
	if e != nil {
		return errorReply(e)
	}
	return reply{200, map[string]any{"age": res.Age, "ttl": res.TTL, "messages": renderMessages(res.Messages, res.ID)}}
}

func claimUpdate(ctx context.Context, c *call) reply {
	p, e := c.svc.ParseClaimBody(c.raw, false)
	if e != nil {
		return errorReply(e)
	}
	cid := c.str("claim_id")
	if e := c.svc.RenewClaim(ctx, c.caller, c.str("queue_name"), cid, p); e != nil {
		return errorReply(e)
	}
	return reply{http.StatusNoContent, "Claim " + cid + " updated."}
}

func claimDelete(ctx context.Context, c *call) reply {
	cid := c.str("claim_id")
	if e := c.svc.ReleaseClaim(ctx, c.caller, c.str("queue_name"), cid); e != nil {
		return errorReply(e)
	}
	return reply{http.StatusNoContent, "Claim " + cid + " deleted."}
}

func nodeHealth(ctx context.Context, c *call) reply {
	rep, e := c.svc.Health(ctx, c.caller)
	if e != nil {
		return errorReply(e)
	}
	return reply{200, rep}
}

func pingNode(ctx context.Context, c *call) reply {
	if e := c.svc.Ping(ctx); e != nil {
		return errorReply(e)
	}
	return reply{http.StatusNoContent, map[string]any{}}
}
