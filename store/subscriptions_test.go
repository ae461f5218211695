package store_test

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/zaqar-raft/zaqar/store"
)

// sid returns the n-th test subscription id; ids sort like n.
func sid(n int) string { return fmt.Sprintf("s%031x", n) }

// hook returns the n-th test subscriber URI.
func hook(n int) string { return fmt.Sprintf("http://127.0.0.1:9/hook/%d", n) }

// subscribe creates a subscription of project/queue at now and returns the
// outcome and the id CreateSubscription reports.
func (s *testStore) subscribe(project, queue, id, subscriber string, ttl, now int64) (store.SubscribeOutcome, string) {
	s.t.Helper()
	var (
		out store.SubscribeOutcome
		got string
	)
	s.apply(func(tx *store.Txn) {
		out, got = tx.CreateSubscription(project, queue, store.Subscription{ID: id, Subscriber: subscriber, TTL: ttl}, now)
	})
	return out, got
}

// mustSubscribe creates a new subscription and fails unless it is new.
func (s *testStore) mustSubscribe(project, queue, id, subscriber string, ttl, now int64) {
	s.t.Helper()
	if out, got := s.subscribe(project, queue, id, subscriber, ttl, now); out != store.Subscribed || got != id {
		s.t.Fatalf("CreateSubscription(%s, %s) = %v %s, want a new subscription %s", queue, subscriber, out, got, id)
	}
}

func (s *testStore) subscription(project, queue, id string, now int64) *store.Subscription {
	s.t.Helper()
	var sub *store.Subscription
	s.read(func(v *store.View) (err error) { sub, err = v.Subscription(project, queue, id, now); return })
	return sub
}

func (s *testStore) subscriptionIDs(project, queue, marker string, limit int, now int64) []string {
	s.t.Helper()
	var subs []*store.Subscription
	s.read(func(v *store.View) (err error) {
		subs, err = v.ListSubscriptions(project, queue, marker, limit, now)
		return
	})
	ids := []string{}
	for _, sub := range subs {
		if sub.Source != queue {
			s.t.Fatalf("subscription %s of %s lists source %q", sub.ID, queue, sub.Source)
		}
		ids = append(ids, sub.ID)
	}
	return ids
}

// cursors returns the delivery cursor of every unexpired subscription of
// project/queue by id.
func (s *testStore) cursors(project, queue string, now int64) map[string]uint64 {
	s.t.Helper()
	var subs []store.Subscriber
	s.read(func(v *store.View) (err error) { subs, err = v.Subscribers(project, queue, now); return })
	out := map[string]uint64{}
	for _, sub := range subs {
		out[sub.ID] = sub.Cursor
	}
	return out
}

// outbox returns the sequence numbers of the queue's notifications after
// afterSeq.
func (s *testStore) outbox(project, queue string, afterSeq uint64) []uint64 {
	s.t.Helper()
	out := []uint64{}
	for _, n := range s.notifications(project, queue, afterSeq, 1000) {
		out = append(out, n.Seq)
	}
	return out
}

func (s *testStore) notifications(project, queue string, afterSeq uint64, limit int) []*store.Notification {
	s.t.Helper()
	var ns []*store.Notification
	s.read(func(v *store.View) (err error) { ns, err = v.Notifications(project, queue, afterSeq, limit); return })
	return ns
}

func (s *testStore) advance(advances ...store.CursorAdvance) {
	s.t.Helper()
	s.apply(func(tx *store.Txn) { tx.AdvanceCursors(advances) })
}

func seqs(from, to uint64) []uint64 {
	out := []uint64{}
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

func TestCreateSubscription_StoresEveryFieldAndCreatesTheQueue(t *testing.T) {
	s := openTestStore(t)
	var out store.SubscribeOutcome
	s.apply(func(tx *store.Txn) {
		out, _ = tx.CreateSubscription(proj, "q", store.Subscription{
			ID: sid(1), Subscriber: hook(1), TTL: 300, Options: []byte(`{"post_headers":{"X-A":"1"}}`),
		}, t0)
	})
	if out != store.Subscribed {
		t.Fatalf("outcome %v, want Subscribed", out)
	}
	if s.queue(proj, "q") == nil {
		t.Fatal("subscribing to a missing queue did not create it")
	}
	got := s.subscription(proj, "q", sid(1), t0+10*sec)
	want := &store.Subscription{
		ID: sid(1), Source: "q", Subscriber: hook(1), TTL: 300, CreatedAt: t0, ExpiresAt: t0 + 300*sec,
		Options: []byte(`{"post_headers":{"X-A":"1"}}`),
	}
	if got == nil || got.ID != want.ID || got.Source != want.Source || got.Subscriber != want.Subscriber || got.TTL != want.TTL ||
		got.CreatedAt != want.CreatedAt || got.ExpiresAt != want.ExpiresAt || string(got.Options) != string(want.Options) || got.Confirmed {
		t.Fatalf("stored subscription %+v, want %+v", got, want)
	}
	if age := got.Age(t0 + 10*sec + sec/2); age != 10 {
		t.Fatalf("age after 10.5 s = %d, want 10", age)
	}
	// Options default to an empty object; a subscription can be created
	// confirmed (websocket connections).
	s.apply(func(tx *store.Txn) {
		tx.CreateSubscription(proj, "q", store.Subscription{ID: sid(2), Subscriber: hook(2), TTL: 300, Confirmed: true}, t0)
	})
	if sub := s.subscription(proj, "q", sid(2), t0); sub == nil || string(sub.Options) != "{}" || !sub.Confirmed {
		t.Fatalf("second subscription %+v, want options {} and confirmed", sub)
	}
}

func TestCreateSubscription_DuplicatesAreUniqueBySubscriberAndConfirmation(t *testing.T) {
	s := openTestStore(t)
	s.mustSubscribe(proj, "q", sid(1), hook(1), 100, t0)

	before := s.digest()
	out, id := s.subscribe(proj, "q", sid(2), hook(1), 5000, t0+sec)
	if out != store.AlreadyUnconfirmed || id != sid(1) {
		t.Fatalf("duplicate of an unconfirmed subscription = %v %s, want AlreadyUnconfirmed %s", out, id, sid(1))
	}
	if s.digest() != before {
		t.Fatal("a duplicate subscription changed the store (its ttl/options must not be applied)")
	}
	if sub := s.subscription(proj, "q", sid(2), t0+sec); sub != nil {
		t.Fatal("the duplicate's id was stored")
	}

	s.apply(func(tx *store.Txn) {
		if err := tx.ConfirmSubscription(proj, "q", sid(1), true, t0+2*sec); err != nil {
			t.Fatalf("confirm: %v", err)
		}
	})
	if out, id := s.subscribe(proj, "q", sid(3), hook(1), 100, t0+3*sec); out != store.AlreadyConfirmed || id != sid(1) {
		t.Fatalf("duplicate of a confirmed subscription = %v %s, want AlreadyConfirmed %s", out, id, sid(1))
	}

	// The same subscriber on another queue or in another project is
	// another subscription.
	s.mustSubscribe(proj, "other", sid(4), hook(1), 100, t0+3*sec)
	s.mustSubscribe("p2", "q", sid(5), hook(1), 100, t0+3*sec)

	// Once the subscription has expired, the subscriber can subscribe anew
	// (even before GC ran), and the expired record makes way.
	s.mustSubscribe(proj, "q", sid(6), hook(1), 100, t0+100*sec)
	if sub := s.subscription(proj, "q", sid(1), t0); sub != nil {
		t.Fatal("the expired subscription was not removed when its subscriber subscribed again")
	}
	if got := s.subscriptionIDs(proj, "q", "", 10, t0+100*sec); !slices.Equal(got, []string{sid(6)}) {
		t.Fatalf("subscriptions after resubscribing %v, want only %s", got, sid(6))
	}
	if _, ok := s.cursors(proj, "q", t0+100*sec)[sid(1)]; ok {
		t.Fatal("the expired subscription's cursor survived")
	}
}

func TestNotifications_OutboxIsWrittenOnlyForQueuesWithSubscriptions(t *testing.T) {
	s := openTestStore(t)
	s.post(proj, "q", "c", t0, msg(mid(1), 0), msg(mid(2), 0), msg(mid(3), 0))
	if got := s.outbox(proj, "q", 0); len(got) != 0 {
		t.Fatalf("a queue without subscriptions has notifications %v", got)
	}

	s.mustSubscribe(proj, "q", sid(1), hook(1), 3600, t0+sec)
	// The cursor starts at the last message posted: only later posts
	// notify the new subscription.
	if got := s.cursors(proj, "q", t0+sec); got[sid(1)] != 3 {
		t.Fatalf("new subscription's cursor %v, want 3 (the last posted sequence)", got)
	}
	s.post(proj, "q", "c", t0+2*sec, msg(mid(4), 120), msg(mid(5), 0))
	ns := s.notifications(proj, "q", 3, 10)
	if len(ns) != 2 || ns[0].Seq != 4 || ns[1].Seq != 5 {
		t.Fatalf("notifications after the cursor: %+v, want seqs 4 and 5", ns)
	}
	if string(ns[0].Payload) != `{"body": {"id":"`+mid(4)+`"}, "ttl": 120, "queue_name": "q", "Message_Type": "Notification"}` {
		t.Fatalf("payload %s", ns[0].Payload)
	}
	if ns[0].CreatedAt != t0+2*sec || ns[0].ExpiresAt != t0+122*sec || ns[1].ExpiresAt != t0+3602*sec {
		t.Fatalf("notification times %+v %+v", ns[0], ns[1])
	}
	if got := s.outbox(proj, "q", 0); !slices.Equal(got, []uint64{4, 5}) {
		t.Fatalf("the outbox holds %v, want only the posts made after subscribing", got)
	}
	if got := s.notifications(proj, "q", 0, 1); len(got) != 1 || got[0].Seq != 4 {
		t.Fatalf("limit 1 returned %+v", got)
	}

	// Another queue of the project is not affected.
	s.post(proj, "q2", "c", t0, msg(mid(6), 0))
	if got := s.outbox(proj, "q2", 0); len(got) != 0 {
		t.Fatalf("queue q2 without subscriptions has notifications %v", got)
	}
}

func TestNotifications_PayloadCarriesDelayOnlyForDelayedQueues(t *testing.T) {
	s := openTestStore(t)
	s.createQueue(proj, "delayed", t0, store.QueueSettings{DefaultDelay: 5})
	s.mustSubscribe(proj, "delayed", sid(1), hook(1), 3600, t0)
	s.mustSubscribe(proj, "plain", sid(2), hook(1), 3600, t0)
	delayed := store.NewMessage{ID: mid(1), TTL: 60, Delay: 30, Body: []byte(`"x"`)}
	defaulted := store.NewMessage{ID: mid(2), TTL: 60, Delay: -1, Body: []byte(`[1, {"a": "é"}]`)}
	s.post(proj, "delayed", "c", t0, delayed, defaulted)
	s.post(proj, "plain", "c", t0, store.NewMessage{ID: mid(3), TTL: 60, Delay: 30, Body: []byte(`null`)})

	ns := s.notifications(proj, "delayed", 0, 10)
	if len(ns) != 2 {
		t.Fatalf("%d notifications on the delayed queue", len(ns))
	}
	for i, want := range []string{
		`{"body": "x", "ttl": 60, "delay": 30, "queue_name": "delayed", "Message_Type": "Notification"}`,
		`{"body": [1, {"a": "é"}], "ttl": 60, "delay": 5, "queue_name": "delayed", "Message_Type": "Notification"}`,
	} {
		if string(ns[i].Payload) != want {
			t.Errorf("delayed queue payload %d:\n got %s\nwant %s", i, ns[i].Payload, want)
		}
	}
	ns = s.notifications(proj, "plain", 0, 10)
	if len(ns) != 1 || string(ns[0].Payload) != `{"body": null, "ttl": 60, "queue_name": "plain", "Message_Type": "Notification"}` {
		t.Fatalf("plain queue notifications %+v", ns)
	}
}

func TestAdvanceCursors_NeverMoveBackAndTrimTheOutboxToTheSlowestSubscription(t *testing.T) {
	s := openTestStore(t)
	s.mustSubscribe(proj, "q", sid(1), hook(1), 3600, t0)
	s.mustSubscribe(proj, "q", sid(2), hook(2), 3600, t0)
	var batch []store.NewMessage
	for i := 1; i <= 6; i++ {
		batch = append(batch, msg(mid(i), 0))
	}
	s.post(proj, "q", "c", t0, batch...)
	a := func(id string, seq uint64) store.CursorAdvance {
		return store.CursorAdvance{Project: proj, Queue: "q", ID: id, Seq: seq}
	}

	s.advance(a(sid(1), 4))
	if got := s.cursors(proj, "q", t0); got[sid(1)] != 4 || got[sid(2)] != 0 {
		t.Fatalf("cursors %v", got)
	}
	if got := s.outbox(proj, "q", 0); !slices.Equal(got, seqs(1, 6)) {
		t.Fatalf("outbox %v: nothing may be trimmed while subscription 2 is at 0", got)
	}

	s.advance(a(sid(2), 2))
	if got := s.outbox(proj, "q", 0); !slices.Equal(got, seqs(3, 6)) {
		t.Fatalf("outbox %v, want 3..6 (every subscription passed 2)", got)
	}

	// Moving back, advancing to the same place and advancing a subscription
	// that does not exist change nothing.
	before := s.digest()
	s.advance(a(sid(1), 1), a(sid(2), 2), a(sid(9), 6), store.CursorAdvance{Project: "p2", Queue: "q", ID: sid(1), Seq: 6})
	if s.digest() != before {
		t.Fatal("AdvanceCursors that moves nothing forward changed the store")
	}

	// Several advances in one command; the slowest decides the trim.
	s.advance(a(sid(2), 6), a(sid(1), 5))
	if got := s.cursors(proj, "q", t0); got[sid(1)] != 5 || got[sid(2)] != 6 {
		t.Fatalf("cursors %v, want 5 and 6", got)
	}
	if got := s.outbox(proj, "q", 0); !slices.Equal(got, []uint64{6}) {
		t.Fatalf("outbox %v, want [6]", got)
	}
	s.advance(a(sid(1), 6))
	if got := s.outbox(proj, "q", 0); len(got) != 0 {
		t.Fatalf("outbox %v after every subscription passed everything", got)
	}
	// New posts are written after a fully trimmed outbox.
	s.post(proj, "q", "c", t0, msg(mid(7), 0))
	if got := s.outbox(proj, "q", 6); !slices.Equal(got, []uint64{7}) {
		t.Fatalf("outbox %v, want [7]", got)
	}
}

func TestAdvanceCursors_TrimsEachQueueByItsOwnSubscriptions(t *testing.T) {
	s := openTestStore(t)
	s.mustSubscribe(proj, "a", sid(1), hook(1), 3600, t0)
	s.mustSubscribe(proj, "ab", sid(2), hook(1), 3600, t0)
	s.post(proj, "a", "c", t0, msg(mid(1), 0), msg(mid(2), 0))
	s.post(proj, "ab", "c", t0, msg(mid(3), 0), msg(mid(4), 0))
	s.advance(store.CursorAdvance{Project: proj, Queue: "ab", ID: sid(2), Seq: 2})
	if got := s.outbox(proj, "a", 0); !slices.Equal(got, []uint64{1, 2}) {
		t.Fatalf("queue a's outbox %v was trimmed by queue ab's cursor", got)
	}
	if got := s.outbox(proj, "ab", 0); len(got) != 0 {
		t.Fatalf("queue ab's outbox %v", got)
	}
}

func TestUpdateSubscription_TTLRestartsTheExpiry(t *testing.T) {
	s := openTestStore(t)
	s.mustSubscribe(proj, "q", sid(1), hook(1), 100, t0)
	ttl := int64(100)
	s.apply(func(tx *store.Txn) {
		if err := tx.UpdateSubscription(proj, "q", sid(1), store.SubscriptionUpdate{TTL: &ttl}, t0+50*sec); err != nil {
			t.Fatalf("update: %v", err)
		}
	})
	sub := s.subscription(proj, "q", sid(1), t0+120*sec)
	if sub == nil || sub.TTL != 100 || sub.ExpiresAt != t0+150*sec || sub.CreatedAt != t0 {
		t.Fatalf("after the ttl update %+v, want expiry at +150 s and the creation time kept", sub)
	}
	// The old expiry entry is gone: GC at the old expiry finds nothing.
	if n := s.gc(t0+120*sec, 100); n != 0 {
		t.Fatalf("GC at +120 s processed %d entries", n)
	}
	if s.subscription(proj, "q", sid(1), t0+120*sec) == nil {
		t.Fatal("GC removed a subscription whose ttl was restarted")
	}
	if n := s.gc(t0+150*sec, 100); n != 1 {
		t.Fatalf("GC at the new expiry processed %d entries, want 1", n)
	}
	if got := s.subscriptionIDs(proj, "q", "", 10, t0); len(got) != 0 {
		t.Fatalf("subscriptions %v after GC at the new expiry", got)
	}
}

func TestUpdateSubscription_SubscriberStaysUniqueAndOptionsAreReplaced(t *testing.T) {
	s := openTestStore(t)
	s.mustSubscribe(proj, "q", sid(1), hook(1), 3600, t0)
	s.mustSubscribe(proj, "q", sid(2), hook(2), 3600, t0)
	update := func(id string, u store.SubscriptionUpdate, now int64) (err error) {
		s.apply(func(tx *store.Txn) { err = tx.UpdateSubscription(proj, "q", id, u, now) })
		return err
	}
	taken, free := hook(2), hook(3)
	before := s.digest()
	if err := update(sid(1), store.SubscriptionUpdate{Subscriber: &taken, Options: []byte(`{"a":1}`)}, t0); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("moving onto another subscription's subscriber: %v, want ErrConflict", err)
	}
	if s.digest() != before {
		t.Fatal("a refused update changed the store")
	}
	if err := update(sid(1), store.SubscriptionUpdate{Subscriber: &free, Options: []byte(`{"b":2}`)}, t0); err != nil {
		t.Fatalf("update: %v", err)
	}
	if sub := s.subscription(proj, "q", sid(1), t0); sub.Subscriber != free || string(sub.Options) != `{"b":2}` || sub.TTL != 3600 {
		t.Fatalf("after the update %+v", sub)
	}
	// The uniqueness index moved with the subscriber.
	if out, id := s.subscribe(proj, "q", sid(3), free, 60, t0); out != store.AlreadyUnconfirmed || id != sid(1) {
		t.Fatalf("subscribing the new subscriber: %v %s, want the updated subscription", out, id)
	}
	s.mustSubscribe(proj, "q", sid(4), hook(1), 60, t0) // the old one is free again
	// Setting the subscriber it already has is not a conflict; options
	// replace (no merge).
	if err := update(sid(1), store.SubscriptionUpdate{Subscriber: &free, Options: []byte(`{}`)}, t0); err != nil {
		t.Fatalf("same subscriber: %v", err)
	}
	if sub := s.subscription(proj, "q", sid(1), t0); string(sub.Options) != `{}` {
		t.Fatalf("options %s, want {} (replaced)", sub.Options)
	}
	// An expired subscription does not hold on to its subscriber.
	expired := hook(5)
	s.mustSubscribe(proj, "q", sid(5), expired, 60, t0)
	if err := update(sid(2), store.SubscriptionUpdate{Subscriber: &expired}, t0+61*sec); err != nil {
		t.Fatalf("taking the subscriber of an expired subscription: %v", err)
	}
	// Collecting the expired one leaves the new owner's index entry alone.
	s.gc(t0+61*sec, 100)
	if out, id := s.subscribe(proj, "q", sid(6), expired, 60, t0+61*sec); out != store.AlreadyUnconfirmed || id != sid(2) {
		t.Fatalf("after GC, subscribing %s: %v %s, want subscription %s", expired, out, id, sid(2))
	}
	for _, tc := range []struct {
		name string
		id   string
		now  int64
	}{
		{"missing", sid(9), t0},
		{"expired", sid(4), t0 + 60*sec},
	} {
		if err := update(tc.id, store.SubscriptionUpdate{Options: []byte(`{}`)}, tc.now); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s subscription: %v, want ErrNotFound", tc.name, err)
		}
	}
}

func TestConfirmSubscription_SetsTheFlagOfExistingSubscriptionsOnly(t *testing.T) {
	s := openTestStore(t)
	s.mustSubscribe(proj, "q", sid(1), hook(1), 60, t0)
	confirm := func(queue, id string, v bool, now int64) (err error) {
		s.apply(func(tx *store.Txn) { err = tx.ConfirmSubscription(proj, queue, id, v, now) })
		return err
	}
	if err := confirm("q", sid(1), true, t0); err != nil || !s.subscription(proj, "q", sid(1), t0).Confirmed {
		t.Fatalf("confirm true: %v", err)
	}
	if err := confirm("q", sid(1), false, t0); err != nil || s.subscription(proj, "q", sid(1), t0).Confirmed {
		t.Fatalf("confirm false: %v", err)
	}
	for name, err := range map[string]error{
		"unknown id":  confirm("q", sid(2), true, t0),
		"other queue": confirm("other", sid(1), true, t0),
		"expired":     confirm("q", sid(1), true, t0+60*sec),
		"other project": func() (err error) {
			s.apply(func(tx *store.Txn) { err = tx.ConfirmSubscription("p2", "q", sid(1), true, t0) })
			return
		}(),
	} {
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound", name, err)
		}
	}
}

func TestDeleteSubscription_LastSubscriptionTakesTheOutboxWithIt(t *testing.T) {
	s := openTestStore(t)
	s.mustSubscribe(proj, "q", sid(1), hook(1), 3600, t0)
	s.mustSubscribe(proj, "q", sid(2), hook(2), 3600, t0)
	s.post(proj, "q", "c", t0, msg(mid(1), 0), msg(mid(2), 0))
	s.advance(store.CursorAdvance{Project: proj, Queue: "q", ID: sid(2), Seq: 2})

	// Deleting the slow subscription trims what the other one passed.
	s.apply(func(tx *store.Txn) { tx.DeleteSubscription(proj, "q", sid(1)) })
	if s.subscription(proj, "q", sid(1), t0) != nil {
		t.Fatal("deleted subscription still readable")
	}
	if got := s.outbox(proj, "q", 0); len(got) != 0 {
		t.Fatalf("outbox %v after the only subscription left passed everything", got)
	}
	s.post(proj, "q", "c", t0, msg(mid(3), 0))
	if got := s.outbox(proj, "q", 0); !slices.Equal(got, []uint64{3}) {
		t.Fatalf("outbox %v", got)
	}

	s.apply(func(tx *store.Txn) { tx.DeleteSubscription(proj, "q", sid(2)) })
	if got := s.outbox(proj, "q", 0); len(got) != 0 {
		t.Fatalf("outbox %v after the last subscription was deleted", got)
	}
	if got := s.cursors(proj, "q", t0); len(got) != 0 {
		t.Fatalf("subscribers %v after deleting all", got)
	}
	s.post(proj, "q", "c", t0, msg(mid(4), 0))
	if got := s.outbox(proj, "q", 0); len(got) != 0 {
		t.Fatalf("a post after the last subscription was deleted was queued for delivery: %v", got)
	}
	// The subscriber can subscribe again; deleting a missing one is a no-op.
	s.mustSubscribe(proj, "q", sid(3), hook(1), 3600, t0)
	before := s.digest()
	s.apply(func(tx *store.Txn) { tx.DeleteSubscription(proj, "q", sid(1)) })
	s.apply(func(tx *store.Txn) { tx.DeleteSubscription(proj, "nope", sid(3)) })
	if s.digest() != before {
		t.Fatal("deleting missing subscriptions changed the store")
	}
}

func TestCollectGarbage_RemovesExpiredSubscriptionsWithTheirCursorsAndOutbox(t *testing.T) {
	s := openTestStore(t)
	s.mustSubscribe(proj, "q", sid(1), hook(1), 60, t0)
	s.mustSubscribe(proj, "q", sid(2), hook(2), 120, t0)
	s.post(proj, "q", "c", t0, msg(mid(1), 0))

	// Expired subscriptions are invisible before GC.
	if got := s.subscriptionIDs(proj, "q", "", 10, t0+60*sec); !slices.Equal(got, []string{sid(2)}) {
		t.Fatalf("listing at +60 s: %v", got)
	}
	if got := s.cursors(proj, "q", t0+60*sec); len(got) != 1 {
		t.Fatalf("Subscribers at +60 s: %v", got)
	}
	if !s.pending(t0 + 60*sec) {
		t.Fatal("Pending does not report an expired subscription")
	}
	if n := s.gc(t0+60*sec, 100); n != 1 {
		t.Fatalf("GC at +60 s processed %d entries, want 1", n)
	}
	if got := s.outbox(proj, "q", 0); !slices.Equal(got, []uint64{1}) {
		t.Fatalf("outbox %v: subscription 2 has not passed seq 1", got)
	}
	s.mustSubscribe(proj, "q", sid(3), hook(1), 60, t0+60*sec) // its subscriber is free again
	s.apply(func(tx *store.Txn) { tx.DeleteSubscription(proj, "q", sid(3)) })

	if n := s.gc(t0+120*sec, 100); n != 1 {
		t.Fatalf("GC at +120 s processed %d entries, want 1", n)
	}
	if got := s.outbox(proj, "q", 0); len(got) != 0 {
		t.Fatalf("outbox %v after every subscription expired", got)
	}
	if got := s.cursors(proj, "q", 0); len(got) != 0 {
		t.Fatalf("subscriptions %v survive GC (seen at time 0)", got)
	}
	if s.queue(proj, "q") == nil {
		t.Fatal("GC of subscriptions removed the queue")
	}
}

func TestDeleteAndPurgeQueue_RemoveSubscriptionsCursorsAndOutbox(t *testing.T) {
	setup := func(t *testing.T) *testStore {
		s := openTestStore(t)
		s.mustSubscribe(proj, "q", sid(1), hook(1), 3600, t0)
		s.mustSubscribe(proj, "keep", sid(2), hook(1), 3600, t0)
		s.post(proj, "q", "c", t0, msg(mid(1), 0))
		s.post(proj, "keep", "c", t0, msg(mid(2), 0))
		return s
	}
	gone := func(t *testing.T, s *testStore) {
		t.Helper()
		if got := s.cursors(proj, "q", t0); len(got) != 0 {
			t.Fatalf("subscriptions %v survive", got)
		}
		if got := s.outbox(proj, "q", 0); len(got) != 0 {
			t.Fatalf("outbox %v survives", got)
		}
		if got := s.cursors(proj, "keep", t0); len(got) != 1 || len(s.outbox(proj, "keep", 0)) != 1 {
			t.Fatal("another queue's subscriptions were touched")
		}
		// The subscriber index is gone too: subscribing again is new.
		s.mustSubscribe(proj, "q", sid(3), hook(1), 3600, t0)
	}

	t.Run("delete", func(t *testing.T) {
		s := setup(t)
		s.apply(func(tx *store.Txn) { tx.DeleteQueue(proj, "q") })
		gone(t, s)
		if got := s.cursors(proj, "q", t0); got[sid(3)] != 0 {
			t.Fatalf("the re-created queue's subscription cursor %v, want 0", got)
		}
	})
	t.Run("purge subscriptions", func(t *testing.T) {
		s := setup(t)
		s.apply(func(tx *store.Txn) { tx.PurgeQueue(proj, "q", false, true) })
		gone(t, s)
		if got := msgIDs(s.listAll(proj, "q", t0)); !slices.Equal(got, []string{mid(1)}) {
			t.Fatalf("purging subscriptions removed messages: %v", got)
		}
	})
	t.Run("purge messages keeps subscriptions", func(t *testing.T) {
		s := setup(t)
		s.apply(func(tx *store.Txn) { tx.PurgeQueue(proj, "q", true, false) })
		if got := s.cursors(proj, "q", t0); len(got) != 1 {
			t.Fatalf("subscriptions after purging messages: %v", got)
		}
		s.post(proj, "q", "c", t0, msg(mid(3), 0))
		if got := s.outbox(proj, "q", 0); !slices.Equal(got, []uint64{1, 2}) {
			t.Fatalf("outbox %v, want the pending notification and the new post", got)
		}
	})
}

func TestListSubscriptions_PagesByMarkerInIDOrder(t *testing.T) {
	s := openTestStore(t)
	// Created out of id order: listing is by id.
	for _, n := range []int{3, 1, 5, 2, 4} {
		s.mustSubscribe(proj, "q", sid(n), hook(n), 3600, t0)
	}
	s.mustSubscribe(proj, "q", sid(6), hook(6), 60, t0) // expires first
	s.mustSubscribe(proj, "qq", sid(7), hook(7), 3600, t0)
	s.mustSubscribe("p2", "q", sid(8), hook(8), 3600, t0)
	now := t0 + 60*sec

	var pages [][]string
	marker := ""
	for i := 0; i < 10; i++ {
		page := s.subscriptionIDs(proj, "q", marker, 2, now)
		if len(page) == 0 {
			break
		}
		pages = append(pages, page)
		marker = page[len(page)-1]
	}
	want := [][]string{{sid(1), sid(2)}, {sid(3), sid(4)}, {sid(5)}}
	if fmt.Sprint(pages) != fmt.Sprint(want) {
		t.Fatalf("pages %v, want %v", pages, want)
	}
	if got := s.subscriptionIDs(proj, "q", "", 20, t0); len(got) != 6 {
		t.Fatalf("before expiry the queue lists %v", got)
	}
	if got := s.subscriptionIDs(proj, "q", "zzz", 20, now); len(got) != 0 {
		t.Fatalf("a marker past every id lists %v", got)
	}
	if got := s.subscriptionIDs(proj, "missing", "", 20, now); len(got) != 0 {
		t.Fatalf("a missing queue lists %v", got)
	}
}

func TestSubscribers_ListsEveryUnexpiredSubscriptionWithItsCursor(t *testing.T) {
	s := openTestStore(t)
	s.post(proj, "a", "c", t0, msg(mid(1), 0), msg(mid(2), 0))
	s.mustSubscribe(proj, "a", sid(1), hook(1), 3600, t0)
	s.mustSubscribe(proj, "b", sid(2), hook(2), 3600, t0)
	s.mustSubscribe("p2", "a", sid(3), hook(3), 3600, t0)
	s.mustSubscribe("p2", "a", sid(4), hook(4), 60, t0)
	s.post(proj, "a", "c", t0, msg(mid(3), 0))
	s.advance(store.CursorAdvance{Project: proj, Queue: "a", ID: sid(1), Seq: 3})

	var all []store.Subscriber
	s.read(func(v *store.View) (err error) { all, err = v.Subscribers("", "", t0+60*sec); return })
	got := []string{}
	for _, sub := range all {
		got = append(got, fmt.Sprintf("%s/%s/%s@%d", sub.Project, sub.Source, sub.ID, sub.Cursor))
	}
	want := []string{"p/a/" + sid(1) + "@3", "p/b/" + sid(2) + "@0", "p2/a/" + sid(3) + "@0"}
	if !slices.Equal(got, want) {
		t.Fatalf("Subscribers = %v, want %v", got, want)
	}
	if got := s.cursors("p2", "a", t0); len(got) != 2 {
		t.Fatalf("Subscribers of p2/a at t0 = %v, want 2", got)
	}
}

func TestSubscriptions_SurviveSnapshotAndRestore(t *testing.T) {
	s := openTestStore(t)
	s.mustSubscribe(proj, "q", sid(1), hook(1), 3600, t0)
	s.post(proj, "q", "c", t0, msg(mid(1), 0))
	want := s.digest()
	snap := s.snapshot()

	other := openTestStore(t)
	if err := other.st.Restore(bytes.NewReader(snap)); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if other.digest() != want {
		t.Fatal("restored store differs")
	}
	if got := other.outbox(proj, "q", 0); !slices.Equal(got, []uint64{1}) {
		t.Fatalf("restored outbox %v", got)
	}
	if sub := other.subscription(proj, "q", sid(1), t0); sub == nil || sub.Subscriber != hook(1) {
		t.Fatalf("restored subscription %+v", sub)
	}
}
