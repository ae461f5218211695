package notify_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zaqar-raft/zaqar/internal/ids"
	"github.com/zaqar-raft/zaqar/testkit/testcluster"
)

// deliveryTimeout bounds every wait for a notification on this loaded,
// shared machine; deliveries normally take milliseconds.
const deliveryTimeout = 30 * time.Second

// newUUID returns a random dashed UUID (a valid Client-ID).
func newUUID() string {
	h := ids.New()
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// api sends REST requests to one base URL as one caller.
type api struct {
	t        testing.TB
	http     *http.Client
	base     string
	project  string
	clientID string
}

// clientsOf returns one api client per running node of c, in node order,
// all for the same project and Client-ID.
func clientsOf(t testing.TB, c *testcluster.Cluster, project string) []*api {
	t.Helper()
	hc := &http.Client{Timeout: 20 * time.Second}
	t.Cleanup(hc.CloseIdleConnections)
	cid := newUUID()
	var out []*api
	for _, n := range c.Nodes {
		if n.Server != nil {
			out = append(out, &api{t: t, http: hc, base: n.URL(), project: project, clientID: cid})
		}
	}
	return out
}

// on returns a client of the node n for the same caller.
func (a *api) on(n *testcluster.Node) *api {
	cp := *a
	cp.base = n.URL()
	return &cp
}

// response is a REST answer read in full.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// request sends method path with body (nil, string, []byte or a value sent
// as JSON) and extra headers given as name, value pairs.
func (a *api) request(method, path string, body any, headers ...string) (*response, error) {
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
			return nil, err
		}
		rd = bytes.NewReader(enc)
	}
	req, err := http.NewRequest(method, a.base+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Client-ID", a.clientID)
	req.Header.Set("X-Project-ID", a.project)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &response{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// expect sends a request and fails the test unless the answer has status.
func (a *api) expect(status int, method, path string, body any, headers ...string) *response {
	a.t.Helper()
	r, err := a.request(method, path, body, headers...)
	if err != nil {
		a.t.Fatalf("%s %s on %s: %v", method, path, a.base, err)
	}
	if r.Status != status {
		a.t.Fatalf("%s %s on %s: status %d, want %d; body %s", method, path, a.base, r.Status, status, r.Body)
	}
	return r
}

// subscribe creates a subscription under collection (/v2/queues/q or
// /v2/topics/t) and returns its id.
func (a *api) subscribe(collection string, body any) string {
	a.t.Helper()
	var out struct {
		ID string `json:"subscription_id"`
	}
	r := a.expect(http.StatusCreated, "POST", collection+"/subscriptions", body)
	if err := json.Unmarshal(r.Body, &out); err != nil || out.ID == "" {
		a.t.Fatalf("subscribe: %v in %s", err, r.Body)
	}
	return out.ID
}

// post posts messages (raw JSON message objects) to collection and
// returns the message ids.
func (a *api) post(collection string, messages ...string) []string {
	a.t.Helper()
	r := a.expect(http.StatusCreated, "POST", collection+"/messages", `{"messages": [`+strings.Join(messages, ", ")+`]}`)
	var out struct {
		Resources []string `json:"resources"`
	}
	if err := json.Unmarshal(r.Body, &out); err != nil || len(out.Resources) != len(messages) {
		a.t.Fatalf("post: %v in %s", err, r.Body)
	}
	return out.Resources
}

// delivery is one request a receiver got.
type delivery struct {
	At     time.Time
	Method string
	Path   string
	Header http.Header
	Body   []byte
}

// receiver is a real HTTP webhook endpoint. Its answer to the n-th
// request (0-based) is respond(n, request); nil answers 204.
type receiver struct {
	t       testing.TB
	srv     *httptest.Server
	respond func(n int, d delivery) int

	mu       sync.Mutex
	got      []delivery
	location string // sent as Location when set (redirectTo)
	wake     chan struct{}
}

// redirectTo makes the receiver's answers carry Location: url (give it a
// 3xx status to make them redirects).
func (r *receiver) redirectTo(url string) {
	r.mu.Lock()
	r.location = url
	r.mu.Unlock()
}

// newReceiver starts a receiver on a fresh loopback port.
func newReceiver(t testing.TB, respond func(n int, d delivery) int) *receiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return startReceiver(t, ln, respond)
}

// startReceiver serves a receiver on ln.
func startReceiver(t testing.TB, ln net.Listener, respond func(n int, d delivery) int) *receiver {
	t.Helper()
	r := &receiver{t: t, respond: respond, wake: make(chan struct{}, 1)}
	r.srv = httptest.NewUnstartedServer(http.HandlerFunc(r.serve))
	r.srv.Listener.Close()
	r.srv.Listener = ln
	r.srv.Start()
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	d := delivery{At: time.Now(), Method: req.Method, Path: req.URL.Path, Header: req.Header.Clone(), Body: body}
	r.mu.Lock()
	n := len(r.got)
	r.got = append(r.got, d)
	location := r.location
	r.mu.Unlock()
	status := http.StatusNoContent
	if r.respond != nil {
		status = r.respond(n, d)
	}
	if location != "" {
		w.Header().Set("Location", location)
	}
	w.WriteHeader(status)
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// URL returns the receiver's URL for path ("/hook").
func (r *receiver) URL(path string) string { return r.srv.URL + path }

// deliveries returns what the receiver got so far.
func (r *receiver) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.got...)
}

// waitFor waits until cond holds for the deliveries so far.
func (r *receiver) waitFor(timeout time.Duration, what string, cond func([]delivery) bool) []delivery {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := r.deliveries()
		if cond(got) {
			return got
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("waiting %s for %s; the receiver got %d requests: %s", timeout, what, len(got), summarize(got))
		}
		select {
		case <-r.wake:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitCount waits until the receiver got at least n requests.
func (r *receiver) waitCount(n int) []delivery {
	r.t.Helper()
	return r.waitFor(deliveryTimeout, fmt.Sprintf("%d requests", n), func(d []delivery) bool { return len(d) >= n })
}

// waitBody waits until a request whose JSON body's "body" member equals
// want (raw JSON) arrived, and returns all requests so far.
func (r *receiver) waitBody(want string) []delivery {
	r.t.Helper()
	return r.waitFor(deliveryTimeout, "a notification of "+want, func(ds []delivery) bool {
		for _, d := range ds {
			if sameJSON(messageBody(d.Body), want) {
				return true
			}
		}
		return false
	})
}

func summarize(ds []delivery) string {
	var parts []string
	for i, d := range ds {
		if i == 20 {
			parts = append(parts, fmt.Sprintf("... and %d more", len(ds)-20))
			break
		}
		parts = append(parts, fmt.Sprintf("[%s %s %s]", d.Method, d.Path, d.Body))
	}
	return strings.Join(parts, " ")
}

// messageBody returns the raw "body" member of a notification payload
// ("" if there is none).
func messageBody(payload []byte) string {
	var p map[string]json.RawMessage
	if json.Unmarshal(payload, &p) != nil {
		return ""
	}
	return string(p["body"])
}

// sameJSON reports whether a and b are the same JSON value.
func sameJSON(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// jsonEqual fails unless got is the JSON value want.
func jsonEqual(t testing.TB, what string, got []byte, want string) {
	t.Helper()
	if !sameJSON(string(got), want) {
		t.Fatalf("%s:\n got %s\nwant %s", what, got, want)
	}
}

// keysOf returns the sorted keys of a JSON object.
func keysOf(t testing.TB, doc []byte) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatalf("not a JSON object (%v): %s", err, doc)
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// metricSum adds up the samples of a metric whose labels include every
// name=value pair in labels, over the /metrics of every running node.
func metricSum(t testing.TB, c *testcluster.Cluster, name string, labels ...string) float64 {
	t.Helper()
	total := 0.0
	for _, n := range c.Nodes {
		if n.Server == nil {
			continue
		}
		resp, err := http.Get(n.URL() + "/metrics")
		if err != nil {
			t.Fatalf("GET /metrics on %s: %v", n.ID, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("read /metrics on %s: %v", n.ID, err)
		}
		total += sampleSum(string(b), name, labels...)
	}
	return total
}

// sampleSum parses Prometheus text exposition and sums the matching
// samples.
func sampleSum(text, name string, labels ...string) float64 {
	total := 0.0
	for _, line := range strings.Split(text, "\n") {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		set := ""
		if rest[0] == '{' {
			end := strings.Index(rest, "}")
			if end < 0 {
				continue
			}
			set, rest = rest[1:end], rest[end+1:]
		}
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			match = match && strings.Contains(","+set+",", ","+labels[i]+`="`+labels[i+1]+`",`)
		}
		if !match {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64); err == nil {
			total += v
		}
	}
	return total
}

// counter names a notification counter (summed over the cluster) by its
// metric name and up to two label pairs.
type counter struct {
	name           string
	label1, value1 string
	label2, value2 string
}

func (k counter) labels() []string {
	out := []string{k.label1, k.value1}
	if k.label2 != "" {
		out = append(out, k.label2, k.value2)
	}
	return out
}

func deliveries(scheme, outcome string) counter {
	return counter{"zaqar_notify_deliveries_total", "scheme", scheme, "outcome", outcome}
}

func attempts(scheme string) counter {
	return counter{name: "zaqar_notify_attempts_total", label1: "scheme", value1: scheme}
}

func retries(scheme string) counter {
	return counter{name: "zaqar_notify_retries_total", label1: "scheme", value1: scheme}
}

// counters snapshots several counters so a subtest can assert on deltas.
type counters struct {
	t      testing.TB
	c      *testcluster.Cluster
	before map[counter]float64
}

func snapshotCounters(t testing.TB, c *testcluster.Cluster, cs ...counter) *counters {
	t.Helper()
	s := &counters{t: t, c: c, before: map[counter]float64{}}
	for _, k := range cs {
		s.before[k] = metricSum(t, c, k.name, k.labels()...)
	}
	return s
}

// delta returns how much k grew since the snapshot.
func (s *counters) delta(k counter) float64 {
	s.t.Helper()
	return metricSum(s.t, s.c, k.name, k.labels()...) - s.before[k]
}

// waitDelta waits until k grew by at least want.
func (s *counters) waitDelta(k counter, want float64) {
	s.t.Helper()
	deadline := time.Now().Add(deliveryTimeout)
	for {
		got := s.delta(k)
		if got >= want {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s%v grew by %v within %s, want %v", k.name, k.labels(), got, deliveryTimeout, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// logBuffer collects a node's log lines (text format) for tests that
// check what was logged.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// logger returns a logger writing to l at level info and above.
func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// waitLine waits until a logged line contains every one of parts and
// returns it.
func (l *logBuffer) waitLine(t testing.TB, parts ...string) string {
	t.Helper()
	deadline := time.Now().Add(deliveryTimeout)
	for {
		for _, line := range strings.Split(l.String(), "\n") {
			found := true
			for _, p := range parts {
				found = found && strings.Contains(line, p)
			}
			if found {
				return line
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %q within %s:\n%s", parts, deliveryTimeout, l.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
