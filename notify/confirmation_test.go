package notify_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/zaqar-raft/zaqar/server"
	"github.com/zaqar-raft/zaqar/testkit/testcluster"
)

// confirmation is a (un)subscribe confirmation payload (contract §10.5).
type confirmation struct {
	MessageType     string          `json:"Message_Type"`
	Message         string          `json:"Message"`
	Signature       string          `json:"URL-Signature"`
	Methods         string          `json:"URL-Methods"`
	Paths           string          `json:"URL-Paths"`
	Project         string          `json:"X-Project-ID"`
	Expires         string          `json:"URL-Expires"`
	SubscribeBody   json.RawMessage `json:"SubscribeBody"`
	UnsubscribeBody json.RawMessage `json:"UnsubscribeBody"`
	WSGIURL         string          `json:"WSGISubscribeURL"`
	WebSocketURL    string          `json:"WebSocketSubscribeURL"`
	Queue           string          `json:"queue_name"`
}

// confirmations returns the deliveries of the given Message_Type.
func confirmations(ds []delivery, kind string) []confirmation {
	var out []confirmation
	for _, d := range ds {
		var c confirmation
		if json.Unmarshal(d.Body, &c) == nil && c.MessageType == kind {
			out = append(out, c)
		}
	}
	return out
}

// notifications returns the bodies of the Notification deliveries.
func notifications(ds []delivery) []string {
	var out []string
	for _, d := range ds {
		var c confirmation
		if json.Unmarshal(d.Body, &c) == nil && c.MessageType == "Notification" {
			out = append(out, messageBody(d.Body))
		}
	}
	return out
}

// answer PUTs body to the confirmation's path on a node as the subscriber
// would: with nothing but the signed headers it received and a Client-ID.
func answer(t *testing.T, base string, c confirmation, body json.RawMessage, status int) {
	t.Helper()
	a := &api{t: t, http: &http.Client{Timeout: 20 * time.Second}, base: base, project: c.Project, clientID: newUUID()}
	a.expect(status, "PUT", c.Paths, []byte(body),
		"URL-Signature", c.Signature, "URL-Expires", c.Expires, "URL-Methods", c.Methods, "URL-Paths", c.Paths)
}

func TestConfirmation(t *testing.T) {
	c := testcluster.Start(t, 3, testcluster.WithConfig(func(cfg *server.Config) {
		cfg.Notifications.RequireConfirmation = true
		cfg.Notifications.PublicURL = "https://zaqar.example.com:8888/"
		cfg.Notifications.PublicWebsocketURL = "wss://zaqar.example.com:9000"
	}))
	leader := c.Leader()
	followers := c.Followers()
	all := clientsOf(t, c, "p-confirm")
	viaFollower := all[0].on(followers[0])
	viaOther := all[0].on(followers[1])
	viaLeader := all[0].on(leader)
	const coll = "/v2/queues/signup"

	r := newReceiver(t, nil)
	subscribed := time.Now()
	id := viaFollower.subscribe(coll, map[string]any{"subscriber": r.URL("/confirm-me"), "ttl": 600})
	path := coll + "/subscriptions/" + id + "/confirm"

	// 1. The subscriber is sent a signed confirmation request.
	got := r.waitFor(deliveryTimeout, "a SubscriptionConfirmation", func(ds []delivery) bool {
		return len(confirmations(ds, "SubscriptionConfirmation")) == 1
	})
	if k := keysOf(t, got[0].Body); !reflect.DeepEqual(k, []string{"Message", "Message_Type", "SubscribeBody", "URL-Expires", "URL-Methods",
		"URL-Paths", "URL-Signature", "UnsubscribeBody", "WSGISubscribeURL", "WebSocketSubscribeURL", "X-Project-ID", "queue_name"}) {
		t.Fatalf("confirmation keys %v", k)
	}
	conf := confirmations(got, "SubscriptionConfirmation")[0]
	if conf.Message != "You have chosen to subscribe to the queue: signup" || conf.Methods != "PUT" || conf.Paths != path ||
		conf.Project != "p-confirm" || conf.Queue != "signup" || len(conf.Signature) != 64 ||
		conf.WSGIURL != "https://zaqar.example.com:8888"+path || conf.WebSocketURL != "wss://zaqar.example.com:9000"+path {
		t.Fatalf("confirmation %+v", conf)
	}
	jsonEqual(t, "SubscribeBody", conf.SubscribeBody, `{"confirmed": true}`)
	jsonEqual(t, "UnsubscribeBody", conf.UnsubscribeBody, `{"confirmed": false}`)
	exp, err := time.Parse("2006-01-02T15:04:05", conf.Expires)
	if err != nil || exp.Before(subscribed.Add(599*time.Second).Truncate(time.Second)) || exp.After(time.Now().Add(601*time.Second)) {
		t.Fatalf("URL-Expires %q, want the subscription's ttl (600 s) from now (%v)", conf.Expires, err)
	}

	// 2. Until confirmed, nothing is delivered.
	m := snapshotCounters(t, c, deliveries("http", "withheld"), deliveries("http", "delivered"))
	viaOther.post(coll, `{"body": "too early"}`)
	m.waitDelta(deliveries("http", "withheld"), 1)
	if n := notifications(r.deliveries()); len(n) != 0 {
		t.Fatalf("an unconfirmed subscription received %v", n)
	}

	// A duplicate subscription re-sends the confirmation, same id.
	if again := viaLeader.subscribe(coll, map[string]any{"subscriber": r.URL("/confirm-me")}); again != id {
		t.Fatalf("duplicate subscription id %s, want %s", again, id)
	}
	r.waitFor(deliveryTimeout, "a second SubscriptionConfirmation", func(ds []delivery) bool {
		return len(confirmations(ds, "SubscriptionConfirmation")) == 2
	})

	// 3. A wrong signature is refused; the signed PUT confirms.
	tampered := conf
	tampered.Signature = fmt.Sprintf("%064x", 1)
	answer(t, leader.URL(), tampered, conf.SubscribeBody, http.StatusNotFound)
	answer(t, followers[1].URL(), conf, conf.SubscribeBody, http.StatusNoContent)
	var doc struct {
		Confirmed bool `json:"confirmed"`
	}
	if err := json.Unmarshal(viaFollower.expect(http.StatusOK, "GET", coll+"/subscriptions/"+id, nil).Body, &doc); err != nil || !doc.Confirmed {
		t.Fatalf("subscription not confirmed: %v", err)
	}
	// A confirmed subscriber subscribing again is a conflict.
	viaFollower.expect(http.StatusConflict, "POST", coll+"/subscriptions", map[string]any{"subscriber": r.URL("/confirm-me")})

	// 4. Messages posted after the confirmation are delivered, at once.
	for i := 0; i < 3; i++ {
		all[i].post(coll, fmt.Sprintf(`{"body": "welcome %d"}`, i))
	}
	got = r.waitFor(deliveryTimeout, "three notifications", func(ds []delivery) bool { return len(notifications(ds)) >= 3 })
	for _, b := range notifications(got) {
		if b == `"too early"` {
			t.Fatal("the message posted before the confirmation was delivered after it")
		}
	}

	// 5. Unsubscribing with the signed UnsubscribeBody sends an
	// UnsubscribeConfirmation and stops deliveries.
	answer(t, followers[0].URL(), conf, conf.UnsubscribeBody, http.StatusNoContent)
	got = r.waitFor(deliveryTimeout, "an UnsubscribeConfirmation", func(ds []delivery) bool {
		return len(confirmations(ds, "UnsubscribeConfirmation")) == 1
	})
	unsub := confirmations(got, "UnsubscribeConfirmation")[0]
	if unsub.Message != "You have unsubscribed successfully to the queue: signup, you can resubscribe it by using confirmed=True." ||
		unsub.Paths != path || unsub.Methods != "PUT" || unsub.Signature == "" || unsub.Project != "p-confirm" {
		t.Fatalf("unsubscribe confirmation %+v", unsub)
	}
	m = snapshotCounters(t, c, deliveries("http", "withheld"))
	viaLeader.post(coll, `{"body": "after unsubscribing"}`)
	m.waitDelta(deliveries("http", "withheld"), 1)
	for _, b := range notifications(r.deliveries()) {
		if b == `"after unsubscribing"` {
			t.Fatal("an unconfirmed subscription received a message")
		}
	}
	// The unsubscribe confirmation's own signature resubscribes.
	answer(t, leader.URL(), unsub, unsub.SubscribeBody, http.StatusNoContent)
	viaOther.post(coll, `{"body": "back"}`)
	r.waitBody(`"back"`)
}
