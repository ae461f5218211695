package httpapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/zaqar-raft/zaqar/internal/ids"
	"github.com/zaqar-raft/zaqar/testkit/testcluster"
)

// convergeTimeout bounds every wait for the nodes to hold identical state.
const convergeTimeout = 15 * time.Second

// suite is one real three-node cluster shared by the subtests of one
// top-level test (one per file): starting a cluster is the expensive part.
type suite struct {
	c    *testcluster.Cluster
	http *http.Client
}

// startSuite starts a three-node cluster for t and its subtests.
func startSuite(t *testing.T, opts ...testcluster.Option) *suite {
	t.Helper()
	s := &suite{
		c:    testcluster.Start(t, 3, opts...),
		http: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}},
	}
	t.Cleanup(s.http.CloseIdleConnections)
	return s
}

// run runs one subtest and then, from the parent's goroutine, waits until
// every node has applied the same log and holds byte-identical state.
func (s *suite) run(t *testing.T, name string, fn func(t *testing.T, n nodes)) {
	t.Helper()
	if !t.Run(name, func(t *testing.T) { fn(t, s.nodes(t)) }) {
		return
	}
	t.Logf("%s: waiting for convergence", name)
	s.c.WaitConverged(convergeTimeout)
}

// nodes are clients of the three nodes for one caller (a fresh project and
// Client-ID per subtest, so subtests never see each other's queues).
type nodes struct {
	leader, f1, f2 *client
	// all is leader, f1, f2; rr hands them out in turn.
	all []*client
	rr  *int
}

func (s *suite) nodes(t *testing.T) nodes {
	t.Helper()
	leader := s.c.Leader()
	followers := s.c.Followers()
	if len(followers) != 2 {
		t.Fatalf("want 2 followers, have %d", len(followers))
	}
	project := "p-" + ids.New()[:16]
	cid := newUUID()
	mk := func(n *testcluster.Node, role string) *client {
		return &client{t: t, http: s.http, base: n.URL(), node: n.ID + "(" + role + ")", project: project, clientID: cid}
	}
	n := nodes{leader: mk(leader, "leader"), f1: mk(followers[0], "follower"), f2: mk(followers[1], "follower"), rr: new(int)}
	n.all = []*client{n.leader, n.f1, n.f2}
	return n
}

// next returns the nodes' clients in turn (leader, f1, f2, leader, ...).
func (n nodes) next() *client {
	c := n.all[*n.rr%len(n.all)]
	*n.rr++
	return c
}

// newUUID returns a random dashed UUID.
func newUUID() string {
	h := ids.New()
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// client sends REST requests to one node as one caller: every request
// carries Client-ID, X-Project-ID and Content-Type: application/json
// unless an option changes them.
type client struct {
	t        *testing.T
	http     *http.Client
	base     string
	node     string
	project  string
	clientID string
}

// as returns a copy of c that sends another Client-ID.
func (c *client) as(clientID string) *client {
	cp := *c
	cp.clientID = clientID
	return &cp
}

// inProject returns a copy of c that sends another project.
func (c *client) inProject(project string) *client {
	cp := *c
	cp.project = project
	return &cp
}

// opt changes a request before it is sent.
type opt func(*http.Request)

// hdr sets a request header (an empty value is sent as an empty header).
func hdr(name, value string) opt { return func(r *http.Request) { r.Header.Set(name, value) } }

// without removes a request header.
func without(name string) opt { return func(r *http.Request) { r.Header.Del(name) } }

// bare removes every default header.
func bare() opt {
	return func(r *http.Request) {
		r.Header.Del("Client-ID")
		r.Header.Del("X-Project-ID")
		r.Header.Del("Content-Type")
	}
}

// patchType sets the queue PATCH media type.
func patchType() opt { return hdr("Content-Type", "application/openstack-messaging-v2.0-json-patch") }

// chunked hides the body's length so it is sent with chunked encoding.
func chunked() opt {
	return func(r *http.Request) {
		if r.Body != nil {
			r.ContentLength = -1
			b := r.Body
			r.Body = io.NopCloser(struct{ io.Reader }{b})
		}
	}
}

// reply is a response, read to the end.
type reply struct {
	t      *testing.T
	what   string
	Status int
	Header http.Header
	Body   []byte
}

// do sends a request. body is nil (no body), a string or []byte (sent
// as is) or anything else (sent as JSON).
func (c *client) do(method, path string, body any, opts ...opt) *reply {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			c.t.Fatalf("encode body: %v", err)
		}
		rd = bytes.NewReader(enc)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	r, err := c.exchange(req, path, opts)
	if err != nil {
		c.t.Fatalf("%s %s on %s: %v", method, path, c.node, err)
	}
	return r
}

// exchange sends req with the client's Client-ID, project and JSON content
// type (then opts), and reads the whole answer.
func (c *client) exchange(req *http.Request, path string, opts []opt) (*reply, error) {
	req.Header.Set("Client-ID", c.clientID)
	req.Header.Set("X-Project-ID", c.project)
	req.Header.Set("Content-Type", "application/json")
	for _, o := range opts {
		o(req)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	return &reply{t: c.t, what: fmt.Sprintf("%s %s on %s", req.Method, path, c.node), Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// expect sends a request and fails the test unless it gets status.
func (c *client) expect(status int, method, path string, body any, opts ...opt) *reply {
	c.t.Helper()
	r := c.do(method, path, body, opts...)
	r.status(status)
	return r
}

func (r *reply) status(want int) *reply {
	r.t.Helper()
	if r.Status != want {
		r.t.Fatalf("%s: status %d, want %d; body: %s", r.what, r.Status, want, r.Body)
	}
	return r
}

// decode decodes the JSON body into v.
func (r *reply) decode(v any) {
	r.t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		r.t.Fatalf("%s: body is not the expected JSON (%v): %s", r.what, err, r.Body)
	}
}

// object decodes the body as a JSON object.
func (r *reply) object() map[string]any {
	r.t.Helper()
	var m map[string]any
	r.decode(&m)
	return m
}

// raw decodes the body as a JSON object of raw values.
func (r *reply) raw() map[string]json.RawMessage {
	r.t.Helper()
	var m map[string]json.RawMessage
	r.decode(&m)
	return m
}

// empty checks that the body is empty (204 responses).
func (r *reply) empty() *reply {
	r.t.Helper()
	if len(r.Body) != 0 {
		r.t.Fatalf("%s: want an empty body, got %q", r.what, r.Body)
	}
	return r
}

// apiError checks that the body is exactly a Zaqar error document with
// title and description ("" = no description key).
func (r *reply) apiError(title, description string) *reply {
	r.t.Helper()
	want := map[string]any{"title": title}
	if description != "" {
		want["description"] = description
	}
	got := r.object()
	if !reflect.DeepEqual(got, want) {
		r.t.Fatalf("%s: error body %s, want %v", r.what, r.Body, want)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		r.t.Fatalf("%s: error Content-Type %q", r.what, ct)
	}
	return r
}

// errorLike checks the title and that the description is not empty and
// contains part.
func (r *reply) errorLike(title, part string) *reply {
	r.t.Helper()
	var got struct {
		Title       string `json:"title"`
		Description string `json:"description"`
	}
	r.decode(&got)
	if got.Title != title || got.Description == "" || !strings.Contains(got.Description, part) {
		r.t.Fatalf("%s: error body %s, want title %q and a description containing %q", r.what, r.Body, title, part)
	}
	return r
}

// keys returns the sorted keys of a JSON object.
func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// wantKeys fails unless m has exactly the given keys.
func wantKeys[V any](t *testing.T, what string, m map[string]V, want ...string) {
	t.Helper()
	sort.Strings(want)
	if got := keys(m); !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: keys %v, want %v", what, got, want)
	}
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

// message is a message as list/get/claim return it.
type message struct {
	ID   string          `json:"id"`
	Href string          `json:"href"`
	TTL  int64           `json:"ttl"`
	Age  int64           `json:"age"`
	Body json.RawMessage `json:"body"`
}

// messagePage is a message list page.
type messagePage struct {
	Messages []message `json:"messages"`
	Links    []struct {
		Rel  string `json:"rel"`
		Href string `json:"href"`
	} `json:"links"`
}

// post posts bodies (raw JSON values) to queue and returns their ids.
func (c *client) post(queue string, bodies ...string) []string {
	c.t.Helper()
	items := make([]string, len(bodies))
	for i, b := range bodies {
		items[i] = `{"body": ` + b + `}`
	}
	r := c.expect(http.StatusCreated, "POST", "/v2/queues/"+queue+"/messages", `{"messages": [`+strings.Join(items, ",")+`]}`)
	return resourceIDs(r)
}

// resourceIDs returns the ids of a post response's resources.
func resourceIDs(r *reply) []string {
	r.t.Helper()
	var doc struct {
		Resources []string `json:"resources"`
	}
	r.decode(&doc)
	out := make([]string, len(doc.Resources))
	for i, href := range doc.Resources {
		out[i] = href[strings.LastIndex(href, "/")+1:]
	}
	return out
}

// list lists queue messages with the query string q ("" for none).
func (c *client) list(queue, q string) messagePage {
	c.t.Helper()
	path := "/v2/queues/" + queue + "/messages"
	if q != "" {
		path += "?" + q
	}
	var page messagePage
	c.expect(http.StatusOK, "GET", path, nil).decode(&page)
	return page
}

// claim claims messages of queue and returns the claim id ("" on 204)
// and the claimed messages.
func (c *client) claim(queue, query, body string) (string, []message) {
	c.t.Helper()
	path := "/v2/queues/" + queue + "/claims"
	if query != "" {
		path += "?" + query
	}
	r := c.do("POST", path, body)
	if r.Status == http.StatusNoContent {
		r.empty()
		return "", nil
	}
	r.status(http.StatusCreated)
	loc := r.Header.Get("Location")
	prefix := "/v2/queues/" + queue + "/claims/"
	if !strings.HasPrefix(loc, prefix) {
		c.t.Fatalf("claim Location %q, want prefix %q", loc, prefix)
	}
	var doc struct {
		Messages []message `json:"messages"`
	}
	r.decode(&doc)
	return strings.TrimPrefix(loc, prefix), doc.Messages
}

// messageIDs returns the ids of msgs.
func messageIDs(msgs []message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.ID
	}
	return out
}

// sameIDs fails unless got and want list the same ids in the same order.
func sameIDs(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: ids %v, want %v", what, got, want)
	}
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
