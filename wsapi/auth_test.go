package wsapi_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/zaqar-raft/zaqar/auth"
	"github.com/zaqar-raft/zaqar/server"
	"github.com/zaqar-raft/zaqar/service"
	"github.com/zaqar-raft/zaqar/testkit/testcluster"
	"github.com/zaqar-raft/zaqar/wsapi"
)

// tokenStub stands in for the Keystone validator (which package auth and
// cluster-test exercise against Keystone): it knows a set of tokens and
// their identities, and can be switched off.
type tokenStub struct {
	mu     sync.Mutex
	tokens map[string]*auth.Identity
	down   bool
}

func newTokenStub() *tokenStub { return &tokenStub{tokens: map[string]*auth.Identity{}} }

// issue makes token valid for project with roles until expires.
func (k *tokenStub) issue(token, project string, expires time.Time, roles ...string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.tokens[token] = &auth.Identity{Token: token, ProjectID: project, UserID: "u-" + token, Roles: roles, ExpiresAt: expires}
}

func (k *tokenStub) setDown(down bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.down = down
}

// Validate implements auth.Validator.
func (k *tokenStub) Validate(_ context.Context, token string) (*auth.Identity, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.down {
		return nil, fmt.Errorf("%w: stub is down", auth.ErrUnavailable)
	}
	if id, ok := k.tokens[token]; ok && time.Now().Before(id.ExpiresAt) {
		return id, nil
	}
	return nil, auth.ErrInvalidToken
}

// keystoneWS serves the websocket API of node's service in Keystone mode
// and returns its ws:// URL.
func keystoneWS(t *testing.T, node *testcluster.Node, v auth.Validator) string {
	t.Helper()
	// The node's own service runs without authentication; the front gets
	// one over the same node and store that requires it.
	svc := service.New(node.Server.Node(), node.Server.Store(), service.Config{
		Limits: node.Server.Service().Limits(), SignedURLSecret: signingKey, AuthRequired: true,
	})
	srv := wsapi.New(wsapi.Config{Service: svc, Auth: v, NodeID: node.ID + "-front"})
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		srv.Close()
		hs.Close()
	})
	return "ws" + strings.TrimPrefix(hs.URL, "http") + "/"
}

// authHeaders are the headers of an authenticate request.
func authHeaders(token string) map[string]any { return map[string]any{"X-Auth-Token": token} }

const signingKey = "ws-front-secret"

// TestAuth_KeystoneMode covers the websocket API with Keystone on
// (contract §13.5, §13.6, §17.3-4, §19).
func TestAuth_KeystoneMode(t *testing.T) {
	c := testcluster.Start(t, 1, testcluster.WithConfig(func(cfg *server.Config) { cfg.SignedURLSecret = signingKey }))
	ks := newTokenStub()
	hour := time.Now().Add(time.Hour)
	ks.issue("tok-alice", "alpha", hour, "member")
	ks.issue("tok-admin", "alpha", hour, "admin")
	ks.issue("tok-bob", "beta", hour, "member")
	url := keystoneWS(t, c.Leader(), ks)
	connect := func(t *testing.T, project string) *wsClient {
		cl := dialURL(t, url, "keystone-front", wsapi.JSON)
		cl.project = project
		return cl
	}

	t.Run("until authenticated every action but signed message actions is refused", func(t *testing.T) {
		ws := connect(t, "alpha")
		for _, name := range []string{"queue_list", "queue_create", "queue_delete", "queue_get", "queue_get_stats", "queue_purge",
			"message_list", "message_get", "message_get_many", "message_post", "message_delete", "message_delete_many",
			"claim_create", "claim_get", "claim_update", "claim_delete", "subscription_create", "subscription_get",
			"subscription_list", "subscription_delete", "get_home_doc", "check_node_health", "ping_node"} {
			body := `{"queue_name": "q", "message_id": "m", "message_ids": ["m"], "claim_id": "c", "subscription_id": "s", "messages": [{"body": 1}]}`
			if name == "get_home_doc" || name == "check_node_health" || name == "ping_node" || name == "queue_list" {
				body = ""
			}
			ws.call(name, body, map[string]any{"X-Roles": "admin"}).status(http.StatusForbidden).errorIs("Not authentified.")
		}
		// A refused authentication changes nothing.
		ws.expect(http.StatusUnauthorized, "authenticate", "", authHeaders("tok-nobody")).errorIs("Authentication failed.")
		ws.expect(http.StatusUnauthorized, "authenticate", "", authHeaders("")).errorIs("Authentication failed.")
		ws.expect(http.StatusBadRequest, "authenticate", "", map[string]any{"X-Auth-Token": 5}).errorIs("Schema validation failed.")
		ws.expect(http.StatusBadRequest, "authenticate", "", map[string]any{"X-Auth-Token": nil}).errorIs("Schema validation failed.")
		ws.expect(http.StatusForbidden, "queue_list", "").errorIs("Not authentified.")
	})

	t.Run("an authenticated connection is bound to its token's project and roles", func(t *testing.T) {
		ws := connect(t, "alpha")
		ws.expect(http.StatusOK, "authenticate", "", authHeaders("tok-alice")).bodyIs(`{"message": "Authentified."}`)
		ws.expect(http.StatusCreated, "queue_create", `{"queue_name": "bound", "metadata": {"by": "alice"}}`)
		ws.post("bound", `"hello"`)
		// The header naming another project is refused, not obeyed.
		for _, action := range []string{"queue_list", "queue_get", "message_list", "message_post", "queue_delete"} {
			ws.inProject("beta").call(action, `{"queue_name": "bound", "messages": [{"body": 1}]}`).
				status(http.StatusForbidden).apiError("Not authorized", "The X-Project-ID header does not match the authenticated project.")
		}
		// X-Roles is ignored: alice is a member.
		ws.expect(http.StatusForbidden, "check_node_health", "", map[string]any{"X-Roles": "admin"})
		// The queue lives under the token's project.
		v := c.Leader().Server.Store().View()
		q, err := v.Queue("alpha", "bound")
		v.Close()
		if err != nil || q == nil {
			t.Fatalf("queue not under project alpha: %v %v", q, err)
		}
		// Bob's connection does not see it.
		bob := connect(t, "beta")
		bob.expect(http.StatusOK, "authenticate", "", authHeaders("tok-bob"))
		if got := bob.expect(http.StatusOK, "message_list", `{"queue_name": "bound", "echo": true}`).messages(); len(got) != 0 {
			t.Fatalf("bob lists alice's messages: %+v", got)
		}
		admin := connect(t, "alpha")
		admin.expect(http.StatusOK, "authenticate", "", authHeaders("tok-admin"))
		admin.expect(http.StatusOK, "check_node_health", "")
	})

	t.Run("authenticating again rebinds the connection", func(t *testing.T) {
		ws := connect(t, "alpha")
		ws.expect(http.StatusOK, "authenticate", "", authHeaders("tok-alice"))
		ws.expect(http.StatusOK, "queue_list", "")
		ws.inProject("beta").expect(http.StatusOK, "authenticate", "", authHeaders("tok-bob"))
		ws.inProject("beta").expect(http.StatusOK, "queue_list", "")
		ws.expect(http.StatusForbidden, "queue_list", "") // alpha is no longer the connection's project
	})

	t.Run("the connection closes with 4003 when its token expires", func(t *testing.T) {
		ks.issue("tok-short", "alpha", time.Now().Add(1500*time.Millisecond), "member")
		ws := connect(t, "alpha")
		ws.expect(http.StatusOK, "authenticate", "", authHeaders("tok-short"))
		ws.expect(http.StatusOK, "queue_list", "")
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, _, err := ws.conn.Read(ctx)
		var ce websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != 4003 || ce.Reason != "Authentication expired." {
			t.Fatalf("after the token expired: %v, want close 4003 \"Authentication expired.\"", err)
		}
	})

	t.Run("authenticating again with a fresh token replaces the expiry timer", func(t *testing.T) {
		short := time.Now().Add(1500 * time.Millisecond)
		ks.issue("tok-short2", "alpha", short, "member")
		ws := connect(t, "alpha")
		ws.expect(http.StatusOK, "authenticate", "", authHeaders("tok-short2"))
		ws.expect(http.StatusOK, "authenticate", "", authHeaders("tok-alice"))
		for time.Now().Before(short.Add(time.Second)) {
			time.Sleep(100 * time.Millisecond)
		}
		ws.expect(http.StatusOK, "queue_list", "")
	})

	t.Run("Keystone being unreachable answers 503 and authenticates nobody", func(t *testing.T) {
		ws := connect(t, "alpha")
		ks.setDown(true)
		ws.expect(http.StatusServiceUnavailable, "authenticate", "", authHeaders("tok-alice"))
		ks.setDown(false)
		ws.expect(http.StatusForbidden, "queue_list", "").errorIs("Not authentified.")
	})

	t.Run("an unauthenticated connection may use a valid signature for message actions only", func(t *testing.T) {
		owner := connect(t, "alpha")
		owner.expect(http.StatusOK, "authenticate", "", authHeaders("tok-alice"))
		ids := owner.post("signed", `{"n": 1}`)
		expires := time.Now().UTC().Add(time.Hour).Format("2006-01-02T15:04:05")
		paths := []string{"/v2/queues/signed/messages"}
		methods := []string{"GET", "POST"}
		sig := service.Sign([]byte(signingKey), paths, methods, "alpha", expires)
		signed := func(change func(h map[string]any)) map[string]any {
			h := map[string]any{"URL-Signature": sig, "URL-Expires": expires, "URL-Paths": paths, "URL-Methods": methods}
			if change != nil {
				change(h)
			}
			return h
		}
		anon := connect(t, "alpha").as(newUUID())
		got := anon.expect(http.StatusOK, "message_list", `{"queue_name": "signed"}`, signed(nil)).messages()
		sameIDs(t, "signed message_list", messageIDs(got), ids)
		anon.expect(http.StatusCreated, "message_post", `{"queue_name": "signed", "messages": [{"body": "signed"}]}`, signed(nil))
		for _, tc := range []struct {
			name, action, body string
			change             func(map[string]any)
		}{
			{"a queue the grant does not cover", "message_list", `{"queue_name": "other"}`, nil},
			{"a method not granted", "message_delete", `{"queue_name": "signed", "message_id": "` + ids[0] + `"}`, nil},
			{"a queue action", "queue_delete", `{"queue_name": "signed"}`, nil},
			{"a claim", "claim_create", `{"queue_name": "signed"}`, nil},
			{"another project", "message_list", `{"queue_name": "signed"}`, func(h map[string]any) { h["X-Project-ID"] = "beta" }},
			{"a wrong signature", "message_list", `{"queue_name": "signed"}`, func(h map[string]any) { h["URL-Signature"] = strings.Repeat("0", 64) }},
			{"comma-separated paths", "message_list", `{"queue_name": "signed"}`, func(h map[string]any) { h["URL-Paths"] = paths[0] }},
			{"an expired grant", "message_list", `{"queue_name": "signed"}`, func(h map[string]any) {
				past := time.Now().UTC().Add(-time.Hour).Format("2006-01-02T15:04:05")
				h["URL-Expires"], h["URL-Signature"] = past, service.Sign([]byte(signingKey), paths, methods, "alpha", past)
			}},
		} {
			r := anon.call(tc.action, tc.body, signed(tc.change))
			r.what = tc.name
			r.status(http.StatusForbidden).errorIs("Not authentified.")
		}
		// Nothing was deleted by the refused requests.
		if got := owner.expect(http.StatusOK, "message_list", `{"queue_name": "signed", "echo": true}`).messages(); len(got) != 2 {
			t.Fatalf("after refused signed requests the queue holds %d messages, want 2", len(got))
		}
	})
}

// TestAuth_RateLimitIsSharedWithREST checks that a project's websocket
// requests and REST requests draw on one rate limit per node.
func TestAuth_RateLimitIsSharedWithREST(t *testing.T) {
	c := testcluster.Start(t, 1, testcluster.WithConfig(func(cfg *server.Config) {
		cfg.RateLimit = service.RateLimit{PerSecond: 0.001, Burst: 4}
	}))
	n := c.Leader()
	ws := dial(t, n, "leader", wsapi.JSON)
	for i := 0; i < 4; i++ {
		if st, body := ws.restDo(n.URL(), "GET", "/v2/queues", ""); st != http.StatusOK {
			t.Fatalf("REST request %d: %d %s", i, st, body)
		}
	}
	r := ws.call("queue_list", "")
	r.status(http.StatusTooManyRequests)
	// Another project still has its whole budget, on both transports.
	other := ws.inProject(ws.project + "-other")
	other.expect(http.StatusOK, "queue_list", "")
	if st, body := other.restDo(n.URL(), "GET", "/v2/queues", ""); st != http.StatusOK {
		t.Fatalf("another project over REST: %d %s", st, body)
	}
}
