package wsapi

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/zaqar-raft/zaqar/internal/ids"
	"github.com/zaqar-raft/zaqar/service"
	"github.com/zaqar-raft/zaqar/store"
	"github.com/zaqar-raft/zaqar/testkit/fsmnode"
)

// fuzzConn is a connection of a websocket server over a fresh store, fed
// frames directly (no network).
type fuzzConn struct {
	conn *Conn
	tmp  *fsmnode.Temp
	st   *store.Store
}

func newFuzzConn(tb testing.TB) *fuzzConn {
	tb.Helper()
	tmp, err := fsmnode.OpenTemp("zaqar-fuzz-ws-")
	if err != nil {
		tb.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := service.New(tmp.Node, tmp.Store, service.Config{SignedURLSecret: "fuzz-secret", Logger: quiet})
	srv := New(Config{Service: svc, Logger: quiet, NodeID: "fuzz"})
	return &fuzzConn{conn: &Conn{ID: ids.New(), srv: srv}, tmp: tmp, st: tmp.Store}
}

func (c *fuzzConn) close() { c.tmp.Close() }

// FuzzActionFrames feeds arbitrary frames, as JSON text and MessagePack,
// to a connection's request handler with a real service and store behind
// it (every action, including writes). Whatever the frame: no panic; the
// answer is one {"request", "headers": {"status"}, "body"} document; no
// 5xx other than 501 for the actions not implemented yet; and a refused
// request (4xx) leaves the store byte-for-byte unchanged.
// Seeds: testdata/fuzz/FuzzActionFrames.
func FuzzActionFrames(f *testing.F) {
	h := `"headers": {"Client-ID": "3381af922b9e11e3b191718613007343", "X-Project-ID": "p1"}`
	for _, body := range []string{
		`{"action": "queue_create", ` + h + `, "body": {"queue_name": "q", "metadata": {"_default_message_ttl": 300}}}`,
		`{"action": "message_post", ` + h + `, "body": {"queue_name": "q", "messages": [{"body": {"n": 1}, "ttl": 60}]}}`,
		`{"action": "message_list", ` + h + `, "body": {"queue_name": "q", "echo": true, "limit": 5}}`,
		`{"action": "message_get_many", ` + h + `, "body": {"queue_name": "q", "message_ids": ["0123456789abcdef0123456789abcdef"]}}`,
		`{"action": "message_delete_many", ` + h + `, "body": {"queue_name": "q", "pop": 2}}`,
		`{"action": "claim_create", ` + h + `, "body": {"queue_name": "q", "limit": 2, "ttl": 60, "grace": 60}}`,
		`{"action": "claim_update", ` + h + `, "body": {"queue_name": "q", "claim_id": "0123456789abcdef0123456789abcdef", "ttl": 90}}`,
		`{"action": "queue_purge", ` + h + `, "body": {"queue_name": "q", "resource_types": ["messages"]}}`,
		`{"action": "subscription_create", ` + h + `, "body": {"queue_name": "q", "subscriber": "http://127.0.0.1:9/x", "ttl": 600}}`,
		`{"action": "subscription_list", ` + h + `, "body": {"queue_name": "q"}}`,
		`{"action": "queue_list", ` + h + `, "body": {"limit": 2, "detailed": true}}`,
		`{"action": "authenticate", "headers": {"X-Auth-Token": "t", "X-Project-ID": "p1"}}`,
		`{"action": "message_list", "headers": {"Client-ID": "3381af922b9e11e3b191718613007343", "X-Project-ID": "p1", "URL-Signature": "00", "URL-Expires": "2099-01-01T00:00:00", "URL-Paths": ["/v2/queues/q/messages"], "URL-Methods": ["GET"]}, "body": {"queue_name": "q"}}`,
		`{"action": "pool_list", ` + h + `}`,
	} {
		f.Add(false, []byte(body))
	}
	fc := newFuzzConn(f)
	f.Cleanup(func() { fc.close() })
	runs := 0
	f.Fuzz(func(t *testing.T, binary bool, frame []byte) {
		runs++
		if runs%500 == 0 {
			fc.close()
			fc = newFuzzConn(t)
		}
		enc := JSON
		if binary {
			enc = MsgPack
		}
		before, err := fc.st.Digest()
		if err != nil {
			t.Fatal(err)
		}
		resp := fc.conn.handle(context.Background(), inbound{enc: enc, frame: frame})
		var doc struct {
			Request json.RawMessage `json:"request"`
			Headers struct {
				Status *int `json:"status"`
			} `json:"headers"`
			Body json.RawMessage `json:"body"`
		}
		if err := json.Unmarshal(resp, &doc); err != nil || doc.Headers.Status == nil || doc.Request == nil || doc.Body == nil {
			t.Fatalf("response is not an envelope (%v): %s", err, resp)
		}
		status := *doc.Headers.Status
		if status >= 500 && status != http.StatusNotImplemented {
			t.Fatalf("frame %q: %d %s", frame, status, doc.Body)
		}
		if status >= 400 {
			if !strings.Contains(string(doc.Body), `"error"`) {
				t.Fatalf("frame %q: %d without an error: %s", frame, status, doc.Body)
			}
			after, err := fc.st.Digest()
			if err != nil {
				t.Fatal(err)
			}
			if after != before {
				t.Fatalf("frame %q was refused (%d %s) but changed the store", frame, status, doc.Body)
			}
		}
	})
}
