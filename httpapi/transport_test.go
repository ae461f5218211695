package httpapi_test

import (
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/zaqar-raft/zaqar/internal/ids"
)

// TestTransport covers the cross-cutting REST rules (contract §1–§4):
// routing, version and home documents, the request hooks (Client-ID,
// project, Accept, form bodies, JSON checks), ping, health, the routes that
// are not implemented yet, and read consistency across nodes.
func TestTransport(t *testing.T) {
	s := startSuite(t)

	s.run(t, "GET / answers 300 with the version document and needs no headers", func(t *testing.T, n nodes) {
		for _, c := range n.all {
			r := c.expect(http.StatusMultipleChoices, "GET", "/", nil, bare())
			jsonEqual(t, "versions", r.Body, `{"versions": [
				{"id": "2", "status": "CURRENT", "updated": "2014-9-24T04:06:47Z",
				 "media-types": [{"base": "application/json",
				                  "type": "application/vnd.openstack.messaging-v2+json"}],
				 "links": [{"href": "/v2/", "rel": "self"}]}]}`)
			if ct := r.Header.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("GET / Content-Type %q", ct)
			}
		}
	})

	s.run(t, "the home document is served on /v2/ and /v2 as cacheable json-home", func(t *testing.T, n nodes) {
		want := map[string]struct {
			template string
			allow    []string
		}{
			"rel/queues":             {"/v2/queues{?marker,limit,detailed}", []string{"GET"}},
			"rel/queue":              {"/v2/queues/{queue_name}", []string{"GET", "PUT", "DELETE", "PATCH"}},
			"rel/queue_stats":        {"/v2/queues/{queue_name}/stats", []string{"GET"}},
			"rel/queue_share":        {"/v2/queues/{queue_name}/share", []string{"POST"}},
			"rel/queue_purge":        {"/v2/queues/{queue_name}/purge", []string{"POST"}},
			"rel/messages":           {"/v2/queues/{queue_name}/messages{?marker,limit,echo,include_claimed}", []string{"GET"}},
			"rel/post_messages":      {"/v2/queues/{queue_name}/messages", []string{"POST"}},
			"rel/messages_delete":    {"/v2/queues/{queue_name}/messages{?ids,pop}", []string{"DELETE"}},
			"rel/message_delete":     {"/v2/queues/{queue_name}/messages/{message_id}{?claim}", []string{"DELETE"}},
			"rel/message_get":        {"/v2/queues/{queue_name}/messages/{message_id}", []string{"GET"}},
			"rel/claim":              {"/v2/queues/{queue_name}/claims/{claim_id}", []string{"GET"}},
			"rel/post_claim":         {"/v2/queues/{queue_name}/claims{?limit}", []string{"POST"}},
			"rel/patch_claim":        {"/v2/queues/{queue_name}/claims/{claim_id}", []string{"PATCH"}},
			"rel/delete_claim":       {"/v2/queues/{queue_name}/claims/{claim_id}", []string{"DELETE"}},
			"rel/subscriptions_get":  {"/v2/queues/{queue_name}/subscriptions{?marker,limit}", []string{"GET"}},
			"rel/subscriptions_post": {"/v2/queues/{queue_name}/subscriptions", []string{"POST"}},
			"rel/subscription":       {"/v2/queues/{queue_name}/subscriptions/{subscriptions_id}", []string{"GET", "DELETE"}},
			"rel/subscription_patch": {"/v2/queues/{queue_name}/subscriptions/{subscriptions_id}", []string{"PATCH"}},
			"rel/ping":               {"/v2/ping", []string{"GET"}},
		}
		for _, path := range []string{"/v2/", "/v2"} {
			c := n.next()
			r := c.expect(http.StatusOK, "GET", path, nil)
			if ct := r.Header.Get("Content-Type"); ct != "application/json-home" {
				t.Fatalf("%s Content-Type %q", path, ct)
			}
			if cc := r.Header.Get("Cache-Control"); cc != "max-age=86400" {
				t.Fatalf("%s Cache-Control %q", path, cc)
			}
			var doc struct {
				Resources map[string]struct {
					Href         string            `json:"href"`
					HrefTemplate string            `json:"href-template"`
					HrefVars     map[string]string `json:"href-vars"`
					Hints        struct {
						Allow      []string                  `json:"allow"`
						Formats    map[string]map[string]any `json:"formats"`
						AcceptPost []string                  `json:"accept-post"`
					} `json:"hints"`
				} `json:"resources"`
			}
			r.decode(&doc)
			for rel, w := range want {
				got, ok := doc.Resources[rel]
				if !ok {
					t.Fatalf("%s: relation %s missing", path, rel)
				}
				tmpl := got.HrefTemplate
				if tmpl == "" {
					tmpl = got.Href
				}
				if tmpl != w.template {
					t.Errorf("%s: %s template %q, want %q", path, rel, tmpl, w.template)
				}
				if strings.Contains(w.template, "{") && len(got.HrefVars) == 0 {
					t.Errorf("%s: %s has a template but no href-vars", path, rel)
				}
				if fmt.Sprint(got.Hints.Allow) != fmt.Sprint(w.allow) {
					t.Errorf("%s: %s allow %v, want %v", path, rel, got.Hints.Allow, w.allow)
				}
				if _, ok := got.Hints.Formats["application/json"]; !ok || len(got.Hints.Formats) != 1 {
					t.Errorf("%s: %s formats %v", path, rel, got.Hints.Formats)
				}
				postOrPatch := strings.Contains(strings.Join(w.allow, ","), "POST") || strings.Contains(strings.Join(w.allow, ","), "PATCH")
				if postOrPatch != (fmt.Sprint(got.Hints.AcceptPost) == "[application/json]") {
					t.Errorf("%s: %s accept-post %v", path, rel, got.Hints.AcceptPost)
				}
			}
		}
		// Like everything under /v2, the home document needs a Client-ID.
		n.next().expect(http.StatusBadRequest, "GET", "/v2/", nil, without("Client-ID")).
			apiError("Missing header value", `The "Client-Id" header is required.`)

		// Admins also see the admin relations, in a document no shared
		// cache may hand to anyone else.
		admin := map[string]string{
			"rel/pools": "/v2/pools{?detailed,limit,marker}", "rel/pool": "/v2/pools/{pool_name}",
			"rel/flavors": "/v2/flavors{?detailed,limit,marker}", "rel/flavor": "/v2/flavors/{flavor_name}",
			"rel/health": "/v2/health",
		}
		var docs [2]struct {
			Resources map[string]struct {
				Href         string `json:"href"`
				HrefTemplate string `json:"href-template"`
			} `json:"resources"`
		}
		member := n.next().expect(http.StatusOK, "GET", "/v2/", nil, hdr("X-Roles", "member"))
		member.decode(&docs[0])
		byAdmin := n.next().expect(http.StatusOK, "GET", "/v2/", nil, hdr("X-Roles", "member, admin"))
		byAdmin.decode(&docs[1])
		if cc := byAdmin.Header.Get("Cache-Control"); cc != "private, max-age=86400" || byAdmin.Header.Get("Vary") == "" {
			t.Fatalf("admin home document: Cache-Control %q, Vary %q", cc, byAdmin.Header.Get("Vary"))
		}
		for rel, tmpl := range admin {
			if _, shown := docs[0].Resources[rel]; shown {
				t.Errorf("a member's home document shows %s", rel)
			}
			if got := docs[1].Resources[rel]; got.HrefTemplate+got.Href != tmpl {
				t.Errorf("admin home document: %s = %+v, want %s", rel, got, tmpl)
			}
		}
		if len(docs[1].Resources) != len(docs[0].Resources)+len(admin) {
			t.Errorf("admin home document has %d relations, want %d", len(docs[1].Resources), len(docs[0].Resources)+len(admin))
		}
	})

	s.run(t, "an unknown path is 404 with the framework title even without headers", func(t *testing.T, n nodes) {
		for _, path := range []string{"/v2/nothing", "/v3", "/v2/queues/", "/v2/queues/q/messages/m/extra", "/v2/queues/q/stats/x"} {
			for _, opts := range [][]opt{nil, {bare()}} {
				n.next().expect(http.StatusNotFound, "GET", path, nil, opts...).apiError("404 Not Found", "")
			}
		}
	})

	s.run(t, "a method the path does not support is 405 with an Allow header", func(t *testing.T, n nodes) {
		cases := []struct {
			method, path string
			allow        []string
		}{
			{"POST", "/v2/queues/q/stats", []string{"GET"}},
			{"PUT", "/v2/queues", []string{"GET"}},
			{"DELETE", "/v2/ping", []string{"GET", "HEAD"}},
			{"POST", "/v2/queues/q", []string{"DELETE", "GET", "HEAD", "PATCH", "PUT"}},
			{"GET", "/v2/queues/q/purge", []string{"POST"}},
			{"PUT", "/v2/queues/q/messages", []string{"DELETE", "GET", "POST"}},
			{"PUT", "/v2/queues/q/claims/" + ids.New(), []string{"DELETE", "GET", "PATCH"}},
			{"GET", "/v2/queues/q/claims", []string{"POST"}},
		}
		for _, tc := range cases {
			for _, opts := range [][]opt{nil, {bare()}} {
				r := n.next().expect(http.StatusMethodNotAllowed, tc.method, tc.path, nil, opts...).apiError("405 Method Not Allowed", "")
				var allow []string
				for _, v := range r.Header.Values("Allow") {
					for _, m := range strings.Split(v, ",") {
						allow = append(allow, strings.TrimSpace(m))
					}
				}
				sort.Strings(allow)
				if fmt.Sprint(allow) != fmt.Sprint(tc.allow) {
					t.Errorf("%s %s: Allow %v, want %v", tc.method, tc.path, allow, tc.allow)
				}
			}
		}
	})

	s.run(t, "every response carries a request id", func(t *testing.T, n nodes) {
		re := regexp.MustCompile(`^req-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
		seen := map[string]bool{}
		for _, r := range []*reply{
			n.next().do("GET", "/", nil, bare()),
			n.next().do("GET", "/v2/queues", nil),
			n.next().do("GET", "/v2/queues", nil, without("Client-ID")),
			n.next().do("GET", "/v2/nothing", nil),
			n.next().do("HEAD", "/v2/ping", nil),
			// The node makes the id; a client's own is not used.
			n.next().do("GET", "/v2/queues", nil, hdr("X-Openstack-Request-Id", "req-chosen-by-the-client")),
		} {
			id := r.Header.Get("X-Openstack-Request-Id")
			if !re.MatchString(id) || seen[id] {
				t.Fatalf("%s: request id %q (seen before: %v)", r.what, id, seen[id])
			}
			seen[id] = true
		}
	})

	s.run(t, "Client-ID must be a UUID in any of Python's spellings", func(t *testing.T, n nodes) {
		u := newUUID()
		undashed := strings.ReplaceAll(u, "-", "")
		// Python strips any mix of braces at either end and every dash.
		ok := []string{u + "}{", "-" + undashed + "-", u, undashed, strings.ToUpper(u), "urn:uuid:" + u, "{" + u + "}", "{" + undashed + "}", "urn:uuid:" + undashed}
		for _, cid := range ok {
			n.next().expect(http.StatusOK, "GET", "/v2/queues", nil, hdr("Client-ID", cid))
		}
		bad := []string{"", "   ", "not-a-uuid", undashed[:31], undashed + "0", strings.Repeat("g", 32), "uuid:" + u + "x", "{" + u + "-}x", "3381af92 2b9e 11e3 b191 718613007343"}
		for _, cid := range bad {
			n.next().expect(http.StatusBadRequest, "GET", "/v2/queues", nil, hdr("Client-ID", cid)).
				apiError("Wrong UUID value", "Malformed hexadecimal UUID.")
		}
		for _, path := range []string{"/v2/queues", "/v2/ping", "/v2/queues/q", "/v2/queues/q/messages", "/v2/health"} {
			n.next().expect(http.StatusBadRequest, "GET", path, nil, without("Client-ID")).
				apiError("Missing header value", `The "Client-Id" header is required.`)
		}
		// The Client-ID check comes before the project check.
		n.next().expect(http.StatusBadRequest, "GET", "/v2/queues", nil, without("Client-ID"), without("X-Project-ID")).
			apiError("Missing header value", `The "Client-Id" header is required.`)
	})

	s.run(t, "dashed and undashed spellings of one Client-ID are one client for echo", func(t *testing.T, n nodes) {
		u := newUUID()
		dashed := n.f1.as(u)
		undashed := n.f2.as(strings.ToUpper(strings.ReplaceAll(u, "-", "")))
		braces := n.leader.as("{urn:uuid:" + u + "}")
		id := dashed.post("echo", `{"n": 1}`)[0]
		for _, c := range []*client{undashed, braces, dashed} {
			if page := c.list("echo", ""); len(page.Messages) != 0 {
				t.Fatalf("%s sees its own message without echo: %+v", c.clientID, page.Messages)
			}
			page := c.list("echo", "echo=true")
			sameIDs(t, "echo=true", messageIDs(page.Messages), []string{id})
		}
		other := n.f2.as(newUUID())
		sameIDs(t, "another client", messageIDs(other.list("echo", "").Messages), []string{id})
	})

	s.run(t, "the project header is required and may not be empty", func(t *testing.T, n nodes) {
		for _, path := range []string{"/v2/queues", "/v2/queues/q", "/v2/ping", "/v2/"} {
			n.next().expect(http.StatusBadRequest, "GET", path, nil, without("X-Project-ID")).
				apiError("Project-Id Missing", "The header X-PROJECT-ID was missing")
			n.next().expect(http.StatusBadRequest, "GET", path, nil, hdr("X-Project-ID", "")).
				apiError("Empty project header not allowed", "")
		}
		// Spaces and other characters are fine; header names are case-insensitive.
		n.next().expect(http.StatusOK, "GET", "/v2/queues", nil, without("X-Project-ID"), func(r *http.Request) { r.Header["x-project-id"] = []string{"my project!"} })
	})

	s.run(t, "X-Tenant-Id and X-Tenant stand in for a missing X-Project-ID", func(t *testing.T, n nodes) {
		n.f1.expect(http.StatusCreated, "PUT", "/v2/queues/tenantq", `{"who": "project"}`)
		for _, name := range []string{"X-Tenant-Id", "X-Tenant"} {
			r := n.f2.expect(http.StatusOK, "GET", "/v2/queues/tenantq", nil, without("X-Project-ID"), hdr(name, n.f1.project))
			if r.object()["who"] != "project" {
				t.Fatalf("%s did not select the project: %s", name, r.Body)
			}
		}
		// X-Project-Id wins over X-Tenant-Id.
		r := n.leader.expect(http.StatusOK, "GET", "/v2/queues/tenantq", nil, hdr("X-Tenant-Id", "someone-else"))
		if r.object()["who"] != "project" {
			t.Fatalf("X-Project-Id did not win: %s", r.Body)
		}
		// The first present header decides, even when it is empty.
		n.leader.expect(http.StatusBadRequest, "GET", "/v2/queues", nil, without("X-Project-ID"), hdr("X-Tenant-Id", ""), hdr("X-Tenant", "p")).
			apiError("Empty project header not allowed", "")
	})

	s.run(t, "a project id over 256 characters is rejected only on routes with a queue name", func(t *testing.T, n nodes) {
		long := n.f1.inProject(strings.Repeat("p", 257))
		ok := n.f2.inProject(strings.Repeat("q", 256))
		for _, rt := range []struct{ method, path, body string }{
			{"GET", "/v2/queues/q", ""},
			{"PUT", "/v2/queues/q", ""},
			{"GET", "/v2/queues/q/stats", ""},
			{"POST", "/v2/queues/q/messages", `{"messages": [{"body": 1}]}`},
			{"GET", "/v2/queues/q/messages", ""},
			{"POST", "/v2/queues/q/claims", ""},
		} {
			var body any
			if rt.body != "" {
				body = rt.body
			}
			long.expect(http.StatusBadRequest, rt.method, rt.path, body).errorLike("Invalid queue identification", "")
		}
		long.expect(http.StatusOK, "GET", "/v2/queues", nil)
		long.expect(http.StatusNoContent, "GET", "/v2/ping", nil)
		ok.expect(http.StatusCreated, "PUT", "/v2/queues/q", nil)
		ok.expect(http.StatusNoContent, "HEAD", "/v2/queues/q", nil)
	})

	s.run(t, "the same queue name in two projects is two queues", func(t *testing.T, n nodes) {
		a := n.f1
		b := n.f2.inProject(n.f2.project + "-other")
		a.expect(http.StatusCreated, "PUT", "/v2/queues/shared", `{"owner": "a"}`)
		b.expect(http.StatusCreated, "PUT", "/v2/queues/shared", `{"owner": "b"}`)
		idA := a.post("shared", `"from a"`)
		idB := b.post("shared", `"from b"`, `"from b again"`)
		reader := n.leader.as(newUUID())
		sameIDs(t, "project a", messageIDs(reader.list("shared", "").Messages), idA)
		sameIDs(t, "project b", messageIDs(reader.inProject(b.project).list("shared", "").Messages), idB)
		if o := n.leader.expect(http.StatusOK, "GET", "/v2/queues/shared", nil).object()["owner"]; o != "a" {
			t.Fatalf("project a metadata owner %v", o)
		}
		n.leader.expect(http.StatusNotFound, "GET", "/v2/queues/shared/messages/"+idB[0], nil)
		n.f1.expect(http.StatusNoContent, "DELETE", "/v2/queues/shared/messages/"+idB[0], nil)
		b.expect(http.StatusOK, "GET", "/v2/queues/shared/messages/"+idB[0], nil)
		a.expect(http.StatusNoContent, "DELETE", "/v2/queues/shared", nil)
		b.expect(http.StatusNoContent, "HEAD", "/v2/queues/shared", nil)
		a.expect(http.StatusNotFound, "HEAD", "/v2/queues/shared", nil)
		var list struct {
			Queues []struct{ Name string } `json:"queues"`
		}
		b.expect(http.StatusOK, "GET", "/v2/queues", nil).decode(&list)
		if len(list.Queues) != 1 || list.Queues[0].Name != "shared" {
			t.Fatalf("project b queues %+v", list.Queues)
		}
		a.expect(http.StatusOK, "GET", "/v2/queues", nil).decode(&list)
		if len(list.Queues) != 0 {
			t.Fatalf("project a queues %+v", list.Queues)
		}
	})

	s.run(t, "an Accept header that excludes JSON is 406 with a help link", func(t *testing.T, n nodes) {
		for _, accept := range []string{"text/html", "application/xml", "application/json;q=0", "text/*"} {
			r := n.next().expect(http.StatusNotAcceptable, "GET", "/v2/queues", nil, hdr("Accept", accept))
			var doc struct {
				Title       string            `json:"title"`
				Description string            `json:"description"`
				Link        map[string]string `json:"link"`
			}
			r.decode(&doc)
			if doc.Title != "406 Not Acceptable" || doc.Description == "" || doc.Link["rel"] != "help" || doc.Link["href"] == "" || doc.Link["text"] == "" || len(doc.Link) != 3 {
				t.Fatalf("Accept %q: body %s", accept, r.Body)
			}
		}
		for _, accept := range []string{"application/json", "*/*", "application/*", "text/html, application/json;q=0.5", "application/json; charset=utf-8"} {
			n.next().expect(http.StatusOK, "GET", "/v2/queues", nil, hdr("Accept", accept))
		}
	})

	s.run(t, "a form-encoded body is 400 and does not create the queue", func(t *testing.T, n nodes) {
		n.f1.expect(http.StatusBadRequest, "POST", "/v2/queues/formq/messages", "messages=1",
			hdr("Content-Type", "application/x-www-form-urlencoded")).errorLike("Invalid Content-Type", "")
		n.f1.expect(http.StatusBadRequest, "PUT", "/v2/queues/formq", "a=b",
			hdr("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")).errorLike("Invalid Content-Type", "")
		n.f2.expect(http.StatusNotFound, "HEAD", "/v2/queues/formq", nil)
		// Without a body the content type does not matter.
		n.f2.expect(http.StatusOK, "GET", "/v2/queues", nil, hdr("Content-Type", "application/x-www-form-urlencoded"))
	})

	s.run(t, "checks run in the contract's order: signature, framing, Client-ID, project, name, policy", func(t *testing.T, n nodes) {
		form := hdr("Content-Type", "application/x-www-form-urlencoded")
		html := hdr("Accept", "text/html")
		badSig := []opt{hdr("URL-Signature", strings.Repeat("0", 64)), hdr("URL-Paths", "/v2/queues/q/messages"),
			hdr("URL-Methods", "POST"), hdr("URL-Expires", "2099-01-01T00:00:00")}
		// A bad signature is 404 whatever else is wrong with the request.
		n.next().expect(http.StatusNotFound, "POST", "/v2/queues/q/messages", "a=b", append(badSig, form, html, without("Client-ID"))...).apiError("404 Not Found", "")
		// Then the form body, then Accept, then Client-ID, project, name and policy.
		n.next().expect(http.StatusBadRequest, "POST", "/v2/queues/a@b/messages", "a=b", form, html, without("Client-ID")).errorLike("Invalid Content-Type", "")
		n.next().expect(http.StatusNotAcceptable, "GET", "/v2/queues/a@b/messages", nil, html, without("Client-ID"))
		n.next().expect(http.StatusBadRequest, "GET", "/v2/health", nil, without("Client-ID"), without("X-Project-ID")).
			apiError("Missing header value", `The "Client-Id" header is required.`)
		n.next().expect(http.StatusBadRequest, "GET", "/v2/queues/a@b/stats", nil, without("X-Project-ID")).apiError("Project-Id Missing", "The header X-PROJECT-ID was missing")
		n.next().expect(http.StatusBadRequest, "GET", "/v2/queues/a@b/stats", nil, hdr("X-Roles", "nobody")).errorLike("Invalid queue identification", "")
		n.next().expect(http.StatusForbidden, "GET", "/v2/health", nil).apiError("Not authorized", "You are not authorized to complete this action.")
	})

	s.run(t, "unparsable JSON, invalid UTF-8 and integers beyond int64 are 400 on every body", func(t *testing.T, n nodes) {
		routes := []struct {
			method, path string
			opts         []opt
		}{
			{"PUT", "/v2/queues/jq", nil},
			{"PATCH", "/v2/queues/jq", []opt{patchType()}},
			{"POST", "/v2/queues/jq/messages", nil},
			{"POST", "/v2/queues/jq/claims", nil},
			{"PATCH", "/v2/queues/jq/claims/" + ids.New(), nil},
			{"POST", "/v2/queues/jq/share", nil},
			{"POST", "/v2/queues/jq/purge", nil},
		}
		bodies := []struct{ body, desc string }{
			{`{"a": `, "Request body could not be parsed."},
			{`{"messages": [{"body": "caf` + "\xff" + `"}]}`, "Request body could not be parsed."},
			{`{"ttl": 100, "grace": 100, "x": 9223372036854775808}`, "JSON contains integer that is too large."},
			{`{"messages": [{"ttl": -9223372036854775809, "body": 1}]}`, "JSON contains integer that is too large."},
			{`[{"op": "add", "path": "/metadata/a", "value": 99999999999999999999}]`, "JSON contains integer that is too large."},
		}
		for _, rt := range routes {
			for _, b := range bodies {
				n.next().expect(http.StatusBadRequest, rt.method, rt.path, b.body, rt.opts...).apiError("Invalid request body", b.desc)
			}
		}
		n.f2.expect(http.StatusNotFound, "HEAD", "/v2/queues/jq", nil)
		// The largest int64 is fine.
		n.f1.expect(http.StatusCreated, "PUT", "/v2/queues/jq", `{"big": 9223372036854775807, "small": -9223372036854775808}`)
		if big := string(n.f2.expect(http.StatusOK, "GET", "/v2/queues/jq", nil).raw()["big"]); big != "9223372036854775807" {
			t.Fatalf("big integer came back as %s", big)
		}
	})

	s.run(t, "query parameters follow Zaqar's boolean and integer rules", func(t *testing.T, n nodes) {
		n.next().expect(http.StatusBadRequest, "GET", "/v2/queues?detailed=maybe", nil).
			apiError("Invalid parameter", `The "detailed" parameter is invalid. The value of the parameter must be "true" or "false".`)
		n.next().expect(http.StatusBadRequest, "GET", "/v2/queues/q/messages?echo=2", nil).
			apiError("Invalid parameter", `The "echo" parameter is invalid. The value of the parameter must be "true" or "false".`)
		n.next().expect(http.StatusBadRequest, "GET", "/v2/queues?limit=ten", nil).
			apiError("Invalid parameter", `The "limit" parameter is invalid. The value must be an integer.`)
		n.next().expect(http.StatusBadRequest, "POST", "/v2/queues/q/claims?limit=1.5", nil).
			apiError("Invalid parameter", `The "limit" parameter is invalid. The value must be an integer.`)
		for _, v := range []string{"true", "True", "t", "yes", "y", "1", "on", "false", "False", "f", "no", "n", "0", "off", ""} {
			n.next().expect(http.StatusOK, "GET", "/v2/queues?detailed="+v+"&limit=", nil)
		}
	})

	s.run(t, "invalid queue names are 400 on every queue route", func(t *testing.T, n nodes) {
		for _, name := range []string{"a@b", "bad%20name", strings.Repeat("x", 65), "caf%C3%A9", "a+b", "semi%3Bcolon"} {
			for _, rt := range []struct{ method, suffix string }{
				{"GET", ""}, {"PUT", ""}, {"DELETE", ""}, {"HEAD", ""}, {"GET", "/stats"}, {"POST", "/purge"},
				{"GET", "/messages"}, {"POST", "/messages"}, {"POST", "/claims"}, {"GET", "/messages/" + ids.New()},
			} {
				r := n.next().expect(http.StatusBadRequest, rt.method, "/v2/queues/"+name+rt.suffix, nil)
				if rt.method != "HEAD" {
					r.errorLike("Invalid queue identification", "")
				}
			}
		}
		name := strings.Repeat("A", 30) + "-._" + strings.Repeat("9", 31)
		n.next().expect(http.StatusCreated, "PUT", "/v2/queues/"+name, nil)
		n.next().expect(http.StatusNoContent, "HEAD", "/v2/queues/"+name, nil)
	})

	s.run(t, "ping answers 204 to GET and HEAD on every node", func(t *testing.T, n nodes) {
		for _, c := range n.all {
			c.expect(http.StatusNoContent, "GET", "/v2/ping", nil).empty()
			c.expect(http.StatusNoContent, "HEAD", "/v2/ping", nil).empty()
		}
		n.next().expect(http.StatusBadRequest, "HEAD", "/v2/ping", nil, without("X-Project-ID"))
	})

	s.run(t, "health needs the admin role and reports the storage self-test and every raft node", func(t *testing.T, n nodes) {
		for _, roles := range []string{"", "member", "reader, observer"} {
			opts := []opt{}
			if roles != "" {
				opts = append(opts, hdr("X-Roles", roles))
			}
			n.next().expect(http.StatusForbidden, "GET", "/v2/health", nil, opts...).
				apiError("Not authorized", "You are not authorized to complete this action.")
		}
		for _, c := range []*client{n.f1, n.leader} {
			var rep struct {
				StorageReachable bool `json:"storage_reachable"`
				OperationStatus  map[string]struct {
					Succeeded bool    `json:"succeeded"`
					Seconds   float64 `json:"seconds"`
					Ref       *string `json:"ref"`
				} `json:"operation_status"`
				Raft struct {
					LeaderID string `json:"leader_id"`
					Nodes    []struct {
						ID        string `json:"id"`
						State     string `json:"state"`
						Reachable bool   `json:"reachable"`
					} `json:"nodes"`
				} `json:"raft"`
			}
			c.expect(http.StatusOK, "GET", "/v2/health", nil, hdr("X-Roles", "member,admin")).decode(&rep)
			if !rep.StorageReachable {
				t.Fatalf("health on %s: storage not reachable", c.node)
			}
			wantKeys(t, "operation_status", rep.OperationStatus, "create_queue", "post_messages", "claim_messages",
				"list_messages", "delete_messages", "delete_claim", "bulk_delete_messages", "delete_queue")
			for op, st := range rep.OperationStatus {
				if !st.Succeeded || st.Ref != nil || st.Seconds < 0 {
					t.Fatalf("health on %s: %s %+v", c.node, op, st)
				}
			}
			if len(rep.Raft.Nodes) != 3 {
				t.Fatalf("health on %s: raft nodes %+v", c.node, rep.Raft.Nodes)
			}
			leaders := 0
			for _, nd := range rep.Raft.Nodes {
				if !nd.Reachable || nd.ID == "" {
					t.Fatalf("health on %s: node %+v", c.node, nd)
				}
				if nd.State == "Leader" {
					leaders++
					if nd.ID != rep.Raft.LeaderID {
						t.Fatalf("health on %s: leader %s but leader_id %s", c.node, nd.ID, rep.Raft.LeaderID)
					}
				}
			}
			if leaders != 1 {
				t.Fatalf("health on %s: %d leaders in %+v", c.node, leaders, rep.Raft.Nodes)
			}
		}
	})

	s.run(t, "pools and flavors are registered, read, changed and removed through any node by admins", func(t *testing.T, n nodes) {
		catalogRoundTrip(t, n, s.c)
	})

	s.run(t, "a follower reads what another follower just acknowledged", func(t *testing.T, n nodes) {
		writer, reader := n.f1, n.f2.as(newUUID())
		for i := 0; i < 10; i++ {
			if i%2 == 1 {
				writer, reader = n.f2, n.f1.as(newUUID())
			}
			q := fmt.Sprintf("ryw%d", i)
			writer.expect(http.StatusCreated, "PUT", "/v2/queues/"+q, fmt.Sprintf(`{"i": %d}`, i))
			if got := reader.expect(http.StatusOK, "GET", "/v2/queues/"+q, nil).object()["i"]; got != float64(i) {
				t.Fatalf("round %d: metadata i = %v", i, got)
			}
			id := writer.post(q, fmt.Sprintf(`{"round": %d}`, i))[0]
			reader.expect(http.StatusOK, "GET", "/v2/queues/"+q+"/messages/"+id, nil)
			sameIDs(t, "list", messageIDs(reader.list(q, "").Messages), []string{id})
			writer.expect(http.StatusOK, "PATCH", "/v2/queues/"+q, `[{"op": "add", "path": "/metadata/i", "value": -1}]`, patchType())
			if got := reader.expect(http.StatusOK, "GET", "/v2/queues/"+q, nil).object()["i"]; got != float64(-1) {
				t.Fatalf("round %d: patched metadata i = %v", i, got)
			}
			writer.expect(http.StatusNoContent, "DELETE", "/v2/queues/"+q+"/messages/"+id, nil)
			reader.expect(http.StatusNotFound, "GET", "/v2/queues/"+q+"/messages/"+id, nil)
		}
	})

	s.run(t, "stale reads are served from the local node and catch up", func(t *testing.T, n nodes) {
		stale := hdr("X-Read-Consistency", "stale")
		n.leader.expect(http.StatusCreated, "PUT", "/v2/queues/staleq", `{"v": 1}`)
		for _, c := range []*client{n.f1, n.f2} {
			eventually(t, convergeTimeout, func() bool {
				r := c.expect(http.StatusOK, "GET", "/v2/queues/staleq", nil, stale)
				return r.object()["v"] == float64(1)
			}, "stale read on %s never saw the write", c.node)
			c.expect(http.StatusNoContent, "HEAD", "/v2/queues/staleq", nil, hdr("X-Read-Consistency", "STALE"))
			c.expect(http.StatusOK, "GET", "/v2/queues/staleq/stats", nil, stale)
			c.expect(http.StatusOK, "GET", "/v2/queues?detailed=true", nil, stale)
		}
		// The header does not change how writes are made.
		n.f1.expect(http.StatusCreated, "POST", "/v2/queues/staleq/messages", `{"messages": [{"body": 1}]}`, stale)
	})
}
