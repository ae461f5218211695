package wsapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/zaqar-raft/zaqar/auth"
	"github.com/zaqar-raft/zaqar/internal/jsonx"
	"github.com/zaqar-raft/zaqar/service"
)

const schemaFailed = "Schema validation failed."

// handle answers one frame and returns the response document as JSON.
func (c *Conn) handle(ctx context.Context, in inbound) []byte {
	req, err := DecodeRequest(in.enc, in.frame)
	if err != nil {
		var fe *frameError
		msg := err.Error()
		if errors.As(err, &fe) {
			msg = fe.msg
		}
		c.countIn("invalid")
		return c.respond("invalid", nullEcho, reply{http.StatusBadRequest, map[string]any{"error": msg}})
	}
	echo := req.echo()
	var name string
	// A null action is as invalid as a missing or non-string one.
	if jsonx.Kind(req.Action) != '"' || json.Unmarshal(req.Action, &name) != nil {
		c.countIn("invalid")
		return c.respond("invalid", echo, plainError(http.StatusBadRequest, schemaFailed))
	}
	a, known := actions[name]
	// Metric labels are bounded: unknown action names count as "invalid".
	label := name
	if !known && !restOnly[name] && name != "authenticate" {
		label = "invalid"
	}
	c.countIn(label)
	switch {
	case name == "authenticate":
	case restOnly[name]:
		return c.respond(label, echo, plainError(http.StatusNotImplemented, name+" is not available over the websocket; use the REST API (/v2/pools, /v2/flavors)."))
	case !known:
		return c.respond(label, echo, plainError(http.StatusBadRequest, name+" is not a valid action"))
	}
	if req.Headers == nil {
		return c.respond(label, echo, plainError(http.StatusBadRequest, schemaFailed))
	}
	if name == "authenticate" {
		return c.respond(label, echo, c.authenticate(ctx, req))
	}
	clientID, ok1 := headerString(req.Headers, "Client-ID")
	project, ok2 := headerString(req.Headers, "X-Project-ID")
	if !ok1 || !ok2 {
		return c.respond(label, echo, plainError(http.StatusBadRequest, schemaFailed))
	}
	call := &call{conn: c, enc: in.enc, name: name, svc: c.srv.svc, raw: req.Body}
	if msg := call.decodeBody(a); msg != "" {
		return c.respond(label, echo, plainError(http.StatusBadRequest, msg))
	}
	roles, _ := headerString(req.Headers, "X-Roles")
	cred := service.Credentials{
		ClientID: clientID, HasClientID: true, Project: project, HasProject: true,
		Roles: roles, Identity: c.identity.Load(), Signature: signature(req.Headers),
	}
	op := call.operation(a)
	caller, e := c.srv.svc.Admit(ctx, cred, op)
	switch {
	case e == service.ErrSignatureRefused || e == service.ErrNotAuthenticated:
		return c.respond(label, echo, plainError(http.StatusForbidden, "Not authentified."))
	case e != nil:
		return c.respond(label, echo, errorReply(e))
	}
	call.caller = caller
	// A claim that may wait for a message has its wait on top.
	budget := c.srv.cfg.RequestTimeout
	if name == "claim_create" {
		budget += service.ClaimWaitBudget(call.int("wait"))
	}
	rctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	if out, carried := call.route(rctx, a, op); carried {
		return c.respond(label, echo, out)
	}
	return c.respond(label, echo, a.run(rctx, call))
}

// countIn counts a received frame under its action label.
func (c *Conn) countIn(label string) {
	if c.srv.metrics != nil {
		c.srv.metrics.in(label)
	}
}

// authenticate answers the authenticate action (contract §13.5). Without
// Keystone every connection is accepted, so python-zaqarclient's websocket
// transport, which always authenticates first, works. With Keystone the
// token is validated and the connection bound to its identity until the
// token expires, when the connection is closed with 4003; authenticating
// again replaces the token and its timer.
func (c *Conn) authenticate(ctx context.Context, req *Request) reply {
	token, ok := headerString(req.Headers, "X-Auth-Token")
	if !ok {
		return plainError(http.StatusBadRequest, schemaFailed)
	}
	if _, ok := headerString(req.Headers, "X-Project-ID"); !ok {
		return plainError(http.StatusBadRequest, schemaFailed)
	}
	if c.srv.cfg.Auth == nil {
		return reply{http.StatusOK, map[string]any{"message": "Authentified."}}
	}
	id, err := c.srv.cfg.Auth.Validate(ctx, token)
	switch {
	case errors.Is(err, auth.ErrInvalidToken):
		return plainError(http.StatusUnauthorized, "Authentication failed.")
	case err != nil:
		c.srv.log.Warn("websocket token validation failed", "err", err)
		return plainError(http.StatusServiceUnavailable, "The identity service could not be reached. Please try again.")
	}
	c.bind(id)
	return reply{http.StatusOK, map[string]any{"message": "Authentified."}}
}

// bind ties the connection to an identity until its token expires.
func (c *Conn) bind(id *auth.Identity) {
	c.identity.Store(id)
	c.authMu.Lock()
	defer c.authMu.Unlock()
	if c.authTimer != nil {
		c.authTimer.Stop()
	}
	c.authTimer = time.AfterFunc(time.Until(id.ExpiresAt), func() {
		if c.identity.Load() == id {
			c.close(4003, "Authentication expired.")
		}
	})
}

// operation is what the call asks of admission: its policy rule, the
// queue it names, and for message actions what a pre-signed URL must grant
// (contract §13.6: the method, and the queue's messages; upstream did not
// check the queue).
func (c *call) operation(a *action) service.Operation {
	op := service.Operation{Rule: a.rule, Namespace: service.Queues, Method: a.method}
	if _, ok := a.fields["queue_name"]; ok && c.has("queue_name") {
		op.Name = c.str("queue_name")
	}
	if a.method != "" && op.Name != "" {
		op.Resource = op.Namespace.Path(op.Name, "messages")
	}
	return op
}

// signature reads pre-signed URL headers (URL-Paths and URL-Methods are
// JSON arrays here); nil if the request carries none. Arrays that do not
// parse grant nothing.
func signature(h map[string]json.RawMessage) *service.SignedRequest {
	if _, signed := h["URL-Signature"]; !signed {
		return nil
	}
	sig, _ := headerString(h, "URL-Signature")
	expires, _ := headerString(h, "URL-Expires")
	r := &service.SignedRequest{Signature: sig, Expires: expires}
	if json.Unmarshal(h["URL-Paths"], &r.Paths) != nil || json.Unmarshal(h["URL-Methods"], &r.Methods) != nil {
		r.Paths, r.Methods = nil, nil
	}
	return r
}

// decodeBody checks the body against the action's fields and returns a
// frame-level error text, or "".
func (c *call) decodeBody(a *action) string {
	if len(a.fields) == 0 {
		return ""
	}
	if len(c.raw) == 0 || bytes.Equal(bytes.TrimSpace(c.raw), []byte("null")) {
		if len(a.required) > 0 {
			return schemaFailed
		}
		c.body = map[string]json.RawMessage{}
		c.raw = []byte("{}")
		return ""
	}
	if jsonx.Kind(c.raw) != '{' || json.Unmarshal(c.raw, &c.body) != nil {
		return schemaFailed
	}
	for _, f := range a.required {
		if _, ok := c.body[f]; !ok {
			return schemaFailed
		}
	}
	for f, k := range a.fields {
		v, ok := c.body[f]
		if !ok {
			continue
		}
		if !matches(k, v) {
			return schemaFailed
		}
	}
	return ""
}

func matches(k kind, v json.RawMessage) bool {
	switch k {
	case kString:
		return jsonx.Kind(v) == '"'
	case kBool:
		kd := jsonx.Kind(v)
		return kd == 't' || kd == 'f'
	case kArray:
		return jsonx.Kind(v) == '['
	case kStrings:
		var items []json.RawMessage
		if jsonx.Kind(v) != '[' || json.Unmarshal(v, &items) != nil {
			return false
		}
		for _, item := range items {
			if jsonx.Kind(item) != '"' {
				return false
			}
		}
		return true
	case kObject:
		return jsonx.Kind(v) == '{'
	case kInt:
		t := bytes.TrimSpace(v)
		return jsonx.Kind(v) == '0' && !bytes.ContainsAny(t, ".eE")
	}
	return false
}

func headerString(h map[string]json.RawMessage, name string) (string, bool) {
	v, ok := h[name]
	if !ok {
		return "", false
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return "", false
	}
	return s, true
}

// echo is the "request" member of a response: the request as sent.
func (r *Request) echo() []byte {
	part := func(key, def string) json.RawMessage {
		if v, ok := r.raw[key]; ok {
			return v
		}
		return json.RawMessage(def)
	}
	b, _ := json.Marshal(map[string]json.RawMessage{
		"action": part("action", "null"), "body": part("body", "{}"),
		"headers": part("headers", "{}"), "api": json.RawMessage(`"v2"`),
	})
	return b
}

var nullEcho = []byte(`{"action":null,"body":{},"headers":{},"api":"v2"}`)

// respond builds the response document.
func (c *Conn) respond(action string, echo []byte, r reply) []byte {
	body, err := json.Marshal(r.body)
	if err != nil {
		r = plainError(http.StatusInternalServerError, "Unexpected error.")
		body, _ = json.Marshal(r.body)
	}
	if c.srv.metrics != nil {
		c.srv.metrics.out(action, r.status)
	}
	return []byte(fmt.Sprintf(`{"request":%s,"headers":{"status":%d},"body":%s}`, echo, r.status, body))
}
