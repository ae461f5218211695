package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// projectState is everything a project can observe about its queue
// "shared" and topic "shared": queue list, metadata, stats, messages
// (claimed included), one claim, subscriptions, topic metadata and
// subscriptions.
type projectState map[string]any

// observe reads c's view of the shared resources through REST.
func observe(t *testing.T, c *client, claimID string) projectState {
	t.Helper()
	get := func(path string) any {
		r := c.do("GET", path, nil)
		var v any
		if len(r.Body) > 0 {
			if err := json.Unmarshal(r.Body, &v); err != nil {
				t.Fatalf("GET %s: %v", path, err)
			}
		}
		if m, ok := v.(map[string]any); ok {
			delete(m, "age") // ages move on their own
			if msgs, ok := m["messages"].([]any); ok {
				for _, msg := range msgs {
					if mm, ok := msg.(map[string]any); ok {
						delete(mm, "age")
						delete(mm, "ttl") // claimed messages' ttl may be extended
					}
				}
			}
		}
		return map[string]any{"status": r.Status, "body": v}
	}
	st := projectState{
		"queues":              get("/v2/queues?detailed=true&with_count=true"),
		"queue":               get("/v2/queues/shared"),
		"stats":               get("/v2/queues/shared/stats"),
		"messages":            get("/v2/queues/shared/messages?echo=true&include_claimed=true&limit=20"),
		"subscriptions":       get("/v2/queues/shared/subscriptions"),
		"topics":              get("/v2/topics"),
		"topic":               get("/v2/topics/shared"),
		"topic subscriptions": get("/v2/topics/shared/subscriptions"),
	}
	if claimID != "" {
		st["claim"] = get("/v2/queues/shared/claims/" + claimID)
	}
	// Subscription ages move too.
	for _, k := range []string{"subscriptions", "topic subscriptions"} {
		if m, ok := st[k].(map[string]any)["body"].(map[string]any); ok {
			if subs, ok := m["subscriptions"].([]any); ok {
				for _, s := range subs {
					delete(s.(map[string]any), "age")
				}
			}
		}
	}
	return st
}

// TestIsolation_Projects checks that two projects using the same queue,
// topic, message, claim and subscription names never see or touch each
// other's resources over REST, including through ids and signatures of the
// other project (contract §2.3: every resource is scoped by project).
func TestIsolation_Projects(t *testing.T) {
	s := startSuite(t)
	secret(t, s.c) // shares need the cluster's signing key
	s.run(t, "a project never sees or changes another project's queues, messages, claims or subscriptions", func(t *testing.T, n nodes) {
		for _, pair := range []struct{ name, a, b string }{
			{"unrelated names", n.leader.project + "-a", n.leader.project + "-b"},
			{"one a prefix of the other", n.leader.project, n.leader.project + "x"},
			{"differing in case", n.leader.project + "-CASE", n.leader.project + "-case"},
			{"with separators and UTF-8", n.leader.project + "|q|\u00e9", n.leader.project + "|q|"},
		} {
			t.Run(pair.name, func(t *testing.T) {
				isolate(t, n, pair.a, pair.b)
			})
		}
	})
	s.run(t, "concurrent requests on one route each act on their own queue", func(t *testing.T, n nodes) {
		// One route serves every queue: a request's queue name must never
		// leak into another request that runs at the same time.
		const queues = 24
		errs := make(chan error, queues)
		var wg sync.WaitGroup
		for i := 0; i < queues; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				req, err := http.NewRequest("POST", n.leader.base+fmt.Sprintf("/v2/queues/race-%d/messages", i),
					strings.NewReader(fmt.Sprintf(`{"messages": [{"body": %d}]}`, i)))
				if err != nil {
					errs <- err
					return
				}
				r, err := n.leader.exchange(req, req.URL.Path, nil)
				if err == nil && r.Status != http.StatusCreated {
					err = fmt.Errorf("post to race-%d: %d %s", i, r.Status, r.Body)
				}
				if err != nil {
					errs <- err
				}
			}(i)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		for i := 0; i < queues; i++ {
			page := n.leader.list(fmt.Sprintf("race-%d", i), "echo=true")
			if len(page.Messages) != 1 || string(page.Messages[0].Body) != fmt.Sprint(i) {
				t.Fatalf("queue race-%d holds %+v, want only the body %d", i, page.Messages, i)
			}
		}
	})
}

// isolate sets up resources in project a and attacks them from project b
// (through every node in turn).
func isolate(t *testing.T, n nodes, projectA, projectB string) {
	a := n.leader.inProject(projectA).on(t)
	b := func() *client { return n.next().inProject(projectB).as(newUUID()).on(t) }

	a.expect(http.StatusCreated, "PUT", "/v2/queues/shared", `{"owner": "a", "_default_message_ttl": 3600}`)
	ids := a.post("shared", `{"n": 0}`, `{"n": 1}`, `{"n": 2}`)
	claimID, claimed := a.claim("shared", "limit=1", `{"ttl": 300, "grace": 60}`)
	if claimID == "" || len(claimed) != 1 {
		t.Fatalf("project a's claim: %q %v", claimID, claimed)
	}
	var sub struct {
		ID string `json:"subscription_id"`
	}
	a.expect(http.StatusCreated, "POST", "/v2/queues/shared/subscriptions", `{"subscriber": "mailto:a@example.com", "ttl": 3600}`).decode(&sub)
	a.expect(http.StatusCreated, "PUT", "/v2/topics/shared", `{"owner": "a"}`)
	var topicSub struct {
		ID string `json:"subscription_id"`
	}
	a.expect(http.StatusCreated, "POST", "/v2/topics/shared/subscriptions", `{"subscriber": "mailto:t@example.com"}`).decode(&topicSub)
	var g grant
	a.expect(http.StatusOK, "POST", "/v2/queues/shared/share", `{"methods": ["GET", "DELETE", "POST"], "paths": ["messages", "claims", "subscriptions"]}`).decode(&g)
	before := observe(t, a, claimID)

	// Project b, with the same names and a's ids, sees nothing of a's.
	var list struct {
		Queues []any `json:"queues"`
		Count  int   `json:"count"`
	}
	b().expect(http.StatusOK, "GET", "/v2/queues?with_count=true", nil).decode(&list)
	if len(list.Queues) != 0 || list.Count != 0 {
		t.Fatalf("project b lists %+v", list)
	}
	b().expect(http.StatusNotFound, "HEAD", "/v2/queues/shared", nil)
	b().expect(http.StatusNotFound, "HEAD", "/v2/topics/shared", nil)
	if md := b().expect(http.StatusOK, "GET", "/v2/queues/shared", nil).object(); md["owner"] != nil {
		t.Fatalf("project b reads a's metadata: %v", md)
	}
	jsonEqual(t, "b's stats", b().expect(http.StatusOK, "GET", "/v2/queues/shared/stats", nil).raw()["messages"], `{"claimed": 0, "free": 0, "total": 0}`)
	if page := b().list("shared", "echo=true&include_claimed=true"); len(page.Messages) != 0 {
		t.Fatalf("project b lists a's messages: %+v", page)
	}
	for _, id := range ids {
		b().expect(http.StatusNotFound, "GET", "/v2/queues/shared/messages/"+id, nil)
	}
	b().expect(http.StatusNotFound, "GET", "/v2/queues/shared/messages?ids="+strings.Join(ids, ","), nil)
	b().expect(http.StatusNotFound, "GET", "/v2/queues/shared/claims/"+claimID, nil)
	b().expect(http.StatusNotFound, "PATCH", "/v2/queues/shared/claims/"+claimID, `{"ttl": 60, "grace": 60}`)
	b().expect(http.StatusNotFound, "GET", "/v2/queues/shared/subscriptions/"+sub.ID, nil)
	b().expect(http.StatusNotFound, "PATCH", "/v2/queues/shared/subscriptions/"+sub.ID, `{"ttl": 600}`)
	b().expect(http.StatusNotFound, "PUT", "/v2/queues/shared/subscriptions/"+sub.ID+"/confirm", `{"confirmed": false}`)
	b().expect(http.StatusNotFound, "GET", "/v2/topics/shared/subscriptions/"+topicSub.ID, nil)
	b().expect(http.StatusNotFound, "PATCH", "/v2/queues/shared", `[{"op": "add", "path": "/metadata/owner", "value": "b"}]`,
		patchType())

	// Writes from b that name a's resources affect nothing of a's.
	for _, w := range []struct{ method, path, body string }{
		{"DELETE", "/v2/queues/shared/messages/" + ids[1], ""},
		{"DELETE", "/v2/queues/shared/messages/" + claimed[0].ID + "?claim_id=" + claimID, ""},
		{"DELETE", "/v2/queues/shared/messages?ids=" + strings.Join(ids, ","), ""},
		{"DELETE", "/v2/queues/shared/messages?pop=5", ""},
		{"POST", "/v2/queues/shared/claims?limit=5", `{"ttl": 60, "grace": 60}`},
		{"DELETE", "/v2/queues/shared/claims/" + claimID, ""},
		{"DELETE", "/v2/queues/shared/subscriptions/" + sub.ID, ""},
		{"DELETE", "/v2/topics/shared/subscriptions/" + topicSub.ID, ""},
		{"POST", "/v2/queues/shared/purge", `{"resource_types": ["messages", "subscriptions"]}`},
		{"POST", "/v2/topics/shared/purge", ""},
		{"DELETE", "/v2/queues/shared", ""},
		{"DELETE", "/v2/topics/shared", ""},
	} {
		var body any
		if w.body != "" {
			body = w.body
		}
		r := b().do(w.method, w.path, body)
		if r.Status >= 300 && r.Status != http.StatusNotFound && r.Status != http.StatusBadRequest {
			t.Fatalf("%s %s as project b: %d %s", w.method, w.path, r.Status, r.Body)
		}
		if w.method == "DELETE" && strings.Contains(w.path, "pop=") {
			var popped struct {
				Messages []any `json:"messages"`
			}
			if len(r.Body) > 0 {
				r.decode(&popped)
			}
			if len(popped.Messages) != 0 {
				t.Fatalf("project b popped %v", popped.Messages)
			}
		}
	}

	// Signatures are bound to their project: a's grant presented as b,
	// and b's own grant presented for a, are both refused.
	b().expect(http.StatusNotFound, "GET", "/v2/queues/shared/messages", nil, signedWith(g, func(h *grant) { h.Project = projectB })...)
	var gb grant
	b().expect(http.StatusOK, "POST", "/v2/queues/shared/share", `{"methods": ["GET", "DELETE"]}`).decode(&gb)
	b().expect(http.StatusNotFound, "DELETE", "/v2/queues/shared/messages?pop=5", nil, signedWith(gb, func(h *grant) { h.Project = projectA })...)
	// b's own grant works, on b's (empty) queue only.
	var page messagePage
	b().expect(http.StatusOK, "GET", "/v2/queues/shared/messages?include_claimed=true", nil, signed(gb)...).decode(&page)
	if len(page.Messages) != 0 {
		t.Fatalf("b's signed listing shows %+v", page.Messages)
	}

	// b now uses the names itself; a and b each see only their own.
	bc := n.leader.inProject(projectB).on(t)
	bc.expect(http.StatusCreated, "PUT", "/v2/queues/shared", `{"owner": "b"}`)
	bIDs := bc.post("shared", `{"from": "b"}`)
	if page := bc.list("shared", "echo=true&include_claimed=true"); len(page.Messages) != 1 || page.Messages[0].ID != bIDs[0] {
		t.Fatalf("b's own listing: %+v", page)
	}
	if after := observe(t, a, claimID); !reflect.DeepEqual(after, before) {
		t.Fatalf("project b changed what project a sees:\nbefore %v\nafter  %v", before, after)
	}
	a.expect(http.StatusNotFound, "GET", "/v2/queues/shared/messages/"+bIDs[0], nil)
}

// on returns a copy of c that reports to t.
func (c *client) on(t *testing.T) *client {
	cp := *c
	cp.t = t
	return &cp
}
