package wsapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/zaqar-raft/zaqar/testkit/testcluster"
	"github.com/zaqar-raft/zaqar/wsapi"
)

// decodeErrorEcho is the request echo of a frame that could not be
// decoded (contract §13.2).
const decodeErrorEcho = `{"action": null, "body": {}, "headers": {}, "api": "v2"}`

const schemaFailed = "Schema validation failed."

// TestFrames_UndecodableFramesAnswer400WithTheEmptyEcho sends frames that
// are not a JSON or MessagePack object; each gets a 400 with the empty
// request echo, in the encoding of the frame, and the connection stays
// usable.
func TestFrames_UndecodableFramesAnswer400WithTheEmptyEcho(t *testing.T) {
	c := testcluster.Start(t, 3)
	node := c.Followers()[0]
	for _, tc := range []struct {
		name  string
		enc   wsapi.Encoding
		frame []byte
		error string // exact, or a prefix when it ends in "..."
	}{
		{"text that is not JSON", wsapi.JSON, []byte(`{"action": "queue_list",`), "Can't decode text (JSON) request. ValueError: request body could not be parsed"},
		{"text that is JSON plus garbage", wsapi.JSON, []byte(`{} {}`), "Can't decode text (JSON) request. ValueError: request body could not be parsed"},
		{"text with an integer beyond int64", wsapi.JSON, []byte(`{"action": "queue_list", "n": 99999999999999999999}`), "Can't decode text (JSON) request. ValueError: JSON contains integer that is too large"},
		{"an empty text frame", wsapi.JSON, nil, "Can't decode text (JSON) request. ValueError: request body could not be parsed"},
		{"JSON with two actions", wsapi.JSON, []byte(`{"action": "queue_delete", "body": {"queue_name": "q"}, "action": "queue_list"}`),
			`Can't decode text (JSON) request. ValueError: duplicate key "action"`},
		{"JSON with an action spelt twice", wsapi.JSON, []byte(`{"action": "queue_list", "\u0061ction": "queue_delete"}`),
			`Can't decode text (JSON) request. ValueError: duplicate key "action"`},
		{"JSON headers with two projects", wsapi.JSON, []byte(`{"action": "queue_list", "headers": {"X-Project-ID": "a", "Client-ID": "3381af92-2b9e-11e3-b191-718613007343", "X-Project-ID": "b"}}`),
			`Can't decode text (JSON) request. ValueError: duplicate key "X-Project-ID"`},
		{"a JSON array", wsapi.JSON, []byte(`[{"action": "queue_list"}]`), "Unexpected body type. Expected dict or dict like."},
		{"a JSON string", wsapi.JSON, []byte(`"queue_list"`), "Unexpected body type. Expected dict or dict like."},
		{"JSON null", wsapi.JSON, []byte(`null`), "Unexpected body type. Expected dict or dict like."},
		{"a JSON number", wsapi.JSON, []byte(`42`), "Unexpected body type. Expected dict or dict like."},
		{"binary that is not MessagePack", wsapi.MsgPack, []byte{0xc1}, "Can't decode binary (MessagePack) request. ..."},
		{"truncated MessagePack", wsapi.MsgPack, []byte{0x82, 0xa6, 'a', 'c', 't', 'i'}, "Can't decode binary (MessagePack) request. ..."},
		{"an empty binary frame", wsapi.MsgPack, nil, "Can't decode binary (MessagePack) request. ..."},
		{"a MessagePack array", wsapi.MsgPack, msgpack(t, []any{map[string]any{"action": "queue_list"}}), "Unexpected body type. Expected dict or dict like."},
		{"a MessagePack string", wsapi.MsgPack, msgpack(t, "queue_list"), "Unexpected body type. Expected dict or dict like."},
		{"MessagePack nil", wsapi.MsgPack, []byte{0xc0}, "Unexpected body type. Expected dict or dict like."},
		{"a MessagePack integer beyond int64", wsapi.MsgPack, msgpack(t, map[string]any{"action": "queue_list", "n": uint64(1 << 63)}), "Can't decode binary (MessagePack) request. ValueError: JSON contains integer that is too large"},
		// Nothing may be lost or made up between the frame and what the
		// service reads: an extension has no JSON form, a second "action"
		// or header would silently win, and bytes after the object are a
		// request nobody answers.
		{"a MessagePack extension value", wsapi.MsgPack, msgpackMap(t, "action", "queue_list", "x", rawMsgpack{0xd4, 0x05, 0x01}),
			"Can't decode binary (MessagePack) request. ValueError: MessagePack extension type 5 is not supported"},
		{"a MessagePack timestamp", wsapi.MsgPack, msgpackMap(t, "action", "queue_list", "t", rawMsgpack{0xd6, 0xff, 0, 0, 0, 1}),
			"Can't decode binary (MessagePack) request. ValueError: MessagePack extension type -1 is not supported"},
		{"a MessagePack object with two actions", wsapi.MsgPack, msgpackMap(t, "action", "queue_delete", "action", "queue_list"),
			`Can't decode binary (MessagePack) request. ValueError: duplicate key "action"`},
		{"MessagePack headers with two projects", wsapi.MsgPack,
			msgpackMap(t, "action", "queue_list", "headers", rawMsgpack(msgpackMap(t, "X-Project-ID", "a", "Client-ID", newUUID(), "X-Project-ID", "b"))),
			`Can't decode binary (MessagePack) request. ValueError: duplicate key "X-Project-ID"`},
		{"MessagePack with bytes after the object", wsapi.MsgPack,
			append(msgpack(t, map[string]any{"action": "queue_list"}), msgpack(t, map[string]any{"action": "queue_delete"})...),
			"Can't decode binary (MessagePack) request. ExtraData: extra data after the object (from byte 19 of 40)"},
	} {
		t.Run(encName(tc.enc)+": "+tc.name, func(t *testing.T) {
			ws := dial(t, node, "follower", tc.enc)
			typ := websocket.MessageText
			if tc.enc == wsapi.MsgPack {
				typ = websocket.MessageBinary
			}
			ws.sendRaw(typ, tc.frame)
			r := ws.recv(tc.name).status(http.StatusBadRequest)
			jsonEqual(t, "request echo", r.Request, decodeErrorEcho)
			if prefix, ok := strings.CutSuffix(tc.error, "..."); ok {
				var body struct{ Error string }
				r.decode(&body)
				wantKeys(t, "error body", r.object(), "error")
				if !strings.HasPrefix(body.Error, prefix) || len(body.Error) == len(prefix) {
					t.Fatalf("error %q, want %q followed by the decoder's reason", body.Error, prefix)
				}
			} else {
				r.errorIs(tc.error)
			}
			ws.expect(http.StatusOK, "queue_list", "").bodyIs(`{"queues": []}`)
		})
	}
}

// TestFrames_InvalidRequestsAnswer400AndEchoTheRequest sends decodable
// frames that fail the request checks of contract §13.2/§13.4 in both
// encodings: each is a 400 echoing the request as sent.
func TestFrames_InvalidRequestsAnswer400AndEchoTheRequest(t *testing.T) {
	c := testcluster.Start(t, 3)
	const (
		h   = `{"Client-ID": "3381af92-2b9e-11e3-b191-718613007343", "X-Project-ID": "frames"}`
		qcb = `{"action": "queue_create", "headers": ` + h + `, "body": `
	)
	long := strings.Repeat("p", 257)
	for _, tc := range []struct {
		name, frame string
		error       string // the whole body when it starts with '{'
	}{
		{"missing action", `{"headers": ` + h + `, "body": {}}`, schemaFailed},
		{"null action", `{"action": null, "headers": ` + h + `}`, schemaFailed},
		{"numeric action", `{"action": 5, "headers": ` + h + `}`, schemaFailed},
		{"object action", `{"action": {"name": "queue_list"}, "headers": ` + h + `}`, schemaFailed},
		{"unknown action", `{"action": "queue_explode", "headers": ` + h + `}`, "queue_explode is not a valid action"},
		{"empty action", `{"action": "", "headers": ` + h + `}`, " is not a valid action"},
		{"missing headers", `{"action": "queue_list", "body": {}}`, schemaFailed},
		{"headers not an object", `{"action": "queue_list", "headers": "Client-ID"}`, schemaFailed},
		{"null headers", `{"action": "queue_list", "headers": null}`, schemaFailed},
		{"missing Client-ID", `{"action": "queue_list", "headers": {"X-Project-ID": "frames"}}`, schemaFailed},
		{"missing X-Project-ID", `{"action": "queue_list", "headers": {"Client-ID": "3381af922b9e11e3b191718613007343"}}`, schemaFailed},
		{"numeric Client-ID", `{"action": "queue_list", "headers": {"Client-ID": 5, "X-Project-ID": "frames"}}`, schemaFailed},
		{"numeric X-Project-ID", `{"action": "queue_list", "headers": {"Client-ID": "3381af922b9e11e3b191718613007343", "X-Project-ID": 5}}`, schemaFailed},
		{"malformed Client-ID", `{"action": "queue_list", "headers": {"Client-ID": "not-a-uuid", "X-Project-ID": "frames"}}`,
			`{"exception": "Wrong UUID value", "error": "Malformed hexadecimal UUID."}`},
		{"empty X-Project-ID", `{"action": "queue_list", "headers": {"Client-ID": "3381af922b9e11e3b191718613007343", "X-Project-ID": ""}}`,
			`{"exception": "Empty project header not allowed", "error": "Empty project header not allowed"}`},
		{"project longer than 256", `{"action": "queue_get", "headers": {"Client-ID": "3381af922b9e11e3b191718613007343", "X-Project-ID": "` + long + `"}, "body": {"queue_name": "q"}}`,
			`{"exception": "Invalid queue identification", "error": "Project ids may not be more than 256 characters long."}`},
		{"authenticate without X-Auth-Token", `{"action": "authenticate", "headers": ` + h + `}`, schemaFailed},
		{"authenticate without headers", `{"action": "authenticate"}`, schemaFailed},

		{"missing body", `{"action": "queue_create", "headers": ` + h + `}`, schemaFailed},
		{"null body", qcb + `null}`, schemaFailed},
		{"body not an object", qcb + `["q"]}`, schemaFailed},
		{"body a string", qcb + `"q"}`, schemaFailed},
		{"missing queue_name", qcb + `{"metadata": {}}}`, schemaFailed},
		{"numeric queue_name", qcb + `{"queue_name": 5}}`, schemaFailed},
		{"null queue_name", qcb + `{"queue_name": null}}`, schemaFailed},
		{"metadata not an object", qcb + `{"queue_name": "q", "metadata": ["a"]}}`, schemaFailed},
		{"invalid queue name", qcb + `{"queue_name": "a/b"}}`,
			`{"exception": "Invalid queue identification", "error": "Queue names may only contain ASCII letters, digits, underscores, dashes and dots."}`},
		{"queue name .", qcb + `{"queue_name": "."}}`,
			`{"exception": "Invalid queue identification", "error": "Queue names may not be \".\" or \"..\"."}`},
		{"queue name ..", `{"action": "message_post", "headers": ` + h + `, "body": {"queue_name": "..", "messages": [{"body": 1}]}}`,
			`{"exception": "Invalid queue identification", "error": "Queue names may not be \".\" or \"..\"."}`},
		{"queue_list limit a string", `{"action": "queue_list", "headers": ` + h + `, "body": {"limit": "5"}}`, schemaFailed},
		{"queue_list limit a float", `{"action": "queue_list", "headers": ` + h + `, "body": {"limit": 1.5}}`, schemaFailed},
		{"queue_list limit a boolean", `{"action": "queue_list", "headers": ` + h + `, "body": {"limit": true}}`, schemaFailed},
		{"queue_list detailed a string", `{"action": "queue_list", "headers": ` + h + `, "body": {"detailed": "true"}}`, schemaFailed},
		{"queue_list marker a number", `{"action": "queue_list", "headers": ` + h + `, "body": {"marker": 1}}`, schemaFailed},
		{"queue_purge resource_types a string", `{"action": "queue_purge", "headers": ` + h + `, "body": {"queue_name": "q", "resource_types": "messages"}}`, schemaFailed},
		{"message_post without messages", `{"action": "message_post", "headers": ` + h + `, "body": {"queue_name": "q"}}`, schemaFailed},
		{"message_post messages an object", `{"action": "message_post", "headers": ` + h + `, "body": {"queue_name": "q", "messages": {"body": 1}}}`, schemaFailed},
		{"message_list echo a number", `{"action": "message_list", "headers": ` + h + `, "body": {"queue_name": "q", "echo": 1}}`, schemaFailed},
		{"message_list include_claimed a string", `{"action": "message_list", "headers": ` + h + `, "body": {"queue_name": "q", "include_claimed": "yes"}}`, schemaFailed},
		{"message_get without message_id", `{"action": "message_get", "headers": ` + h + `, "body": {"queue_name": "q"}}`, schemaFailed},
		{"message_get message_id a number", `{"action": "message_get", "headers": ` + h + `, "body": {"queue_name": "q", "message_id": 1}}`, schemaFailed},
		{"message_get_many without message_ids", `{"action": "message_get_many", "headers": ` + h + `, "body": {"queue_name": "q"}}`, schemaFailed},
		{"message_get_many message_ids a string", `{"action": "message_get_many", "headers": ` + h + `, "body": {"queue_name": "q", "message_ids": "a,b"}}`, schemaFailed},
		{"message_get_many numeric message_ids", `{"action": "message_get_many", "headers": ` + h + `, "body": {"queue_name": "q", "message_ids": [1, 2]}}`, schemaFailed},
		{"message_delete claim_id a number", `{"action": "message_delete", "headers": ` + h + `, "body": {"queue_name": "q", "message_id": "m", "claim_id": 7}}`, schemaFailed},
		{"message_delete_many pop a string", `{"action": "message_delete_many", "headers": ` + h + `, "body": {"queue_name": "q", "pop": "1"}}`, schemaFailed},
		{"message_delete_many null message_ids", `{"action": "message_delete_many", "headers": ` + h + `, "body": {"queue_name": "q", "message_ids": [null]}}`, schemaFailed},
		{"message_delete_many claim_ids not strings", `{"action": "message_delete_many", "headers": ` + h + `, "body": {"queue_name": "q", "message_ids": ["a"], "claim_ids": [{}]}}`, schemaFailed},
		{"claim_create ttl a string", `{"action": "claim_create", "headers": ` + h + `, "body": {"queue_name": "q", "ttl": "60"}}`, schemaFailed},
		{"claim_create limit a float", `{"action": "claim_create", "headers": ` + h + `, "body": {"queue_name": "q", "limit": 2.5}}`, schemaFailed},
		{"claim_get without claim_id", `{"action": "claim_get", "headers": ` + h + `, "body": {"queue_name": "q"}}`, schemaFailed},
		{"claim_update grace a string", `{"action": "claim_update", "headers": ` + h + `, "body": {"queue_name": "q", "claim_id": "c", "grace": "60"}}`, schemaFailed},
		{"claim_delete claim_id null", `{"action": "claim_delete", "headers": ` + h + `, "body": {"queue_name": "q", "claim_id": null}}`, schemaFailed},
	} {
		for _, enc := range encodings {
			t.Run(encName(enc)+": "+tc.name, func(t *testing.T) {
				ws := dial(t, c.Leader(), "leader", enc)
				r := ws.callFrame(tc.frame).status(http.StatusBadRequest).echoes()
				if strings.HasPrefix(tc.error, "{") {
					r.bodyIs(tc.error)
				} else {
					r.errorIs(tc.error)
				}
				// A rejected request changes nothing and the connection
				// keeps working.
				ws.expect(http.StatusOK, "queue_list", "", map[string]any{"X-Project-ID": "frames"}).bodyIs(`{"queues": []}`)
			})
		}
	}
}

// rawMsgpack is MessagePack written into msgpackMap as is.
type rawMsgpack []byte

// msgpackMap writes a MessagePack map of up to 15 key/value pairs in the
// order given, repeated keys included, which no encoder of Go maps can.
func msgpackMap(t *testing.T, pairs ...any) []byte {
	t.Helper()
	b := []byte{0x80 | byte(len(pairs)/2)}
	for _, p := range pairs {
		if raw, ok := p.(rawMsgpack); ok {
			b = append(b, raw...)
			continue
		}
		b = append(b, msgpack(t, p)...)
	}
	return b
}

// msgpack encodes v as MessagePack.
func msgpack(t *testing.T, v any) []byte {
	t.Helper()
	b, err := wsapi.EncodeMsgPack(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
