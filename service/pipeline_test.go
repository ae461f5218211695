package service

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"testing"
)

// recordingStage records what it sees, and refuses or rewrites posts when
// told to.
type recordingStage struct {
	name          string
	before, after []Op
	refuse        *Error
	rewrite       json.RawMessage
}

func (r *recordingStage) Name() string { return r.name }

func (r *recordingStage) Before(_ context.Context, op *Op) *Error {
	r.before = append(r.before, snapshot(op))
	if r.refuse != nil {
		return r.refuse
	}
	if r.rewrite != nil && op.Kind == OpPostMessages {
		for i := range op.Messages {
			op.Messages[i].Body = r.rewrite
		}
	}
	return nil
}

func (r *recordingStage) After(_ context.Context, op *Op) { r.after = append(r.after, snapshot(op)) }

// snapshot copies op so that later changes do not show in a record.
func snapshot(op *Op) Op {
	cp := *op
	cp.Messages = append([]OpMessage(nil), op.Messages...)
	if op.Subscription != nil {
		sub := *op.Subscription
		cp.Subscription = &sub
	}
	return cp
}

func newPipelineService(t *testing.T, stages ...Stage) (*Service, func() int) {
	t.Helper()
	svc, node, _ := newLocalService(t, DefaultLimits())
	svc.pipeline = append(pipeline(nil), stages...)
	return svc, node.Proposals
}

func TestPipeline_PostsPassEveryStageInOrderBeforeAndAfterCommit(t *testing.T) {
	ctx := context.Background()
	var order []string
	first := &recordingStage{name: "first"}
	second := &recordingStage{name: "second"}
	svc, _ := newPipelineService(t, orderStage{first, &order}, orderStage{second, &order})
	c := Caller{Project: "p", ClientID: testClientID}

	ids, e := svc.PostMessages(ctx, c, "q", []byte(`{"messages": [{"body": {"a": 1}, "ttl": 120}, {"body": "two"}]}`))
	if e != nil {
		t.Fatal(e)
	}
	if want := []string{"first.before", "second.before", "first.after", "second.after"}; !reflect.DeepEqual(order, want) {
		t.Fatalf("stages ran %v, want %v", order, want)
	}
	b := first.before[0]
	if b.Kind != OpPostMessages || b.Queue != "q" || b.Caller.Project != "p" || b.Metadata != nil {
		t.Fatalf("before a post to a new queue: %+v", b)
	}
	want := []OpMessage{{ID: ids[0], Body: json.RawMessage(`{"a":1}`), TTL: 120}, {ID: ids[1], Body: json.RawMessage(`"two"`)}}
	if !reflect.DeepEqual(b.Messages, want) || !reflect.DeepEqual(first.after[0].Messages, want) {
		t.Fatalf("messages before %+v and after %+v, want %+v", b.Messages, first.after[0].Messages, want)
	}

	// A post to a queue with metadata shows the stage that metadata.
	if _, e := svc.CreateQueue(ctx, c, "withmeta", []byte(`{"owner": "me"}`)); e != nil {
		t.Fatal(e)
	}
	if _, e := svc.PostMessages(ctx, c, "withmeta", []byte(`{"messages": [{"body": 1}]}`)); e != nil {
		t.Fatal(e)
	}
	if got := first.before[len(first.before)-1]; string(got.Metadata) != `{"owner":"me"}` {
		t.Fatalf("a post sees metadata %s", got.Metadata)
	}
}

// orderStage wraps a recordingStage and notes each call in a shared list.
type orderStage struct {
	*recordingStage
	order *[]string
}

func (o orderStage) Before(ctx context.Context, op *Op) *Error {
	*o.order = append(*o.order, o.name+".before")
	return o.recordingStage.Before(ctx, op)
}

func (o orderStage) After(ctx context.Context, op *Op) {
	*o.order = append(*o.order, o.name+".after")
	o.recordingStage.After(ctx, op)
}

func TestPipeline_ARefusalProposesNothingAndStopsTheChain(t *testing.T) {
	ctx := context.Background()
	refusal := Errf(http.StatusBadRequest, TitleInvalidAPIRequest, "no thanks")
	refuser := &recordingStage{name: "refuser", refuse: refusal}
	later := &recordingStage{name: "later"}
	svc, proposals := newPipelineService(t, refuser, later)
	c := Caller{Project: "p", ClientID: testClientID}
	before := proposals()

	if _, e := svc.PostMessages(ctx, c, "q", []byte(`{"messages": [{"body": 1}]}`)); e != refusal {
		t.Fatalf("post: %v, want the stage's refusal", e)
	}
	if _, e := svc.CreateQueue(ctx, c, "q2", nil); e != refusal {
		t.Fatalf("create: %v, want the stage's refusal", e)
	}
	if _, e := svc.CreateSubscription(ctx, c, "q", []byte(`{"subscriber": "http://example.com/hook", "ttl": 3600}`)); e != refusal {
		t.Fatalf("subscribe: %v, want the stage's refusal", e)
	}
	if n := proposals() - before; n != 0 {
		t.Fatalf("%d commands proposed after refusals", n)
	}
	if len(later.before) != 0 || len(refuser.after) != 0 || len(later.after) != 0 {
		t.Fatalf("the chain went on after a refusal: later saw %d, afters %d and %d", len(later.before), len(refuser.after), len(later.after))
	}
	v, _, _ := svc.view(ctx, c, "")
	q, err := v.Queue("p", "q2")
	v.Close()
	if err != nil || q != nil {
		t.Fatalf("a refused create left queue %+v (%v)", q, err)
	}
}

func TestPipeline_ARewrittenBodyIsWhatIsStored(t *testing.T) {
	ctx := context.Background()
	svc, _ := newPipelineService(t, &recordingStage{name: "rewriter", rewrite: json.RawMessage(`{"rewritten":true}`)})
	svc.limits.EnableChecksum = true
	c := Caller{Project: "p", ClientID: testClientID}
	ids, e := svc.PostMessages(ctx, c, "q", []byte(`{"messages": [{"body": "original"}]}`))
	if e != nil {
		t.Fatal(e)
	}
	m, e := svc.GetMessage(ctx, c, "q", ids[0])
	if e != nil {
		t.Fatal(e)
	}
	if string(m.Body) != `{"rewritten":true}` {
		t.Fatalf("stored body %s", m.Body)
	}
	if m.Checksum != checksum(json.RawMessage(`{"rewritten":true}`)) {
		t.Fatalf("checksum %s is not the stored body's", m.Checksum)
	}
}

func TestPipeline_QueueMetadataAndSubscriptionsPassTheStages(t *testing.T) {
	ctx := context.Background()
	rec := &recordingStage{name: "rec"}
	svc, _ := newPipelineService(t, rec)
	c := Caller{Project: "p", ClientID: testClientID}

	if _, e := svc.CreateQueue(ctx, c, "q", []byte(`{"a": 1}`)); e != nil {
		t.Fatal(e)
	}
	if _, e := svc.CreateQueue(ctx, c, "q", []byte(`{"a": 2}`)); e != nil { // exists: nothing changes
		t.Fatal(e)
	}
	if _, e := svc.PatchQueue(ctx, c, "q", []PatchOp{{Op: "add", Key: "b", Value: json.RawMessage(`true`)}}); e != nil {
		t.Fatal(e)
	}
	sub, e := svc.CreateSubscription(ctx, c, "q", []byte(`{"subscriber": "http://example.com/hook", "ttl": 3600, "options": {"x": 1}}`))
	if e != nil {
		t.Fatal(e)
	}
	if e := svc.ConfirmSubscription(ctx, c, "q", sub.ID, []byte(`{"confirmed": false}`)); e != nil {
		t.Fatal(e)
	}

	kinds := func(ops []Op) []OpKind {
		var out []OpKind
		for _, op := range ops {
			out = append(out, op.Kind)
		}
		return out
	}
	all := []OpKind{OpSetQueueMetadata, OpSetQueueMetadata, OpSetQueueMetadata, OpSubscribe, OpConfirmSubscription}
	if got := kinds(rec.before); !reflect.DeepEqual(got, all) {
		t.Fatalf("before saw %v, want %v", got, all)
	}
	// The second create changed nothing, so it has no After.
	afterWant := []OpKind{OpSetQueueMetadata, OpSetQueueMetadata, OpSubscribe, OpConfirmSubscription}
	if got := kinds(rec.after); !reflect.DeepEqual(got, afterWant) {
		t.Fatalf("after saw %v, want %v", got, afterWant)
	}
	if m := string(rec.before[2].Metadata); m != `{"a":1,"b":true}` {
		t.Fatalf("a patch shows the stage %s, want the metadata as it will be stored", m)
	}
	subBefore, subAfter := rec.before[3].Subscription, rec.after[2].Subscription
	if subBefore.Subscriber != "http://example.com/hook" || string(subBefore.Options) != `{"x":1}` || subBefore.Confirmed {
		t.Fatalf("subscribe before: %+v", subBefore)
	}
	if subAfter.ID != sub.ID || subBefore.ID != sub.ID || subAfter.Existing {
		t.Fatalf("subscription ids: before %q after %q, created %q", subBefore.ID, subAfter.ID, sub.ID)
	}
	if conf := rec.after[3].Subscription; conf.ID != sub.ID || conf.Confirmed {
		t.Fatalf("confirm after: %+v", conf)
	}
}

func TestOp_MetadataValue(t *testing.T) {
	op := &Op{Metadata: json.RawMessage(`{"k": {"x": [1]}, "n": null}`)}
	if v, ok := op.MetadataValue("k"); !ok || string(v) != `{"x": [1]}` {
		t.Fatalf("k: %s %v", v, ok)
	}
	if v, ok := op.MetadataValue("n"); !ok || string(v) != "null" {
		t.Fatalf("n: %s %v", v, ok)
	}
	if _, ok := op.MetadataValue("missing"); ok {
		t.Fatal("a missing key was found")
	}
	if _, ok := (&Op{}).MetadataValue("k"); ok {
		t.Fatal("a key was found in no metadata")
	}
}
