package wsapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/zaqar-raft/zaqar/service"
	"github.com/zaqar-raft/zaqar/testkit/testcluster"
	"github.com/zaqar-raft/zaqar/wsapi"
)

// convergeTimeout bounds every wait for the nodes to hold identical state.
const convergeTimeout = 15 * time.Second

// TestActions_EveryActionAnswersOnFollowersAndLeaderInBothEncodings runs
// every action of contract §13.4 through a follower and the leader, in
// JSON text frames and in MessagePack binary frames, and checks each
// success shape and status; a second connection on another node checks
// that what one node wrote is what the others serve.
func TestActions_EveryActionAnswersOnFollowersAndLeaderInBothEncodings(t *testing.T) {
	c := testcluster.Start(t, 3)
	leader := c.Leader()
	followers := c.Followers()
	for _, tc := range []struct {
		name          string
		enc           wsapi.Encoding
		target, other *testcluster.Node
		role          string
	}{
		{"JSON on a follower", wsapi.JSON, followers[0], leader, "follower"},
		{"MessagePack on a follower", wsapi.MsgPack, followers[1], leader, "follower"},
		{"JSON on the leader", wsapi.JSON, leader, followers[0], "leader"},
		{"MessagePack on the leader", wsapi.MsgPack, leader, followers[1], "leader"},
	} {
		ok := t.Run(tc.name, func(t *testing.T) {
			ws := dial(t, tc.target, tc.role, tc.enc)
			other := dial(t, tc.other, "other", tc.enc).inProject(ws.project).as(ws.clientID)
			runActionScenario(t, ws, other)
		})
		if !ok {
			return
		}
		c.WaitConverged(convergeTimeout)
	}
}

// runActionScenario drives every action through ws and checks what it
// wrote through other (the same caller on another node).
func runActionScenario(t *testing.T, wsConn, otherConn *wsClient) {
	consumerID := newUUID()
	step := func(name string, fn func(t *testing.T, ws, other, consumer *wsClient)) {
		// Later steps build on earlier ones: stop at the first failure.
		if !t.Run(name, func(t *testing.T) {
			other := otherConn.on(t)
			fn(t, wsConn.on(t), other, other.as(consumerID))
		}) {
			t.FailNow()
		}
	}
	step("authenticate", func(t *testing.T, ws, other, consumer *wsClient) {
		// No-auth mode: any token is accepted so python-zaqarclient's
		// websocket transport, which authenticates first, works.
		ws.expect(http.StatusOK, "authenticate", "", map[string]any{"X-Auth-Token": "anything"}).
			echoes().bodyIs(`{"message": "Authentified."}`)
		ws.expect(http.StatusBadRequest, "authenticate", "").errorIs("Schema validation failed.")
	})

	step("get_home_doc, ping_node, check_node_health", func(t *testing.T, ws, other, consumer *wsClient) {
		ws.expect(http.StatusOK, "get_home_doc", "").echoes().bodyIs(string(service.HomeDocument()))
		if admin := ws.expect(http.StatusOK, "get_home_doc", "", map[string]any{"X-Roles": "admin"}); !strings.Contains(string(admin.Body), `"rel/pools"`) {
			t.Fatalf("an admin's home document has no pool relation: %s", admin.Body)
		}
		ws.expect(http.StatusNoContent, "ping_node", "").echoes().bodyIs(`{}`)
		ws.expect(http.StatusForbidden, "check_node_health", "").
			apiError("Not authorized", "You are not authorized to complete this action.")
		r := ws.expect(http.StatusOK, "check_node_health", "", map[string]any{"X-Roles": "member, admin"})
		var health struct {
			StorageReachable bool `json:"storage_reachable"`
			OperationStatus  map[string]struct {
				Succeeded bool `json:"succeeded"`
			} `json:"operation_status"`
			Raft struct {
				LeaderID string `json:"leader_id"`
			} `json:"raft"`
		}
		r.decode(&health)
		if !health.StorageReachable || len(health.OperationStatus) == 0 || health.Raft.LeaderID == "" {
			t.Fatalf("health: %s", r.Body)
		}
		for op, st := range health.OperationStatus {
			if !st.Succeeded {
				t.Errorf("health self-test step %s failed: %s", op, r.Body)
			}
		}
	})

	step("queue_create, queue_list, queue_get", func(t *testing.T, ws, other, consumer *wsClient) {
		ws.expect(http.StatusOK, "queue_list", "").echoes().bodyIs(`{"queues": []}`)
		ws.expect(http.StatusCreated, "queue_create", `{"queue_name": "jobs", "metadata": {"description": "ws", "_default_message_ttl": 600}}`).
			echoes().bodyIs(`"Queue jobs created."`)
		ws.expect(http.StatusNoContent, "queue_create", `{"queue_name": "jobs", "metadata": {"description": "ws", "_default_message_ttl": 600}}`).
			bodyIs(`"Queue jobs created."`)
		ws.expect(http.StatusCreated, "queue_create", `{"queue_name": "plain"}`).bodyIs(`"Queue plain created."`)

		other.expect(http.StatusOK, "queue_list", "").bodyIs(`{"queues": [{"name": "jobs"}, {"name": "plain"}]}`)
		other.expect(http.StatusOK, "queue_list", `{"detailed": true}`).
			bodyIs(`{"queues": [{"name": "jobs", "metadata": {"description": "ws", "_default_message_ttl": 600}}, {"name": "plain", "metadata": {}}]}`)
		other.expect(http.StatusOK, "queue_list", `{"limit": 1}`).bodyIs(`{"queues": [{"name": "jobs"}]}`)
		other.expect(http.StatusOK, "queue_list", `{"marker": "jobs", "limit": 1, "detailed": false}`).bodyIs(`{"queues": [{"name": "plain"}]}`)
		other.expect(http.StatusBadRequest, "queue_list", `{"limit": 0}`).
			apiError("Invalid API request", "Limit must be at least 1 and no greater than 20.")

		// Stored metadata only: no reserved defaults, {} for a queue
		// without metadata or no queue at all.
		other.expect(http.StatusOK, "queue_get", `{"queue_name": "jobs"}`).echoes().
			bodyIs(`{"description": "ws", "_default_message_ttl": 600}`)
		other.expect(http.StatusOK, "queue_get", `{"queue_name": "plain"}`).bodyIs(`{}`)
		other.expect(http.StatusOK, "queue_get", `{"queue_name": "missing"}`).bodyIs(`{}`)

		ws.expect(http.StatusBadRequest, "queue_create", `{"queue_name": "bad name"}`).
			apiError("Invalid queue identification", "Queue names may only contain ASCII letters, digits, underscores, dashes and dots.")
		ws.expect(http.StatusBadRequest, "queue_create", `{"queue_name": "q", "metadata": {"_default_message_ttl": 1}}`)
		// A queue of the same name in another project is another queue.
		ws.inProject(newProject()).expect(http.StatusOK, "queue_list", "").bodyIs(`{"queues": []}`)
	})

	var ids []string
	step("queue_get_stats", func(t *testing.T, ws, other, consumer *wsClient) {
		// Unlike REST, a missing queue is 404, with the zero stats.
		ws.expect(http.StatusNotFound, "queue_get_stats", `{"queue_name": "missing"}`).echoes().
			bodyIs(`{"messages": {"claimed": 0, "free": 0, "total": 0}}`)
		ws.expect(http.StatusOK, "queue_get_stats", `{"queue_name": "jobs"}`).
			bodyIs(`{"messages": {"claimed": 0, "free": 0, "total": 0}}`)

		ids = ws.post("jobs", `{"n": 0}`, `{"n": 1}`, `{"n": 2}`)
		r := other.expect(http.StatusOK, "queue_get_stats", `{"queue_name": "jobs"}`)
		var st struct {
			Messages map[string]json.RawMessage `json:"messages"`
		}
		r.decode(&st)
		wantKeys(t, "stats", st.Messages, "claimed", "free", "total", "oldest", "newest")
		for _, k := range []string{"claimed", "free", "total"} {
			want := map[string]string{"claimed": "0", "free": "3", "total": "3"}[k]
			if string(st.Messages[k]) != want {
				t.Fatalf("stats %s = %s, want %s: %s", k, st.Messages[k], want, r.Body)
			}
		}
		for edge, id := range map[string]string{"oldest": ids[0], "newest": ids[2]} {
			var e map[string]json.RawMessage
			if err := json.Unmarshal(st.Messages[edge], &e); err != nil {
				t.Fatal(err)
			}
			wantKeys(t, "stats "+edge, e, "id", "age", "created")
			var created string
			_ = json.Unmarshal(e["created"], &created)
			if string(e["id"]) != quote(id) {
				t.Fatalf("stats %s id %s, want %s", edge, e["id"], id)
			}
			if _, err := time.Parse("2006-01-02T15:04:05Z", created); err != nil {
				t.Fatalf("stats %s created %q: %v", edge, created, err)
			}
		}
	})

	step("message_post and message_list", func(t *testing.T, ws, other, consumer *wsClient) {
		r := ws.expect(http.StatusCreated, "message_post", `{"queue_name": "jobs", "messages": [{"ttl": 300, "body": {"n": 3}}, {"body": [1, "two"]}]}`).echoes()
		var posted struct {
			MessageIDs []string `json:"message_ids"`
		}
		r.decode(&posted)
		wantKeys(t, "post", r.object(), "message_ids")
		if len(posted.MessageIDs) != 2 {
			t.Fatalf("message_ids %v", posted.MessageIDs)
		}
		ids = append(ids, posted.MessageIDs...)

		// The producer does not see its own messages without echo.
		r = other.expect(http.StatusOK, "message_list", `{"queue_name": "jobs"}`).echoes().bodyIs(`{"messages": []}`)
		msgs := other.expect(http.StatusOK, "message_list", `{"queue_name": "jobs", "echo": true}`).messages()
		sameIDs(t, "list with echo", messageIDs(msgs), ids)
		for i, m := range msgs {
			wantTTL := int64(600) // the queue's _default_message_ttl
			if i == 3 {
				wantTTL = 300
			}
			if m.ClaimID != nil || m.TTL != wantTTL || m.Age < 0 {
				t.Fatalf("listed message %d: %+v, want ttl %d and claim_id null", i, m, wantTTL)
			}
		}
		jsonEqual(t, "body of message 4", msgs[4].Body, `[1, "two"]`)
		// Another client sees them without echo.
		sameIDs(t, "list as another client", messageIDs(other.as(newUUID()).expect(http.StatusOK, "message_list", `{"queue_name": "jobs"}`).messages()), ids)

		// Paging with the marker this service adds, to the end.
		var paged []string
		marker := ""
		for page := 0; ; page++ {
			body := `{"queue_name": "jobs", "echo": true, "limit": 2`
			if marker != "" {
				body += `, "marker": ` + quote(marker)
			}
			r := ws.expect(http.StatusOK, "message_list", body+`}`)
			got := r.messages()
			var doc struct {
				Marker *string `json:"marker"`
			}
			r.decode(&doc)
			if len(got) == 0 {
				if doc.Marker != nil {
					t.Fatalf("empty last page carries a marker: %s", r.Body)
				}
				break
			}
			if len(got) > 2 || doc.Marker == nil || *doc.Marker == "" {
				t.Fatalf("page %d: %s", page, r.Body)
			}
			wantKeys(t, "page", r.object(), "messages", "marker")
			paged = append(paged, messageIDs(got)...)
			marker = *doc.Marker
			if page > 5 {
				t.Fatalf("paging does not end: %v", paged)
			}
		}
		sameIDs(t, "paged listing", paged, ids)

		ws.expect(http.StatusOK, "message_list", `{"queue_name": "nothing-here"}`).bodyIs(`{"messages": []}`)
		ws.expect(http.StatusBadRequest, "message_list", `{"queue_name": "jobs", "limit": 21}`).
			apiError("Invalid API request", "Limit must be at least 1 and may not be greater than 20.")
		ws.expect(http.StatusBadRequest, "message_post", `{"queue_name": "jobs", "messages": []}`).
			apiError("Invalid API request", "No messages to enqueu.")
		ws.expect(http.StatusBadRequest, "message_post", `{"queue_name": "jobs", "messages": [{"ttl": 60}]}`).
			apiError("Invalid request body", `Missing "body" field.`)
		// The post size limit applies as in REST (to the JSON of the
		// messages document), well below the frame limit.
		big := `{"queue_name": "jobs", "messages": [{"body": "` + strings.Repeat("x", 300<<10) + `"}]}`
		ws.expect(http.StatusBadRequest, "message_post", big).
			apiError("Invalid API request", "Message collection size is too large. Max size 262144")
	})

	step("message_get and message_get_many", func(t *testing.T, ws, other, consumer *wsClient) {
		r := other.expect(http.StatusOK, "message_get", `{"queue_name": "jobs", "message_id": `+quote(ids[1])+`}`).echoes()
		var one struct {
			Messages map[string]json.RawMessage `json:"messages"`
		}
		r.decode(&one)
		wantKeys(t, "message_get", r.object(), "messages")
		wantKeys(t, "message_get message", one.Messages, "id", "claim_id", "ttl", "age", "body")
		if string(one.Messages["id"]) != quote(ids[1]) || string(one.Messages["claim_id"]) != "null" {
			t.Fatalf("message_get: %s", r.Body)
		}
		jsonEqual(t, "message_get body", one.Messages["body"], `{"n": 1}`)
		other.expect(http.StatusNotFound, "message_get", `{"queue_name": "jobs", "message_id": "00000000000000000000000000000000"}`)

		got := other.expect(http.StatusOK, "message_get_many", `{"queue_name": "jobs", "message_ids": `+jsonList(ids[2], ids[0])+`}`).echoes().messages()
		sameIDs(t, "message_get_many", messageIDs(got), []string{ids[2], ids[0]})
		other.expect(http.StatusNotFound, "message_get_many", `{"queue_name": "jobs", "message_ids": ["00000000000000000000000000000000"]}`)
		many := make([]string, 21)
		for i := range many {
			many[i] = ids[0]
		}
		other.expect(http.StatusBadRequest, "message_get_many", `{"queue_name": "jobs", "message_ids": `+jsonList(many...)+`}`)
	})

	var claimID string
	step("claim_create, claim_get, claim_update", func(t *testing.T, ws, other, consumer *wsClient) {
		r := consumer.expect(http.StatusCreated, "claim_create", `{"queue_name": "jobs", "limit": 2, "ttl": 60, "grace": 60}`).echoes()
		wantKeys(t, "claim_create", r.object(), "claim_id", "messages")
		var doc struct {
			ClaimID string `json:"claim_id"`
		}
		r.decode(&doc)
		claimID = doc.ClaimID
		claimed := r.messages()
		sameIDs(t, "claimed", messageIDs(claimed), ids[:2])
		for _, m := range claimed {
			if m.ClaimID == nil || *m.ClaimID != claimID {
				t.Fatalf("claimed message %s carries claim_id %v, want %s", m.ID, m.ClaimID, claimID)
			}
		}

		// Claimed messages are hidden unless include_claimed.
		sameIDs(t, "list without claimed", messageIDs(ws.expect(http.StatusOK, "message_list", `{"queue_name": "jobs", "echo": true}`).messages()), ids[2:])
		sameIDs(t, "list with claimed", messageIDs(ws.expect(http.StatusOK, "message_list", `{"queue_name": "jobs", "echo": true, "include_claimed": true}`).messages()), ids)
		var st struct {
			Messages struct{ Claimed, Free, Total int } `json:"messages"`
		}
		ws.expect(http.StatusOK, "queue_get_stats", `{"queue_name": "jobs"}`).decode(&st)
		if st.Messages.Claimed != 2 || st.Messages.Free != 3 || st.Messages.Total != 5 {
			t.Fatalf("stats while 2 of 5 are claimed: %+v", st.Messages)
		}

		r = ws.expect(http.StatusOK, "claim_get", `{"queue_name": "jobs", "claim_id": `+quote(claimID)+`}`).echoes()
		wantKeys(t, "claim_get", r.object(), "age", "ttl", "messages")
		var cl struct {
			TTL int64 `json:"ttl"`
			Age int64 `json:"age"`
		}
		r.decode(&cl)
		if cl.TTL != 60 || cl.Age < 0 {
			t.Fatalf("claim_get: %s", r.Body)
		}
		for _, m := range r.messages() {
			if m.ClaimID == nil || *m.ClaimID != claimID {
				t.Fatalf("claim_get message carries claim_id %v", m.ClaimID)
			}
		}
		ws.expect(http.StatusNoContent, "claim_update", `{"queue_name": "jobs", "claim_id": `+quote(claimID)+`, "ttl": 120, "grace": 60}`).
			echoes().bodyIs(quote("Claim " + claimID + " updated."))
		other.expect(http.StatusOK, "claim_get", `{"queue_name": "jobs", "claim_id": `+quote(claimID)+`}`).decode(&cl)
		if cl.TTL != 120 {
			t.Fatalf("claim ttl after claim_update: %d, want 120", cl.TTL)
		}
		ws.expect(http.StatusNotFound, "claim_update", `{"queue_name": "jobs", "claim_id": "00000000000000000000000000000000", "ttl": 120}`)
		ws.expect(http.StatusNotFound, "claim_get", `{"queue_name": "jobs", "claim_id": "00000000000000000000000000000000"}`)
		ws.expect(http.StatusBadRequest, "claim_create", `{"queue_name": "jobs", "ttl": 1}`)
	})

	step("message_delete follows the claim rules", func(t *testing.T, ws, other, consumer *wsClient) {
		const claimed = "This message is claimed; it cannot be deleted without a valid claim ID."
		ws.expect(http.StatusForbidden, "message_delete", `{"queue_name": "jobs", "message_id": `+quote(ids[0])+`}`).
			echoes().apiError("Unable to delete", claimed)
		ws.expect(http.StatusBadRequest, "message_delete", `{"queue_name": "jobs", "message_id": `+quote(ids[0])+`, "claim_id": "not-a-claim"}`).
			apiError("Unable to delete", "The specified claim does not exist or has expired.")
		ws.expect(http.StatusBadRequest, "message_delete", `{"queue_name": "jobs", "message_id": `+quote(ids[2])+`, "claim_id": `+quote(claimID)+`}`).
			apiError("Unable to delete", "A claim was specified, but the message is not currently claimed.")
		// A different (active) claim: 403.
		otherClaim := ws.expect(http.StatusCreated, "claim_create", `{"queue_name": "jobs", "limit": 1}`).object()["claim_id"]
		ws.expect(http.StatusForbidden, "message_delete", `{"queue_name": "jobs", "message_id": `+quote(ids[0])+`, "claim_id": `+string(otherClaim)+`}`).
			apiError("Unable to delete", claimed)
		ws.expect(http.StatusNoContent, "claim_delete", `{"queue_name": "jobs", "claim_id": `+string(otherClaim)+`}`)

		ws.expect(http.StatusNoContent, "message_delete", `{"queue_name": "jobs", "message_id": `+quote(ids[0])+`, "claim_id": `+quote(claimID)+`}`).bodyIs(`{}`)
		other.expect(http.StatusNotFound, "message_get", `{"queue_name": "jobs", "message_id": `+quote(ids[0])+`}`)
		// Deleting what does not exist is 204.
		ws.expect(http.StatusNoContent, "message_delete", `{"queue_name": "jobs", "message_id": `+quote(ids[0])+`}`).bodyIs(`{}`)
	})

	step("claim_delete, and claim_create when nothing is claimable", func(t *testing.T, ws, other, consumer *wsClient) {
		ws.expect(http.StatusNoContent, "claim_delete", `{"queue_name": "jobs", "claim_id": `+quote(claimID)+`}`).
			echoes().bodyIs(quote("Claim " + claimID + " deleted."))
		other.expect(http.StatusNotFound, "claim_get", `{"queue_name": "jobs", "claim_id": `+quote(claimID)+`}`)
		// ids[1..4] are free again: claim them all, then nothing is left.
		r := consumer.expect(http.StatusCreated, "claim_create", `{"queue_name": "jobs"}`)
		sameIDs(t, "claim everything", messageIDs(r.messages()), ids[1:])
		all := r.object()["claim_id"]
		consumer.expect(http.StatusNoContent, "claim_create", `{"queue_name": "jobs", "limit": 5}`).echoes().bodyIs(`{"claim_id": null}`)
		consumer.expect(http.StatusNoContent, "claim_create", `{"queue_name": "missing"}`).bodyIs(`{"claim_id": null}`)
		consumer.expect(http.StatusNoContent, "claim_delete", `{"queue_name": "jobs", "claim_id": `+string(all)+`}`)
	})

	step("message_delete_many with ids or pop", func(t *testing.T, ws, other, consumer *wsClient) {
		ws.expect(http.StatusBadRequest, "message_delete_many", `{"queue_name": "jobs", "message_ids": `+jsonList(ids[1])+`, "pop": 1}`).
			echoes().apiError("Invalid API request", "pop and id params cannot be present together in the delete request.")
		ws.expect(http.StatusBadRequest, "message_delete_many", `{"queue_name": "jobs"}`).
			apiError("Invalid API request", `The request should have either "ids" or "pop" parameter in the request, to be able to delete.`)
		ws.expect(http.StatusBadRequest, "message_delete_many", `{"queue_name": "jobs", "pop": 21}`).
			apiError("Invalid API request", "Pop value must be at least 1 and may not be greater than 20.")

		ws.expect(http.StatusNoContent, "message_delete_many", `{"queue_name": "jobs", "message_ids": `+jsonList(ids[1], ids[2])+`}`).bodyIs(`{}`)
		sameIDs(t, "after bulk delete", messageIDs(other.expect(http.StatusOK, "message_list", `{"queue_name": "jobs", "echo": true}`).messages()), ids[3:])

		r := ws.expect(http.StatusOK, "message_delete_many", `{"queue_name": "jobs", "pop": 1}`).echoes()
		var pop struct {
			Messages []map[string]json.RawMessage `json:"messages"`
		}
		r.decode(&pop)
		wantKeys(t, "pop", r.object(), "messages")
		if len(pop.Messages) != 1 {
			t.Fatalf("pop 1: %s", r.Body)
		}
		m := pop.Messages[0]
		wantKeys(t, "popped message", m, "id", "body", "ttl", "age", "claim_id", "claim_count")
		// Its ttl of 300 was extended to outlive the claim (300 s + 60 s
		// grace, counted from the claim, a little after the post).
		var ttl int
		_ = json.Unmarshal(m["ttl"], &ttl)
		if string(m["id"]) != quote(ids[3]) || ttl < 360 || ttl > 400 || string(m["claim_count"]) != "1" {
			t.Fatalf("popped %s, want %s (ttl extended to about 360, claimed once before)", r.Body, ids[3])
		}
		jsonEqual(t, "popped body", m["body"], `{"n": 3}`)
		ws.expect(http.StatusOK, "message_delete_many", `{"queue_name": "missing", "pop": 5}`).bodyIs(`{"messages": []}`)
	})

	step("queue_purge and queue_delete", func(t *testing.T, ws, other, consumer *wsClient) {
		ws.post("jobs", `{"n": 5}`, `{"n": 6}`)
		consumer.expect(http.StatusCreated, "claim_create", `{"queue_name": "jobs", "limit": 1}`)
		ws.expect(http.StatusBadRequest, "queue_purge", `{"queue_name": "jobs", "resource_types": ["bogus"]}`)
		ws.expect(http.StatusNoContent, "queue_purge", `{"queue_name": "jobs", "resource_types": ["messages"]}`).echoes().bodyIs(`{}`)
		other.expect(http.StatusOK, "queue_get_stats", `{"queue_name": "jobs"}`).bodyIs(`{"messages": {"claimed": 0, "free": 0, "total": 0}}`)
		ws.post("jobs", `{"n": 7}`)
		ws.expect(http.StatusNoContent, "queue_purge", `{"queue_name": "jobs"}`).bodyIs(`{}`)
		other.expect(http.StatusOK, "queue_get_stats", `{"queue_name": "jobs"}`).bodyIs(`{"messages": {"claimed": 0, "free": 0, "total": 0}}`)

		ws.expect(http.StatusNoContent, "queue_delete", `{"queue_name": "jobs"}`).echoes().bodyIs(`"Queue jobs removed."`)
		ws.expect(http.StatusNoContent, "queue_delete", `{"queue_name": "jobs"}`).bodyIs(`"Queue jobs removed."`)
		other.expect(http.StatusOK, "queue_list", "").bodyIs(`{"queues": [{"name": "plain"}]}`)
		other.expect(http.StatusNotFound, "queue_get_stats", `{"queue_name": "jobs"}`)
	})

	step("pool and flavor actions answer 501", func(t *testing.T, ws, other, consumer *wsClient) {
		for _, action := range []string{
			"pool_list", "pool_create", "pool_update", "pool_get", "pool_delete",
			"flavor_list", "flavor_create", "flavor_update", "flavor_get", "flavor_delete",
		} {
			ws.expect(http.StatusNotImplemented, action, `{"queue_name": "plain"}`).echoes().
				errorIs(action + " is not available over the websocket; use the REST API (/v2/pools, /v2/flavors).")
		}
		// The connection still works.
		ws.expect(http.StatusOK, "queue_list", "").bodyIs(`{"queues": [{"name": "plain"}]}`)
	})

	if wsConn.enc == wsapi.MsgPack {
		step("MessagePack bodies keep their types", func(t *testing.T, ws, other, consumer *wsClient) {
			ids := ws.post("typed", `{"i": -7, "f": 1.5, "s": "x", "b": true, "n": null, "a": [1, {"k": "v"}], "o": {}}`)
			r := other.expect(http.StatusOK, "message_get", `{"queue_name": "typed", "message_id": `+quote(ids[0])+`}`)
			var one struct {
				Messages struct {
					Body json.RawMessage `json:"body"`
				} `json:"messages"`
			}
			r.decode(&one)
			jsonEqual(t, "round-tripped body", one.Messages.Body, `{"i": -7, "f": 1.5, "s": "x", "b": true, "n": null, "a": [1, {"k": "v"}], "o": {}}`)
		})
	}
}
