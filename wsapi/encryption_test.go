package wsapi_test

import (
	"bytes"
	"net/http"
	"testing"
	"time"

	"github.com/zaqar-raft/zaqar/internal/bodycrypt"
	"github.com/zaqar-raft/zaqar/server"
	"github.com/zaqar-raft/zaqar/testkit/testcluster"
	"github.com/zaqar-raft/zaqar/wsapi"
)

// The websocket transport posts and reads through the same service as
// REST, so an encrypted queue's messages are sealed when posted over the
// websocket and opened by every websocket read action.
func TestEncryption_WebsocketPostsAreSealedAndEveryReadActionOpensThem(t *testing.T) {
	key, err := bodycrypt.NewKeyring(bytes.Repeat([]byte{3}, bodycrypt.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	c := testcluster.Start(t, 3, testcluster.WithConfig(func(cfg *server.Config) { cfg.MessageKeys = key }))
	followers := c.Followers()
	for _, enc := range []wsapi.Encoding{wsapi.JSON, wsapi.MsgPack} {
		t.Run(encName(enc), func(t *testing.T) {
			writer := dial(t, followers[0], "follower", enc)
			reader := dial(t, followers[1], "follower", enc).inProject(writer.project)
			reader.clientID = writer.clientID // echo its own messages
			writer.expect(http.StatusCreated, "queue_create", `{"queue_name": "vault", "metadata": {"_enable_encrypt_messages": true}}`)
			const a, b = `{"pin": "1234", "n": [1, 2]}`, `"second"`
			ids := writer.post("vault", a, b)

			// What the store holds is the envelope, on every node.
			c.WaitConverged(15 * time.Second)
			for _, n := range c.Nodes {
				v := n.Server.Store().View()
				m, err := v.Message(writer.project, "vault", ids[0], time.Now().UnixNano())
				v.Close()
				if err != nil || m == nil || !bodycrypt.IsSealed(m.Body) || bytes.Contains(m.Body, []byte("1234")) {
					t.Fatalf("%s stores %v, %v; want an envelope", n.ID, m, err)
				}
			}

			list := reader.expect(http.StatusOK, "message_list", `{"queue_name": "vault", "echo": true}`).messages()
			if len(list) != 2 {
				t.Fatalf("message_list returned %d", len(list))
			}
			jsonEqual(t, "message_list", list[0].Body, a)
			jsonEqual(t, "message_list", list[1].Body, b)
			var one struct{ Messages wsMessage }
			reader.expect(http.StatusOK, "message_get", `{"queue_name": "vault", "message_id": "`+ids[1]+`"}`).decode(&one)
			jsonEqual(t, "message_get", one.Messages.Body, b)
			many := reader.expect(http.StatusOK, "message_get_many", `{"queue_name": "vault", "message_ids": ["`+ids[0]+`"]}`).messages()
			jsonEqual(t, "message_get_many", many[0].Body, a)

			claimed := reader.expect(http.StatusCreated, "claim_create", `{"queue_name": "vault", "limit": 1}`)
			var claim struct {
				ClaimID  string `json:"claim_id"`
				Messages []wsMessage
			}
			claimed.decode(&claim)
			jsonEqual(t, "claim_create", claim.Messages[0].Body, a)
			var got struct{ Messages []wsMessage }
			writer.expect(http.StatusOK, "claim_get", `{"queue_name": "vault", "claim_id": "`+claim.ClaimID+`"}`).decode(&got)
			jsonEqual(t, "claim_get", got.Messages[0].Body, a)
			r := writer.expect(http.StatusOK, "message_delete_many", `{"queue_name": "vault", "pop": 1}`)
			var pop struct {
				Messages []wsMessage `json:"messages"`
			}
			r.decode(&pop)
			if len(pop.Messages) != 1 || pop.Messages[0].ID != ids[1] {
				t.Fatalf("popped %s", r.Body)
			}
			jsonEqual(t, "pop", pop.Messages[0].Body, b)
		})
	}
}
