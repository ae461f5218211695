package httpapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// topicDefaults is what GET shows for a topic's reserved keys that are not
// stored: only the message size, TTL and delay (contract §11).
const topicDefaults = `"_max_messages_post_size": 262144, "_default_message_ttl": 3600, "_default_message_delay": 0`

// topicListing is a GET /v2/topics page.
type topicListing struct {
	Topics []struct {
		Name     string          `json:"name"`
		Href     string          `json:"href"`
		Metadata json.RawMessage `json:"metadata"`
	} `json:"topics"`
	Links []struct {
		Rel  string `json:"rel"`
		Href string `json:"href"`
	} `json:"links"`
}

func (l topicListing) names() []string {
	out := make([]string, len(l.Topics))
	for i, t := range l.Topics {
		out[i] = t.Name
	}
	return out
}

// postTopic posts bodies (raw JSON values) to a topic and returns the ids.
func (c *client) postTopic(topic string, bodies ...string) []string {
	c.t.Helper()
	items := make([]string, len(bodies))
	for i, b := range bodies {
		items[i] = `{"body": ` + b + `}`
	}
	r := c.expect(http.StatusCreated, "POST", "/v2/topics/"+topic+"/messages", `{"messages": [`+strings.Join(items, ",")+`]}`)
	var doc struct {
		Resources []string `json:"resources"`
	}
	r.decode(&doc)
	for _, href := range doc.Resources {
		if !strings.HasPrefix(href, "/v2/topics/"+topic+"/messages/") {
			c.t.Fatalf("topic post resource %q", href)
		}
	}
	if loc := r.Header.Get("Location"); !strings.HasPrefix(loc, "/v2/topics/"+topic+"/messages?ids=") {
		c.t.Fatalf("topic post Location %q", loc)
	}
	return resourceIDs(r)
}

// TestTopics covers topics (contract §11 with the §19 decisions) through
// every node.
func TestTopics(t *testing.T) {
	s := startSuite(t)

	s.run(t, "CRUD mirrors queues with topic paths and the topic subset of defaults", func(t *testing.T, n nodes) {
		r := n.f1.expect(http.StatusCreated, "PUT", "/v2/topics/news", `{"description": "daily"}`).empty()
		if loc := r.Header.Get("Location"); loc != "/v2/topics/news" {
			t.Fatalf("Location %q", loc)
		}
		n.f2.expect(http.StatusNoContent, "PUT", "/v2/topics/news", `{}`)
		for _, c := range n.all {
			jsonEqual(t, "topic metadata", c.expect(http.StatusOK, "GET", "/v2/topics/news", nil).Body,
				`{"description": "daily", `+topicDefaults+`}`)
		}
		n.leader.expect(http.StatusNoContent, "HEAD", "/v2/topics/news", nil)

		got := n.f2.expect(http.StatusOK, "PATCH", "/v2/topics/news",
			`[{"op": "replace", "path": "/metadata/description", "value": "hourly"}, {"op": "add", "path": "/metadata/_default_message_ttl", "value": 120}]`, patchType())
		jsonEqual(t, "patched metadata", got.Body,
			`{"description": "hourly", "_default_message_ttl": 120, "_max_messages_post_size": 262144, "_default_message_delay": 0}`)
		n.f1.expect(http.StatusUnsupportedMediaType, "PATCH", "/v2/topics/news", `[]`)

		n.leader.expect(http.StatusBadRequest, "PUT", "/v2/topics/bad%20name", nil).errorLike("Invalid topic identification", "Topic names")
		n.leader.expect(http.StatusBadRequest, "PUT", "/v2/topics/"+strings.Repeat("t", 65), nil).errorLike("Invalid topic identification", "")
		for _, name := range []string{".", ".."} {
			n.next().expect(http.StatusBadRequest, "PUT", "/v2/topics/"+name, nil).
				apiError("Invalid topic identification", `Topic names may not be "." or "..".`)
			n.next().expect(http.StatusBadRequest, "POST", "/v2/topics/"+name+"/messages", `{"messages": [{"body": 1}]}`).
				apiError("Invalid topic identification", `Topic names may not be "." or "..".`)
		}

		n.f1.expect(http.StatusNoContent, "DELETE", "/v2/topics/news", nil).empty()
		n.f2.expect(http.StatusNotFound, "HEAD", "/v2/topics/news", nil)
		n.leader.expect(http.StatusNoContent, "DELETE", "/v2/topics/news", nil)
	})

	s.run(t, "list uses the topics key, has no count and pages by name", func(t *testing.T, n nodes) {
		for _, name := range []string{"t-c", "t-a", "t-b"} {
			n.next().expect(http.StatusCreated, "PUT", "/v2/topics/"+name, `{"k": "`+name+`"}`)
		}
		r := n.f1.expect(http.StatusOK, "GET", "/v2/topics?limit=2&with_count=true", nil)
		wantKeys(t, "topic list", r.raw(), "topics", "links")
		var l topicListing
		r.decode(&l)
		sameIDs(t, "first page", l.names(), []string{"t-a", "t-b"})
		for _, tp := range l.Topics {
			if tp.Href != "/v2/topics/"+tp.Name || tp.Metadata != nil {
				t.Fatalf("topic entry %+v", tp)
			}
		}
		if len(l.Links) != 1 || !strings.HasPrefix(l.Links[0].Href, "/v2/topics?limit=2&") || !strings.HasSuffix(l.Links[0].Href, "&marker=t-b") {
			t.Fatalf("links %+v", l.Links)
		}
		var next topicListing
		n.f2.expect(http.StatusOK, "GET", l.Links[0].Href, nil).decode(&next)
		sameIDs(t, "second page", next.names(), []string{"t-c"})

		var detailed topicListing
		n.leader.expect(http.StatusOK, "GET", "/v2/topics?detailed=true", nil).decode(&detailed)
		if len(detailed.Topics) != 3 {
			t.Fatalf("detailed listing %+v", detailed)
		}
		jsonEqual(t, "detailed metadata", detailed.Topics[0].Metadata, `{"k": "t-a", `+topicDefaults+`}`)

		// Queues do not list topics.
		var queues queueListing
		n.f1.expect(http.StatusOK, "GET", "/v2/queues", nil).decode(&queues)
		if len(queues.Queues) != 0 {
			t.Fatalf("the queue listing shows topics: %v", queues.names())
		}
	})

	s.run(t, "stats report a total, posting adds to it and purge empties it", func(t *testing.T, n nodes) {
		jsonEqual(t, "missing topic stats", n.f1.expect(http.StatusOK, "GET", "/v2/topics/st/stats", nil).Body,
			`{"messages": {"claimed": 0, "free": 0, "total": 0}}`)
		n.f2.expect(http.StatusCreated, "PUT", "/v2/topics/st", nil)
		jsonEqual(t, "empty topic stats", n.leader.expect(http.StatusOK, "GET", "/v2/topics/st/stats", nil).Body,
			`{"messages": {"total": 0}}`)

		ids := n.f1.postTopic("st", `{"n": 1}`, `{"n": 2}`)
		if len(ids) != 2 {
			t.Fatalf("posted ids %v", ids)
		}
		var st struct {
			Messages map[string]json.RawMessage `json:"messages"`
		}
		n.f2.expect(http.StatusOK, "GET", "/v2/topics/st/stats", nil).decode(&st)
		wantKeys(t, "topic stats", st.Messages, "total", "oldest", "newest")
		if string(st.Messages["total"]) != "2" {
			t.Fatalf("total %s", st.Messages["total"])
		}
		var oldest struct {
			Href string `json:"href"`
		}
		if err := json.Unmarshal(st.Messages["oldest"], &oldest); err != nil || oldest.Href != "/v2/topics/st/messages/"+ids[0] {
			t.Fatalf("oldest %s", st.Messages["oldest"])
		}

		n.leader.expect(http.StatusNoContent, "POST", "/v2/topics/st/purge", `{"resource_types": ["messages"]}`).empty()
		jsonEqual(t, "purged topic stats", n.f1.expect(http.StatusOK, "GET", "/v2/topics/st/stats", nil).Body, `{"messages": {"total": 0}}`)
		n.f2.expect(http.StatusBadRequest, "POST", "/v2/topics/st/purge", `{"resource_types": ["claims"]}`)

		// Messages are posted, not read, on topics.
		r := n.f1.expect(http.StatusMethodNotAllowed, "GET", "/v2/topics/st/messages", nil)
		if allow := r.Header.Values("Allow"); len(allow) != 1 || allow[0] != "POST" {
			t.Fatalf("Allow %v", allow)
		}
		// Claims and single messages are no routes of a topic at all.
		for _, rt := range []struct{ method, path string }{
			{"POST", "/v2/topics/st/claims"}, {"GET", "/v2/topics/st/claims/" + ids[0]},
			{"GET", "/v2/topics/st/messages/" + ids[0]}, {"DELETE", "/v2/topics/st/messages/" + ids[0]},
			{"POST", "/v2/topics/st/share"},
		} {
			n.next().expect(http.StatusNotFound, rt.method, rt.path, nil).apiError("404 Not Found", "")
		}
		// Posts are validated like queue posts.
		n.f2.expect(http.StatusBadRequest, "POST", "/v2/topics/st/messages", `{"messages": []}`)
		n.f2.expect(http.StatusBadRequest, "POST", "/v2/topics/st/messages", `{"messages": [{"body": 1, "ttl": 10}]}`)
	})

	s.run(t, "a topic and a queue of the same name are separate", func(t *testing.T, n nodes) {
		n.f1.expect(http.StatusCreated, "PUT", "/v2/queues/same", `{"kind": "queue"}`)
		n.f2.expect(http.StatusCreated, "PUT", "/v2/topics/same", `{"kind": "topic"}`)
		if m := n.leader.expect(http.StatusOK, "GET", "/v2/queues/same", nil).object(); m["kind"] != "queue" {
			t.Fatalf("queue metadata %v", m)
		}
		if m := n.leader.expect(http.StatusOK, "GET", "/v2/topics/same", nil).object(); m["kind"] != "topic" {
			t.Fatalf("topic metadata %v", m)
		}
		n.f1.postTopic("same", `"to the topic"`)
		if page := n.f2.as(newUUID()).list("same", ""); len(page.Messages) != 0 {
			t.Fatalf("a post to the topic shows in the queue: %v", messageIDs(page.Messages))
		}
		n.leader.post("same", `"to the queue"`, `"again"`)
		var st struct {
			Messages struct {
				Total int `json:"total"`
			} `json:"messages"`
		}
		n.f1.expect(http.StatusOK, "GET", "/v2/topics/same/stats", nil).decode(&st)
		if st.Messages.Total != 1 {
			t.Fatalf("topic total %d, want 1", st.Messages.Total)
		}

		qsub := n.f1.subscribe("/v2/queues/same", map[string]any{"subscriber": deadHook("same")})
		tsub := n.f2.subscribe("/v2/topics/same", map[string]any{"subscriber": deadHook("same")})
		if qsub == tsub {
			t.Fatal("the same subscriber on a queue and a topic of one name got one subscription")
		}
		n.leader.expect(http.StatusNotFound, "GET", "/v2/queues/same/subscriptions/"+tsub, nil)
		n.leader.expect(http.StatusNotFound, "GET", "/v2/topics/same/subscriptions/"+qsub, nil)

		n.f2.expect(http.StatusNoContent, "DELETE", "/v2/topics/same", nil)
		n.f1.expect(http.StatusNoContent, "HEAD", "/v2/queues/same", nil)
		n.leader.subscription("/v2/queues/same", qsub)
		n.leader.expect(http.StatusNotFound, "GET", "/v2/topics/same/subscriptions/"+tsub, nil)
	})

	s.run(t, "topic subscriptions have the queue semantics", func(t *testing.T, n nodes) {
		const coll = "/v2/topics/alerts"
		id := n.f1.subscribe(coll, map[string]any{"subscriber": deadHook("t1"), "ttl": 300})
		if again := n.f2.subscribe(coll, map[string]any{"subscriber": deadHook("t1")}); again != id {
			t.Fatalf("duplicate topic subscription got %s, want %s", again, id)
		}
		n.leader.expect(http.StatusNoContent, "HEAD", "/v2/topics/alerts", nil)
		d := n.leader.subscription(coll, id)
		if d.Source != "alerts" || d.TTL != 300 || d.Subscriber != deadHook("t1") || d.Confirmed {
			t.Fatalf("topic subscription %+v", d)
		}
		id2 := n.f2.subscribe(coll, map[string]any{"subscriber": "mailto:ops@example.com"})
		p := n.f1.subscriptions(coll, "limit=1")
		sameIDs(t, "first page", subscriptionIDs(p), []string{id})
		if len(p.Links) != 1 || p.Links[0].Href != coll+"/subscriptions?limit=1&marker="+id {
			t.Fatalf("topic subscription links %+v", p.Links)
		}

		n.f2.expect(http.StatusNoContent, "PATCH", coll+"/subscriptions/"+id, `{"ttl": 900, "options": {"post_data": "{\"m\": \"$zaqar_message$\"}"}}`)
		if d := n.f1.subscription(coll, id); d.TTL != 900 {
			t.Fatalf("patched topic subscription %+v", d)
		}
		n.leader.expect(http.StatusBadRequest, "PATCH", coll+"/subscriptions/"+id, `{}`).apiError("Invalid API request", "No subscription to create.")

		r := n.f1.expect(http.StatusNoContent, "PUT", coll+"/subscriptions/"+id+"/confirm", `{"confirmed": true}`)
		if loc := r.Header.Get("Location"); loc != coll+"/subscriptions/"+id+"/confirm" {
			t.Fatalf("confirm Location %q", loc)
		}
		cr := n.f2.expect(http.StatusConflict, "POST", coll+"/subscriptions", map[string]any{"subscriber": deadHook("t1")})
		if loc := cr.Header.Get("Location"); loc != coll+"/subscriptions/"+id {
			t.Fatalf("409 Location %q", loc)
		}
		n.leader.expect(http.StatusBadRequest, "POST", coll+"/subscriptions", `{"subscriber": "ftp://x"}`).errorLike("Invalid API request", "subscriber type")

		n.f1.expect(http.StatusNoContent, "DELETE", coll+"/subscriptions/"+id2, nil)
		n.f2.expect(http.StatusNotFound, "GET", coll+"/subscriptions/"+id2, nil)
		n.leader.expect(http.StatusNoContent, "POST", "/v2/topics/alerts/purge", `{"resource_types": ["subscriptions"]}`)
		if p := n.f1.subscriptions(coll, ""); len(p.Subscriptions) != 0 {
			t.Fatalf("topic subscriptions after purge %v", subscriptionIDs(p))
		}
	})
}
