package wsapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/zaqar-raft/zaqar/server"
	"github.com/zaqar-raft/zaqar/testkit/testcluster"
	"github.com/zaqar-raft/zaqar/wsapi"
)

// maxFrame is the frame limit of the transport tests' cluster.
const maxFrame = 64 << 10

// TestTransport_ConnectionsShareOneClusterWithREST checks the transport
// around the actions: data written through any node and either API is
// what every node serves through both, pipelined requests are answered in
// order, oversized frames close the connection, signed requests, the
// extra websocket listener and the metrics.
func TestTransport_ConnectionsShareOneClusterWithREST(t *testing.T) {
	c := testcluster.Start(t, 3, testcluster.WithConfig(func(cfg *server.Config) {
		cfg.WS.MaxFrameBytes = maxFrame
		cfg.WSAddr = "127.0.0.1:0"
	}))
	leader := c.Leader()
	followers := c.Followers()
	run := func(name string, fn func(t *testing.T)) {
		if t.Run(name, fn) {
			c.WaitConverged(convergeTimeout)
		}
	}

	run("a write through one follower is read through the other follower and the leader", func(t *testing.T) {
		for _, enc := range encodings {
			w := dial(t, followers[0], "follower", enc)
			ids := w.post("seen", `{"from": "f1"}`)
			for _, n := range []*testcluster.Node{followers[1], leader} {
				// Reads pass the read barrier: no waiting is needed.
				r := dial(t, n, n.ID, enc).inProject(w.project).
					expect(http.StatusOK, "message_list", `{"queue_name": "seen"}`)
				got := r.messages()
				sameIDs(t, "list on "+n.ID, messageIDs(got), ids)
				jsonEqual(t, "body on "+n.ID, got[0].Body, `{"from": "f1"}`)
			}
		}
	})

	run("REST and websocket see the same queues, messages and claims", func(t *testing.T) {
		ws := dial(t, followers[1], "follower", wsapi.JSON)
		ws.expect(http.StatusCreated, "queue_create", `{"queue_name": "both", "metadata": {"k": "v"}}`)
		st, body := ws.restDo(leader.URL(), "GET", "/v2/queues/both", "")
		if st != http.StatusOK || !strings.Contains(string(body), `"k":"v"`) {
			t.Fatalf("REST GET of a queue created over websocket: %d %s", st, body)
		}
		st, body = ws.restDo(leader.URL(), "POST", "/v2/queues/both/messages", `{"messages": [{"ttl": 120, "body": "from REST"}]}`)
		if st != http.StatusCreated {
			t.Fatalf("REST post: %d %s", st, body)
		}
		var res struct{ Resources []string }
		_ = json.Unmarshal(body, &res)
		restID := res.Resources[0][strings.LastIndex(res.Resources[0], "/")+1:]
		wsIDs := ws.post("both", `"from websocket"`)

		got := ws.expect(http.StatusOK, "message_list", `{"queue_name": "both", "echo": true}`).messages()
		sameIDs(t, "websocket list", messageIDs(got), []string{restID, wsIDs[0]})
		if got[0].TTL != 120 || string(got[0].Body) != `"from REST"` {
			t.Fatalf("REST message over websocket: %+v", got[0])
		}
		st, body = ws.restDo(followers[0].URL(), "GET", "/v2/queues/both/messages?echo=true", "")
		var page struct {
			Messages []struct {
				ID   string          `json:"id"`
				Body json.RawMessage `json:"body"`
			} `json:"messages"`
		}
		if err := json.Unmarshal(body, &page); st != http.StatusOK || err != nil || len(page.Messages) != 2 ||
			page.Messages[1].ID != wsIDs[0] || string(page.Messages[1].Body) != `"from websocket"` {
			t.Fatalf("REST list of messages posted over websocket: %d %s", st, body)
		}

		// A claim made over websocket binds REST deletes, and the other way.
		r := ws.expect(http.StatusCreated, "claim_create", `{"queue_name": "both", "limit": 1}`)
		var claim struct {
			ClaimID string `json:"claim_id"`
		}
		r.decode(&claim)
		if st, body := ws.restDo(leader.URL(), "DELETE", "/v2/queues/both/messages/"+restID, ""); st != http.StatusForbidden {
			t.Fatalf("REST delete of a message claimed over websocket: %d %s", st, body)
		}
		if st, body := ws.restDo(leader.URL(), "GET", "/v2/queues/both/claims/"+claim.ClaimID, ""); st != http.StatusOK {
			t.Fatalf("REST get of a claim made over websocket: %d %s", st, body)
		}
		if st, body := ws.restDo(leader.URL(), "DELETE", "/v2/queues/both/claims/"+claim.ClaimID, ""); st != http.StatusNoContent {
			t.Fatalf("REST release of a claim made over websocket: %d %s", st, body)
		}
		ws.expect(http.StatusNotFound, "claim_get", `{"queue_name": "both", "claim_id": `+quote(claim.ClaimID)+`}`)
		ws.expect(http.StatusNoContent, "message_delete", `{"queue_name": "both", "message_id": `+quote(restID)+`}`)
		if st, _ := ws.restDo(followers[0].URL(), "GET", "/v2/queues/both/messages/"+restID, ""); st != http.StatusNotFound {
			t.Fatalf("REST get of a message deleted over websocket: %d", st)
		}
	})

	run("pipelined requests are processed and answered in order", func(t *testing.T) {
		for _, enc := range encodings {
			ws := dial(t, followers[0], "follower", enc)
			const n = 80 // more than MaxInFlight (32): the node stops reading, then resumes
			frames := make([]string, n)
			for i := range frames {
				if i%2 == 0 {
					frames[i] = ws.frame("message_post", fmt.Sprintf(`{"queue_name": "pipe", "messages": [{"body": {"seq": %d}}]}`, i), nil)
				} else {
					frames[i] = ws.frame("queue_get_stats", `{"queue_name": "pipe"}`, map[string]any{"X-Seq": i})
				}
				ws.sendJSON(frames[i])
			}
			for i, f := range frames {
				r := ws.recv(fmt.Sprintf("pipelined request %d", i))
				r.sent = f
				r.echoes()
				if i%2 == 0 {
					r.status(http.StatusCreated)
					continue
				}
				// The stats see exactly the posts sent before them.
				var st struct {
					Messages struct{ Total int } `json:"messages"`
				}
				r.status(http.StatusOK).decode(&st)
				if st.Messages.Total != (i+1)/2 {
					t.Fatalf("stats request %d saw %d messages, want %d", i, st.Messages.Total, (i+1)/2)
				}
			}
		}
	})

	run("a frame over the limit closes the connection with 1009", func(t *testing.T) {
		for _, enc := range encodings {
			ws := dial(t, followers[1], "follower", enc)
			bystander := dial(t, followers[1], "follower", enc)
			ws.expect(http.StatusOK, "queue_list", "")
			big := `{"queue_name": "big", "messages": [{"body": "` + strings.Repeat("x", maxFrame) + `"}]}`
			ws.sendJSON(ws.frame("message_post", big, nil))
			wantClose(t, ws, websocket.StatusMessageTooBig)
			// Just under the limit is fine; other connections are unaffected.
			fits := `{"queue_name": "big", "messages": [{"body": "` + strings.Repeat("x", maxFrame-400) + `"}]}`
			bystander.expect(http.StatusCreated, "message_post", fits)
		}
	})

	run("a signed request works only for the signed queue, methods and message actions", func(t *testing.T) {
		ws := dial(t, followers[0], "follower", wsapi.JSON)
		var share struct {
			Project, Expires, Signature string
			Paths, Methods              []string
		}
		eventually(t, 10*time.Second, func() bool {
			// The cluster generates its signing key shortly after it starts.
			st, body := ws.restDo(leader.URL(), "POST", "/v2/queues/signed/share", `{"methods": ["GET", "POST"]}`)
			return st == http.StatusOK && json.Unmarshal(body, &share) == nil
		}, "POST /v2/queues/signed/share never answered 200")
		signed := func(h map[string]any) map[string]any {
			out := map[string]any{"URL-Signature": share.Signature, "URL-Expires": share.Expires,
				"URL-Methods": share.Methods, "URL-Paths": share.Paths, "X-Project-ID": share.Project}
			for k, v := range h {
				out[k] = v
			}
			return out
		}
		for _, enc := range encodings {
			ws := dial(t, followers[0], "follower", enc).inProject(share.Project)
			ids := ws.post("signed", `{"n": 1}`) // the same project, unsigned
			ws.expect(http.StatusCreated, "message_post", `{"queue_name": "signed", "messages": [{"body": {"n": 2}}]}`, signed(nil)).echoes()
			got := ws.as(newUUID()).expect(http.StatusOK, "message_list", `{"queue_name": "signed"}`, signed(nil)).messages()
			if len(got) != 2 || got[0].ID != ids[0] {
				t.Fatalf("signed message_list: %+v", got)
			}
			ws.expect(http.StatusOK, "message_get", `{"queue_name": "signed", "message_id": `+quote(ids[0])+`}`, signed(nil))

			const denied = "Not authentified."
			for _, tc := range []struct {
				name, action, body string
				headers            map[string]any
			}{
				{"another queue", "message_list", `{"queue_name": "other"}`, nil},
				{"a queue whose name extends the signed one", "message_list", `{"queue_name": "signed2"}`, nil},
				{"a method not granted", "message_delete", `{"queue_name": "signed", "message_id": ` + quote(ids[0]) + `}`, nil},
				{"a bulk delete (DELETE not granted)", "message_delete_many", `{"queue_name": "signed", "pop": 1}`, nil},
				{"a queue action", "queue_get_stats", `{"queue_name": "signed"}`, nil},
				{"a queue delete", "queue_delete", `{"queue_name": "signed"}`, nil},
				{"a claim action", "claim_create", `{"queue_name": "signed"}`, nil},
				{"another project", "message_list", `{"queue_name": "signed"}`, map[string]any{"X-Project-ID": "someone-else"}},
				{"a wrong signature", "message_list", `{"queue_name": "signed"}`, map[string]any{"URL-Signature": strings.Repeat("0", 64)}},
				{"an empty signature", "message_list", `{"queue_name": "signed"}`, map[string]any{"URL-Signature": ""}},
				{"methods widened", "message_delete", `{"queue_name": "signed", "message_id": "x"}`, map[string]any{"URL-Methods": []string{"DELETE", "GET", "POST"}}},
				{"paths as a comma string", "message_list", `{"queue_name": "signed"}`, map[string]any{"URL-Paths": strings.Join(share.Paths, ",")}},
				{"an expired grant", "message_list", `{"queue_name": "signed"}`, map[string]any{"URL-Expires": "2001-01-01T00:00:00"}},
			} {
				ws.expect(http.StatusForbidden, tc.action, tc.body, signed(tc.headers)).echoes().errorIs(denied)
			}
			// Nothing was deleted by the refused requests.
			if n := len(ws.expect(http.StatusOK, "message_list", `{"queue_name": "signed", "echo": true}`).messages()); n != 2 {
				t.Fatalf("%d messages left after refused signed requests, want 2", n)
			}
			ws.expect(http.StatusNoContent, "queue_delete", `{"queue_name": "signed"}`)
		}
	})

	run("the extra listener serves the websocket API on any path and REST stays on the API port", func(t *testing.T) {
		addr := followers[0].Server.WSAddr()
		if addr == "" {
			t.Fatal("WSAddr is empty though server.Config.WSAddr was set")
		}
		for _, path := range []string{"/", "/v2/ws", "/anything/at/all"} {
			ws := dialURL(t, "ws://"+addr+path, "extra listener", wsapi.MsgPack)
			ws.expect(http.StatusOK, "queue_list", "").bodyIs(`{"queues": []}`)
		}
		resp, err := http.Get(followers[0].URL() + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMultipleChoices {
			t.Fatalf("GET / without an upgrade: %d, want the REST version document (300)", resp.StatusCode)
		}
		// Only "/" upgrades on the API port.
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		if conn, _, err := websocket.Dial(ctx, "ws://"+followers[0].APIAddr+"/v2/queues", nil); err == nil {
			conn.CloseNow()
			t.Fatal("a websocket upgrade on /v2/queues of the API port was accepted")
		}
	})

	run("metrics count connections and frames", func(t *testing.T) {
		node := followers[1]
		const open, total = "zaqar_ws_connections_open", "zaqar_ws_connections_total"
		in := `zaqar_ws_frames_in_total{action="queue_list"}`
		out := `zaqar_ws_frames_out_total{action="queue_list",status="200"}`
		bad := `zaqar_ws_frames_out_total{action="invalid",status="400"}`
		// Earlier subtests' connections are closed when they end; the
		// node notices a moment later.
		eventually(t, 10*time.Second, func() bool { return metrics(t, node)[open] == 0 },
			"%s on %s did not drop to 0 after earlier connections closed", open, node.ID)
		before := metrics(t, node)
		for _, name := range []string{open, total} {
			if _, ok := before[name]; !ok {
				t.Fatalf("/metrics of %s has no %s", node.ID, name)
			}
		}
		ws := dial(t, node, "follower", wsapi.JSON)
		for i := 0; i < 3; i++ {
			ws.expect(http.StatusOK, "queue_list", "")
		}
		ws.sendRaw(websocket.MessageText, []byte("nonsense"))
		ws.recv("nonsense").status(http.StatusBadRequest)
		after := metrics(t, node)
		for name, want := range map[string]float64{
			open: before[open] + 1, total: before[total] + 1, in: before[in] + 3, out: before[out] + 3, bad: before[bad] + 1,
			`zaqar_ws_frames_in_total{action="invalid"}`: before[`zaqar_ws_frames_in_total{action="invalid"}`] + 1,
		} {
			if after[name] != want {
				t.Errorf("%s = %v after, %v before; want %v", name, after[name], before[name], want)
			}
		}
		ws.conn.Close(websocket.StatusNormalClosure, "")
		eventually(t, 10*time.Second, func() bool { return metrics(t, node)[open] == before[open] },
			"%s did not go back to %v after the client closed", open, before[open])
	})
}

// wantClose reads until the connection ends and fails unless the node
// closed it with code.
func wantClose(t *testing.T, c *wsClient, code websocket.StatusCode) {
	t.Helper()
	if err := readUntilClose(c, code); err != nil {
		t.Fatal(err)
	}
}

// readUntilClose reads (and drops) frames until the connection ends, and
// says what is wrong unless the node closed it with code.
func readUntilClose(c *wsClient, code websocket.StatusCode) error {
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	for {
		_, _, err := c.conn.Read(ctx)
		if err == nil {
			continue
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) {
			return fmt.Errorf("connection to %s ended without a close frame: %v; want close code %d", c.node, err, code)
		}
		if ce.Code != code {
			return fmt.Errorf("connection to %s closed with %d %q, want %d", c.node, ce.Code, ce.Reason, code)
		}
		return nil
	}
}
