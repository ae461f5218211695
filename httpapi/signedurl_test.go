package httpapi_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/zaqar-raft/zaqar/service"
	"github.com/zaqar-raft/zaqar/testkit/testcluster"
)

// TestSign_MatchesContractVectors checks the two signatures of contract §8.2.
func TestSign_MatchesContractVectors(t *testing.T) {
	for _, tc := range []struct {
		paths, methods []string
		want           string
	}{
		{[]string{"/v2/queues/shared/messages"}, []string{"POST"}, "e39eb8932f51af480386dd80c2feb6074d316e90102352cbfb6fa3ff30dc59d8"},
		{[]string{"/v2/queues/shared/subscriptions", "/v2/queues/shared/messages"}, []string{"POST", "GET"}, "ce3d9fcba03330a88090653c93254dad5becf8f03f27c3908b0540e80ccb94e0"},
	} {
		if got := service.Sign([]byte("test"), tc.paths, tc.methods, "my-project", "2030-01-01T00:00:00"); got != tc.want {
			t.Errorf("Sign(%v, %v) = %s, want %s", tc.paths, tc.methods, got, tc.want)
		}
	}
}

// grant is a share response.
type grant struct {
	Project   string   `json:"project"`
	Paths     []string `json:"paths"`
	Methods   []string `json:"methods"`
	Expires   string   `json:"expires"`
	Signature string   `json:"signature"`
}

// signed returns options that present g the way a signed-URL client does.
func signed(g grant) []opt {
	return []opt{
		hdr("URL-Signature", g.Signature), hdr("URL-Expires", g.Expires),
		hdr("URL-Methods", strings.Join(g.Methods, ",")), hdr("URL-Paths", strings.Join(g.Paths, ",")),
		hdr("X-Project-ID", g.Project),
	}
}

// secret returns the cluster's replicated signing secret once every node
// holds it (each node verifies signatures from its own store).
func secret(t *testing.T, c *testcluster.Cluster) []byte {
	t.Helper()
	var key []byte
	eventually(t, convergeTimeout, func() bool {
		key = nil
		for _, node := range c.Nodes {
			if node.Server == nil {
				continue
			}
			v := node.Server.Store().View()
			k, err := v.Secret()
			v.Close()
			if err != nil || k == nil || (key != nil && string(k) != string(key)) {
				return false
			}
			key = k
		}
		return key != nil
	}, "the nodes never held one signing secret")
	return key
}

// TestSignedURLs covers queue sharing and signed requests (contract §8).
func TestSignedURLs(t *testing.T) {
	s := startSuite(t)
	expiresFormat := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$`)

	s.run(t, "share answers sorted paths and methods, a Z-less expiry and the signature over them", func(t *testing.T, n nodes) {
		key := secret(t, s.c)
		// Every node must have the replicated secret before it can sign.
		for _, c := range n.all {
			eventually(t, convergeTimeout, func() bool {
				return c.do("POST", "/v2/queues/shared/share", `{}`).Status == http.StatusOK
			}, "share on %s never succeeded", c.node)
		}
		before := time.Now().UTC()
		r := n.f1.expect(http.StatusOK, "POST", "/v2/queues/shared/share", `{}`)
		wantKeys(t, "share", r.raw(), "project", "paths", "methods", "expires", "signature")
		var g grant
		r.decode(&g)
		exp, err := time.Parse("2006-01-02T15:04:05", g.Expires)
		if err != nil || !expiresFormat.MatchString(g.Expires) || exp.Before(before.Add(24*time.Hour-2*time.Second)) || exp.After(time.Now().UTC().Add(24*time.Hour+time.Second)) {
			t.Fatalf("default expires %q (%v)", g.Expires, err)
		}
		if g.Project != n.f1.project || strings.Join(g.Paths, ",") != "/v2/queues/shared/messages" || strings.Join(g.Methods, ",") != "GET" {
			t.Fatalf("defaults %+v", g)
		}
		if want := service.Sign(key, g.Paths, g.Methods, g.Project, g.Expires); g.Signature != want {
			t.Fatalf("signature %s, want %s", g.Signature, want)
		}
		for _, tc := range []struct{ expires, want string }{
			{"2030-01-01T00:00:00.123456", "2030-01-01T00:00:00"},
			{"2030-01-01T02:00:00+02:00", "2030-01-01T00:00:00"},
			{"2030-01-01T00:00:59.999Z", "2030-01-01T00:00:59"},
			{"2030-01-01T00:00:00", "2030-01-01T00:00:00"},
		} {
			r := n.next().expect(http.StatusOK, "POST", "/v2/queues/shared/share",
				`{"paths": ["subscriptions", "messages", "claims"], "methods": ["POST", "GET", "DELETE"], "expires": "`+tc.expires+`"}`)
			var g grant
			r.decode(&g)
			if g.Expires != tc.want {
				t.Fatalf("expires %q became %q, want %q", tc.expires, g.Expires, tc.want)
			}
			if strings.Join(g.Paths, ",") != "/v2/queues/shared/claims,/v2/queues/shared/messages,/v2/queues/shared/subscriptions" ||
				strings.Join(g.Methods, ",") != "DELETE,GET,POST" {
				t.Fatalf("not sorted: %+v", g)
			}
			if want := service.Sign(key, g.Paths, g.Methods, g.Project, g.Expires); g.Signature != want {
				t.Fatalf("signature %s, want %s", g.Signature, want)
			}
		}
	})

	s.run(t, "share rejects unknown keys, bad paths and methods and bad expiry times", func(t *testing.T, n nodes) {
		secret(t, s.c)
		for _, tc := range []struct {
			body  any
			title string
			desc  string
		}{
			{nil, "Invalid request body", ""},
			{`[]`, "Invalid request body", ""},
			{`{"a": `, "Invalid request body", ""},
			{`{"foo": 1}`, "Invalid API request", "Unknown keys: "},
			{`{"project_id": "p", "paths": ["messages"]}`, "Invalid API request", "Unknown keys: "},
			{`{"paths": ["bogus"]}`, "Invalid API request", "Invalid paths"},
			{`{"paths": ["messages", "stats"]}`, "Invalid API request", "Invalid paths"},
			{`{"paths": "messages"}`, "Invalid API request", ""},
			{`{"methods": "GET"}`, "Invalid API request", ""},
			{`{"methods": [1]}`, "Invalid API request", ""},
			{`{"expires": "1234567890"}`, "Invalid API request", ""},
			{`{"expires": 1234567890}`, "Invalid API request", ""},
			{`{"expires": "2001-01-01T00:00:00"}`, "Invalid API request", ""},
			{`{"expires": "tomorrow"}`, "Invalid API request", ""},
		} {
			n.next().expect(http.StatusBadRequest, "POST", "/v2/queues/shared/share", tc.body).errorLike(tc.title, tc.desc)
		}
		n.f1.expect(http.StatusNotFound, "HEAD", "/v2/queues/shared", nil)
	})

	s.run(t, "a signed request works only for the granted method, path, project and time", func(t *testing.T, n nodes) {
		key := secret(t, s.c)
		posted := n.f1.post("sq", `{"secret": 1}`)
		n.f1.post("other", `1`)
		var g grant
		eventually(t, convergeTimeout, func() bool {
			r := n.f2.do("POST", "/v2/queues/sq/share", `{"paths": ["messages"], "methods": ["GET", "POST"]}`)
			if r.Status != http.StatusOK {
				return false
			}
			r.decode(&g)
			return true
		}, "share never succeeded")
		if g.Project != n.f2.project {
			t.Fatalf("grant project %q", g.Project)
		}
		// The holder knows only the grant; its project comes from there.
		holder := n.leader.inProject("unused").as(newUUID())
		var page messagePage
		holder.expect(http.StatusOK, "GET", "/v2/queues/sq/messages", nil, signed(g)...).decode(&page)
		sameIDs(t, "signed list", messageIDs(page.Messages), posted)
		// Paths are prefixes at a segment boundary; query strings and bodies are free.
		n.f1.as(holder.clientID).expect(http.StatusOK, "GET", "/v2/queues/sq/messages/"+posted[0], nil, signed(g)...)
		n.f2.as(holder.clientID).expect(http.StatusOK, "GET", "/v2/queues/sq/messages?ids="+posted[0], nil, signed(g)...)
		added := resourceIDs(n.f2.as(holder.clientID).expect(http.StatusCreated, "POST", "/v2/queues/sq/messages", `{"messages": [{"body": "signed"}]}`, signed(g)...))
		n.f1.expect(http.StatusOK, "GET", "/v2/queues/sq/messages/"+added[0], nil)

		notFound := func(c *client, method, path string, opts ...opt) {
			t.Helper()
			c.expect(http.StatusNotFound, method, path, nil, opts...).apiError("404 Not Found", "")
		}
		// Methods and paths outside the grant.
		notFound(holder, "DELETE", "/v2/queues/sq/messages/"+posted[0], signed(g)...)
		notFound(holder, "DELETE", "/v2/queues/sq/messages?ids="+posted[0], signed(g)...)
		for _, path := range []string{"/v2/queues/sq/stats", "/v2/queues/sq", "/v2/queues/other/messages", "/v2/queues", "/v2/queues/sq/claims/" + posted[0]} {
			notFound(n.next().as(holder.clientID), "GET", path, signed(g)...)
		}
		// Anything changed in the grant breaks the signature.
		tampered := g
		last := g.Signature[len(g.Signature)-1]
		tampered.Signature = g.Signature[:len(g.Signature)-1] + map[bool]string{true: "0", false: "1"}[last != '0']
		notFound(n.f1, "GET", "/v2/queues/sq/messages", signed(tampered)...)
		wider := g
		wider.Methods = []string{"DELETE", "GET", "POST"}
		notFound(n.f2, "GET", "/v2/queues/sq/messages", signed(wider)...)
		later := g
		later.Expires = "2099-01-01T00:00:00"
		notFound(n.leader, "GET", "/v2/queues/sq/messages", signed(later)...)
		otherProject := g
		otherProject.Project = g.Project + "x"
		notFound(n.f1, "GET", "/v2/queues/sq/messages", signed(otherProject)...)
		noSig := g
		noSig.Signature = ""
		notFound(n.f2, "GET", "/v2/queues/sq/messages", signed(noSig)...)
		notFound(n.f2, "GET", "/v2/queues/sq/messages", hdr("URL-Signature", ""))
		// Verification comes before the Client-ID check.
		notFound(n.leader, "GET", "/v2/queues/sq/messages", append(signed(tampered), without("Client-ID"))...)
		n.leader.expect(http.StatusBadRequest, "GET", "/v2/queues/sq/messages", nil, append(signed(g), without("Client-ID"))...).
			apiError("Missing header value", `The "Client-Id" header is required.`)

		// Methods are matched exactly, as HTTP methods are case-sensitive.
		lower := grant{Project: g.Project, Paths: g.Paths, Methods: []string{"get"}, Expires: "2031-01-01T00:00:00"}
		lower.Signature = service.Sign(key, lower.Paths, lower.Methods, lower.Project, lower.Expires)
		notFound(n.f1, "GET", "/v2/queues/sq/messages", signed(lower)...)

		// A grant made with the replicated key works; an expired one does not.
		own := grant{Project: g.Project, Paths: g.Paths, Methods: []string{"GET"}, Expires: "2031-01-01T00:00:00"}
		own.Signature = service.Sign(key, own.Paths, own.Methods, own.Project, own.Expires)
		n.f1.as(holder.clientID).expect(http.StatusOK, "GET", "/v2/queues/sq/messages", nil, signed(own)...)
		expired := own
		expired.Expires = time.Now().UTC().Add(-time.Minute).Format("2006-01-02T15:04:05")
		expired.Signature = service.Sign(key, expired.Paths, expired.Methods, expired.Project, expired.Expires)
		notFound(n.f2, "GET", "/v2/queues/sq/messages", signed(expired)...)
	})
}
