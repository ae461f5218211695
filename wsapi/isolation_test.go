package wsapi_test

import (
	"encoding/json"
	"net/http"
	"reflect"
	"testing"

	"github.com/zaqar-raft/zaqar/testkit/testcluster"
)

// wsObserve is what project c can see of its queue "shared" over the
// websocket: metadata, stats, messages (claimed included), the claim and
// the subscriptions. Ages are dropped (they move by themselves).
func wsObserve(t *testing.T, c *wsClient, claimID string) map[string]any {
	t.Helper()
	read := func(action, body string) any {
		r := c.call(action, body)
		var v any
		if err := json.Unmarshal(r.Body, &v); err != nil {
			t.Fatalf("%s: %v", action, err)
		}
		var strip func(any)
		strip = func(x any) {
			switch y := x.(type) {
			case map[string]any:
				delete(y, "age")
				delete(y, "ttl")
				for _, e := range y {
					strip(e)
				}
			case []any:
				for _, e := range y {
					strip(e)
				}
			}
		}
		strip(v)
		return map[string]any{"status": r.Status, "body": v}
	}
	return map[string]any{
		"list":          read("queue_list", ""),
		"queue":         read("queue_get", `{"queue_name": "shared"}`),
		"stats":         read("queue_get_stats", `{"queue_name": "shared"}`),
		"messages":      read("message_list", `{"queue_name": "shared", "echo": true, "include_claimed": true, "limit": 20}`),
		"claim":         read("claim_get", `{"queue_name": "shared", "claim_id": `+quote(claimID)+`}`),
		"subscriptions": read("subscription_list", `{"queue_name": "shared"}`),
	}
}

// TestIsolation_ProjectsOverWebsocket checks that two projects using the
// same queue names over the websocket API never see or touch each other's
// queues, messages, claims or subscriptions (notifications included), and
// that the same holds between a websocket caller and a REST caller.
func TestIsolation_ProjectsOverWebsocket(t *testing.T) {
	c := testcluster.Start(t, 3)
	leader := c.Leader()
	f := c.Followers()
	for _, enc := range encodings {
		t.Run(encName(enc), func(t *testing.T) {
			a := dial(t, f[0], "follower", enc).on(t)
			b := dial(t, f[1], "follower", enc).on(t).inProject(a.project + "x") // a's project is a prefix of b's
			bLeader := dial(t, leader, "leader", enc).on(t).inProject(b.project).as(newUUID())

			a.expect(http.StatusCreated, "queue_create", `{"queue_name": "shared", "metadata": {"owner": "a"}}`)
			ids := a.post("shared", `{"n": 0}`, `{"n": 1}`, `{"n": 2}`)
			claim := a.expect(http.StatusCreated, "claim_create", `{"queue_name": "shared", "limit": 1, "ttl": 300, "grace": 60}`)
			var claimed struct {
				ClaimID  string      `json:"claim_id"`
				Messages []wsMessage `json:"messages"`
			}
			claim.decode(&claimed)
			if claimed.ClaimID == "" || len(claimed.Messages) != 1 {
				t.Fatalf("a's claim: %s", claim.Body)
			}
			// a's connection subscribes itself to a's queue.
			var sub struct {
				ID string `json:"subscription_id"`
			}
			a.expect(http.StatusCreated, "subscription_create", `{"queue_name": "shared", "ttl": 600}`).decode(&sub)
			before := wsObserve(t, a, claimed.ClaimID)

			for _, bc := range []*wsClient{b, bLeader} {
				if got := bc.expect(http.StatusOK, "queue_list", "").object()["queues"]; string(got) != "[]" {
					t.Fatalf("b lists %s", got)
				}
				if md := bc.expect(http.StatusOK, "queue_get", `{"queue_name": "shared"}`).object(); md["owner"] != nil {
					t.Fatalf("b reads a's metadata: %v", md)
				}
				// (Stats of a queue the caller does not have: 404 with zeros.)
				jsonEqual(t, "b's stats", bc.expect(http.StatusNotFound, "queue_get_stats", `{"queue_name": "shared"}`).object()["messages"],
					`{"claimed": 0, "free": 0, "total": 0}`)
				if got := bc.expect(http.StatusOK, "message_list", `{"queue_name": "shared", "echo": true, "include_claimed": true}`).messages(); len(got) != 0 {
					t.Fatalf("b lists a's messages: %+v", got)
				}
				bc.expect(http.StatusNotFound, "message_get", `{"queue_name": "shared", "message_id": `+quote(ids[0])+`}`)
				bc.expect(http.StatusNotFound, "message_get_many", `{"queue_name": "shared", "message_ids": `+jsonList(ids...)+`}`)
				bc.expect(http.StatusNotFound, "claim_get", `{"queue_name": "shared", "claim_id": `+quote(claimed.ClaimID)+`}`)
				bc.expect(http.StatusNotFound, "claim_update", `{"queue_name": "shared", "claim_id": `+quote(claimed.ClaimID)+`, "ttl": 60}`)
				bc.expect(http.StatusNotFound, "subscription_get", `{"queue_name": "shared", "subscription_id": `+quote(sub.ID)+`}`)
				if got := bc.expect(http.StatusOK, "subscription_list", `{"queue_name": "shared"}`).object()["subscriptions"]; string(got) != "[]" {
					t.Fatalf("b lists a's subscriptions: %s", got)
				}
				// Writes naming a's ids reach nothing of a's.
				for _, w := range []struct{ action, body string }{
					{"message_delete", `{"queue_name": "shared", "message_id": ` + quote(ids[1]) + `}`},
					{"message_delete", `{"queue_name": "shared", "message_id": ` + quote(claimed.Messages[0].ID) + `, "claim_id": ` + quote(claimed.ClaimID) + `}`},
					{"message_delete_many", `{"queue_name": "shared", "message_ids": ` + jsonList(ids...) + `}`},
					{"message_delete_many", `{"queue_name": "shared", "pop": 5}`},
					{"claim_create", `{"queue_name": "shared", "limit": 5}`},
					{"claim_delete", `{"queue_name": "shared", "claim_id": ` + quote(claimed.ClaimID) + `}`},
					{"subscription_delete", `{"queue_name": "shared", "subscription_id": ` + quote(sub.ID) + `}`},
					{"queue_purge", `{"queue_name": "shared"}`},
					{"queue_delete", `{"queue_name": "shared"}`},
				} {
					r := bc.call(w.action, w.body)
					if r.Status >= 300 && r.Status != http.StatusNotFound && r.Status != http.StatusBadRequest {
						t.Fatalf("%s as b: %d %s", w.action, r.Status, r.Body)
					}
				}
			}
			if after := wsObserve(t, a, claimed.ClaimID); !reflect.DeepEqual(after, before) {
				t.Fatalf("b changed what a sees:\nbefore %v\nafter  %v", before, after)
			}
			// b's own post to its "shared" queue notifies nobody in a: the
			// next frame a's connection receives is the notification of a's
			// own later post.
			b.post("shared", `"from b"`)
			if st, body := a.restDo(leader.URL(), "POST", "/v2/queues/shared/messages", `{"messages": [{"body": "from a"}]}`); st != http.StatusCreated {
				t.Fatalf("a's REST post: %d %s", st, body)
			}
			if n := readNotification(t, a, enc); string(n["body"]) != `"from a"` {
				t.Fatalf("a's connection received %s first, want a's own post", n["body"])
			}
			// And through REST, b's caller sees nothing of a's either.
			st, body := bLeader.restDo(f[0].URL(), "GET", "/v2/queues/shared/messages/"+ids[0], "")
			if st != http.StatusNotFound {
				t.Fatalf("REST GET of a's message as b: %d %s", st, body)
			}
		})
	}
}
