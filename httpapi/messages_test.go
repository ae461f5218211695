package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/zaqar-raft/zaqar/internal/ids"
)

var idPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// getMessage reads one message and checks its exact shape.
func getMessage(c *client, queue, id string) message {
	c.t.Helper()
	r := c.expect(http.StatusOK, "GET", "/v2/queues/"+queue+"/messages/"+id, nil)
	wantKeys(c.t, "message", r.raw(), "id", "href", "ttl", "age", "body")
	var m message
	r.decode(&m)
	if m.ID != id || !strings.HasPrefix(m.Href, "/v2/queues/"+queue+"/messages/"+id) || m.Age < 0 || m.Age > 60 {
		c.t.Fatalf("message %s: %s", id, r.Body)
	}
	return m
}

// messageBody posts a message list document of exactly size bytes.
func messageBody(size int) string {
	const frame = `{"messages": [{"body": ""}]}`
	return `{"messages": [{"body": "` + strings.Repeat("m", size-len(frame)) + `"}]}`
}

// TestMessages covers the message resource (contract §6) through every node.
func TestMessages(t *testing.T) {
	s := startSuite(t)

	s.run(t, "post answers 201 with ids in request order in Location and resources and creates the queue", func(t *testing.T, n nodes) {
		n.f2.expect(http.StatusNotFound, "HEAD", "/v2/queues/mq", nil)
		bodies := []string{`{"event": "BackupStarted"}`, `[1, "two", null]`, `"plain string"`, `42.5`, `true`, `null`}
		items := make([]string, len(bodies))
		for i, b := range bodies {
			items[i] = fmt.Sprintf(`{"ttl": %d, "body": %s, "unknown": "dropped"}`, 300+i, b)
		}
		r := n.f1.expect(http.StatusCreated, "POST", "/v2/queues/mq/messages", `{"messages": [`+strings.Join(items, ", ")+`]}`)
		wantKeys(t, "post response", r.raw(), "resources")
		got := resourceIDs(r)
		if len(got) != len(bodies) {
			t.Fatalf("resources %s", r.Body)
		}
		seen := map[string]bool{}
		for _, id := range got {
			if !idPattern.MatchString(id) || seen[id] {
				t.Fatalf("bad or repeated id %q", id)
			}
			seen[id] = true
		}
		var doc struct{ Resources []string }
		r.decode(&doc)
		for i, href := range doc.Resources {
			if href != "/v2/queues/mq/messages/"+got[i] {
				t.Fatalf("resource %q", href)
			}
		}
		if loc := r.Header.Get("Location"); loc != "/v2/queues/mq/messages?ids="+strings.Join(got, ",") {
			t.Fatalf("Location %q", loc)
		}
		n.f2.expect(http.StatusNoContent, "HEAD", "/v2/queues/mq", nil)
		for i, id := range got {
			m := getMessage(n.next(), "mq", id)
			jsonEqual(t, "body", m.Body, bodies[i])
			if m.TTL != int64(300+i) {
				t.Fatalf("ttl %d, want %d", m.TTL, 300+i)
			}
		}
		// A chunked upload is read like any other.
		ids := resourceIDs(n.leader.expect(http.StatusCreated, "POST", "/v2/queues/mq/messages", `{"messages": [{"body": "chunked"}]}`, chunked()))
		jsonEqual(t, "chunked body", getMessage(n.f1, "mq", ids[0]).Body, `"chunked"`)
	})

	s.run(t, "post validates the document and every message and a rejected post creates nothing", func(t *testing.T, n nodes) {
		ttlRange := "The TTL for a message may not exceed 1209600 seconds, and must be at least 60 seconds long."
		cases := []struct {
			body        any
			title, desc string
		}{
			{nil, "Invalid request body", "Request body can not be empty"},
			{"", "Invalid request body", "Request body can not be empty"},
			{`{}`, "", "No messages were found in the request body."},
			{`{"message": []}`, "", "No messages were found in the request body."},
			{`[{"body": 1}]`, "", "No messages were found in the request body."},
			{`"messages"`, "", "No messages were found in the request body."},
			{`{"messages": {"body": 1}}`, "Invalid request body", "Document type not supported."},
			{`{"messages": "x"}`, "Invalid request body", "Document type not supported."},
			{`{"messages": null}`, "Invalid request body", "Document type not supported."},
			{`{"messages": []}`, "", "No messages to enqueu."},
			{`{"messages": [1]}`, "Invalid request body", ""},
			{`{"messages": [{"body": 1}, "x"]}`, "Invalid request body", ""},
			{`{"messages": [{"ttl": 60}]}`, "Invalid request body", `Missing "body" field.`},
			{`{"messages": [{"body": 1}, {"ttl": 60}]}`, "Invalid request body", `Missing "body" field.`},
			{`{"messages": [{"body": 1, "ttl": "60"}]}`, "Invalid request body", `The value of the "ttl" field must be a int.`},
			{`{"messages": [{"body": 1, "ttl": true}]}`, "Invalid request body", `The value of the "ttl" field must be a int.`},
			{`{"messages": [{"body": 1, "ttl": 1.5}]}`, "Invalid request body", `The value of the "ttl" field must be a int.`},
			{`{"messages": [{"body": 1, "ttl": 60.0}]}`, "Invalid request body", `The value of the "ttl" field must be a int.`},
			{`{"messages": [{"body": 1, "ttl": 59}]}`, "Invalid API request", ttlRange},
			{`{"messages": [{"body": 1, "ttl": 0}]}`, "Invalid API request", ttlRange},
			{`{"messages": [{"body": 1, "ttl": -60}]}`, "Invalid API request", ttlRange},
			{`{"messages": [{"body": 1, "ttl": 1209601}]}`, "Invalid API request", ttlRange},
			{`{"messages": [{"body": 1, "ttl": 60}, {"body": 2, "ttl": 1209601}]}`, "Invalid API request", ttlRange},
			{messageBody(262145), "Invalid API request", "Message collection size is too large."},
		}
		for _, tc := range cases {
			r := n.next().expect(http.StatusBadRequest, "POST", "/v2/queues/rejected/messages", tc.body)
			var e struct{ Title, Description string }
			r.decode(&e)
			if (tc.title != "" && e.Title != tc.title) || !strings.HasPrefix(e.Description, tc.desc) || e.Description == "" {
				t.Fatalf("body %.80v: error %s, want title %q and description %q", tc.body, r.Body, tc.title, tc.desc)
			}
		}
		n.leader.expect(http.StatusBadRequest, "POST", "/v2/queues/rejected/messages", messageBody(300000), chunked()).
			errorLike("Invalid API request", "Message collection size is too large.")
		n.f1.expect(http.StatusNotFound, "HEAD", "/v2/queues/rejected", nil)
		l, _ := listQueues(n.f2, "/v2/queues")
		if len(l.Queues) != 0 {
			t.Fatalf("rejected posts created queues: %v", l.names())
		}
		// The edges are accepted.
		n.f1.expect(http.StatusCreated, "POST", "/v2/queues/edges/messages", messageBody(262144))
		n.f2.expect(http.StatusCreated, "POST", "/v2/queues/edges/messages", `{"messages": [{"body": 1, "ttl": 60}, {"body": 2, "ttl": 1209600}]}`)
	})

	s.run(t, "post honours the queue's own size limit and default TTL", func(t *testing.T, n nodes) {
		n.f1.expect(http.StatusCreated, "PUT", "/v2/queues/small", `{"_max_messages_post_size": 100, "_default_message_ttl": 120}`)
		n.f2.expect(http.StatusBadRequest, "POST", "/v2/queues/small/messages", messageBody(101)).
			errorLike("Invalid API request", "Message collection size is too large.")
		id := resourceIDs(n.leader.expect(http.StatusCreated, "POST", "/v2/queues/small/messages", messageBody(100)))[0]
		if m := getMessage(n.f1, "small", id); m.TTL != 120 {
			t.Fatalf("ttl %d, want the queue default 120", m.TTL)
		}
		id = resourceIDs(n.f2.expect(http.StatusCreated, "POST", "/v2/queues/small/messages", `{"messages": [{"body": 1, "ttl": 61}]}`))[0]
		if m := getMessage(n.leader, "small", id); m.TTL != 61 {
			t.Fatalf("ttl %d, want 61", m.TTL)
		}
		id = n.f1.post("plainq", `1`)[0]
		if m := getMessage(n.f2, "plainq", id); m.TTL != 3600 {
			t.Fatalf("ttl %d, want the default 3600", m.TTL)
		}
	})

	s.run(t, "delay is ignored on a normal queue", func(t *testing.T, n nodes) {
		r := n.f1.expect(http.StatusCreated, "POST", "/v2/queues/normal/messages",
			`{"messages": [{"body": 1, "delay": 30}, {"body": 2, "delay": 5000}, {"body": 3, "delay": "soon"}]}`)
		want := resourceIDs(r)
		other := n.f2.as(newUUID())
		sameIDs(t, "visible at once", messageIDs(other.list("normal", "").Messages), want)
		cid, claimed := n.leader.claim("normal", "", "")
		if cid == "" || len(claimed) != 3 {
			t.Fatalf("claimed %d messages", len(claimed))
		}
	})

	s.run(t, "a delayed queue hides messages until their delay passes but counts and returns them", func(t *testing.T, n nodes) {
		n.f1.expect(http.StatusCreated, "PUT", "/v2/queues/later", `{"_default_message_delay": 600}`)
		for _, body := range []string{
			`{"messages": [{"body": 1, "delay": 901}]}`,
			`{"messages": [{"body": 1, "delay": -1}]}`,
			`{"messages": [{"body": 1, "delay": "5"}]}`,
			`{"messages": [{"body": 1, "delay": 1.5}]}`,
		} {
			n.next().expect(http.StatusBadRequest, "POST", "/v2/queues/later/messages", body)
		}
		r := n.f2.expect(http.StatusCreated, "POST", "/v2/queues/later/messages",
			`{"messages": [{"body": "default delay"}, {"body": "now", "delay": 0}, {"body": "max", "delay": 900}]}`)
		posted := resourceIDs(r)
		other := n.leader.as(newUUID())
		page := other.list("later", "")
		sameIDs(t, "visible", messageIDs(page.Messages), posted[1:2])
		if strings.Contains(page.Links[0].Href, "include_delayed") {
			t.Fatalf("include_delayed forced on a delayed queue: %s", page.Links[0].Href)
		}
		sameIDs(t, "include_delayed", messageIDs(other.list("later", "include_delayed=true").Messages), posted)
		page = other.list("later", "include_delayed=false&limit=5")
		sameIDs(t, "include_delayed=false", messageIDs(page.Messages), posted[1:2])
		if !strings.HasPrefix(page.Links[0].Href, "/v2/queues/later/messages?limit=5&include_delayed=false&marker=") {
			t.Fatalf("next %q", page.Links[0].Href)
		}
		for _, id := range posted {
			getMessage(n.next(), "later", id)
		}
		var many struct{ Messages []message }
		n.f1.expect(http.StatusOK, "GET", "/v2/queues/later/messages?ids="+strings.Join(posted, ","), nil).decode(&many)
		sameIDs(t, "get many", messageIDs(many.Messages), posted)
		var st struct {
			Messages struct{ Claimed, Free, Total int }
		}
		n.f2.expect(http.StatusOK, "GET", "/v2/queues/later/stats", nil).decode(&st)
		if st.Messages.Free != 3 || st.Messages.Total != 3 || st.Messages.Claimed != 0 {
			t.Fatalf("delayed messages must count as free: %+v", st.Messages)
		}
		cid, claimed := n.leader.claim("later", "", "")
		if cid == "" {
			t.Fatal("the undelayed message could not be claimed")
		}
		sameIDs(t, "claimed", messageIDs(claimed), posted[1:2])
		if cid, _ := n.f1.claim("later", "", ""); cid != "" {
			t.Fatalf("claimed a delayed message (claim %s)", cid)
		}
		var popped struct{ Messages []json.RawMessage }
		n.f2.expect(http.StatusOK, "DELETE", "/v2/queues/later/messages?pop=5", nil).decode(&popped)
		if len(popped.Messages) != 0 {
			t.Fatalf("popped delayed messages: %s", popped.Messages)
		}
	})

	s.run(t, "list hides the caller's own messages unless echo is true", func(t *testing.T, n nodes) {
		mine := n.f1.post("echoq", `"mine"`)
		theirs := n.f2.as(newUUID()).post("echoq", `"theirs"`)
		r := n.f2.expect(http.StatusOK, "GET", "/v2/queues/echoq/messages", nil)
		var page messagePage
		r.decode(&page)
		sameIDs(t, "echo default", messageIDs(page.Messages), theirs)
		sameIDs(t, "echo=false", messageIDs(n.leader.list("echoq", "echo=false").Messages), theirs)
		sameIDs(t, "echo=true", messageIDs(n.leader.list("echoq", "echo=true").Messages), append(append([]string{}, mine...), theirs...))
		n.f2.expect(http.StatusNoContent, "DELETE", "/v2/queues/echoq/messages/"+theirs[0], nil)
		r = n.f1.expect(http.StatusOK, "GET", "/v2/queues/echoq/messages", nil)
		jsonEqual(t, "only own messages left", r.Body, `{"messages": [], "links": []}`)
	})

	s.run(t, "list includes claimed messages only when asked and marks them with their claim", func(t *testing.T, n nodes) {
		posted := n.f1.post("cq", `1`, `2`, `3`)
		cid, claimed := n.f2.claim("cq", "limit=1", "")
		sameIDs(t, "claimed", messageIDs(claimed), posted[:1])
		other := n.leader.as(newUUID())
		sameIDs(t, "default", messageIDs(other.list("cq", "").Messages), posted[1:])
		page := other.list("cq", "include_claimed=true&limit=2")
		sameIDs(t, "include_claimed", messageIDs(page.Messages), posted[:2])
		if page.Messages[0].Href != "/v2/queues/cq/messages/"+posted[0]+"?claim_id="+cid || page.Messages[1].Href != "/v2/queues/cq/messages/"+posted[1] {
			t.Fatalf("hrefs %q %q", page.Messages[0].Href, page.Messages[1].Href)
		}
		if !strings.HasPrefix(page.Links[0].Href, "/v2/queues/cq/messages?limit=2&include_claimed=true&include_delayed=true&marker=") {
			t.Fatalf("next %q", page.Links[0].Href)
		}
	})

	s.run(t, "list pages with a next link on every non-empty page until an empty page", func(t *testing.T, n nodes) {
		var posted []string
		for i := 0; i < 4; i++ {
			posted = append(posted, n.next().post("pages", fmt.Sprintf(`{"n": %d}`, 2*i), fmt.Sprintf(`{"n": %d}`, 2*i+1))...)
		}
		var got []string
		path := "/v2/queues/pages/messages?limit=3&echo=true"
		for pages := 0; ; pages++ {
			if pages > 5 {
				t.Fatalf("paging does not end: %v", got)
			}
			r := n.next().expect(http.StatusOK, "GET", path, nil)
			wantKeys(t, "page", r.raw(), "messages", "links")
			var page messagePage
			r.decode(&page)
			if len(page.Messages) == 0 {
				jsonEqual(t, "empty page", r.Body, `{"messages": [], "links": []}`)
				break
			}
			if len(page.Links) != 1 || page.Links[0].Rel != "next" ||
				!strings.HasPrefix(page.Links[0].Href, "/v2/queues/pages/messages?limit=3&echo=true&include_delayed=true&marker=") {
				t.Fatalf("page %d links %+v", pages, page.Links)
			}
			got = append(got, messageIDs(page.Messages)...)
			path = page.Links[0].Href
		}
		sameIDs(t, "FIFO across posts and nodes", got, posted)
		// No parameters: the default page size and a forced include_delayed.
		more := n.f1.post("pages", `1`, `2`, `3`, `4`)
		page := n.f2.as(newUUID()).list("pages", "")
		sameIDs(t, "default page", messageIDs(page.Messages), append(append([]string{}, posted...), more[:2]...))
		if !strings.HasPrefix(page.Links[0].Href, "/v2/queues/pages/messages?include_delayed=true&marker=") {
			t.Fatalf("next %q", page.Links[0].Href)
		}
		for _, limit := range []string{"0", "-1", "21"} {
			n.next().expect(http.StatusBadRequest, "GET", "/v2/queues/pages/messages?limit="+limit, nil).
				apiError("Invalid API request", "Limit must be at least 1 and may not be greater than 20.")
		}
		if got := n.next().list("pages", "limit=20&echo=true").Messages; len(got) != 12 {
			t.Fatalf("limit=20 returned %d", len(got))
		}
		for _, marker := range []string{"abc", "-1", "1.5", "%20"} {
			r := n.next().expect(http.StatusOK, "GET", "/v2/queues/pages/messages?echo=true&marker="+marker, nil)
			jsonEqual(t, "bad marker "+marker, r.Body, `{"messages": [], "links": []}`)
		}
		jsonEqual(t, "missing queue", n.next().expect(http.StatusOK, "GET", "/v2/queues/nothing/messages?echo=true", nil).Body, `{"messages": [], "links": []}`)
		n.f1.expect(http.StatusNotFound, "HEAD", "/v2/queues/nothing", nil)
	})

	s.run(t, "get one returns any unexpired message and 404 for unknown or malformed ids", func(t *testing.T, n nodes) {
		posted := n.f1.post("g1", `{"a": 1}`, `{"b": 2}`)
		cid, _ := n.f2.claim("g1", "limit=1", "")
		m := getMessage(n.f1, "g1", posted[0])
		if m.Href != "/v2/queues/g1/messages/"+posted[0]+"?claim_id="+cid {
			t.Fatalf("claimed href %q", m.Href)
		}
		if m = getMessage(n.leader, "g1", posted[1]); m.Href != "/v2/queues/g1/messages/"+posted[1] {
			t.Fatalf("href %q", m.Href)
		}
		for _, id := range []string{ids.New(), "a", strings.Repeat("g", 32), strings.ToUpper(posted[0]), posted[0] + "0"} {
			n.next().expect(http.StatusNotFound, "GET", "/v2/queues/g1/messages/"+id, nil).errorLike("Not found", "")
		}
		n.next().expect(http.StatusNotFound, "GET", "/v2/queues/g1-missing/messages/"+posted[0], nil).errorLike("Not found", "")
		n.next().expect(http.StatusNotFound, "GET", "/v2/queues/g1-missing/messages/a", nil)
	})

	s.run(t, "get many returns the found messages in request order", func(t *testing.T, n nodes) {
		posted := n.f1.post("gm", `1`, `2`, `3`, `4`)
		cid, _ := n.leader.claim("gm", "limit=1", "")
		order := []string{posted[3], ids.New(), posted[0], posted[2], "bogus", posted[3]}
		r := n.f2.expect(http.StatusOK, "GET", "/v2/queues/gm/messages?ids="+strings.Join(order, ",")+"&limit=1&echo=false", nil)
		wantKeys(t, "get many", r.raw(), "messages")
		var doc struct{ Messages []message }
		r.decode(&doc)
		sameIDs(t, "request order", messageIDs(doc.Messages), []string{posted[3], posted[0], posted[2]})
		if doc.Messages[1].Href != "/v2/queues/gm/messages/"+posted[0]+"?claim_id="+cid {
			t.Fatalf("claimed href %q", doc.Messages[1].Href)
		}
		r = n.leader.expect(http.StatusOK, "GET", "/v2/queues/gm/messages?ids="+posted[1]+"&ids="+posted[0], nil)
		r.decode(&doc)
		sameIDs(t, "repeated ids keys", messageIDs(doc.Messages), []string{posted[1], posted[0]})
		twenty := append([]string{}, posted...)
		for len(twenty) < 20 {
			twenty = append(twenty, ids.New())
		}
		n.f1.expect(http.StatusOK, "GET", "/v2/queues/gm/messages?ids="+strings.Join(twenty, ","), nil)
		n.f2.expect(http.StatusBadRequest, "GET", "/v2/queues/gm/messages?ids="+strings.Join(append(twenty, ids.New()), ","), nil).
			errorLike("Invalid API request", "")
		missing := []string{ids.New(), ids.New()}
		n.leader.expect(http.StatusNotFound, "GET", "/v2/queues/gm/messages?ids="+strings.Join(missing, ","), nil).
			errorLike("Not found", "No messages with IDs: ")
		n.f1.expect(http.StatusNotFound, "GET", "/v2/queues/gm-missing/messages?ids="+posted[0], nil).
			errorLike("Not found", "No messages with IDs: ")
	})

	s.run(t, "delete one follows the claim id rules", func(t *testing.T, n nodes) {
		claimedMsg := `This message is claimed; it cannot be deleted without a valid claim ID.`
		badClaim := `The specified claim does not exist or has expired.`
		notClaimed := `A claim was specified, but the message is not currently claimed.`
		del := func(c *client, id, claimID string) *reply {
			path := "/v2/queues/dm/messages/" + id
			if claimID != "" {
				path += "?claim_id=" + claimID
			}
			return c.do("DELETE", path, nil)
		}
		posted := n.f1.post("dm", `0`, `1`, `2`, `3`, `4`)
		cidA, claimedA := n.f2.claim("dm", "limit=2", "")
		cidB, claimedB := n.leader.claim("dm", "limit=1", "")
		sameIDs(t, "claim A", messageIDs(claimedA), posted[:2])
		sameIDs(t, "claim B", messageIDs(claimedB), posted[2:3])

		// Nothing to delete: 204 whatever the claim id.
		for _, id := range []string{ids.New(), "a", strings.Repeat("z", 40)} {
			del(n.next(), id, "").status(http.StatusNoContent).empty()
			del(n.next(), id, cidA).status(http.StatusNoContent)
		}
		del(n.next(), posted[0], "").status(http.StatusForbidden).apiError("Unable to delete", claimedMsg)
		del(n.next(), posted[0], "not-a-claim").status(http.StatusBadRequest).apiError("Unable to delete", badClaim)
		del(n.next(), posted[0], cidB).status(http.StatusForbidden).apiError("Unable to delete", claimedMsg)
		del(n.next(), posted[0], ids.New()).status(http.StatusForbidden).apiError("Unable to delete", claimedMsg)
		del(n.next(), posted[4], cidA).status(http.StatusBadRequest).apiError("Unable to delete", notClaimed)
		del(n.next(), posted[4], "not-a-claim").status(http.StatusBadRequest).apiError("Unable to delete", badClaim)
		for _, id := range posted {
			getMessage(n.next(), "dm", id) // nothing was deleted so far
		}
		del(n.f1, posted[0], cidA).status(http.StatusNoContent).empty()
		n.f2.expect(http.StatusNotFound, "GET", "/v2/queues/dm/messages/"+posted[0], nil)
		var claim struct{ Messages []message }
		n.leader.expect(http.StatusOK, "GET", "/v2/queues/dm/claims/"+cidA, nil).decode(&claim)
		sameIDs(t, "claim A after delete", messageIDs(claim.Messages), posted[1:2])
		del(n.f2, posted[4], "").status(http.StatusNoContent)
		n.leader.expect(http.StatusNotFound, "GET", "/v2/queues/dm/messages/"+posted[4], nil)

		// After release the message is no longer claimed.
		n.f1.expect(http.StatusNoContent, "DELETE", "/v2/queues/dm/claims/"+cidB, nil)
		del(n.f2, posted[2], cidB).status(http.StatusBadRequest).apiError("Unable to delete", notClaimed)
		del(n.leader, posted[2], "").status(http.StatusNoContent)

		n.f1.expect(http.StatusNoContent, "DELETE", "/v2/queues/dm-missing/messages/"+posted[1], nil)
		n.f2.expect(http.StatusNotFound, "HEAD", "/v2/queues/dm-missing", nil)
	})

	s.run(t, "bulk delete removes the listed messages, claimed or not", func(t *testing.T, n nodes) {
		n.next().expect(http.StatusBadRequest, "DELETE", "/v2/queues/bd/messages?ids="+ids.New()+"&pop=1", nil).errorLike("Invalid API request", "")
		for _, q := range []string{"", "?ids=", "?claim_ids=" + ids.New()} {
			n.next().expect(http.StatusBadRequest, "DELETE", "/v2/queues/bd/messages"+q, nil).
				apiError("Invalid API request", `The request should have either "ids" or "pop" parameter in the request, to be able to delete.`)
		}
		var many []string
		for i := 0; i < 21; i++ {
			many = append(many, ids.New())
		}
		n.next().expect(http.StatusBadRequest, "DELETE", "/v2/queues/bd/messages?ids="+strings.Join(many, ","), nil).errorLike("Invalid API request", "")
		n.next().expect(http.StatusNoContent, "DELETE", "/v2/queues/bd/messages?ids="+strings.Join(many[:20], ","), nil)
		n.f1.expect(http.StatusNotFound, "HEAD", "/v2/queues/bd", nil)

		posted := n.f1.post("bd", `0`, `1`, `2`, `3`)
		cid, _ := n.f2.claim("bd", "limit=2", "")
		n.leader.expect(http.StatusNoContent, "DELETE", "/v2/queues/bd/messages?ids="+strings.Join([]string{posted[0], ids.New(), posted[2], posted[0], "junk"}, ","), nil).empty()
		for _, id := range []string{posted[0], posted[2]} {
			n.next().expect(http.StatusNotFound, "GET", "/v2/queues/bd/messages/"+id, nil)
		}
		var claim struct{ Messages []message }
		n.f1.expect(http.StatusOK, "GET", "/v2/queues/bd/claims/"+cid, nil).decode(&claim)
		sameIDs(t, "claim after bulk delete", messageIDs(claim.Messages), posted[1:2])
		sameIDs(t, "left", messageIDs(n.f2.list("bd", "echo=true&include_claimed=true").Messages), []string{posted[1], posted[3]})
	})

	s.run(t, "pop removes the oldest unclaimed messages and returns them in the pop shape", func(t *testing.T, n nodes) {
		for _, pop := range []string{"0", "-1", "21"} {
			n.next().expect(http.StatusBadRequest, "DELETE", "/v2/queues/pq/messages?pop="+pop, nil).
				apiError("Invalid API request", "Pop value must be at least 1 and may not be greater than 20.")
		}
		n.next().expect(http.StatusBadRequest, "DELETE", "/v2/queues/pq/messages?pop=many", nil).errorLike("Invalid parameter", "")
		jsonEqual(t, "pop of a missing queue", n.f1.expect(http.StatusOK, "DELETE", "/v2/queues/pq/messages?pop=3", nil).Body, `{"messages": []}`)
		n.f2.expect(http.StatusNotFound, "HEAD", "/v2/queues/pq", nil)

		posted := n.f1.post("pq", `{"n": 0}`, `{"n": 1}`, `{"n": 2}`, `{"n": 3}`, `{"n": 4}`)
		cid, _ := n.f2.claim("pq", "limit=1", "")
		// The caller's own messages are popped too; the claimed one is skipped.
		r := n.f1.expect(http.StatusOK, "DELETE", "/v2/queues/pq/messages?pop=2", nil)
		var doc struct{ Messages []map[string]json.RawMessage }
		r.decode(&doc)
		wantKeys(t, "pop", r.raw(), "messages")
		if len(doc.Messages) != 2 {
			t.Fatalf("popped %s", r.Body)
		}
		for i, m := range doc.Messages {
			wantKeys(t, "popped message", m, "id", "body", "ttl", "age", "claim_id", "claim_count")
			var id string
			_ = json.Unmarshal(m["id"], &id)
			if id != posted[i+1] || string(m["claim_id"]) != "null" || string(m["claim_count"]) != "0" || string(m["ttl"]) != "3600" {
				t.Fatalf("popped %d: %s", i, r.Body)
			}
			jsonEqual(t, "popped body", m["body"], fmt.Sprintf(`{"n": %d}`, i+1))
			n.next().expect(http.StatusNotFound, "GET", "/v2/queues/pq/messages/"+id, nil)
		}
		// A released message reports its last claim.
		n.leader.expect(http.StatusNoContent, "DELETE", "/v2/queues/pq/claims/"+cid, nil)
		r = n.f2.expect(http.StatusOK, "DELETE", "/v2/queues/pq/messages?pop=20", nil)
		var popped []struct {
			ID         string  `json:"id"`
			ClaimID    *string `json:"claim_id"`
			ClaimCount int     `json:"claim_count"`
		}
		var wrap struct{ Messages json.RawMessage }
		r.decode(&wrap)
		if err := json.Unmarshal(wrap.Messages, &popped); err != nil || len(popped) != 3 {
			t.Fatalf("second pop %s", r.Body)
		}
		if popped[0].ID != posted[0] || popped[1].ID != posted[3] || popped[2].ID != posted[4] {
			t.Fatalf("second pop order %s", r.Body)
		}
		if popped[0].ClaimID != nil && *popped[0].ClaimID != cid {
			t.Fatalf("released message reports claim %q, want %q or null", *popped[0].ClaimID, cid)
		}
		jsonEqual(t, "empty pop", n.leader.expect(http.StatusOK, "DELETE", "/v2/queues/pq/messages?pop=1", nil).Body, `{"messages": []}`)
	})
}
