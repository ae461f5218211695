package clustertest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// Clients of a deployment of two pools (docs/pools.md): whatever node a
// client talks to, it sees one service. One deployment of 2 × 3 processes
// serves every subtest.

func TestPools_ClientsRacesAndWebsocketAcrossTwoPools(t *testing.T) {
	ps := startPools(t, 2)
	a, b := ps.Clusters[0], ps.Clusters[1]

	// The same scenarios the one-cluster tests run, against a node of
	// each pool; the scenarios' queues land on both pools.
	t.Run("python-zaqarclient scenario", func(t *testing.T) {
		requirePython(t, "zaqarclient.queues.v2.client", "python3-zaqarclient")
		for _, tc := range []struct {
			name          string
			target, other *proc
		}{
			{ps.Names[0], a.Nodes[1], b.Nodes[1]},
			{ps.Names[1], b.Nodes[2], a.Nodes[2]},
		} {
			t.Run("against "+tc.name, func(t *testing.T) {
				runPythonScenario(t, tc.target, tc.other, "pyq-"+tc.name, "py-"+tc.name)
			})
		}
	})

	t.Run("gophercloud scenario", func(t *testing.T) {
		for _, tc := range []struct {
			name          string
			target, other *proc
		}{
			{ps.Names[0], a.Nodes[2], b.Nodes[0]},
			{ps.Names[1], b.Nodes[1], a.Nodes[0]},
		} {
			t.Run("against "+tc.name, func(t *testing.T) {
				project := "gc-" + tc.name
				sc := newGophercloudClient(tc.target, "8d3b5a2e-6f1c-4b7a-9e0d-2c4f6a8b0d1e", project)
				other := newGophercloudClient(tc.other, "5e7f9a1b-3c5d-4e6f-8a0b-1c2d3e4f5a6b", project)
				runGophercloudScenario(t, sc, other)
			})
		}
	})

	t.Run("concurrent first posts on two pools make one queue", func(t *testing.T) {
		concurrentFirstPosts(t, ps, "p-race", 30)
	})

	t.Run("websocket actions on a queue of the other pool", func(t *testing.T) {
		websocketAcrossPools(t, ps, "p-ws")
	})
}

// concurrentFirstPosts fires, for n new queues, one post through a node of
// each pool at the same moment (the queue's first request anywhere), and
// checks that both are acknowledged into one queue on one pool.
func concurrentFirstPosts(t *testing.T, ps *pools, project string, n int) {
	a, b := ps.Clusters[0], ps.Clusters[1]
	all := ps.All()
	var names []string
	placedOn := map[string]int{}
	for i := 0; i < n; i++ {
		q := fmt.Sprintf("race-%02d", i)
		names = append(names, q)
		nodes := [2]*proc{a.Nodes[i%3], b.Nodes[(i+1)%3]}
		var clients [2]*restClient
		for k, p := range nodes {
			clients[k] = newRESTClient(p, newClientID(), project)
			// An open connection to each node, so that neither post
			// waits for a dial the other does not.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			r, err := clients[k].do(ctx, http.MethodGet, "/v2/ping", nil)
			cancel()
			if err != nil || r.Status/100 != 2 {
				t.Fatalf("GET /v2/ping on %s: %v %v", p.ID, r, err)
			}
		}

		start := make(chan struct{})
		var ready, done sync.WaitGroup
		var answers [2]*response
		var errs [2]error
		for k := range nodes {
			ready.Add(1)
			done.Add(1)
			go func(k int) {
				defer done.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				body := map[string]any{"messages": []map[string]any{{"ttl": 600, "body": map[string]any{"via": nodes[k].ID}}}}
				ready.Done()
				<-start
				answers[k], errs[k] = clients[k].do(ctx, http.MethodPost, "/v2/queues/"+q+"/messages", body)
			}(k)
		}
		ready.Wait()
		close(start)
		done.Wait()

		var ids []string
		var pools []string
		for k, p := range nodes {
			r, err := answers[k], errs[k]
			if err != nil || r.Status != http.StatusCreated {
				t.Fatalf("%s: first post through %s (concurrent with one through %s): %v %v, want 201",
					q, p.ID, nodes[1-k].ID, r, err)
			}
			var out struct {
				Resources []string `json:"resources"`
			}
			if err := json.Unmarshal(r.Body, &out); err != nil || len(out.Resources) != 1 {
				t.Fatalf("%s: post through %s answered %s", q, p.ID, r.Body)
			}
			ids = append(ids, out.Resources[0][strings.LastIndex(out.Resources[0], "/")+1:])
			pools = append(pools, r.Header.Get(poolHeader))
		}
		if pools[0] == "" || pools[0] != pools[1] {
			t.Errorf("%s: the concurrent posts through %s and %s name pools %q and %q (%s); want one and the same",
				q, nodes[0].ID, nodes[1].ID, pools[0], pools[1], poolHeader)
		}
		placedOn[pools[0]]++

		// Every node names the same pool.
		for _, p := range all {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			r, err := newRESTClient(p, newClientID(), project).do(ctx, http.MethodGet, "/v2/queues/"+q+"/stats", nil)
			cancel()
			if err != nil || r.Status != http.StatusOK {
				t.Fatalf("%s: GET stats through %s: %v %v", q, p.ID, r, err)
			}
			if got := r.Header.Get(poolHeader); got != pools[0] {
				t.Errorf("%s: GET stats through %s names pool %q; the posts named %q", q, p.ID, got, pools[0])
			}
		}

		// Both messages, from a node of each pool.
		want := slices.Clone(ids)
		slices.Sort(want)
		for _, p := range []*proc{a.Nodes[(i+2)%3], b.Nodes[i%3]} {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			listed, err := newRESTClient(p, newClientID(), project).listAll(ctx, q)
			cancel()
			if err != nil {
				t.Fatalf("%s: listing through %s: %v", q, p.ID, err)
			}
			if d := firstDifference(messageIDs(listed), want); d != "none" {
				t.Errorf("%s: messages listed through %s (echo, include_claimed): %s; the two posts acknowledged %v",
					q, p.ID, d, ids)
			}
		}
	}
	t.Logf("%d queues, each made by two concurrent first posts: %v", n, placedOn)

	// Each name once in the project's listing, through a node of each pool.
	for _, p := range []*proc{a.Nodes[0], b.Nodes[2]} {
		got, err := listQueues(project, []*proc{p}, 10)
		if err != nil {
			t.Fatalf("listing queues through %s: %v", p.ID, err)
		}
		if d := firstDifference(got, names); d != "none" {
			t.Errorf("GET /v2/queues?limit=10 pages through %s (%d names): %s", p.ID, len(got), d)
		}
	}
}

// wsConn is one websocket connection of one client and project.
type wsConn struct {
	t        *testing.T
	node     *proc
	conn     *websocket.Conn
	clientID string
	project  string
	notes    []json.RawMessage // notifications read while waiting for an answer
}

// dialWSClient opens a websocket to p (proc.dialWS) as a new client of
// project; it is closed when the test ends.
func dialWSClient(t *testing.T, p *proc, project string) *wsConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := p.dialWS(ctx)
	if err != nil {
		t.Fatalf("websocket to %s: %v", p.ID, err)
	}
	conn.SetReadLimit(16 << 20)
	t.Cleanup(func() { conn.CloseNow() })
	return &wsConn{t: t, node: p, conn: conn, clientID: newClientID(), project: project}
}

// call sends one action and returns the status and body of its answer.
func (c *wsConn) call(action string, body map[string]any) (int, json.RawMessage) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	frame, _ := json.Marshal(map[string]any{
		"action":  action,
		"headers": map[string]string{"Client-ID": c.clientID, "X-Project-ID": c.project},
		"body":    body,
	})
	if err := c.conn.Write(ctx, websocket.MessageText, frame); err != nil {
		c.t.Fatalf("%s through %s: write: %v", action, c.node.ID, err)
	}
	for {
		_, data, err := c.conn.Read(ctx)
		if err != nil {
			c.t.Fatalf("%s through %s: read: %v", action, c.node.ID, err)
		}
		if isNotification(data) {
			c.notes = append(c.notes, data)
			continue
		}
		var a struct {
			Headers struct {
				Status int `json:"status"`
			} `json:"headers"`
			Body json.RawMessage `json:"body"`
		}
		if err := json.Unmarshal(data, &a); err != nil {
			c.t.Fatalf("%s through %s: undecodable answer %s", action, c.node.ID, data)
		}
		return a.Headers.Status, a.Body
	}
}

// isNotification reports whether a frame is a pushed notification (a
// message of a queue the connection subscribed to, without the envelope of
// an answer), not an answer.
func isNotification(frame []byte) bool {
	var n struct {
		Type string `json:"Message_Type"`
	}
	return json.Unmarshal(frame, &n) == nil && n.Type == "Notification"
}

// notification returns the next notification pushed to the connection.
func (c *wsConn) notification(timeout time.Duration) json.RawMessage {
	c.t.Helper()
	if len(c.notes) > 0 {
		n := c.notes[0]
		c.notes = c.notes[1:]
		return n
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		_, data, err := c.conn.Read(ctx)
		if err != nil {
			c.t.Fatalf("waiting for a notification on the websocket to %s: %v", c.node.ID, err)
		}
		if isNotification(data) {
			return data
		}
		c.t.Fatalf("a frame that is not a notification while none was asked for: %s", data)
	}
}

// expect calls action and fails the test unless it answers status; it
// decodes the body into out when out is not nil.
func (c *wsConn) expect(status int, action string, body map[string]any, out any) json.RawMessage {
	c.t.Helper()
	got, b := c.call(action, body)
	if got != status {
		req, _ := json.Marshal(body)
		c.t.Fatalf("%s %s through %s: %d %s, want %d", action, req, c.node.ID, got, b, status)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s through %s: %v in %s", action, c.node.ID, err, b)
		}
	}
	return b
}

// websocketAcrossPools drives a queue of pool B over a websocket to a node
// of pool A, and checks what pool B's nodes serve afterwards.
func websocketAcrossPools(t *testing.T, ps *pools, project string) {
	a, b := ps.Clusters[0], ps.Clusters[1]
	qB := queueOn(t, ps, project, "ws-on-b", ps.Names[1])
	qA := queueOn(t, ps, project, "ws-on-a", ps.Names[0])
	ws := dialWSClient(t, a.Nodes[1], project)

	var posted struct {
		MessageIDs []string `json:"message_ids"`
	}
	ws.expect(http.StatusCreated, "message_post", map[string]any{"queue_name": qB, "messages": []map[string]any{
		{"ttl": 300, "body": map[string]any{"seq": 0}}, {"ttl": 300, "body": map[string]any{"seq": 1}}, {"ttl": 300, "body": map[string]any{"seq": 2}},
	}}, &posted)
	ids := posted.MessageIDs
	if len(ids) != 3 {
		t.Fatalf("message_post of 3 to %s: message_ids %v", qB, ids)
	}

	var claimed struct {
		ClaimID  string `json:"claim_id"`
		Messages []struct {
			ID      string         `json:"id"`
			ClaimID string         `json:"claim_id"`
			Body    map[string]any `json:"body"`
		} `json:"messages"`
	}
	ws.expect(http.StatusCreated, "claim_create", map[string]any{"queue_name": qB, "limit": 2, "ttl": 60, "grace": 60}, &claimed)
	if claimed.ClaimID == "" || len(claimed.Messages) != 2 || claimed.Messages[0].ID != ids[0] || claimed.Messages[1].ID != ids[1] {
		t.Fatalf("claim_create of 2 on %s: %+v, want a claim of %v", qB, claimed, ids[:2])
	}
	for _, m := range claimed.Messages {
		if m.ClaimID != claimed.ClaimID {
			t.Errorf("claimed message %s carries claim_id %q, the claim is %q", m.ID, m.ClaimID, claimed.ClaimID)
		}
	}
	if st, b := ws.call("message_delete", map[string]any{"queue_name": qB, "message_id": ids[0]}); st != http.StatusForbidden {
		t.Errorf("message_delete of a claimed message of %s without its claim: %d %s, want 403", qB, st, b)
	}
	ws.expect(http.StatusNoContent, "message_delete", map[string]any{"queue_name": qB, "message_id": ids[0], "claim_id": claimed.ClaimID}, nil)

	var st wsStats
	ws.expect(http.StatusOK, "queue_get_stats", map[string]any{"queue_name": qB}, &st)
	if m := st.Messages; m.queueStats != (queueStats{Claimed: 1, Free: 1, Total: 2}) || m.Oldest == nil || m.Oldest.ID != ids[1] || m.Newest == nil || m.Newest.ID != ids[2] {
		t.Errorf("queue_get_stats of %s after deleting a claimed message: %+v, want claimed 1 free 1 total 2, oldest %s newest %s",
			qB, st.Messages, ids[1], ids[2])
	}

	// What the websocket did through pool A is what pool B's nodes hold.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	home := newRESTClient(b.Nodes[0], newClientID(), project)
	listed, err := home.listAll(ctx, qB)
	if err != nil {
		t.Fatalf("listing %s through %s: %v", qB, b.Nodes[0].ID, err)
	}
	if d := firstDifference(messageIDs(listed), messageIDs([]listedMessage{{ID: ids[1]}, {ID: ids[2]}})); d != "none" {
		t.Errorf("messages of %s listed through %s after the websocket's post, claim and delete: %s", qB, b.Nodes[0].ID, d)
	}
	r, err := home.do(ctx, http.MethodGet, "/v2/queues/"+qB+"/claims/"+claimed.ClaimID, nil)
	if err != nil || r.Status != http.StatusOK || r.Header.Get(poolHeader) != ps.Names[1] {
		t.Errorf("GET the websocket's claim on %s through %s: %v %v (%s %q), want 200 from %s", qB, b.Nodes[0].ID, r, err, poolHeader, r.Header.Get(poolHeader), ps.Names[1])
	}

	// The connection subscribes itself to the queue of pool B; pool B's
	// leader pushes a post made through a node of pool B to the node of
	// pool A holding the connection (docs/pools.md).
	var sub struct {
		ID string `json:"subscription_id"`
	}
	ws.expect(http.StatusCreated, "subscription_create", map[string]any{"queue_name": qB, "ttl": 600}, &sub)
	if subs := subscriptionIDs(ctx, t, home, qB); !slices.Equal(subs, []string{sub.ID}) {
		t.Errorf("subscriptions of %s listed through %s: %v, want the connection's %s", qB, b.Nodes[0].ID, subs, sub.ID)
	}
	if _, err := home.postMessages(ctx, qB, map[string]any{"pushed": qB}); err != nil {
		t.Fatalf("post to %s through %s: %v", qB, b.Nodes[0].ID, err)
	}
	n := ws.notification(15 * time.Second)
	var doc struct {
		Queue string         `json:"queue_name"`
		Body  map[string]any `json:"body"`
	}
	if err := json.Unmarshal(n, &doc); err != nil || doc.Queue != qB || doc.Body["pushed"] != qB {
		t.Errorf("notification for a post to %s through %s, pushed to the websocket on %s: %s", qB, b.Nodes[0].ID, a.Nodes[1].ID, n)
	}
	// To a queue of its own pool too.
	ws.expect(http.StatusCreated, "subscription_create", map[string]any{"queue_name": qA, "ttl": 600}, nil)
	// And the queue of pool B still serves this connection.
	ws.expect(http.StatusOK, "queue_get_stats", map[string]any{"queue_name": qB}, nil)

	// Closing the connection ends its subscriptions in both pools.
	if err := ws.conn.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatalf("closing the websocket to %s: %v", a.Nodes[1].ID, err)
	}
	homeA := newRESTClient(a.Nodes[0], newClientID(), project)
	for _, q := range []struct {
		name string
		rc   *restClient
	}{{qB, newRESTClient(a.Nodes[2], newClientID(), project)}, {qB, home}, {qA, homeA}} {
		if err := poll(15*time.Second, func() (bool, string) {
			subs := subscriptionIDs(ctx, t, q.rc, q.name)
			return len(subs) == 0, fmt.Sprint(subs)
		}); err != nil {
			t.Errorf("subscriptions of %s listed through %s after the connection closed: %v", q.name, q.rc.base, err)
		}
	}
}

// subscriptionIDs lists the subscriptions of queue through rc.
func subscriptionIDs(ctx context.Context, t *testing.T, rc *restClient, queue string) []string {
	t.Helper()
	r, err := rc.do(ctx, http.MethodGet, "/v2/queues/"+queue+"/subscriptions", nil)
	if err != nil || r.Status != http.StatusOK {
		t.Fatalf("GET /v2/queues/%s/subscriptions through %s: %v %v", queue, rc.base, r, err)
	}
	var out struct {
		Subscriptions []struct {
			ID string `json:"id"`
		} `json:"subscriptions"`
	}
	if err := json.Unmarshal(r.Body, &out); err != nil {
		t.Fatalf("GET /v2/queues/%s/subscriptions through %s: %v in %s", queue, rc.base, err, r.Body)
	}
	ids := []string{}
	for _, s := range out.Subscriptions {
		ids = append(ids, s.ID)
	}
	return ids
}
