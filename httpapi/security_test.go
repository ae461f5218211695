package httpapi_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zaqar-raft/zaqar/auth"
	"github.com/zaqar-raft/zaqar/httpapi"
	"github.com/zaqar-raft/zaqar/raftnode"
	"github.com/zaqar-raft/zaqar/server"
	"github.com/zaqar-raft/zaqar/service"
	"github.com/zaqar-raft/zaqar/testkit/testcluster"
)

// keystoneStub stands in for the Keystone validator: it knows a fixed set
// of tokens and can be switched off (Keystone unreachable). The validator
// itself (caching, talking to Keystone) is tested in package auth and
// against a real Keystone in cluster-test; here the subject is what the
// REST layer does with its answers.
type keystoneStub struct {
	mu     sync.Mutex
	tokens map[string]*auth.Identity
	down   bool
	calls  int
}

func newKeystoneStub() *keystoneStub { return &keystoneStub{tokens: map[string]*auth.Identity{}} }

// issue makes token valid for project with roles for an hour.
func (k *keystoneStub) issue(token, project string, roles ...string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.tokens[token] = &auth.Identity{Token: token, ProjectID: project, ProjectName: project + "-name", UserID: "u-" + token,
		Roles: roles, ExpiresAt: time.Now().Add(time.Hour)}
}

func (k *keystoneStub) setDown(down bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.down = down
}

func (k *keystoneStub) callCount() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.calls
}

// Validate implements auth.Validator.
func (k *keystoneStub) Validate(_ context.Context, token string) (*auth.Identity, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.calls++
	if k.down {
		return nil, fmt.Errorf("%w: stub is down", auth.ErrUnavailable)
	}
	if id, ok := k.tokens[token]; ok && token != "" {
		return id, nil
	}
	return nil, auth.ErrInvalidToken
}

const stubAuthURI = "http://keystone.test:5000/v3"

// WWWAuthenticate implements httpapi.KeystoneAuth.
func (k *keystoneStub) WWWAuthenticate() string { return `Keystone uri="` + stubAuthURI + `"` }

// frontSecret signs pre-signed URLs on the Keystone-mode test clusters.
const frontSecret = "front-secret"

// keystoneFront serves the REST API of node in Keystone mode (validated by
// ks) on a test server and returns its base URL. mod may change the
// configuration.
func keystoneFront(t *testing.T, node *testcluster.Node, ks httpapi.KeystoneAuth, mod func(*httpapi.Config)) string {
	t.Helper()
	svc := node.Server.Service()
	if ks != nil {
		// The node's own service runs without authentication; the front
		// gets one over the same node and store that requires it.
		svc = service.New(node.Server.Node(), node.Server.Store(), service.Config{Limits: svc.Limits(), SignedURLSecret: frontSecret, AuthRequired: true})
	}
	cfg := httpapi.Config{
		Service: svc, Cluster: node.Server.Node(), Auth: ks,
		Registry: prometheus.NewRegistry(), RequestTimeout: 10 * time.Second,
	}
	if mod != nil {
		mod(&cfg)
	}
	srv := httptest.NewServer(httpapi.New(cfg))
	t.Cleanup(srv.Close)
	return srv.URL
}

// tokenClient returns a client of base that claims project in
// X-Project-ID (ignored under Keystone); tokens are added per request.
func tokenClient(t *testing.T, base, project string) *client {
	return &client{t: t, http: &http.Client{Timeout: 30 * time.Second}, base: base, node: "keystone-front", project: project, clientID: newUUID()}
}

// authed adds the X-Auth-Token header.
func authed(token string) opt { return hdr("X-Auth-Token", token) }

const unauthorizedBody = `{"error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}}`

// is401 checks the Keystone 401 answer (contract §14.2).
func (r *reply) is401() *reply {
	r.t.Helper()
	r.status(http.StatusUnauthorized)
	jsonEqual(r.t, r.what+": 401 body", r.Body, unauthorizedBody)
	if got, want := r.Header.Get("WWW-Authenticate"), `Keystone uri="`+stubAuthURI+`"`; got != want {
		r.t.Fatalf("%s: WWW-Authenticate %q, want %q", r.what, got, want)
	}
	if !strings.HasPrefix(r.Header.Get("X-Openstack-Request-Id"), "req-") {
		r.t.Fatalf("%s: no request id on a 401", r.what)
	}
	return r
}

// TestSecurity_KeystoneMode covers the Keystone gate, identity and policy
// of the REST API in Keystone mode (contract §2.1, §14, §17.1-2).
func TestSecurity_KeystoneMode(t *testing.T) {
	c := testcluster.Start(t, 1, testcluster.WithConfig(func(cfg *server.Config) { cfg.SignedURLSecret = frontSecret }))
	ks := newKeystoneStub()
	ks.issue("tok-alice", "alpha", "member")
	ks.issue("tok-admin", "alpha", "admin", "member")
	ks.issue("tok-bob", "beta", "member", "reader")
	base := keystoneFront(t, c.Leader(), ks, nil)
	aliceOf := tokenClient(t, base, "alpha")
	run := func(name string, fn func(t *testing.T, alice *client)) {
		t.Run(name, func(t *testing.T) { fn(t, aliceOf.on(t)) })
	}

	run("requests without a valid token are 401 before routing", func(t *testing.T, alice *client) {
		for _, route := range []struct{ method, path string }{
			{"GET", "/v2/queues"}, {"PUT", "/v2/queues/q"}, {"GET", "/v2/queues/q/messages"},
			{"POST", "/v2/queues/q/claims"}, {"GET", "/v2/health"}, {"GET", "/v2/ping"}, {"GET", "/v2/"},
			{"GET", "/admin/cluster"}, {"POST", "/admin/cluster/remove"}, {"GET", "/v2/no-such-route"},
			{"PATCH", "/v2/pools/p"}, {"DELETE", "/v2/queues/q"},
		} {
			for name, o := range map[string]opt{
				"no token":            without("X-Auth-Token"),
				"empty token":         authed(""),
				"unknown token":       authed("tok-nobody"),
				"token of whitespace": authed("   "),
			} {
				r := alice.do(route.method, route.path, `{}`, o)
				r.what = fmt.Sprintf("%s %s with %s", route.method, route.path, name)
				r.is401()
			}
		}
		if ks.callCount() == 0 {
			t.Fatal("the validator was never asked")
		}
	})

	run("the version document and metrics need no token", func(t *testing.T, alice *client) {
		alice.expect(http.StatusMultipleChoices, "GET", "/", nil, bare())
		alice.expect(http.StatusOK, "GET", "/metrics", nil, bare())
	})

	run("an EXTRA-SPEC header does not skip authentication (contract 17.1)", func(t *testing.T, alice *client) {
		alice.do("GET", "/v2/queues", nil, hdr("EXTRA-SPEC", "messagecode:1")).is401()
		alice.do("POST", "/v2/queues/q/messages", `{"messages": [{"body": 1}]}`, hdr("EXTRA-SPEC", "")).is401()
	})

	run("an empty or blank URL-Signature does not skip authentication (contract 17.2)", func(t *testing.T, alice *client) {
		for _, sig := range []string{"", " ", "\t"} {
			alice.do("GET", "/v2/queues/q/messages", nil, hdr("URL-Signature", sig), hdr("URL-Paths", "/v2/queues/q/messages"),
				hdr("URL-Methods", "GET"), hdr("URL-Expires", "2099-01-01T00:00:00")).is401()
		}
	})

	run("a valid token works; its project is the caller's, and a header naming another is refused", func(t *testing.T, alice *client) {
		// The token's project; X-Roles is not believed (alice is a member).
		alice.expect(http.StatusCreated, "PUT", "/v2/queues/mine", `{"owner": "alice"}`, authed("tok-alice"), hdr("X-Roles", "admin"))
		alice.expect(http.StatusForbidden, "GET", "/v2/health", nil, authed("tok-alice"), hdr("X-Roles", "admin"))
		// A project header naming another project is refused (one rule
		// for REST and websocket), on every header Zaqar reads it from.
		for _, h := range []string{"X-Project-ID", "X-Tenant-Id", "X-Tenant"} {
			alice.expect(http.StatusForbidden, "PUT", "/v2/queues/elsewhere", nil, authed("tok-alice"), without("X-Project-ID"), hdr(h, "beta")).
				errorLike("Not authorized", "The X-Project-ID header does not match the authenticated project.")
		}
		bob := tokenClient(t, base, "beta")
		bob.expect(http.StatusForbidden, "GET", "/v2/queues", nil, authed("tok-bob"), hdr("X-Project-ID", "alpha"))
		// Bob's project is beta (his token): he sees no queue "mine".
		var page struct {
			Queues []struct{ Name string } `json:"queues"`
		}
		bob.expect(http.StatusOK, "GET", "/v2/queues", nil, authed("tok-bob")).decode(&page)
		if len(page.Queues) != 0 {
			t.Fatalf("bob (beta) lists %v", page.Queues)
		}
		bob.expect(http.StatusNotFound, "HEAD", "/v2/queues/mine", nil, authed("tok-bob"), hdr("X-Project-ID", "beta"))
		alice.expect(http.StatusNoContent, "HEAD", "/v2/queues/mine", nil, authed("tok-alice"), hdr("X-Project-ID", "alpha"))
		// Without any project header the token's project is used.
		alice.expect(http.StatusNoContent, "HEAD", "/v2/queues/mine", nil, authed("tok-alice"), without("X-Project-ID"))
		// The queue lives in the store under the token's project id.
		v := c.Leader().Server.Store().View()
		defer v.Close()
		if q, err := v.Queue("alpha", "mine"); err != nil || q == nil {
			t.Fatalf("queue not stored under the token's project alpha: %v %v", q, err)
		}
		if q, err := v.Queue("beta", "mine"); err != nil || q != nil {
			t.Fatalf("queue stored under the header's project beta: %v %v", q, err)
		}
	})

	run("a request without any project header is accepted: the token names the project", func(t *testing.T, alice *client) {
		alice.expect(http.StatusOK, "GET", "/v2/queues", nil, authed("tok-alice"), without("X-Project-ID"))
	})

	run("X-Roles cannot grant admin; the token's roles decide", func(t *testing.T, alice *client) {
		for _, path := range []string{"/v2/health", "/admin/cluster", "/v2/pools", "/admin/cluster/digest"} {
			alice.do("GET", path, nil, authed("tok-alice"), hdr("X-Roles", "admin")).status(http.StatusForbidden)
		}
		alice.expect(http.StatusOK, "GET", "/admin/cluster", nil, authed("tok-admin"))
		alice.expect(http.StatusOK, "GET", "/v2/health", nil, authed("tok-admin"))
	})

	run("default policy: admin-only rules need the admin role, the rest is open", func(t *testing.T, alice *client) {
		for _, tc := range []struct {
			method, path  string
			member, admin int
		}{
			{"GET", "/v2/health", 403, 200},
			// The body is {}: past the policy, an admin's pool and flavor
			// changes fail validation.
			{"GET", "/v2/pools", 403, 200},
			{"GET", "/v2/pools/p1", 403, 404},
			{"PUT", "/v2/pools/p1", 403, 400},
			{"PATCH", "/v2/pools/p1", 403, 400},
			{"DELETE", "/v2/pools/p1", 403, 204},
			{"GET", "/v2/flavors", 200, 200},
			{"GET", "/v2/flavors/f1", 404, 404},
			{"PUT", "/v2/flavors/f1", 403, 400},
			{"PATCH", "/v2/flavors/f1", 403, 400},
			{"DELETE", "/v2/flavors/f1", 403, 204},
			{"GET", "/admin/cluster", 403, 200},
			{"GET", "/v2/queues", 200, 200},
			{"GET", "/v2/ping", 204, 204},
		} {
			r := alice.do(tc.method, tc.path, `{}`, authed("tok-alice"))
			r.status(tc.member)
			if tc.member == 403 {
				r.apiError(service.TitleNotAuthorized, "You are not authorized to complete this action.")
			}
			alice.do(tc.method, tc.path, `{}`, authed("tok-admin")).status(tc.admin)
		}
	})

	run("signed requests bypass Keystone but only with a valid signature", func(t *testing.T, alice *client) {
		var g grant
		alice.expect(http.StatusOK, "POST", "/v2/queues/shared/share", `{"paths": ["messages"], "methods": ["GET", "POST"]}`,
			authed("tok-alice")).decode(&g)
		if g.Project != "alpha" {
			t.Fatalf("share signed for project %q, want the token's alpha", g.Project)
		}
		anon := tokenClient(t, base, "alpha")
		anon.expect(http.StatusCreated, "POST", "/v2/queues/shared/messages", `{"messages": [{"body": "via signature"}]}`, signed(g)...)
		var page messagePage
		anon.expect(http.StatusOK, "GET", "/v2/queues/shared/messages?echo=true", nil, signed(g)...).decode(&page)
		if len(page.Messages) != 1 {
			t.Fatalf("signed listing: %+v", page)
		}
		// The message landed in alpha, the grant's project.
		var own messagePage
		alice.expect(http.StatusOK, "GET", "/v2/queues/shared/messages?echo=true", nil, authed("tok-alice")).decode(&own)
		if len(own.Messages) != 1 {
			t.Fatalf("alice does not see the signed post: %+v", own)
		}
		key := []byte("front-secret")
		past := time.Now().UTC().Add(-time.Minute).Format("2006-01-02T15:04:05")
		expired := grant{Project: "alpha", Paths: g.Paths, Methods: g.Methods, Expires: past,
			Signature: service.Sign(key, g.Paths, g.Methods, "alpha", past)}
		for _, tc := range []struct {
			name, method, path string
			opts               []opt
		}{
			{"a wrong signature", "GET", "/v2/queues/shared/messages", signedWith(g, func(h *grant) { h.Signature = strings.Repeat("0", 64) })},
			{"another project's header", "GET", "/v2/queues/shared/messages", signedWith(g, func(h *grant) { h.Project = "beta" })},
			{"a method not granted", "DELETE", "/v2/queues/shared/messages?pop=1", signed(g)},
			{"an expired grant", "GET", "/v2/queues/shared/messages", signed(expired)},
			{"paths widened after signing", "GET", "/v2/queues/shared/messages", signedWith(g, func(h *grant) { h.Paths = []string{"/v2/queues"} })},
			{"methods widened after signing", "DELETE", "/v2/queues/shared/messages?pop=1", signedWith(g, func(h *grant) { h.Methods = []string{"DELETE", "GET", "POST"} })},
		} {
			r := anon.do(tc.method, tc.path, nil, tc.opts...)
			r.what = "signed " + tc.method + " with " + tc.name
			r.status(http.StatusNotFound)
		}
		alice.expect(http.StatusOK, "GET", "/v2/queues/shared/messages?echo=true", nil, authed("tok-alice")).decode(&own)
		if len(own.Messages) != 1 {
			t.Fatalf("a refused signed request changed the queue: %+v", own)
		}
		// A grant for messages does not open other resources of the queue,
		// other queues, or admin routes.
		for _, path := range []string{"/v2/queues/shared", "/v2/queues/shared/stats", "/v2/queues/other/messages", "/v2/health", "/v2/queues"} {
			anon.do("GET", path, nil, signed(g)...).status(http.StatusNotFound)
		}
		anon.do("GET", "/admin/cluster", nil, append(signed(g), hdr("X-Roles", "admin"))...).status(http.StatusForbidden)
	})

	run("Keystone being unreachable is 503, never a pass", func(t *testing.T, alice *client) {
		ks.setDown(true)
		defer ks.setDown(false)
		r := alice.do("GET", "/v2/queues", nil, authed("tok-alice"))
		r.status(http.StatusServiceUnavailable).errorLike(service.TitleServiceUnavailable, "Please try again")
	})
}

// signedWith presents a modified copy of g.
func signedWith(g grant, change func(*grant)) []opt {
	cp := g
	cp.Paths = append([]string(nil), g.Paths...)
	cp.Methods = append([]string(nil), g.Methods...)
	change(&cp)
	return signed(cp)
}

// TestSecurity_PolicyFile checks that a policy file (oslo's policy.yaml)
// replaces the default rules it names and keeps the others (noauth mode:
// X-Roles is trusted), and that rules nothing asks for are logged.
func TestSecurity_PolicyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	policy := `# operators' policy
"queues:delete": "role:admin and project_id:%(project_id)s"
"messages:create": "!"
"health:get": "role:ops or rule:context_is_admin"
"pools:get_all": "@"
"queues:purge": "not role:reader"
"queues:delet": "role:admin"
`
	if err := os.WriteFile(path, []byte(policy), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	s := startSuite(t, testcluster.WithConfig(func(cfg *server.Config) {
		cfg.PolicyFile = path
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}))
	if got := logs.String(); !strings.Contains(got, "policy file defines rules nothing uses") || !strings.Contains(got, "queues:delet]") {
		t.Errorf("no warning names the unused rule queues:delet; logs:\n%s", got)
	}
	s.run(t, "rules from the file apply on every node, untouched rules keep their defaults", func(t *testing.T, n nodes) {
		for _, c := range n.all {
			c.expect(http.StatusCreated, "PUT", "/v2/queues/q-"+strings.ToLower(strings.Split(c.node, "(")[0]), nil)
		}
		for _, c := range n.all {
			q := "/v2/queues/q-" + strings.ToLower(strings.Split(c.node, "(")[0])
			c.do("DELETE", q, nil, hdr("X-Roles", "member")).apiError(service.TitleNotAuthorized, "You are not authorized to complete this action.")
			c.do("POST", q+"/messages", `{"messages": [{"body": 1}]}`, hdr("X-Roles", "admin")).status(http.StatusForbidden)
			c.expect(http.StatusOK, "GET", "/v2/health", nil, hdr("X-Roles", "ops"))
			c.expect(http.StatusOK, "GET", "/v2/health", nil, hdr("X-Roles", "Admin"))
			c.expect(http.StatusForbidden, "GET", "/v2/health", nil, hdr("X-Roles", "member"))
			c.expect(http.StatusOK, "GET", "/v2/pools", nil)
			c.expect(http.StatusForbidden, "PUT", "/v2/pools/p", `{}`, hdr("X-Roles", "ops"))
			c.expect(http.StatusForbidden, "POST", q+"/purge", `{"resource_types": ["messages"]}`, hdr("X-Roles", "member, reader"))
			c.expect(http.StatusNoContent, "POST", q+"/purge", `{"resource_types": ["messages"]}`, hdr("X-Roles", "member"))
			// The target is the caller's own project, so the owner check holds.
			c.expect(http.StatusNoContent, "DELETE", q, nil, hdr("X-Roles", "admin"))
		}
	})
}

func TestSecurity_PolicyFileThatCannotBeEnforcedStopsTheNode(t *testing.T) {
	for name, content := range map[string]string{
		"policy.json": `{"queues:delete": "role:admin or "}`,
		"policy.yaml": "queues:delete: role:admin and (role:member\n",
		"cycle.yaml":  "queues:delete: rule:a\na: not rule:queues:delete\n",
	} {
		path := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := server.Start(server.Config{NodeID: "n1", DataDir: t.TempDir(), APIAddr: "127.0.0.1:0", Raft: raftnode.Config{RaftAddr: "127.0.0.1:0"}, PolicyFile: path})
		if err == nil || !strings.Contains(err.Error(), "policy") {
			t.Fatalf("server.Start with %s: %v, want a policy error", content, err)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestSecurity_CORS covers the CORS layer (contract §15).
func TestSecurity_CORS(t *testing.T) {
	c := testcluster.Start(t, 1)
	ks := newKeystoneStub()
	ks.issue("tok", "alpha", "member")
	cors := httpapi.DefaultCORS()
	cors.AllowedOrigins = []string{"https://console.example"}
	withCORS := keystoneFront(t, c.Leader(), ks, func(cfg *httpapi.Config) { cfg.CORS = cors })
	withoutCORS := keystoneFront(t, c.Leader(), ks, nil)
	clOf := tokenClient(t, withCORS, "alpha")
	run := func(name string, fn func(t *testing.T, cl *client)) {
		t.Run(name, func(t *testing.T) { fn(t, clOf.on(t)) })
	}

	preflight := func(t *testing.T, base, origin, method string) *reply {
		r := (&client{t: t, http: clOf.http, base: base, node: "front"}).do("OPTIONS", "/v2/queues/q/messages", nil, bare(),
			hdr("Origin", origin), hdr("Access-Control-Request-Method", method),
			hdr("Access-Control-Request-Headers", "X-Auth-Token, Client-ID"))
		return r
	}
	run("a preflight from an allowed origin is answered without a token", func(t *testing.T, cl *client) {
		r := preflight(t, withCORS, "https://console.example", "POST")
		if r.Status >= 300 {
			t.Fatalf("preflight: %d %s", r.Status, r.Body)
		}
		if got := r.Header.Get("Access-Control-Allow-Origin"); got != "https://console.example" {
			t.Fatalf("Access-Control-Allow-Origin %q", got)
		}
		if got := r.Header.Get("Access-Control-Allow-Credentials"); got != "true" {
			t.Fatalf("Access-Control-Allow-Credentials %q", got)
		}
		if got := r.Header.Get("Access-Control-Max-Age"); got != "3600" {
			t.Fatalf("Access-Control-Max-Age %q", got)
		}
		if got := r.Header.Get("Access-Control-Allow-Methods"); !strings.Contains(got, "POST") {
			t.Fatalf("Access-Control-Allow-Methods %q", got)
		}
		// The CORS layer is outside the request-id layer (contract §2.1).
		if got := r.Header.Get("X-Openstack-Request-Id"); got != "" {
			t.Fatalf("a preflight answered by the CORS layer has request id %q", got)
		}
	})
	run("a preflight from another origin gets no CORS headers", func(t *testing.T, cl *client) {
		r := preflight(t, withCORS, "https://evil.example", "POST")
		for _, h := range []string{"Access-Control-Allow-Origin", "Access-Control-Allow-Credentials", "Access-Control-Allow-Methods"} {
			if v := r.Header.Get(h); v != "" {
				t.Fatalf("%s: %q for a foreign origin", h, v)
			}
		}
	})
	run("an allowed origin's request still needs a token and gets the CORS headers", func(t *testing.T, cl *client) {
		r := cl.do("GET", "/v2/queues", nil, hdr("Origin", "https://console.example"))
		r.is401()
		r = cl.expect(http.StatusOK, "GET", "/v2/queues", nil, hdr("Origin", "https://console.example"), authed("tok"))
		if r.Header.Get("Access-Control-Allow-Origin") != "https://console.example" || !strings.Contains(r.Header.Get("Vary"), "Origin") {
			t.Fatalf("CORS headers: %v", r.Header)
		}
		if exp := r.Header.Get("Access-Control-Expose-Headers"); !strings.Contains(strings.ToLower(exp), "x-openstack-request-id") {
			t.Fatalf("Access-Control-Expose-Headers %q", exp)
		}
	})
	run("a request without Origin gets no CORS headers", func(t *testing.T, cl *client) {
		r := cl.expect(http.StatusOK, "GET", "/v2/queues", nil, authed("tok"))
		if v := r.Header.Get("Access-Control-Allow-Origin"); v != "" {
			t.Fatalf("Access-Control-Allow-Origin %q without Origin", v)
		}
	})
	run("with CORS off a preflight is an ordinary OPTIONS request: 405 with Allow, no token needed", func(t *testing.T, cl *client) {
		r := preflight(t, withoutCORS, "https://console.example", "POST")
		r.status(http.StatusMethodNotAllowed).apiError("405 Method Not Allowed", "")
		if r.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("preflight with CORS off has CORS headers: %v", r.Header)
		}
		if got := strings.Join(r.Header.Values("Allow"), ","); got != "GET,POST,DELETE" {
			t.Fatalf("Allow %q", got)
		}
	})
}

// TestSecurity_Limits covers the header size cap, the concurrency cap and
// the per-project rate limit.
func TestSecurity_Limits(t *testing.T) {
	s := startSuite(t, testcluster.WithConfig(func(cfg *server.Config) {
		cfg.MaxHeaderBytes = 8 << 10
		cfg.RateLimit = service.RateLimit{PerSecond: 0.001, Burst: 5}
	}))
	s.run(t, "headers past -max-header-bytes are 431 with a Zaqar body, far past it 431 from the HTTP server", func(t *testing.T, n nodes) {
		c := n.next()
		c.do("GET", "/v2/queues", nil, hdr("X-Padding", strings.Repeat("a", 9<<10))).
			apiError("Request headers too large", "The request line and headers exceed the limit of this service.")
		// Spread over many headers, and in the request line.
		c.do("GET", "/v2/queues?marker="+strings.Repeat("m", 9<<10), nil).status(http.StatusRequestHeaderFieldsTooLarge)
		many := []opt{}
		for i := 0; i < 100; i++ {
			many = append(many, hdr(fmt.Sprintf("X-H%d", i), strings.Repeat("b", 100)))
		}
		c.do("GET", "/v2/queues", nil, many...).status(http.StatusRequestHeaderFieldsTooLarge)
		r := c.do("GET", "/v2/queues", nil, hdr("X-Padding", strings.Repeat("a", 200<<10)))
		r.status(http.StatusRequestHeaderFieldsTooLarge)
		c.expect(http.StatusOK, "GET", "/v2/queues", nil, hdr("X-Padding", strings.Repeat("a", 4<<10)))
	})
	s.run(t, "the rate limit is per project and answers 429 with Retry-After", func(t *testing.T, n nodes) {
		// Each node limits on its own: this checks one node.
		a := n.leader
		b := n.leader.inProject(a.project + "-other")
		var limited *reply
		for i := 0; i < 20 && limited == nil; i++ {
			if r := a.do("GET", "/v2/queues", nil); r.Status == http.StatusTooManyRequests {
				limited = r
			} else {
				r.status(http.StatusOK)
			}
		}
		if limited == nil {
			t.Fatal("20 requests of one project were never limited at 0.001/s with burst 5")
		}
		limited.errorLike("Too many requests", "rate limit")
		if limited.Header.Get("Retry-After") == "" {
			t.Fatal("429 without Retry-After")
		}
		b.expect(http.StatusOK, "GET", "/v2/queues", nil)
	})
}

// TestSecurity_ConcurrencyCapSheds503WithRetryAfter holds the only request
// slot with a request whose body arrives slowly, and checks that other
// requests are refused at once with 503 and Retry-After, and served again
// once the slot is free.
func TestSecurity_ConcurrencyCapSheds503WithRetryAfter(t *testing.T) {
	c := testcluster.Start(t, 1)
	base := keystoneFront(t, c.Leader(), nil, func(cfg *httpapi.Config) { cfg.Auth = nil; cfg.MaxConcurrent = 1 })
	addr := strings.TrimPrefix(base, "http://")
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"messages": [{"body": "slow"}]}`
	head := "POST /v2/queues/slow/messages HTTP/1.1\r\nHost: x\r\nClient-ID: " + newUUID() +
		"\r\nX-Project-ID: cap\r\nContent-Type: application/json\r\nContent-Length: " + fmt.Sprint(len(body)) + "\r\n\r\n"
	if _, err := io.WriteString(conn, head+body[:5]); err != nil {
		t.Fatal(err)
	}
	other := &client{t: t, http: &http.Client{Timeout: 30 * time.Second}, base: base, node: "front", project: "cap", clientID: newUUID()}
	var shed *reply
	eventually(t, 20*time.Second, func() bool {
		r := other.do("GET", "/v2/queues", nil)
		if r.Status == http.StatusServiceUnavailable {
			shed = r
			return true
		}
		return false
	}, "no request was refused while the only slot was held")
	shed.errorLike(service.TitleServiceUnavailable, "Please try again")
	if shed.Header.Get("Retry-After") != "1" {
		t.Fatalf("503 Retry-After %q", shed.Header.Get("Retry-After"))
	}
	if _, err := io.WriteString(conn, body[5:]); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 64)
	n, _ := io.ReadAtLeast(conn, buf, 12)
	if !strings.HasPrefix(string(buf[:n]), "HTTP/1.1 201") {
		t.Fatalf("the slow request, once complete: %q", buf[:n])
	}
	eventually(t, 20*time.Second, func() bool { return other.do("GET", "/v2/queues", nil).Status == http.StatusOK },
		"requests were not served again after the slot was released")
	var page messagePage
	other.expect(http.StatusOK, "GET", "/v2/queues/slow/messages?echo=true", nil).decode(&page)
	if len(page.Messages) != 1 || string(page.Messages[0].Body) != `"slow"` {
		t.Fatalf("the slow post: %+v", page)
	}
}
