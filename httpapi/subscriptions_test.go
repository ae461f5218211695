package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// deadHook is a subscriber nobody listens on (the discard port): the
// leader's delivery attempts fail quietly, which these tests never check.
func deadHook(path string) string { return "http://127.0.0.1:9/" + path }

// subscriptionDoc is a subscription as GET and list return it (§9.1).
type subscriptionDoc struct {
	ID         string          `json:"id"`
	Source     string          `json:"source"`
	Subscriber string          `json:"subscriber"`
	TTL        int64           `json:"ttl"`
	Age        int64           `json:"age"`
	Options    json.RawMessage `json:"options"`
	Confirmed  bool            `json:"confirmed"`
}

// subscriptionPage is a subscription list page.
type subscriptionPage struct {
	Subscriptions []subscriptionDoc `json:"subscriptions"`
	Links         []struct {
		Rel  string `json:"rel"`
		Href string `json:"href"`
	} `json:"links"`
}

// subscribe creates a subscription under collection ("/v2/queues/q" or
// "/v2/topics/t") and returns its id, checking the 201 shape.
func (c *client) subscribe(collection string, body any) string {
	c.t.Helper()
	r := c.expect(http.StatusCreated, "POST", collection+"/subscriptions", body)
	if loc := r.Header.Get("Location"); loc != collection+"/subscriptions" {
		c.t.Fatalf("subscription Location %q, want %q", loc, collection+"/subscriptions")
	}
	m := r.object()
	wantKeys(c.t, "create subscription", m, "subscription_id")
	id, _ := m["subscription_id"].(string)
	if id == "" || strings.ContainsAny(id, "/?=,&") {
		c.t.Fatalf("subscription id %q", id)
	}
	return id
}

// subscription reads one subscription, checking the §9.1 key set.
func (c *client) subscription(collection, id string) subscriptionDoc {
	c.t.Helper()
	r := c.expect(http.StatusOK, "GET", collection+"/subscriptions/"+id, nil)
	wantKeys(c.t, "subscription", r.raw(), "id", "source", "subscriber", "ttl", "age", "options", "confirmed")
	var d subscriptionDoc
	r.decode(&d)
	return d
}

// subscriptions lists one page of subscriptions with the query q.
func (c *client) subscriptions(collection, q string) subscriptionPage {
	c.t.Helper()
	path := collection + "/subscriptions"
	if q != "" {
		path += "?" + q
	}
	r := c.expect(http.StatusOK, "GET", path, nil)
	raw := r.raw()
	wantKeys(c.t, "subscription list", raw, "subscriptions", "links")
	if string(raw["subscriptions"]) == "null" || string(raw["links"]) == "null" {
		c.t.Fatalf("%s: subscriptions and links must be arrays: %s", path, r.Body)
	}
	var p subscriptionPage
	r.decode(&p)
	return p
}

func subscriptionIDs(p subscriptionPage) []string {
	out := make([]string, len(p.Subscriptions))
	for i, s := range p.Subscriptions {
		out[i] = s.ID
	}
	return out
}

// TestSubscriptions covers the subscription resource (contract §9) through
// every node.
func TestSubscriptions(t *testing.T) {
	s := startSuite(t)
	const dict = "Subscriptions must be a dict."
	const unique = "Such subscription already exists.Subscriptions are unique by project + queue + subscriber URI."

	s.run(t, "create answers 201 with the id and creates the queue", func(t *testing.T, n nodes) {
		id := n.f1.subscribe("/v2/queues/sq", map[string]any{
			"subscriber": deadHook("a"), "ttl": 600, "options": map[string]any{"post_headers": map[string]string{"X-Foo": "1"}},
		})
		n.f2.expect(http.StatusNoContent, "HEAD", "/v2/queues/sq", nil)
		for _, c := range n.all {
			d := c.subscription("/v2/queues/sq", id)
			if d.ID != id || d.Source != "sq" || d.Subscriber != deadHook("a") || d.TTL != 600 || d.Age < 0 || d.Age > 30 || d.Confirmed {
				t.Fatalf("%s: subscription %+v", c.node, d)
			}
			jsonEqual(t, "options", d.Options, `{"post_headers": {"X-Foo": "1"}}`)
		}
		// Defaults: ttl 3600 and empty options; mailto subscribers work.
		id2 := n.leader.subscribe("/v2/queues/sq", `{"subscriber": "mailto:ops@example.com?subject=Alert"}`)
		d := n.f2.subscription("/v2/queues/sq", id2)
		if d.TTL != 3600 || string(d.Options) != "{}" || d.Subscriber != "mailto:ops@example.com?subject=Alert" {
			t.Fatalf("defaulted subscription %+v", d)
		}
		// ttl 60 is the minimum that is accepted; null options are none.
		n.f1.subscribe("/v2/queues/sq", `{"subscriber": "https://example.com/x", "ttl": 60, "options": null}`)
	})

	s.run(t, "create rejects malformed bodies and creates nothing", func(t *testing.T, n nodes) {
		const path = "/v2/queues/bad/subscriptions"
		list := "The subscriber type of subscription must be supported in the list ['http', 'https', 'mailto', 'trust+http', 'trust+https']."
		cases := []struct {
			body        string
			title, desc string
		}{
			{``, "Invalid API request", "Missing parameter subscriber in body."},
			{`{}`, "Invalid API request", "Missing parameter subscriber in body."},
			{`{"ttl": 600}`, "Invalid API request", "Missing parameter subscriber in body."},
			{`[]`, "Invalid API request", dict},
			{`"http://x"`, "Invalid API request", dict},
			{`{"subscriber": `, "Invalid request body", "Request body could not be parsed."},
			{`{"subscriber": "ftp://example.com/x"}`, "Invalid API request", list},
			{`{"subscriber": "ws://example.com/x"}`, "Invalid API request", list},
			{`{"subscriber": "example.com"}`, "Invalid API request", list},
			{`{"subscriber": "http://x", "options": "x"}`, "Invalid API request", "Options must be a dict."},
			{`{"subscriber": "http://x", "options": [1]}`, "Invalid API request", "Options must be a dict."},
			{`{"subscriber": "http://x", "ttl": "600"}`, "Invalid API request", "TTL must be an integer."},
			{`{"subscriber": "http://x", "ttl": 600.5}`, "Invalid API request", "TTL must be an integer."},
			{`{"subscriber": "http://x", "ttl": null}`, "Invalid API request", "TTL must be an integer."},
			{`{"subscriber": "http://x", "ttl": 0}`, "Invalid API request", "The TTL for a subscription must be at least 60 seconds long."},
			{`{"subscriber": "http://x", "ttl": 59}`, "Invalid API request", "The TTL for a subscription must be at least 60 seconds long."},
			{`{"subscriber": "http://x", "ttl": -60}`, "Invalid API request", "The TTL for a subscription must be at least 60 seconds long."},
			{`{"subscriber": "http://x", "options": {"_retry_policy": "fast"}}`, "Invalid API request", "_retry_policy must be a dict."},
			{`{"subscriber": "http://x", "options": {"_retry_policy": {"minimum_delay": "1"}}}`, "Invalid API request", "minimum_delay must be integer."},
			{`{"subscriber": "http://x", "options": {"_retry_policy": {"retry_backoff_function": "cubic"}}}`, "Invalid API request", "retry_backoff_function must be one of linear, arithmetic, geometric, exponential."},
			{`{"subscriber": "http://x", "options": {"_retry_policy": {"retry_backoff_function": 1}}}`, "Invalid API request", "retry_backoff_function must be string."},
			{`{"subscriber": "http://x", "options": {"_retry_policy": {"ignore_subscription_override": "yes"}}}`, "Invalid API request", "ignore_subscription_override must be boolean."},
			{`{"subscriber": "http://x", "options": {"_retry_policy": {"minimum_delay": 40}}}`, "Invalid API request", "minimum_delay must less than maximum_delay."},
			{`{"subscriber": "http://x", "options": {"_retry_policy": {"minimum_delay": 1, "maximum_delay": 10}}}`, "Invalid API request", "The value of maximum_delay minus minimum_delay must be at least 10 seconds."},
		}
		for _, tc := range cases {
			n.next().expect(http.StatusBadRequest, "POST", path, tc.body).apiError(tc.title, tc.desc)
		}
		// Shape errors of the subscriber that have no upstream text.
		for _, body := range []string{
			`{"subscriber": 5}`, `{"subscriber": ""}`, `{"subscriber": "http://"}`, `{"subscriber": "mailto:nobody"}`,
			`{"subscriber": "http://x", "ttl": 9223372036854775807}`,
		} {
			n.next().expect(http.StatusBadRequest, "POST", path, body).errorLike("Invalid API request", "")
		}
		// Trust subscribers need Keystone, which this service does not use.
		n.next().expect(http.StatusBadRequest, "POST", path, `{"subscriber": "trust+http://example.com/x"}`).errorLike("Invalid API request", "Keystone")
		n.next().expect(http.StatusBadRequest, "POST", path, `{"subscriber": "trust+https://example.com/x"}`).errorLike("Invalid API request", "Keystone")
		// A valid _retry_policy passes; nothing invalid created the queue.
		n.f1.expect(http.StatusNotFound, "HEAD", "/v2/queues/bad", nil)
		n.f2.subscribe("/v2/queues/bad", `{"subscriber": "http://x", "options": {"_retry_policy": {"minimum_delay": 1, "maximum_delay": 11, "retry_backoff_function": "geometric", "ignore_subscription_override": true}}}`)
		if p := n.leader.subscriptions("/v2/queues/bad", ""); len(p.Subscriptions) != 1 {
			t.Fatalf("after one valid and many invalid creates, %d subscriptions", len(p.Subscriptions))
		}
	})

	s.run(t, "a duplicate answers 201 with the same id until confirmed, then 409 with a Location", func(t *testing.T, n nodes) {
		body := map[string]any{"subscriber": deadHook("dup"), "ttl": 600}
		id := n.f1.subscribe("/v2/queues/dq", body)
		// Another ttl and options are not applied to the existing one.
		again := n.f2.subscribe("/v2/queues/dq", map[string]any{"subscriber": deadHook("dup"), "ttl": 9000, "options": map[string]any{"a": 1}})
		if again != id {
			t.Fatalf("duplicate got id %s, want the existing %s", again, id)
		}
		if d := n.leader.subscription("/v2/queues/dq", id); d.TTL != 600 || string(d.Options) != "{}" {
			t.Fatalf("the duplicate changed the subscription: %+v", d)
		}
		n.leader.expect(http.StatusNoContent, "PUT", "/v2/queues/dq/subscriptions/"+id+"/confirm", `{"confirmed": true}`)
		r := n.f2.expect(http.StatusConflict, "POST", "/v2/queues/dq/subscriptions", body).apiError("Resource conflict", unique)
		if loc := r.Header.Get("Location"); loc != "/v2/queues/dq/subscriptions/"+id {
			t.Fatalf("409 Location %q", loc)
		}
		// Unconfirming makes the duplicate rule answer 201 again.
		n.f1.expect(http.StatusNoContent, "PUT", "/v2/queues/dq/subscriptions/"+id+"/confirm", `{"confirmed": false}`)
		if got := n.f2.subscribe("/v2/queues/dq", body); got != id {
			t.Fatalf("duplicate of an unconfirmed subscription got %s, want %s", got, id)
		}
		// Uniqueness is per queue and project.
		if other := n.f1.subscribe("/v2/queues/dq2", body); other == id {
			t.Fatal("the same subscriber on another queue got the same subscription")
		}
		if other := n.f1.inProject("p-other-"+n.f1.project).subscribe("/v2/queues/dq", body); other == id {
			t.Fatal("the same subscriber in another project got the same subscription")
		}
	})

	s.run(t, "list pages in creation order with next links", func(t *testing.T, n nodes) {
		const coll = "/v2/queues/lq"
		var ids []string
		for i := 0; i < 5; i++ {
			ids = append(ids, n.next().subscribe(coll, map[string]any{"subscriber": deadHook("l" + string(rune('a'+i)))}))
		}
		var got []string
		q := "limit=2"
		for page := 0; page < 10; page++ {
			p := n.next().subscriptions(coll, q)
			if len(p.Subscriptions) == 0 {
				if len(p.Links) != 0 {
					t.Fatalf("an empty page has links %v", p.Links)
				}
				break
			}
			if len(p.Links) != 1 || p.Links[0].Rel != "next" {
				t.Fatalf("page links %v", p.Links)
			}
			last := p.Subscriptions[len(p.Subscriptions)-1].ID
			if want := coll + "/subscriptions?limit=2&marker=" + last; p.Links[0].Href != want {
				t.Fatalf("next link %q, want %q", p.Links[0].Href, want)
			}
			for _, d := range p.Subscriptions {
				if d.Source != "lq" {
					t.Fatalf("listed subscription %+v", d)
				}
			}
			got = append(got, subscriptionIDs(p)...)
			u, err := url.Parse(p.Links[0].Href)
			if err != nil {
				t.Fatal(err)
			}
			q = u.RawQuery
		}
		sameIDs(t, "paged listing", got, ids)

		// Default page size 10; python-zaqarclient's detailed is ignored.
		p := n.f1.subscriptions(coll, "detailed=true")
		sameIDs(t, "default page", subscriptionIDs(p), ids)
		if p.Links[0].Href != coll+"/subscriptions?limit=10&marker="+ids[4] {
			t.Fatalf("default next link %q", p.Links[0].Href)
		}
		// A missing queue lists nothing.
		if p := n.f2.subscriptions("/v2/queues/nothing-here", ""); len(p.Subscriptions) != 0 || len(p.Links) != 0 {
			t.Fatalf("missing queue lists %+v", p)
		}
		for _, q := range []string{"limit=0", "limit=21", "limit=-1"} {
			n.next().expect(http.StatusBadRequest, "GET", coll+"/subscriptions?"+q, nil).
				apiError("Invalid API request", "Limit must be at least 1 and may not be greater than 20.")
		}
		n.next().expect(http.StatusBadRequest, "GET", coll+"/subscriptions?limit=x", nil).errorLike("Invalid parameter", "limit")
	})

	s.run(t, "get answers 404 for unknown ids, other queues and other projects", func(t *testing.T, n nodes) {
		id := n.leader.subscribe("/v2/queues/gq", map[string]any{"subscriber": deadHook("g")})
		n.f1.expect(http.StatusNotFound, "GET", "/v2/queues/gq/subscriptions/"+strings.Repeat("0", 32), nil).errorLike("Not found", "")
		n.f2.expect(http.StatusNotFound, "GET", "/v2/queues/other/subscriptions/"+id, nil).errorLike("Not found", "")
		n.f1.inProject("p-else").expect(http.StatusNotFound, "GET", "/v2/queues/gq/subscriptions/"+id, nil).errorLike("Not found", "")
	})

	s.run(t, "patch updates ttl, replaces options and keeps subscribers unique", func(t *testing.T, n nodes) {
		const coll = "/v2/queues/pq"
		id := n.f1.subscribe(coll, map[string]any{"subscriber": deadHook("p1"), "options": map[string]any{"a": 1, "b": 2}})
		other := n.f2.subscribe(coll, map[string]any{"subscriber": deadHook("p2")})
		path := coll + "/subscriptions/" + id

		r := n.f2.expect(http.StatusNoContent, "PATCH", path, `{"ttl": 7200, "options": {"c": 3}}`).empty()
		if loc := r.Header.Get("Location"); loc != path {
			t.Fatalf("PATCH Location %q, want %q", loc, path)
		}
		d := n.leader.subscription(coll, id)
		if d.TTL != 7200 || d.Subscriber != deadHook("p1") {
			t.Fatalf("after PATCH %+v", d)
		}
		jsonEqual(t, "options replaced, not merged", d.Options, `{"c": 3}`)

		n.leader.expect(http.StatusNoContent, "PATCH", path, map[string]any{"subscriber": deadHook("p3")})
		if d := n.f1.subscription(coll, id); d.Subscriber != deadHook("p3") || d.TTL != 7200 {
			t.Fatalf("after changing the subscriber %+v", d)
		}
		n.f1.expect(http.StatusConflict, "PATCH", path, map[string]any{"subscriber": deadHook("p2")}).apiError("Resource conflict", unique)
		n.f2.expect(http.StatusConflict, "PATCH", coll+"/subscriptions/"+other, map[string]any{"subscriber": deadHook("p3")})
		// The old subscriber is free again.
		n.leader.subscribe(coll, map[string]any{"subscriber": deadHook("p1")})

		for _, tc := range []struct{ body, title, desc string }{
			{``, "Invalid API request", "No subscription to create."},
			{`{}`, "Invalid API request", "No subscription to create."},
			{`[]`, "Invalid API request", dict},
			{`{"ttl": 30}`, "Invalid API request", "The TTL for a subscription must be at least 60 seconds long."},
			{`{"ttl": "1"}`, "Invalid API request", "TTL must be an integer."},
			{`{"options": 1}`, "Invalid API request", "Options must be a dict."},
			{`{"subscriber": "gopher://x"}`, "Invalid API request", "The subscriber type of subscription must be supported in the list ['http', 'https', 'mailto', 'trust+http', 'trust+https']."},
			{`{"options": {"_retry_policy": {"maximum_delay": 4}}}`, "Invalid API request", "minimum_delay must less than maximum_delay."},
		} {
			n.next().expect(http.StatusBadRequest, "PATCH", path, tc.body).apiError(tc.title, tc.desc)
		}
		// Unknown keys are refused (the decision of contract §9.5).
		n.next().expect(http.StatusBadRequest, "PATCH", path, `{"ttl": 600, "confirmed": true}`).errorLike("Invalid API request", "confirmed")
		if d := n.f2.subscription(coll, id); d.TTL != 7200 || d.Confirmed {
			t.Fatalf("a refused PATCH changed the subscription: %+v", d)
		}
		n.next().expect(http.StatusNotFound, "PATCH", coll+"/subscriptions/"+strings.Repeat("a", 32), `{"ttl": 600}`).errorLike("Not found", "")
		n.next().expect(http.StatusNotFound, "PATCH", "/v2/queues/elsewhere/subscriptions/"+id, `{"ttl": 600}`).errorLike("Not found", "")
	})

	s.run(t, "delete answers 204, also for subscriptions that do not exist", func(t *testing.T, n nodes) {
		id := n.f1.subscribe("/v2/queues/xq", map[string]any{"subscriber": deadHook("x")})
		n.f2.expect(http.StatusNoContent, "DELETE", "/v2/queues/xq/subscriptions/"+id, nil).empty()
		for _, c := range n.all {
			c.expect(http.StatusNotFound, "GET", "/v2/queues/xq/subscriptions/"+id, nil)
		}
		n.leader.expect(http.StatusNoContent, "DELETE", "/v2/queues/xq/subscriptions/"+id, nil).empty()
		n.leader.expect(http.StatusNoContent, "DELETE", "/v2/queues/nope/subscriptions/"+id, nil).empty()
		// The subscriber can subscribe again and gets a new subscription.
		if again := n.f1.subscribe("/v2/queues/xq", map[string]any{"subscriber": deadHook("x")}); again == id {
			t.Fatal("resubscribing after a delete returned the deleted id")
		}
	})

	s.run(t, "confirm sets the flag and validates its body", func(t *testing.T, n nodes) {
		id := n.f1.subscribe("/v2/queues/cq", map[string]any{"subscriber": deadHook("c")})
		path := "/v2/queues/cq/subscriptions/" + id + "/confirm"
		const boolean = "The 'confirmed' should be boolean."
		for _, body := range []string{``, `{}`, `{"confirmed": "true"}`, `{"confirmed": 1}`, `{"confirmed": null}`} {
			n.next().expect(http.StatusBadRequest, "PUT", path, body).apiError("Invalid API request", boolean)
		}
		n.next().expect(http.StatusBadRequest, "PUT", path, `{"confirmed": tru`).errorLike("Invalid request body", "")
		n.next().expect(http.StatusBadRequest, "PUT", path, `[true]`).errorLike("Invalid request body", "")
		if d := n.leader.subscription("/v2/queues/cq", id); d.Confirmed {
			t.Fatal("an invalid confirmation confirmed the subscription")
		}

		r := n.f2.expect(http.StatusNoContent, "PUT", path, `{"confirmed": true}`).empty()
		if loc := r.Header.Get("Location"); loc != path {
			t.Fatalf("confirm Location %q", loc)
		}
		for _, c := range n.all {
			if d := c.subscription("/v2/queues/cq", id); !d.Confirmed {
				t.Fatalf("%s: not confirmed after confirming", c.node)
			}
		}
		n.leader.expect(http.StatusNoContent, "PUT", path, `{"confirmed": false}`)
		if d := n.f1.subscription("/v2/queues/cq", id); d.Confirmed {
			t.Fatal("still confirmed after confirming false")
		}
		n.next().expect(http.StatusNotFound, "PUT", "/v2/queues/cq/subscriptions/"+strings.Repeat("b", 32)+"/confirm", `{"confirmed": true}`).errorLike("Not found", "")
		// The queue must match (contract §9.7 decision).
		n.next().expect(http.StatusNotFound, "PUT", "/v2/queues/other/subscriptions/"+id+"/confirm", `{"confirmed": true}`).errorLike("Not found", "")
	})

	s.run(t, "deleting or purging a queue removes its subscriptions", func(t *testing.T, n nodes) {
		sub := map[string]any{"subscriber": deadHook("rm")}
		id := n.f1.subscribe("/v2/queues/rq", sub)
		n.f2.expect(http.StatusNoContent, "DELETE", "/v2/queues/rq", nil)
		n.leader.expect(http.StatusNotFound, "GET", "/v2/queues/rq/subscriptions/"+id, nil)
		if p := n.f1.subscriptions("/v2/queues/rq", ""); len(p.Subscriptions) != 0 {
			t.Fatalf("a deleted queue lists %v", subscriptionIDs(p))
		}
		n.leader.expect(http.StatusNotFound, "PUT", "/v2/queues/rq/subscriptions/"+id+"/confirm", `{"confirmed": true}`)
		// A re-created queue starts clean: the subscriber is new again.
		if again := n.f2.subscribe("/v2/queues/rq", sub); again == id {
			t.Fatal("the subscription survived the queue's deletion")
		}
	})

	s.run(t, "purge of subscriptions removes them and keeps messages; purge of messages keeps them", func(t *testing.T, n nodes) {
		sub := map[string]any{"subscriber": deadHook("pg")}
		id := n.f1.subscribe("/v2/queues/pgq", sub)
		n.f2.post("pgq", `1`)
		n.leader.expect(http.StatusNoContent, "POST", "/v2/queues/pgq/purge", `{"resource_types": ["messages"]}`)
		n.f2.subscription("/v2/queues/pgq", id)
		n.f1.post("pgq", `2`)
		n.leader.expect(http.StatusNoContent, "POST", "/v2/queues/pgq/purge", `{"resource_types": ["subscriptions"]}`)
		n.f1.expect(http.StatusNotFound, "GET", "/v2/queues/pgq/subscriptions/"+id, nil)
		if page := n.f2.as(newUUID()).list("pgq", ""); len(page.Messages) != 1 {
			t.Fatalf("purging subscriptions left %d messages, want 1", len(page.Messages))
		}
		id2 := n.f2.subscribe("/v2/queues/pgq", sub)
		n.leader.expect(http.StatusNoContent, "POST", "/v2/queues/pgq/purge", nil)
		n.f1.expect(http.StatusNotFound, "GET", "/v2/queues/pgq/subscriptions/"+id2, nil)
	})
}
