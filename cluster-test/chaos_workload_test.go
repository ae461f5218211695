package clustertest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// chaosOpTimeout bounds one client operation: the server's request timeout
// (10 s) plus a margin, so a slow but answered request is not counted as
// unknown.
const chaosOpTimeout = 15 * time.Second

// chaosEndpoint is one node's REST/websocket address as the workload sees it.
// Addresses of a slot never change, even when its node is replaced.
type chaosEndpoint struct {
	Name string // slot name, e.g. "n2"
	API  string // host:port
	// TLS, when set, is the cluster's certificates: the endpoint serves
	// https and wss.
	TLS *devTLS
}

// restURL is the endpoint's REST base URL.
func (e chaosEndpoint) restURL() string { return apiURL("http", e.API, e.TLS) }

// transport is a new transport to the endpoint that keeps at most idle
// connections.
func (e chaosEndpoint) transport(idle int) *http.Transport {
	return &http.Transport{MaxIdleConnsPerHost: idle, IdleConnTimeout: 30 * time.Second, TLSClientConfig: e.TLS.clientConfig()}
}

// knownIDs remembers recently posted message ids per queue, for deleters
// and readers to aim at.
type knownIDs struct {
	mu      sync.Mutex
	byQueue map[string][]string
}

const knownPerQueue = 400

func (k *knownIDs) add(queue string, ids ...string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	l := append(k.byQueue[queue], ids...)
	if len(l) > knownPerQueue {
		l = append([]string(nil), l[len(l)-knownPerQueue:]...)
	}
	k.byQueue[queue] = l
}

func (k *knownIDs) pick(rng *rand.Rand, queue string, n int) []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	l := k.byQueue[queue]
	if len(l) == 0 {
		return nil
	}
	var out []string
	for i := 0; i < n; i++ {
		out = append(out, l[rng.IntN(len(l))])
	}
	return out
}

// chaosWorkload drives concurrent producers, claimers, deleters and readers
// against every node over REST and websocket and records every operation.
type chaosWorkload struct {
	rec       *opRecorder
	project   string
	queues    []string // long-TTL queues (checked for linearizability)
	short     string   // short-TTL queue
	nodes     []chaosEndpoint
	longTTL   int
	shortTTL  int
	claimTTL  int
	seed      int64
	known     knownIDs
	stop      chan struct{}
	wg        sync.WaitGroup
	uidPrefix string
	// staleReads makes the REST reader send X-Read-Consistency: stale, a
	// deliberate consistency bug the checkers must flag (CHAOS_STALE_READS).
	staleReads bool
}

func newChaosWorkload(rec *opRecorder, seed int64, nodes []chaosEndpoint, longTTL int) *chaosWorkload {
	return &chaosWorkload{
		rec: rec, project: fmt.Sprintf("chaos-%d", seed), queues: []string{"q0", "q1", "q2"}, short: "qttl",
		nodes: nodes, longTTL: longTTL, shortTTL: 60, claimTTL: 60, seed: seed,
		known: knownIDs{byQueue: map[string][]string{}}, stop: make(chan struct{}), uidPrefix: fmt.Sprintf("s%d", seed),
	}
}

// allQueues returns the long queues, the probe queue and the short-TTL
// queue.
func (w *chaosWorkload) allQueues() []string {
	return append(append([]string(nil), w.queues...), probeQueue, w.short)
}

// probeQueue receives the prober's posts.
const probeQueue = "probe"

// chaosRole is what a worker does in a loop.
type chaosRole struct {
	name      string
	transport string
}

// chaosRoles is the worker mix: three REST producers and one websocket
// producer, two REST claimers and one websocket claimer, a REST deleter,
// and a reader on each transport.
var chaosRoles = []chaosRole{
	{"producer", "rest"}, {"producer", "rest"}, {"producer", "rest"}, {"producer", "ws"},
	{"claimer", "rest"}, {"claimer", "rest"}, {"claimer", "ws"},
	{"deleter", "rest"}, {"reader", "rest"}, {"reader", "ws"},
}

// start launches one goroutine per role, and the prober.
func (w *chaosWorkload) start() {
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		w.probe()
	}()
	for i, r := range chaosRoles {
		wk := &chaosWorker{id: i, role: r, w: w, rng: rand.New(rand.NewPCG(uint64(w.seed), uint64(i)+1))}
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			wk.run()
		}()
	}
}

// halt stops the workers and waits for their operations in flight.
func (w *chaosWorkload) halt() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	w.wg.Wait()
}

// probeEvery is how often the prober starts a post.
const probeEvery = 100 * time.Millisecond

// probe posts one message to a random node every probeEvery, each post in
// its own goroutine with a short timeout, so that a request stuck on a
// paused or isolated node never delays the next one. The first probe
// acknowledged after a fault marks when the cluster took writes again
// (the workers' own requests can all be stuck on a bad node for a while).
func (w *chaosWorkload) probe() {
	rng := rand.New(rand.NewPCG(uint64(w.seed), 0x9e0be))
	client := &http.Client{Timeout: 3 * time.Second, Transport: w.nodes[0].transport(8)}
	defer client.CloseIdleConnections()
	var inflight sync.WaitGroup
	defer inflight.Wait()
	tick := time.NewTicker(probeEvery)
	defer tick.Stop()
	for n := 1; ; n++ {
		select {
		case <-w.stop:
			return
		case <-tick.C:
		}
		i := rng.IntN(len(w.nodes))
		uid := fmt.Sprintf("%s-probe-%d", w.uidPrefix, n)
		inflight.Add(1)
		go func() {
			defer inflight.Done()
			c := &restClient{base: w.nodes[i].restURL(), clientID: "00000000-0000-4000-8000-0000000b10be", project: w.project, http: client}
			op := opRecord{Worker: len(chaosRoles) + 1, Node: w.nodes[i].Name, Transport: "rest", Kind: opPost, Queue: probeQueue,
				Call: w.rec.now(), Bodies: []string{uid}, TTL: w.longTTL}
			restPost(c, &op, op.Bodies, w.longTTL, len(chaosRoles)+1)
			op.Return = w.rec.now()
			w.rec.add(op)
		}()
	}
}

// chaosWorker is one concurrent client.
type chaosWorker struct {
	id   int
	role chaosRole
	w    *chaosWorkload
	rng  *rand.Rand
	n    int // bodies posted so far

	rest map[int]*restClient
	ws   map[int]*wsClient
}

func (wk *chaosWorker) stopped() bool {
	select {
	case <-wk.w.stop:
		return true
	default:
		return false
	}
}

// pause sleeps d or until the workload stops.
func (wk *chaosWorker) pause(d time.Duration) {
	select {
	case <-wk.w.stop:
	case <-time.After(d):
	}
}

func (wk *chaosWorker) run() {
	wk.rest, wk.ws = map[int]*restClient{}, map[int]*wsClient{}
	defer func() {
		for _, c := range wk.ws {
			c.close()
		}
		for _, c := range wk.rest {
			c.http.CloseIdleConnections()
		}
	}()
	for !wk.stopped() {
		var ok bool
		switch wk.role.name {
		case "producer":
			ok = wk.produce()
		case "claimer":
			ok = wk.consume()
		case "deleter":
			ok = wk.deleteSome()
		case "reader":
			ok = wk.read()
		}
		if ok {
			wk.pause(time.Duration(10+wk.rng.IntN(40)) * time.Millisecond)
		} else {
			// A dead or partitioned node fails fast; do not spin on it.
			wk.pause(time.Duration(50+wk.rng.IntN(150)) * time.Millisecond)
		}
	}
}

// homeRotation is how long a worker stays with one home node.
const homeRotation = 15 * time.Second

// node picks the node for the next operation: mostly the worker's home
// node, which rotates through the cluster, sometimes any node. Binding
// workers to nodes keeps the workers of healthy nodes busy while a paused
// or isolated node holds its own clients' requests until they time out.
func (wk *chaosWorker) node() int {
	n := len(wk.w.nodes)
	if wk.rng.IntN(10) == 0 {
		return wk.rng.IntN(n)
	}
	return (wk.id + int(time.Duration(wk.w.rec.now())/homeRotation)) % n
}

func (wk *chaosWorker) queue(shortPercent int) string {
	if wk.rng.IntN(100) < shortPercent {
		return wk.w.short
	}
	return wk.w.queues[wk.rng.IntN(len(wk.w.queues))]
}

// restFor returns this worker's REST client of node i.
func (wk *chaosWorker) restFor(i int) *restClient {
	c := wk.rest[i]
	if c == nil {
		c = &restClient{
			base: wk.w.nodes[i].restURL(), clientID: fmt.Sprintf("00000000-0000-4000-8000-%012d", wk.id+1),
			project: wk.w.project,
			http:    &http.Client{Timeout: chaosOpTimeout, Transport: wk.w.nodes[i].transport(2)},
		}
		c.stale = wk.w.staleReads && wk.role.name == "reader"
		wk.rest[i] = c
	}
	return c
}

func (wk *chaosWorker) wsFor(i int) *wsClient {
	c := wk.ws[i]
	if c == nil {
		e := wk.w.nodes[i]
		c = &wsClient{url: apiURL("ws", e.API, e.TLS) + "/", dial: e.TLS.wsDialOptions(), clientID: fmt.Sprintf("00000000-0000-4000-8000-%012d", wk.id+1), project: wk.w.project}
		wk.ws[i] = c
	}
	return c
}

// begin starts an operation record.
func (wk *chaosWorker) begin(kind, queue string, node int) opRecord {
	return opRecord{Worker: wk.id, Node: wk.w.nodes[node].Name, Transport: wk.role.transport, Kind: kind, Queue: queue, Call: wk.w.rec.now()}
}

// finish stamps the return time and records op.
func (wk *chaosWorker) finish(op *opRecord) {
	op.Return = wk.w.rec.now()
	wk.w.rec.add(*op)
}

func (wk *chaosWorker) produce() bool {
	q := wk.queue(15)
	ttl := wk.w.longTTL
	if q == wk.w.short {
		ttl = wk.w.shortTTL
	}
	count := 1 + wk.rng.IntN(3)
	var bodies []string
	for i := 0; i < count; i++ {
		wk.n++
		bodies = append(bodies, fmt.Sprintf("%s-w%d-%d", wk.w.uidPrefix, wk.id, wk.n))
	}
	i := wk.node()
	op := wk.begin(opPost, q, i)
	op.Bodies, op.TTL = bodies, ttl
	if wk.role.transport == "ws" {
		wk.wsFor(i).post(&op, bodies, ttl, wk.id)
	} else {
		restPost(wk.restFor(i), &op, bodies, ttl, wk.id)
	}
	wk.finish(&op)
	if op.acked() {
		wk.w.known.add(q, op.IDs...)
	}
	return op.Outcome == outcomeOK
}

// consume claims a few messages, deletes most of them under the claim, and
// then releases the claim or abandons it to expire.
func (wk *chaosWorker) consume() bool {
	q := wk.queue(5) // qttl is mostly left to expire
	i := wk.node()
	op := wk.begin(opClaim, q, i)
	op.Limit, op.TTL, op.Grace = 1+wk.rng.IntN(4), wk.w.claimTTL, 60
	if wk.role.transport == "ws" {
		wk.wsFor(i).claim(&op)
	} else {
		restClaim(wk.restFor(i), &op)
	}
	wk.finish(&op)
	if !op.acked() || op.ClaimID == "" {
		if op.acked() {
			wk.pause(100 * time.Millisecond) // nothing to claim
		}
		return op.Outcome == outcomeOK
	}
	kept := 0
	for _, m := range op.Seen {
		if wk.stopped() {
			return true
		}
		if wk.rng.IntN(100) >= 75 {
			kept++
			continue
		}
		j := wk.node()
		d := wk.begin(opDelete, q, j)
		d.IDs, d.ClaimID = []string{m.ID}, op.ClaimID
		if wk.role.transport == "ws" {
			wk.wsFor(j).deleteMessage(&d)
		} else {
			restDelete(wk.restFor(j), &d)
		}
		wk.finish(&d)
	}
	if kept > 0 && wk.rng.IntN(2) == 0 && !wk.stopped() {
		j := wk.node()
		r := wk.begin(opRelease, q, j)
		r.ClaimID = op.ClaimID
		if wk.role.transport == "ws" {
			wk.wsFor(j).release(&r)
		} else {
			restRelease(wk.restFor(j), &r)
		}
		wk.finish(&r)
	}
	return true
}

// deleteSome deletes a known message by id (refused while it is claimed)
// or a few with a bulk delete (which ignores claims).
func (wk *chaosWorker) deleteSome() bool {
	q := wk.queue(5)
	i := wk.node()
	if wk.rng.IntN(100) < 30 {
		ids := wk.w.known.pick(wk.rng, q, 2+wk.rng.IntN(2))
		if ids == nil {
			return true
		}
		op := wk.begin(opDeleteMany, q, i)
		op.IDs = dedupIDs(ids)
		restDeleteMany(wk.restFor(i), &op)
		wk.finish(&op)
		return op.Outcome == outcomeOK
	}
	ids := wk.w.known.pick(wk.rng, q, 1)
	if ids == nil {
		return true
	}
	op := wk.begin(opDelete, q, i)
	op.IDs = ids
	restDelete(wk.restFor(i), &op)
	wk.finish(&op)
	return op.Outcome == outcomeOK
}

// read gets a known message by id, or (REST) lists the first pages of a
// queue.
func (wk *chaosWorker) read() bool {
	q := wk.queue(20)
	i := wk.node()
	if wk.role.transport == "rest" && wk.rng.IntN(100) < 25 {
		marker := ""
		for page := 0; page < 3 && !wk.stopped(); page++ {
			op := wk.begin(opList, q, i)
			op.Marker = marker
			next := restList(wk.restFor(i), &op, marker)
			wk.finish(&op)
			if !op.acked() || next == "" {
				return op.Outcome == outcomeOK
			}
			marker = next
		}
		return true
	}
	ids := wk.w.known.pick(wk.rng, q, 1)
	if ids == nil {
		return true
	}
	op := wk.begin(opGet, q, i)
	op.IDs = ids
	if wk.role.transport == "ws" {
		wk.wsFor(i).get(&op)
	} else {
		restGet(wk.restFor(i), &op)
	}
	wk.finish(&op)
	return op.Outcome == outcomeOK
}

func dedupIDs(ids []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// transportOutcome classifies a request that got no answer: one that was
// never sent (the dial failed) had no effect; anything else may have.
func transportOutcome(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return outcomeFail
	}
	return outcomeUnknown
}

// statusOutcome classifies an answer. A 503 is a definite failure unless
// it says the outcome is unknown (architecture: "Failure model"); other
// 5xx answers are treated as unknown (and flagged by the checker).
func statusOutcome(kind string, status int, body []byte) string {
	switch {
	case status >= 200 && status < 300:
		return outcomeOK
	case status == 503:
		if bytes.Contains(body, []byte("outcome is unknown")) {
			return outcomeUnknown
		}
		return outcomeFail
	case status >= 500:
		return outcomeUnknown
	case kind == opGet && status == 404:
		return outcomeOK
	case kind == opDelete && (status == 403 || status == 400):
		return outcomeOK
	default:
		return outcomeFail
	}
}

// messageBody is the JSON body of every chaos message.
func messageBody(uid string, worker int) map[string]any {
	return map[string]any{"uid": uid, "worker": worker}
}

// wireMessage is a message as REST or websocket responses render it.
type wireMessage struct {
	ID      string          `json:"id"`
	Href    string          `json:"href"`
	ClaimID *string         `json:"claim_id"`
	Body    json.RawMessage `json:"body"`
}

// seen turns a returned message into a history entry. REST hrefs carry
// ?claim_id= exactly while the message is claimed.
func (m wireMessage) seen(rest bool) seenMessage {
	var b struct {
		UID string `json:"uid"`
	}
	_ = json.Unmarshal(m.Body, &b)
	s := seenMessage{ID: m.ID, Body: b.UID}
	if rest {
		s.ClaimShown = true
		if _, after, ok := strings.Cut(m.Href, "?claim_id="); ok {
			s.Claim = after
		}
	} else if m.ClaimID != nil {
		s.Claim, s.ClaimShown = *m.ClaimID, true
	}
	return s
}

// restCall sends one request and fills op's outcome, status and error.
func restCall(c *restClient, op *opRecord, method, path string, body any) *response {
	ctx, cancel := context.WithTimeout(context.Background(), chaosOpTimeout)
	defer cancel()
	r, err := c.do(ctx, method, path, body)
	if err != nil {
		op.Outcome, op.Error = transportOutcome(err), err.Error()
		return nil
	}
	op.Status = r.Status
	op.Outcome = statusOutcome(op.Kind, r.Status, r.Body)
	if r.Status >= 300 {
		op.Error = strings.TrimSpace(string(r.Body))
		if len(op.Error) > 300 {
			op.Error = op.Error[:300]
		}
	}
	return r
}

// protocolError marks an answer that could not be understood; the
// operation's effect is then unknown.
func protocolError(op *opRecord, format string, args ...any) {
	op.Outcome, op.Error = outcomeUnknown, fmt.Sprintf(format, args...)
}

func restPost(c *restClient, op *opRecord, bodies []string, ttl, worker int) {
	var msgs []map[string]any
	for _, b := range bodies {
		msgs = append(msgs, map[string]any{"ttl": ttl, "body": messageBody(b, worker)})
	}
	r := restCall(c, op, http.MethodPost, "/v2/queues/"+op.Queue+"/messages", map[string]any{"messages": msgs})
	if r == nil || r.Status != http.StatusCreated {
		return
	}
	var out struct {
		Resources []string `json:"resources"`
	}
	if err := json.Unmarshal(r.Body, &out); err != nil || len(out.Resources) != len(bodies) {
		protocolError(op, "post answered 201 with %q", r.Body)
		return
	}
	for _, res := range out.Resources {
		op.IDs = append(op.IDs, res[strings.LastIndex(res, "/")+1:])
	}
}

func restClaim(c *restClient, op *opRecord) {
	path := fmt.Sprintf("/v2/queues/%s/claims?limit=%d", op.Queue, op.Limit)
	r := restCall(c, op, http.MethodPost, path, map[string]any{"ttl": op.TTL, "grace": op.Grace})
	if r == nil || r.Status != http.StatusCreated {
		return
	}
	var out struct {
		Messages []wireMessage `json:"messages"`
	}
	loc := r.Header.Get("Location")
	if err := json.Unmarshal(r.Body, &out); err != nil || loc == "" {
		protocolError(op, "claim answered 201 with %q (Location %q)", r.Body, loc)
		return
	}
	op.ClaimID = loc[strings.LastIndex(loc, "/")+1:]
	for _, m := range out.Messages {
		op.Seen = append(op.Seen, m.seen(true))
	}
}

func restDelete(c *restClient, op *opRecord) {
	path := "/v2/queues/" + op.Queue + "/messages/" + op.IDs[0]
	if op.ClaimID != "" {
		path += "?claim_id=" + op.ClaimID
	}
	restCall(c, op, http.MethodDelete, path, nil)
}

func restDeleteMany(c *restClient, op *opRecord) {
	restCall(c, op, http.MethodDelete, "/v2/queues/"+op.Queue+"/messages?ids="+strings.Join(op.IDs, ","), nil)
}

func restRelease(c *restClient, op *opRecord) {
	restCall(c, op, http.MethodDelete, "/v2/queues/"+op.Queue+"/claims/"+op.ClaimID, nil)
}

func restGet(c *restClient, op *opRecord) {
	r := restCall(c, op, http.MethodGet, "/v2/queues/"+op.Queue+"/messages/"+op.IDs[0], nil)
	if r == nil || r.Status != http.StatusOK {
		return
	}
	var m wireMessage
	if err := json.Unmarshal(r.Body, &m); err != nil {
		protocolError(op, "get answered 200 with %q", r.Body)
		return
	}
	op.Seen = []seenMessage{m.seen(true)}
}

// restList reads one page (every message, claimed ones and the caller's
// own included) and returns the marker of the next page ("" at the end).
func restList(c *restClient, op *opRecord, marker string) string {
	path := "/v2/queues/" + op.Queue + "/messages?echo=true&include_claimed=true&limit=20"
	if marker != "" {
		path += "&marker=" + url.QueryEscape(marker)
	}
	r := restCall(c, op, http.MethodGet, path, nil)
	if r == nil || r.Status == http.StatusNoContent || r.Status != http.StatusOK {
		return ""
	}
	var out struct {
		Messages []wireMessage `json:"messages"`
		Links    []struct {
			Rel  string `json:"rel"`
			Href string `json:"href"`
		} `json:"links"`
	}
	if err := json.Unmarshal(r.Body, &out); err != nil {
		protocolError(op, "list answered 200 with %q", r.Body)
		return ""
	}
	for _, m := range out.Messages {
		op.Seen = append(op.Seen, m.seen(true))
	}
	if len(out.Messages) == 0 {
		return ""
	}
	for _, l := range out.Links {
		if l.Rel != "next" {
			continue
		}
		if u, err := url.Parse(l.Href); err == nil {
			return u.Query().Get("marker")
		}
	}
	return ""
}

// wsClient is one websocket connection to one node, dialled on first use
// and dropped after any failure (responses come in request order, so a
// connection that missed one cannot be trusted).
type wsClient struct {
	url      string
	dial     *websocket.DialOptions // nil for ws://
	clientID string
	project  string
	conn     *websocket.Conn
}

func (c *wsClient) close() {
	if c.conn != nil {
		c.conn.CloseNow()
		c.conn = nil
	}
}

// wsAnswer is a websocket response frame.
type wsAnswer struct {
	Headers struct {
		Status int `json:"status"`
	} `json:"headers"`
	Body json.RawMessage `json:"body"`
}

// call sends one action and fills op's outcome, status and error.
func (c *wsClient) call(op *opRecord, action string, body map[string]any) *wsAnswer {
	ctx, cancel := context.WithTimeout(context.Background(), chaosOpTimeout)
	defer cancel()
	if c.conn == nil {
		dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
		conn, _, err := websocket.Dial(dctx, c.url, c.dial)
		dcancel()
		if err != nil {
			op.Outcome, op.Error = outcomeFail, "dial: "+err.Error()
			return nil
		}
		conn.SetReadLimit(16 << 20)
		c.conn = conn
	}
	frame, _ := json.Marshal(map[string]any{
		"action":  action,
		"headers": map[string]string{"Client-ID": c.clientID, "X-Project-ID": c.project},
		"body":    body,
	})
	if err := c.conn.Write(ctx, websocket.MessageText, frame); err != nil {
		c.close()
		op.Outcome, op.Error = outcomeUnknown, "write: "+err.Error()
		return nil
	}
	_, data, err := c.conn.Read(ctx)
	if err != nil {
		c.close()
		op.Outcome, op.Error = outcomeUnknown, "read: "+err.Error()
		return nil
	}
	var a wsAnswer
	if err := json.Unmarshal(data, &a); err != nil {
		c.close()
		protocolError(op, "undecodable websocket answer %q", data)
		return nil
	}
	op.Status = a.Headers.Status
	op.Outcome = statusOutcome(op.Kind, a.Headers.Status, a.Body)
	if a.Headers.Status >= 300 {
		op.Error = string(a.Body)
	}
	return &a
}

func (c *wsClient) post(op *opRecord, bodies []string, ttl, worker int) {
	var msgs []map[string]any
	for _, b := range bodies {
		msgs = append(msgs, map[string]any{"ttl": ttl, "body": messageBody(b, worker)})
	}
	a := c.call(op, "message_post", map[string]any{"queue_name": op.Queue, "messages": msgs})
	if a == nil || a.Headers.Status != http.StatusCreated {
		return
	}
	var out struct {
		IDs []string `json:"message_ids"`
	}
	if err := json.Unmarshal(a.Body, &out); err != nil || len(out.IDs) != len(bodies) {
		protocolError(op, "message_post answered 201 with %q", a.Body)
		return
	}
	op.IDs = out.IDs
}

func (c *wsClient) claim(op *opRecord) {
	a := c.call(op, "claim_create", map[string]any{"queue_name": op.Queue, "limit": op.Limit, "ttl": op.TTL, "grace": op.Grace})
	if a == nil || a.Headers.Status != http.StatusCreated {
		return
	}
	var out struct {
		ClaimID  string        `json:"claim_id"`
		Messages []wireMessage `json:"messages"`
	}
	if err := json.Unmarshal(a.Body, &out); err != nil || out.ClaimID == "" {
		protocolError(op, "claim_create answered 201 with %q", a.Body)
		return
	}
	op.ClaimID = out.ClaimID
	for _, m := range out.Messages {
		s := m.seen(false)
		s.Claim, s.ClaimShown = out.ClaimID, true
		op.Seen = append(op.Seen, s)
	}
}

func (c *wsClient) deleteMessage(op *opRecord) {
	body := map[string]any{"queue_name": op.Queue, "message_id": op.IDs[0]}
	if op.ClaimID != "" {
		body["claim_id"] = op.ClaimID
	}
	c.call(op, "message_delete", body)
}

func (c *wsClient) release(op *opRecord) {
	c.call(op, "claim_delete", map[string]any{"queue_name": op.Queue, "claim_id": op.ClaimID})
}

// get reads one message; websocket gets do not say whether it is claimed.
func (c *wsClient) get(op *opRecord) {
	a := c.call(op, "message_get", map[string]any{"queue_name": op.Queue, "message_id": op.IDs[0]})
	if a == nil || a.Headers.Status != http.StatusOK {
		return
	}
	var out struct {
		Messages wireMessage `json:"messages"`
	}
	if err := json.Unmarshal(a.Body, &out); err != nil {
		protocolError(op, "message_get answered 200 with %q", a.Body)
		return
	}
	s := out.Messages.seen(false)
	s.Claim, s.ClaimShown = "", false
	op.Seen = []seenMessage{s}
}
