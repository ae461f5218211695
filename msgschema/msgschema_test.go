package msgschema_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zaqar-raft/zaqar/msgschema"
	"github.com/zaqar-raft/zaqar/service"
	"github.com/zaqar-raft/zaqar/testkit/fsmnode"
)

const clientID = "3381af92-2b9e-11e3-b191-718613007343"

// newService returns a service over a real store whose pipeline holds the
// schema stage, and a function counting the commands proposed so far.
func newService(t *testing.T) (*service.Service, func() int) {
	t.Helper()
	n, st := fsmnode.OpenForTest(t)
	return service.New(n, st, service.Config{Stages: []service.Stage{msgschema.New(4)}}), n.Proposals
}

const orderSchema = `{"_message_schema": {
	"type": "object",
	"required": ["order_id", "amount"],
	"properties": {"order_id": {"type": "string"}, "amount": {"type": "number", "minimum": 0}},
	"additionalProperties": false
}}`

func TestSchema_PostsMustMatchTheQueuesSchema(t *testing.T) {
	ctx := context.Background()
	svc, proposals := newService(t)
	c := service.Caller{Project: "p", ClientID: clientID}
	if _, e := svc.CreateQueue(ctx, c, "orders", []byte(orderSchema)); e != nil {
		t.Fatal(e)
	}

	if _, e := svc.PostMessages(ctx, c, "orders", []byte(`{"messages": [{"body": {"order_id": "a1", "amount": 3.5}}, {"body": {"order_id": "a2", "amount": 0}}]}`)); e != nil {
		t.Fatalf("matching bodies: %v", e)
	}
	for _, tc := range []struct{ name, body, says string }{
		{"a missing property", `{"messages": [{"body": {"order_id": "a1"}}]}`, "Message 0 does not match"},
		{"a wrong type in the second message", `{"messages": [{"body": {"order_id": "a1", "amount": 1}}, {"body": {"order_id": 7, "amount": 1}}]}`, "Message 1 does not match"},
		{"a property the schema forbids", `{"messages": [{"body": {"order_id": "a1", "amount": 1, "extra": true}}]}`, "Message 0"},
		{"a body that is no object", `{"messages": [{"body": "text"}]}`, "Message 0"},
		{"below the minimum", `{"messages": [{"body": {"order_id": "a1", "amount": -1}}]}`, "Message 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := proposals()
			_, e := svc.PostMessages(ctx, c, "orders", []byte(tc.body))
			if e == nil || e.Status != http.StatusBadRequest || !strings.Contains(e.Description, tc.says) {
				t.Fatalf("got %v, want a 400 saying %q", e, tc.says)
			}
			if proposals() != before {
				t.Fatal("a refused post was proposed")
			}
		})
	}
	list, e := svc.ListMessages(ctx, c, "orders", service.MessageListOptions{Echo: true})
	if e != nil || len(list.Messages) != 2 {
		t.Fatalf("the queue holds %d messages (%v), want the 2 that matched", len(list.Messages), e)
	}

	// Other queues, and a queue whose schema was removed, take anything.
	if _, e := svc.PostMessages(ctx, c, "free", []byte(`{"messages": [{"body": "text"}]}`)); e != nil {
		t.Fatalf("a queue without a schema: %v", e)
	}
	if _, e := svc.PatchQueue(ctx, c, "orders", []service.PatchOp{{Op: "remove", Key: msgschema.MetadataKey}}); e != nil {
		t.Fatal(e)
	}
	if _, e := svc.PostMessages(ctx, c, "orders", []byte(`{"messages": [{"body": "text"}]}`)); e != nil {
		t.Fatalf("after the schema was removed: %v", e)
	}
	// A null schema is none.
	if _, e := svc.CreateQueue(ctx, c, "nullschema", []byte(`{"_message_schema": null}`)); e != nil {
		t.Fatal(e)
	}
	if _, e := svc.PostMessages(ctx, c, "nullschema", []byte(`{"messages": [{"body": 1}]}`)); e != nil {
		t.Fatalf("a null schema: %v", e)
	}
}

func TestSchema_MetadataMustHoldAUsableSchema(t *testing.T) {
	ctx := context.Background()
	svc, proposals := newService(t)
	c := service.Caller{Project: "p", ClientID: clientID}
	// A schema file on the node's disk that would compile if it were read.
	local := filepath.Join(t.TempDir(), "schema.json")
	if err := os.WriteFile(local, []byte(`{"type": "object"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, schema string }{
		{"a reference to a schema file on the node", `{"$ref": "file://` + local + `"}`},
		{"not a schema", `"a string"`},
		{"a number", `42`},
		{"an unknown type", `{"type": "integer-ish"}`},
		{"a bad pattern", `{"type": "string", "pattern": "("}`},
		{"a reference to a file", `{"$ref": "file:///etc/passwd"}`},
		{"a reference to a URL", `{"$ref": "http://169.254.169.254/latest/meta-data"}`},
		{"a reference to nothing inside", `{"$ref": "#/$defs/missing"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := proposals()
			_, e := svc.CreateQueue(ctx, c, "q", []byte(`{"_message_schema": `+tc.schema+`}`))
			if e == nil || e.Status != http.StatusBadRequest || !strings.Contains(e.Description, "_message_schema") {
				t.Fatalf("create: %v, want a 400 naming the key", e)
			}
			if proposals() != before {
				t.Fatal("a refused create was proposed")
			}
		})
	}
	if _, e := svc.CreateQueue(ctx, c, "q", []byte(`{"owner": "me"}`)); e != nil {
		t.Fatal(e)
	}
	_, e := svc.PatchQueue(ctx, c, "q", []service.PatchOp{{Op: "add", Key: msgschema.MetadataKey, Value: json.RawMessage(`{"type": "nonsense"}`)}})
	if e == nil || e.Status != http.StatusBadRequest {
		t.Fatalf("patch with an unusable schema: %v, want 400", e)
	}
	got, e := svc.GetQueue(ctx, c, "q")
	if e != nil {
		t.Fatal(e)
	}
	if _, ok := got.Metadata[msgschema.MetadataKey]; ok {
		t.Fatalf("a refused patch was stored: %s", got.Metadata[msgschema.MetadataKey])
	}
	// References inside the schema and to a draft's meta-schema work.
	inside := `{"$defs": {"id": {"type": "string"}}, "type": "object", "properties": {"id": {"$ref": "#/$defs/id"}}}`
	if _, e := svc.CreateQueue(ctx, c, "refs", []byte(`{"_message_schema": `+inside+`}`)); e != nil {
		t.Fatalf("a schema with an inner reference: %v", e)
	}
	if _, e := svc.PostMessages(ctx, c, "refs", []byte(`{"messages": [{"body": {"id": 5}}]}`)); e == nil {
		t.Fatal("a body breaking the inner reference was accepted")
	}
	meta := `{"$ref": "https://json-schema.org/draft/2020-12/schema"}`
	if _, e := svc.CreateQueue(ctx, c, "schemas", []byte(`{"_message_schema": `+meta+`}`)); e != nil {
		t.Fatalf("a schema of schemas: %v", e)
	}
	if _, e := svc.PostMessages(ctx, c, "schemas", []byte(`{"messages": [{"body": {"type": "bogus"}}]}`)); e == nil {
		t.Fatal("a body that is no schema passed the meta-schema")
	}
}

// A schema stored before the stage checked metadata (an upgrade) refuses
// posts rather than letting everything through.
func TestSchema_AnUnusableStoredSchemaRefusesPosts(t *testing.T) {
	ctx := context.Background()
	n, st := fsmnode.OpenForTest(t)
	c := service.Caller{Project: "p", ClientID: clientID}
	without := service.New(n, st, service.Config{})
	if _, e := without.CreateQueue(ctx, c, "q", []byte(`{"_message_schema": {"type": "nonsense"}}`)); e != nil {
		t.Fatal(e)
	}
	with := service.New(n, st, service.Config{Stages: []service.Stage{msgschema.New(4)}})
	_, e := with.PostMessages(ctx, c, "q", []byte(`{"messages": [{"body": 1}]}`))
	if e == nil || e.Status != http.StatusBadRequest || !strings.Contains(e.Description, "update the queue's metadata") {
		t.Fatalf("got %v, want a 400 asking for the metadata to be fixed", e)
	}
}

func BenchmarkSchema_PostToASchemaQueue(b *testing.B) {
	st := msgschema.New(16)
	op := &service.Op{Kind: service.OpPostMessages, Metadata: json.RawMessage(orderSchema),
		Messages: []service.OpMessage{{Body: json.RawMessage(`{"order_id": "a1", "amount": 3.5}`)}}}
	b.ReportAllocs()
	for b.Loop() {
		if e := st.Before(context.Background(), op); e != nil {
			b.Fatal(e)
		}
	}
}
