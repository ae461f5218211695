package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/zaqar-raft/zaqar/internal/ids"
)

// claimDoc is a claim as GET returns it.
type claimDoc struct {
	Age      int64     `json:"age"`
	TTL      int64     `json:"ttl"`
	Href     string    `json:"href"`
	Messages []message `json:"messages"`
}

func getClaim(c *client, queue, cid string) claimDoc {
	c.t.Helper()
	r := c.expect(http.StatusOK, "GET", "/v2/queues/"+queue+"/claims/"+cid, nil)
	wantKeys(c.t, "claim", r.raw(), "age", "ttl", "href", "messages")
	var d claimDoc
	r.decode(&d)
	if d.Href != "/v2/queues/"+queue+"/claims/"+cid || d.Age < 0 || d.Age > 60 {
		c.t.Fatalf("claim %s: %s", cid, r.Body)
	}
	for _, m := range d.Messages {
		if m.Href != "/v2/queues/"+queue+"/messages/"+m.ID+"?claim_id="+cid {
			c.t.Fatalf("claim %s: message href %q", cid, m.Href)
		}
	}
	return d
}

// TestClaims covers claims (contract §7) through every node.
func TestClaims(t *testing.T) {
	s := startSuite(t)

	s.run(t, "claim create answers 201 with a Location and claim hrefs, or 204 when nothing is claimable", func(t *testing.T, n nodes) {
		for _, c := range []*client{n.f1, n.leader} {
			r := c.expect(http.StatusNoContent, "POST", "/v2/queues/cl/claims", `{"ttl": 60}`).empty()
			if loc := r.Header.Get("Location"); loc != "" {
				t.Fatalf("204 claim has Location %q", loc)
			}
		}
		n.f2.expect(http.StatusNotFound, "HEAD", "/v2/queues/cl", nil)
		n.f2.expect(http.StatusCreated, "PUT", "/v2/queues/cl", nil)
		n.f1.expect(http.StatusNoContent, "POST", "/v2/queues/cl/claims", nil)

		var posted []string
		for i := 0; i < 12; i++ {
			posted = append(posted, n.next().post("cl", fmt.Sprintf(`{"i": %d}`, i))...)
		}
		// Echo does not apply: the poster may claim its own messages.
		r := n.f1.expect(http.StatusCreated, "POST", "/v2/queues/cl/claims", nil)
		wantKeys(t, "claim response", r.raw(), "messages")
		cid := strings.TrimPrefix(r.Header.Get("Location"), "/v2/queues/cl/claims/")
		if !idPattern.MatchString(cid) {
			t.Fatalf("Location %q", r.Header.Get("Location"))
		}
		var doc struct{ Messages []map[string]json.RawMessage }
		r.decode(&doc)
		if len(doc.Messages) != 10 {
			t.Fatalf("default limit claimed %d", len(doc.Messages))
		}
		for i, m := range doc.Messages {
			wantKeys(t, "claimed message", m, "id", "href", "ttl", "age", "body")
			jsonEqual(t, "claimed body", m["body"], fmt.Sprintf(`{"i": %d}`, i))
			var id, href string
			_ = json.Unmarshal(m["id"], &id)
			_ = json.Unmarshal(m["href"], &href)
			if id != posted[i] || href != "/v2/queues/cl/messages/"+id+"?claim_id="+cid {
				t.Fatalf("claimed %d: id %s href %s", i, id, href)
			}
		}
		cid2, rest := n.f2.claim("cl", "limit=5", `{"ttl": 60, "grace": 60}`)
		sameIDs(t, "second claim", messageIDs(rest), posted[10:])
		if cid2 == cid {
			t.Fatal("two claims share an id")
		}
		if cid3, _ := n.leader.claim("cl", "limit=20", ""); cid3 != "" {
			t.Fatalf("claimed from an exhausted queue: %s", cid3)
		}
		var st struct {
			Messages struct{ Claimed, Free, Total int }
		}
		n.f1.expect(http.StatusOK, "GET", "/v2/queues/cl/stats", nil).decode(&st)
		if st.Messages.Claimed != 12 || st.Messages.Free != 0 {
			t.Fatalf("stats %+v", st.Messages)
		}
	})

	s.run(t, "claim create takes defaults from an empty body and validates ttl, grace and limit", func(t *testing.T, n nodes) {
		n.f1.post("cv", `1`, `2`, `3`, `4`, `5`, `6`)
		intErr := func(field string) string { return `The value of the "` + field + `" field must be a int.` }
		ttlErr := "The TTL for a claim may not exceed 43200 seconds, and must be at least 60 seconds long."
		graceErr := "The grace for a claim may not exceed 43200 seconds, and must be at least 60 seconds long."
		limitErr := "Limit must be at least 1 and may not be greater than 20."
		for _, tc := range []struct {
			query, body, title, desc string
		}{
			{"", `{"ttl": null}`, "Invalid request body", intErr("ttl")},
			{"", `{"ttl": 100, "grace": null}`, "Invalid request body", intErr("grace")},
			{"", `{"ttl": "100"}`, "Invalid request body", intErr("ttl")},
			{"", `{"ttl": true}`, "Invalid request body", intErr("ttl")},
			{"", `{"ttl": 100.5}`, "Invalid request body", intErr("ttl")},
			{"", `{"grace": [60]}`, "Invalid request body", intErr("grace")},
			{"", `[]`, "Invalid request body", ""},
			{"", `[{"ttl": 100}]`, "Invalid request body", ""},
			{"", `"ttl"`, "Invalid request body", ""},
			{"", `5`, "Invalid request body", ""},
			{"", `null`, "Invalid request body", ""},
			{"", `{"ttl": 59}`, "Invalid API request", ttlErr},
			{"", `{"ttl": 43201}`, "Invalid API request", ttlErr},
			{"", `{"ttl": 0}`, "Invalid API request", ttlErr},
			{"", `{"grace": 59}`, "Invalid API request", graceErr},
			{"", `{"grace": 43201}`, "Invalid API request", graceErr},
			{"limit=0", ``, "Invalid API request", limitErr},
			{"limit=21", `{}`, "Invalid API request", limitErr},
			{"limit=-5", `{"ttl": 60}`, "Invalid API request", limitErr},
		} {
			path := "/v2/queues/cv/claims"
			if tc.query != "" {
				path += "?" + tc.query
			}
			r := n.next().expect(http.StatusBadRequest, "POST", path, tc.body)
			if tc.desc != "" {
				r.apiError(tc.title, tc.desc)
			} else {
				r.errorLike(tc.title, "")
			}
		}
		var st struct{ Messages struct{ Claimed int } }
		n.f2.expect(http.StatusOK, "GET", "/v2/queues/cv/stats", nil).decode(&st)
		if st.Messages.Claimed != 0 {
			t.Fatalf("a rejected claim claimed %d messages", st.Messages.Claimed)
		}
		for _, tc := range []struct {
			body    any
			wantTTL int64
		}{{nil, 300}, {"", 300}, {`{}`, 300}, {`{"grace": 43200}`, 300}, {`{"ttl": 60, "grace": 60}`, 60}, {`{"ttl": 43200}`, 43200}} {
			r := n.next().expect(http.StatusCreated, "POST", "/v2/queues/cv/claims?limit=1", tc.body)
			cid := strings.TrimPrefix(r.Header.Get("Location"), "/v2/queues/cv/claims/")
			if got := getClaim(n.next(), "cv", cid); got.TTL != tc.wantTTL {
				t.Fatalf("body %v: claim ttl %d, want %d", tc.body, got.TTL, tc.wantTTL)
			}
		}
	})

	s.run(t, "get claim shows age, ttl, href and its remaining messages, and 404 for anything else", func(t *testing.T, n nodes) {
		posted := n.f1.post("cg", `1`, `2`, `3`)
		cid, claimed := n.f2.claim("cg", "limit=2", `{"ttl": 120}`)
		sameIDs(t, "claimed", messageIDs(claimed), posted[:2])
		for _, c := range n.all {
			d := getClaim(c, "cg", cid)
			if d.TTL != 120 {
				t.Fatalf("ttl %d", d.TTL)
			}
			sameIDs(t, "claim messages", messageIDs(d.Messages), posted[:2])
		}
		n.leader.expect(http.StatusNoContent, "DELETE", "/v2/queues/cg/messages/"+posted[0]+"?claim_id="+cid, nil)
		sameIDs(t, "after delete", messageIDs(getClaim(n.f1, "cg", cid).Messages), posted[1:2])

		for _, path := range []string{
			"/v2/queues/cg/claims/" + ids.New(),
			"/v2/queues/cg/claims/abc",
			"/v2/queues/cg/claims/" + strings.ToUpper(cid),
			"/v2/queues/other/claims/" + cid,
		} {
			n.next().expect(http.StatusNotFound, "GET", path, nil).errorLike("Not found", "")
		}
		n.f2.inProject(n.f2.project+"x").expect(http.StatusNotFound, "GET", "/v2/queues/cg/claims/"+cid, nil)
		n.f2.expect(http.StatusNotFound, "HEAD", "/v2/queues/other", nil)
		n.f1.expect(http.StatusNoContent, "DELETE", "/v2/queues/cg/claims/"+cid, nil)
		n.f2.expect(http.StatusNotFound, "GET", "/v2/queues/cg/claims/"+cid, nil).errorLike("Not found", "")
	})

	s.run(t, "renew restarts the claim with defaults for missing fields and is 404 once released", func(t *testing.T, n nodes) {
		n.f1.post("cr", `1`)
		cid, _ := n.f2.claim("cr", "", `{"ttl": 100, "grace": 100}`)
		path := "/v2/queues/cr/claims/" + cid
		for _, tc := range []struct {
			body string
			ttl  int64
		}{{`{"ttl": 200}`, 200}, {`{}`, 300}, {`{"ttl": 60, "grace": 500}`, 60}, {`{"grace": 100}`, 300}, {`{"ttl": 43200, "grace": 43200}`, 43200}} {
			n.next().expect(http.StatusNoContent, "PATCH", path, tc.body).empty()
			if d := getClaim(n.next(), "cr", cid); d.TTL != tc.ttl {
				t.Fatalf("renew %s: ttl %d, want %d", tc.body, d.TTL, tc.ttl)
			}
		}
		for _, tc := range []struct {
			body  any
			title string
		}{
			{nil, "Invalid request body"},
			{"", "Invalid request body"},
			{`[]`, "Invalid request body"},
			{`{"ttl": null}`, "Invalid request body"},
			{`{"ttl": "60"}`, "Invalid request body"},
			{`{"ttl": 59}`, "Invalid API request"},
			{`{"ttl": 43201}`, "Invalid API request"},
			{`{"grace": 59}`, "Invalid API request"},
			{`{"grace": 43201}`, "Invalid API request"},
		} {
			n.next().expect(http.StatusBadRequest, "PATCH", path, tc.body).errorLike(tc.title, "")
		}
		if d := getClaim(n.f1, "cr", cid); d.TTL != 43200 {
			t.Fatalf("a rejected renew changed the ttl to %d", d.TTL)
		}
		for _, p := range []string{"/v2/queues/cr/claims/" + ids.New(), "/v2/queues/cr/claims/abc", "/v2/queues/cr-missing/claims/" + cid} {
			n.next().expect(http.StatusNotFound, "PATCH", p, `{"ttl": 100}`).errorLike("Not found", "")
		}
		n.leader.expect(http.StatusNoContent, "DELETE", path, nil)
		n.f1.expect(http.StatusNotFound, "PATCH", path, `{"ttl": 100}`).errorLike("Not found", "")
		n.f2.expect(http.StatusNotFound, "HEAD", "/v2/queues/cr-missing", nil)
	})

	s.run(t, "release answers 204 always and makes the messages claimable again", func(t *testing.T, n nodes) {
		posted := n.f1.post("rl", `1`, `2`)
		cid, _ := n.f2.claim("rl", "", "")
		other := n.leader.as(newUUID())
		if got := other.list("rl", "").Messages; len(got) != 0 {
			t.Fatalf("claimed messages listed: %v", messageIDs(got))
		}
		for _, c := range []string{cid, cid, ids.New(), "abc"} {
			n.next().expect(http.StatusNoContent, "DELETE", "/v2/queues/rl/claims/"+c, nil).empty()
		}
		n.next().expect(http.StatusNoContent, "DELETE", "/v2/queues/rl-missing/claims/"+cid, nil)
		n.f1.expect(http.StatusNotFound, "HEAD", "/v2/queues/rl-missing", nil)
		sameIDs(t, "listed after release", messageIDs(other.list("rl", "").Messages), posted)
		for _, id := range posted {
			if m := getMessage(n.next(), "rl", id); strings.Contains(m.Href, "claim_id") {
				t.Fatalf("released message href %q", m.Href)
			}
		}
		cid2, again := n.leader.claim("rl", "", "")
		sameIDs(t, "claimed again", messageIDs(again), posted)
		if cid2 == cid {
			t.Fatal("a new claim reused the released id")
		}
	})

	s.run(t, "a claim extends messages that would expire before it ends", func(t *testing.T, n nodes) {
		r := n.f1.expect(http.StatusCreated, "POST", "/v2/queues/ext/messages",
			`{"messages": [{"ttl": 60, "body": "short"}, {"ttl": 3600, "body": "long"}]}`)
		posted := resourceIDs(r)
		cid, claimed := n.f2.claim("ext", "", `{"ttl": 100, "grace": 60}`)
		if len(claimed) != 2 || claimed[0].TTL != 160 || claimed[1].TTL != 3600 {
			t.Fatalf("claimed ttls %+v", claimed)
		}
		if m := getMessage(n.leader, "ext", posted[0]); m.TTL != 160 {
			t.Fatalf("extended ttl %d, want 160", m.TTL)
		}
		if d := getClaim(n.f1, "ext", cid); d.Messages[0].TTL != 160 || d.Messages[1].TTL != 3600 {
			t.Fatalf("claim message ttls %+v", d.Messages)
		}
		n.leader.expect(http.StatusNoContent, "PATCH", "/v2/queues/ext/claims/"+cid, `{"ttl": 4000, "grace": 100}`)
		for _, id := range posted {
			if m := getMessage(n.next(), "ext", id); m.TTL != 4100 {
				t.Fatalf("after renew ttl %d, want 4100", m.TTL)
			}
		}
		n.f2.expect(http.StatusNoContent, "DELETE", "/v2/queues/ext/claims/"+cid, nil)
		for _, id := range posted {
			if m := getMessage(n.next(), "ext", id); m.TTL != 4100 {
				t.Fatalf("after release ttl %d, want 4100 kept", m.TTL)
			}
		}
	})

	s.run(t, "a message claimed _max_claim_count times moves to the dead-letter queue on the next claim", func(t *testing.T, n nodes) {
		n.f1.expect(http.StatusCreated, "PUT", "/v2/queues/work",
			`{"_max_claim_count": 2, "_dead_letter_queue": "dead", "_dead_letter_queue_messages_ttl": 120}`)
		posted := resourceIDs(n.f2.expect(http.StatusCreated, "POST", "/v2/queues/work/messages",
			`{"messages": [{"body": {"job": 1}, "ttl": 3600}, {"body": {"job": 2}}]}`))
		for round := 1; round <= 2; round++ {
			cid, claimed := n.next().claim("work", "limit=1", "")
			sameIDs(t, fmt.Sprintf("claim %d", round), messageIDs(claimed), posted[:1])
			n.next().expect(http.StatusNoContent, "DELETE", "/v2/queues/work/claims/"+cid, nil)
		}
		n.f1.expect(http.StatusNotFound, "HEAD", "/v2/queues/dead", nil)
		// The third claim selects the message, moves it and so claims nothing.
		if cid, claimed := n.leader.claim("work", "limit=1", ""); cid != "" {
			t.Fatalf("third claim got %v", messageIDs(claimed))
		}
		n.f2.expect(http.StatusNoContent, "HEAD", "/v2/queues/dead", nil)
		n.f1.expect(http.StatusNotFound, "GET", "/v2/queues/work/messages/"+posted[0], nil)
		moved := getMessage(n.f2, "dead", posted[0])
		jsonEqual(t, "moved body", moved.Body, `{"job": 1}`)
		if moved.TTL != 120 || moved.Href != "/v2/queues/dead/messages/"+posted[0] {
			t.Fatalf("moved message %+v", moved)
		}
		other := n.leader.as(newUUID())
		sameIDs(t, "dead-letter list", messageIDs(other.list("dead", "").Messages), posted[:1])
		sameIDs(t, "work list", messageIDs(other.list("work", "").Messages), posted[1:])
		// The moved message is claimable at once in the dead-letter queue.
		_, fromDead := n.f1.claim("dead", "", "")
		sameIDs(t, "claim from dead-letter queue", messageIDs(fromDead), posted[:1])
		_, rest := n.f2.claim("work", "", "")
		sameIDs(t, "rest of work", messageIDs(rest), posted[1:])

		// Without a dead-letter queue name the count does not matter.
		n.leader.expect(http.StatusCreated, "PUT", "/v2/queues/nodlq", `{"_max_claim_count": 1}`)
		id := n.f1.post("nodlq", `1`)[0]
		for round := 0; round < 3; round++ {
			cid, claimed := n.next().claim("nodlq", "", "")
			sameIDs(t, "no dead-letter queue", messageIDs(claimed), []string{id})
			n.next().expect(http.StatusNoContent, "DELETE", "/v2/queues/nodlq/claims/"+cid, nil)
		}
	})
}
