package wsapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/zaqar-raft/zaqar/testkit/testcluster"
	"github.com/zaqar-raft/zaqar/wsapi"
)

// readNotification reads the next frame and checks it is a bare
// notification (no request/headers/body envelope) in the given encoding.
func readNotification(t *testing.T, c *wsClient, enc wsapi.Encoding) map[string]json.RawMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	typ, b, err := c.conn.Read(ctx)
	if err != nil {
		t.Fatalf("waiting for a notification on %s: %v", c.node, err)
	}
	if enc == wsapi.MsgPack {
		if typ != websocket.MessageBinary {
			t.Fatalf("notification came as %v, want binary", typ)
		}
		if b, err = wsapi.DecodeMsgPack(b); err != nil {
			t.Fatal(err)
		}
	} else if typ != websocket.MessageText {
		t.Fatalf("notification came as %v, want text", typ)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("notification %s: %v", b, err)
	}
	wantKeys(t, "notification", doc, "body", "ttl", "queue_name", "Message_Type")
	if string(doc["Message_Type"]) != `"Notification"` {
		t.Fatalf("notification %s", b)
	}
	return doc
}

func TestSubscriptions_AConnectionReceivesPostsMadeOnOtherNodes(t *testing.T) {
	c := testcluster.Start(t, 3)
	for _, enc := range []wsapi.Encoding{wsapi.JSON, wsapi.MsgPack} {
		t.Run(encName(enc), func(t *testing.T) {
			f := c.Followers()
			sub := dial(t, f[0], "follower", enc).on(t)
			r := sub.expect(http.StatusCreated, "subscription_create", `{"queue_name": "news", "ttl": 600}`)
			var created struct {
				SubscriptionID string `json:"subscription_id"`
				Message        string `json:"message"`
			}
			r.decode(&created)
			if created.SubscriptionID == "" || created.Message != "Subscription news created." {
				t.Fatalf("subscription_create body %s", r.Body)
			}
			// Subscribing the same connection again is a conflict.
			sub.expect(http.StatusConflict, "subscription_create", `{"queue_name": "news"}`).bodyIs(`"Subscription news not created."`)

			// Post through REST on another node; the leader pushes through
			// the node that holds the connection.
			code, out := sub.restDo(f[1].URL(), "POST", "/v2/queues/news/messages", `{"messages": [{"body": {"n": 1}}, {"body": "two"}]}`)
			if code != http.StatusCreated {
				t.Fatalf("post: %d %s", code, out)
			}
			got := map[string]bool{}
			for i := 0; i < 2; i++ {
				n := readNotification(t, sub, enc)
				got[string(n["body"])] = true
				if string(n["queue_name"]) != `"news"` {
					t.Fatalf("queue_name %s", n["queue_name"])
				}
			}
			if !got[`{"n":1}`] || !got[`"two"`] {
				t.Fatalf("notifications %v", got)
			}

			// The subscription is visible to others and shaped as §9.1.
			other := dial(t, c.Leader(), "leader", wsapi.JSON).on(t).inProject(sub.project)
			list := other.expect(http.StatusOK, "subscription_list", `{"queue_name": "news"}`)
			var subs struct {
				Subscriptions []map[string]json.RawMessage `json:"subscriptions"`
			}
			list.decode(&subs)
			if len(subs.Subscriptions) != 1 {
				t.Fatalf("subscription_list %s", list.Body)
			}
			wantKeys(t, "subscription", subs.Subscriptions[0], "id", "source", "subscriber", "ttl", "age", "options", "confirmed")
			other.expect(http.StatusOK, "subscription_get", `{"queue_name": "news", "subscription_id": "`+created.SubscriptionID+`"}`)

			// Closing the connection ends its subscription.
			_ = sub.conn.Close(websocket.StatusNormalClosure, "")
			eventually(t, 10*time.Second, func() bool {
				r := other.call("subscription_list", `{"queue_name": "news"}`)
				var left struct {
					Subscriptions []json.RawMessage `json:"subscriptions"`
				}
				return r.Status == http.StatusOK && json.Unmarshal(r.Body, &left) == nil && left.Subscriptions != nil && len(left.Subscriptions) == 0
			}, "the closed connection's subscription was not deleted")
		})
	}
}

func TestSubscriptions_WebhookSubscriptionsOverWebsocket(t *testing.T) {
	c := testcluster.Start(t, 3)
	ws := dial(t, c.Followers()[0], "follower", wsapi.JSON).on(t)
	body := `{"queue_name": "hooks", "subscriber": "http://127.0.0.1:9/hook", "ttl": 3600, "options": {"post_headers": {"X-A": "1"}}}`
	r := ws.expect(http.StatusCreated, "subscription_create", body)
	var created struct {
		SubscriptionID string `json:"subscription_id"`
	}
	r.decode(&created)
	// No confirmation step on the websocket API: a duplicate is 409.
	ws.expect(http.StatusConflict, "subscription_create", body).bodyIs(`"Subscription hooks not created."`)
	ws.expect(http.StatusBadRequest, "subscription_create", `{"queue_name": "hooks", "subscriber": "ftp://x/y"}`)
	ws.expect(http.StatusBadRequest, "subscription_create", `{"queue_name": "hooks", "subscriber": 5}`).errorIs("Schema validation failed.")
	get := ws.expect(http.StatusOK, "subscription_get", `{"queue_name": "hooks", "subscription_id": "`+created.SubscriptionID+`"}`)
	var doc map[string]json.RawMessage
	get.decode(&doc)
	if string(doc["subscriber"]) != `"http://127.0.0.1:9/hook"` || string(doc["options"]) != `{"post_headers":{"X-A":"1"}}` {
		t.Fatalf("subscription_get %s", get.Body)
	}
	ws.expect(http.StatusNoContent, "subscription_delete", `{"queue_name": "hooks", "subscription_id": "`+created.SubscriptionID+`"}`).
		bodyIs(`"Subscription ` + created.SubscriptionID + ` removed."`)
	ws.expect(http.StatusNotFound, "subscription_get", `{"queue_name": "hooks", "subscription_id": "`+created.SubscriptionID+`"}`)
}
