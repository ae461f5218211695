package wsapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/zaqar-raft/zaqar/internal/ids"
	"github.com/zaqar-raft/zaqar/testkit/testcluster"
	"github.com/zaqar-raft/zaqar/wsapi"
)

// ioTimeout bounds every single websocket read or write of a test client.
const ioTimeout = 30 * time.Second

// newUUID returns a random dashed UUID.
func newUUID() string {
	h := ids.New()
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// newProject returns a project name no other subtest uses.
func newProject() string { return "ws-" + ids.New()[:16] }

// wsClient is one websocket connection to one node, speaking as one
// caller (Client-ID and project) in one encoding.
type wsClient struct {
	t        *testing.T
	conn     *websocket.Conn
	enc      wsapi.Encoding
	node     string
	clientID string
	project  string
}

// dialURL opens a websocket connection to url. enc is the encoding of the
// frames the client sends (and expects back).
func dialURL(t *testing.T, url, node string, enc wsapi.Encoding) *wsClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatalf("dial %s (%s): %v", url, node, err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("dial %s: HTTP %d, want 101", url, resp.StatusCode)
	}
	conn.SetReadLimit(64 << 20)
	t.Cleanup(func() { _ = conn.CloseNow() })
	return &wsClient{t: t, conn: conn, enc: enc, node: node, clientID: newUUID(), project: newProject()}
}

// dial connects to the websocket API of a cluster node (ws://<api>/).
func dial(t *testing.T, n *testcluster.Node, role string, enc wsapi.Encoding) *wsClient {
	t.Helper()
	return dialURL(t, "ws://"+n.APIAddr+"/", n.ID+"("+role+")", enc)
}

// on returns the client for use in (sub)test t.
func (c *wsClient) on(t *testing.T) *wsClient {
	cp := *c
	cp.t = t
	return &cp
}

// as returns a client on the same connection that sends another Client-ID.
func (c *wsClient) as(clientID string) *wsClient {
	cp := *c
	cp.clientID = clientID
	return &cp
}

// inProject returns a client on the same connection that sends another
// project.
func (c *wsClient) inProject(project string) *wsClient {
	cp := *c
	cp.project = project
	return &cp
}

// headers are the request headers the client sends: its Client-ID and
// project, plus extra (a nil value removes a header).
func (c *wsClient) headers(extra map[string]any) map[string]any {
	h := map[string]any{"Client-ID": c.clientID, "X-Project-ID": c.project}
	for k, v := range extra {
		if v == nil {
			delete(h, k)
		} else {
			h[k] = v
		}
	}
	return h
}

// frame builds a request frame as JSON text: body is a JSON document, or
// "" for a frame without a body.
func (c *wsClient) frame(action string, body string, extra map[string]any) string {
	c.t.Helper()
	h, err := json.Marshal(c.headers(extra))
	if err != nil {
		c.t.Fatal(err)
	}
	a, _ := json.Marshal(action)
	f := `{"action": ` + string(a) + `, "headers": ` + string(h)
	if body != "" {
		f += `, "body": ` + body
	}
	return f + "}"
}

// sendJSON sends a frame given as JSON text in the client's encoding.
func (c *wsClient) sendJSON(frame string) {
	c.t.Helper()
	if c.enc == wsapi.JSON {
		c.sendRaw(websocket.MessageText, []byte(frame))
		return
	}
	b, err := wsapi.EncodeMsgPack(jsonValue(c.t, frame))
	if err != nil {
		c.t.Fatalf("encode MessagePack: %v", err)
	}
	c.sendRaw(websocket.MessageBinary, b)
}

// sendRaw sends one frame exactly as given.
func (c *wsClient) sendRaw(typ websocket.MessageType, b []byte) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	if err := c.conn.Write(ctx, typ, b); err != nil {
		c.t.Fatalf("write to %s: %v", c.node, err)
	}
}

// recv reads one response frame. A response must come in the encoding of
// the client's requests; a MessagePack response is a map of three keys.
func (c *wsClient) recv(what string) *wsReply {
	c.t.Helper()
	if len(what) > 200 {
		what = what[:200] + "..."
	}
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	typ, b, err := c.conn.Read(ctx)
	if err != nil {
		c.t.Fatalf("%s on %s: read: %v", what, c.node, err)
	}
	doc := b
	switch c.enc {
	case wsapi.JSON:
		if typ != websocket.MessageText {
			c.t.Fatalf("%s on %s: got a %v frame, want text", what, c.node, typ)
		}
	case wsapi.MsgPack:
		if typ != websocket.MessageBinary {
			c.t.Fatalf("%s on %s: got a %v frame %q, want binary", what, c.node, typ, b)
		}
		if len(b) == 0 || b[0] != 0x83 { // fixmap of 3 entries
			c.t.Fatalf("%s on %s: binary frame does not start with a 3-entry MessagePack map: % x", what, c.node, b[:min(len(b), 16)])
		}
		if doc, err = wsapi.DecodeMsgPack(b); err != nil {
			c.t.Fatalf("%s on %s: undecodable MessagePack response: %v", what, c.node, err)
		}
	}
	var env struct {
		Request json.RawMessage `json:"request"`
		Headers struct {
			Status *int `json:"status"`
		} `json:"headers"`
		Body json.RawMessage `json:"body"`
	}
	if err := json.Unmarshal(doc, &env); err != nil || env.Headers.Status == nil || env.Request == nil || env.Body == nil {
		c.t.Fatalf("%s on %s: response is not a {request, headers.status, body} envelope (%v): %s", what, c.node, err, doc)
	}
	var top map[string]json.RawMessage
	_ = json.Unmarshal(doc, &top)
	wantKeys(c.t, what+": response", top, "request", "headers", "body")
	return &wsReply{t: c.t, what: what + " on " + c.node, Request: env.Request, Status: *env.Headers.Status, Body: env.Body, Doc: doc}
}

// call sends an action with a body ("" = none) and reads its response;
// extra headers are added to (or, with nil values, removed from) the
// client's.
func (c *wsClient) call(action, body string, extra ...map[string]any) *wsReply {
	c.t.Helper()
	var h map[string]any
	if len(extra) > 0 {
		h = extra[0]
	}
	return c.callFrame(c.frame(action, body, h))
}

// callFrame sends a frame given as JSON text (in the client's encoding)
// and reads the response.
func (c *wsClient) callFrame(frame string) *wsReply {
	c.t.Helper()
	c.sendJSON(frame)
	r := c.recv(frame)
	r.sent = frame
	return r
}

// expect calls an action and fails the test unless it gets status.
func (c *wsClient) expect(status int, action, body string, extra ...map[string]any) *wsReply {
	c.t.Helper()
	return c.call(action, body, extra...).status(status)
}

// wsReply is one response frame, decoded.
type wsReply struct {
	t       *testing.T
	what    string
	sent    string // the request frame as JSON
	Request json.RawMessage
	Status  int
	Body    json.RawMessage
	Doc     []byte // the whole response as JSON
}

func (r *wsReply) status(want int) *wsReply {
	r.t.Helper()
	if r.Status != want {
		r.t.Fatalf("%s: status %d, want %d; body: %s", r.what, r.Status, want, r.Body)
	}
	return r
}

// echoes checks that the response's request member is the request as
// sent, with "api": "v2" added and an absent body echoed as {}.
func (r *wsReply) echoes() *wsReply {
	r.t.Helper()
	var sent map[string]any
	if err := json.Unmarshal([]byte(r.sent), &sent); err != nil {
		r.t.Fatalf("%s: sent frame is not JSON: %v", r.what, err)
	}
	want := map[string]any{"action": nil, "headers": map[string]any{}, "body": map[string]any{}, "api": "v2"}
	for _, k := range []string{"action", "headers", "body"} {
		if v, ok := sent[k]; ok {
			want[k] = v
		}
	}
	wb, _ := json.Marshal(want)
	jsonEqual(r.t, r.what+": request echo", r.Request, string(wb))
	return r
}

// decode decodes the body into v.
func (r *wsReply) decode(v any) {
	r.t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		r.t.Fatalf("%s: body is not the expected JSON (%v): %s", r.what, err, r.Body)
	}
}

// object decodes the body as an object of raw values.
func (r *wsReply) object() map[string]json.RawMessage {
	r.t.Helper()
	var m map[string]json.RawMessage
	r.decode(&m)
	return m
}

// bodyIs checks that the body is the JSON value want.
func (r *wsReply) bodyIs(want string) *wsReply {
	r.t.Helper()
	jsonEqual(r.t, r.what+": body", r.Body, want)
	return r
}

// errorIs checks that the body is exactly {"error": msg}.
func (r *wsReply) errorIs(msg string) *wsReply {
	r.t.Helper()
	b, _ := json.Marshal(map[string]string{"error": msg})
	return r.bodyIs(string(b))
}

// apiError checks that the body is an action error with the service
// error's title as "exception" and its description as "error".
func (r *wsReply) apiError(exception, msg string) *wsReply {
	r.t.Helper()
	b, _ := json.Marshal(map[string]string{"exception": exception, "error": msg})
	return r.bodyIs(string(b))
}

// jsonValue parses a JSON document into Go values with integers as int64
// (so MessagePack encodes them as integers).
func jsonValue(t *testing.T, doc string) any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("bad JSON in test: %v: %s", err, doc)
	}
	var conv func(any) any
	conv = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				x[k] = conv(e)
			}
		case []any:
			for i, e := range x {
				x[i] = conv(e)
			}
		case json.Number:
			if n, err := x.Int64(); err == nil {
				return n
			}
			f, _ := x.Float64()
			return f
		}
		return v
	}
	return conv(v)
}

// jsonEqual fails unless got and want are the same JSON value.
func jsonEqual(t *testing.T, what string, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: not JSON (%v): %s", what, err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("%s: bad expectation (%v): %s", what, err, want)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("%s:\n got %s\nwant %s", what, got, want)
	}
}

// wantKeys fails unless m has exactly the given keys.
func wantKeys[V any](t *testing.T, what string, m map[string]V, want ...string) {
	t.Helper()
	got := make([]string, 0, len(m))
	for k := range m {
		got = append(got, k)
	}
	sort.Strings(got)
	sort.Strings(want)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: keys %v, want %v", what, got, want)
	}
}

// quote returns s as a JSON string.
func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// jsonList returns ids as a JSON array of strings.
func jsonList(ids ...string) string {
	b, _ := json.Marshal(ids)
	return string(b)
}

// wsMessage is a message as the websocket API returns it.
type wsMessage struct {
	ID      string          `json:"id"`
	ClaimID *string         `json:"claim_id"`
	TTL     int64           `json:"ttl"`
	Age     int64           `json:"age"`
	Body    json.RawMessage `json:"body"`
}

// messages decodes {"messages": [...]} and checks every message has
// exactly the websocket message keys.
func (r *wsReply) messages() []wsMessage {
	r.t.Helper()
	var raw struct {
		Messages []map[string]json.RawMessage `json:"messages"`
	}
	r.decode(&raw)
	for _, m := range raw.Messages {
		wantKeys(r.t, r.what+": message", m, "id", "claim_id", "ttl", "age", "body")
	}
	var doc struct {
		Messages []wsMessage `json:"messages"`
	}
	r.decode(&doc)
	return doc.Messages
}

// messageIDs returns the ids of msgs.
func messageIDs(msgs []wsMessage) []string {
	out := []string{}
	for _, m := range msgs {
		out = append(out, m.ID)
	}
	return out
}

// sameIDs fails unless got and want are the same ids in the same order.
func sameIDs(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: ids %v, want %v", what, got, want)
	}
}

// post posts messages with the given JSON bodies to queue and returns
// their ids.
func (c *wsClient) post(queue string, bodies ...string) []string {
	c.t.Helper()
	items := make([]string, len(bodies))
	for i, b := range bodies {
		items[i] = `{"body": ` + b + `}`
	}
	r := c.expect(http.StatusCreated, "message_post", `{"queue_name": `+quote(queue)+`, "messages": [`+strings.Join(items, ",")+`]}`)
	var doc struct {
		MessageIDs []string `json:"message_ids"`
	}
	r.decode(&doc)
	if len(doc.MessageIDs) != len(bodies) {
		c.t.Fatalf("posted %d messages, got ids %v", len(bodies), doc.MessageIDs)
	}
	return doc.MessageIDs
}

// restDo sends a REST request to a node as the client's caller and
// returns the status and body.
func (c *wsClient) restDo(base, method, path, body string) (int, []byte) {
	c.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Client-ID", c.clientID)
	req.Header.Set("X-Project-ID", c.project)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// metrics scrapes a node's /metrics and returns the value of every sample
// ("name{labels}" → value).
func metrics(t *testing.T, n *testcluster.Node) map[string]float64 {
	t.Helper()
	resp, err := http.Get(n.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		i := bytes.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(string(line[i+1:]), 64)
		if err != nil {
			continue
		}
		out[string(line[:i])] = v
	}
	return out
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf(format, args...)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// encodings are both frame encodings, for table tests.
var encodings = []wsapi.Encoding{wsapi.JSON, wsapi.MsgPack}

// encName names an encoding in subtest names.
func encName(e wsapi.Encoding) string {
	if e == wsapi.MsgPack {
		return "MessagePack"
	}
	return "JSON"
}
