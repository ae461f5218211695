package service

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zaqar-raft/zaqar/fsm"
	"github.com/zaqar-raft/zaqar/store"
	"github.com/zaqar-raft/zaqar/testkit/fsmnode"
)

// heatTTL is OpenStack Heat's default subscription TTL (about 6983 years).
const heatTTL int64 = 220367260800

// recordingNode is an fsmnode that remembers the type of every command
// proposed through it.
type recordingNode struct {
	*fsmnode.Node
	mu    sync.Mutex
	types []fsm.Type
}

func (n *recordingNode) Propose(ctx context.Context, cmds ...fsm.Command) (*fsm.EntryResult, error) {
	n.mu.Lock()
	for _, c := range cmds {
		n.types = append(n.types, c.Type())
	}
	n.mu.Unlock()
	return n.Node.Propose(ctx, cmds...)
}

func (n *recordingNode) last() fsm.Type {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.types[len(n.types)-1]
}

// capturedConfirmations is a Confirmer keeping the payloads it is handed.
type capturedConfirmations struct {
	mu       sync.Mutex
	payloads [][]byte
}

func (c *capturedConfirmations) SendConfirmation(_ *store.Subscription, _ string, payload []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.payloads = append(c.payloads, payload)
}

func (c *capturedConfirmations) last(t *testing.T) map[string]any {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.payloads) == 0 {
		t.Fatal("no confirmation was sent")
	}
	var doc map[string]any
	if err := json.Unmarshal(c.payloads[len(c.payloads)-1], &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// newExpiryService is a service over one recording replica that requires
// confirmations and keeps them.
func newExpiryService(t *testing.T) (*Service, *recordingNode, *store.Store, *capturedConfirmations) {
	t.Helper()
	fn, st := fsmnode.OpenForTest(t)
	n := &recordingNode{Node: fn}
	conf := &capturedConfirmations{}
	svc := New(n, st, Config{SignedURLSecret: "k", Confirmer: conf, Notifications: NotificationConfig{RequireConfirmation: true}})
	return svc, n, st, conf
}

var expiryCaller = Caller{Project: "p-heat", ClientID: "3381af922b9e11e3b191718613007343"}

func TestSubscription_HeatsDefaultTTLIsAcceptedShownAsGivenAndNeverExpires(t *testing.T) {
	svc, node, st, conf := newExpiryService(t)
	ctx := context.Background()
	res, e := svc.CreateSubscription(ctx, expiryCaller, "q", []byte(fmt.Sprintf(`{"subscriber": "http://127.0.0.1:9/heat", "ttl": %d}`, heatTTL)))
	if e != nil {
		t.Fatalf("Heat's default TTL refused: %v", e)
	}
	if got := node.last(); got != fsm.TypeSubscribeLong {
		t.Fatalf("proposed as type %d, want SubscribeLong (%d)", got, fsm.TypeSubscribeLong)
	}
	sub, e := svc.GetSubscription(ctx, expiryCaller, "q", res.ID)
	if e != nil || sub.TTL != heatTTL || sub.Age != 0 {
		t.Fatalf("GET = %+v, %v; want ttl %d", sub, e, heatTTL)
	}
	list, e := svc.ListSubscriptions(ctx, expiryCaller, "q", "", nil)
	if e != nil || len(list.Subscriptions) != 1 || list.Subscriptions[0].TTL != heatTTL {
		t.Fatalf("list = %+v, %v", list, e)
	}
	v := st.View()
	stored, err := v.Subscription(expiryCaller.scope(), "q", res.ID, store.Never-1)
	v.Close()
	if err != nil || stored == nil || stored.ExpiresAt != store.Never {
		t.Fatalf("stored %+v, %v; want it live until Never", stored, err)
	}
	// The confirmation it was sent expires when the subscription would,
	// in year 9009 or so, and its signature verifies.
	doc := conf.last(t)
	exp, err := parseExpires(doc["URL-Expires"].(string))
	want := time.Now().Unix() + heatTTL
	if err != nil || exp.Unix() < want-5 || exp.Unix() > want+5 {
		t.Fatalf("confirmation expires %v (%v), want about %s", doc["URL-Expires"], err, time.Unix(want, 0).UTC())
	}
	grant := SignedRequest{Signature: doc["URL-Signature"].(string), Expires: doc["URL-Expires"].(string),
		Methods: []string{"PUT"}, Paths: []string{doc["URL-Paths"].(string)}, Project: expiryCaller.Project}
	if !svc.verifySigned(Operation{Method: "PUT", Resource: doc["URL-Paths"].(string)}, grant) {
		t.Fatalf("the confirmation grant %+v does not verify", grant)
	}

	// A PATCH to Heat's TTL travels as UpdateSubscriptionLong; to a short
	// TTL as the ordinary command.
	if e := svc.UpdateSubscription(ctx, expiryCaller, "q", res.ID, []byte(fmt.Sprintf(`{"ttl": %d}`, heatTTL))); e != nil {
		t.Fatalf("PATCH to Heat's TTL: %v", e)
	}
	if got := node.last(); got != fsm.TypeUpdateSubscriptionLong {
		t.Fatalf("PATCH proposed as type %d, want UpdateSubscriptionLong", got)
	}
	if e := svc.UpdateSubscription(ctx, expiryCaller, "q", res.ID, []byte(`{"ttl": 600}`)); e != nil {
		t.Fatal(e)
	}
	if got := node.last(); got != fsm.TypeUpdateSubscription {
		t.Fatalf("a short PATCH proposed as type %d", got)
	}
	if sub, _ := svc.GetSubscription(ctx, expiryCaller, "q", res.ID); sub.TTL != 600 {
		t.Fatalf("after PATCH ttl 600: %+v", sub)
	}
	// The subscription a websocket connection makes of itself too.
	if _, e := svc.SubscribeConnection(ctx, expiryCaller, "q", "node1", "c1", []byte(fmt.Sprintf(`{"ttl": %d}`, heatTTL))); e != nil || node.last() != fsm.TypeSubscribeLong {
		t.Fatalf("websocket subscription with Heat's TTL: %v, type %d", e, node.last())
	}
}

func TestSubscription_TTLReachesYear9999AndNoFurther(t *testing.T) {
	svc, _, _, conf := newExpiryService(t)
	ctx := context.Background()
	const tooLong = "The TTL seconds for a subscription plus current time must be less than 9999-12-31 23:59:59.999999."
	// The service reads its clock after the test does, so the largest TTL
	// it accepts is at most this, and at least this minus the seconds the
	// test takes.
	limit := lastExpiry.Unix() - time.Now().Unix()
	body := func(ttl int64) []byte {
		return []byte(fmt.Sprintf(`{"subscriber": "http://127.0.0.1:9/edge", "ttl": %d}`, ttl))
	}
	res, e := svc.CreateSubscription(ctx, expiryCaller, "q", body(limit-5))
	if e != nil {
		t.Fatalf("a TTL ending in year 9999 refused: %v", e)
	}
	if sub, e := svc.GetSubscription(ctx, expiryCaller, "q", res.ID); e != nil || sub.TTL != limit-5 {
		t.Fatalf("GET = %+v, %v; want ttl %d", sub, e, limit-5)
	}
	if got := conf.last(t)["URL-Expires"]; !strings.HasPrefix(got.(string), "9999-12-31T23:59:") {
		t.Fatalf("confirmation expires %v, want the last minute of 9999", got)
	}
	for _, ttl := range []int64{limit + 1, limit + 60, 1 << 62} {
		if _, e := svc.CreateSubscription(ctx, expiryCaller, "q2", body(ttl)); e == nil || e.Status != 400 || e.Description != tooLong {
			t.Fatalf("ttl %d: %v, want 400 %q", ttl, e, tooLong)
		}
		if e := svc.UpdateSubscription(ctx, expiryCaller, "q", res.ID, []byte(fmt.Sprintf(`{"ttl": %d}`, ttl))); e == nil || e.Description != tooLong {
			t.Fatalf("PATCH ttl %d: %v, want 400 %q", ttl, e, tooLong)
		}
	}
}

func TestSignedExpiry_IsExactInSecondsAndStopsAtYear9999(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 500, time.UTC)
	cases := []struct {
		ttl  int64
		want string
	}{
		{3600, "2026-05-01T13:00:00"},
		// 300 years: a time.Duration of it overflows (it ends after 292).
		{300 * 365 * 86400, "2326-02-18T12:00:00"},
		{heatTTL, "9009-06-29T12:00:00"},
		{maxSubscriptionTTL(now), "9999-12-31T23:59:59"},
		{maxSubscriptionTTL(now) + 1, "9999-12-31T23:59:59"},
		{1 << 62, "9999-12-31T23:59:59"},
	}
	for _, c := range cases {
		if got := signedExpiry(now, c.ttl).Format(expiresLayout); got != c.want {
			t.Errorf("signedExpiry(%s, %d) = %s, want %s", now, c.ttl, got, c.want)
		}
	}
}
