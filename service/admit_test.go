package service

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/zaqar-raft/zaqar/auth"
)

const testClientID = "3381af92-2b9e-11e3-b191-718613007343"

// grant signs GET and POST on queue q's messages for project p.
func grant(svc *Service, p, q string) *SignedRequest {
	exp := time.Now().UTC().Add(time.Hour).Format(expiresLayout)
	paths, methods := []string{"/v2/queues/" + q + "/messages"}, []string{"GET", "POST"}
	return &SignedRequest{Signature: Sign(svc.secret, paths, methods, p, exp), Expires: exp, Paths: paths, Methods: methods}
}

func TestAdmit_DecidesOnceForEveryTransport(t *testing.T) {
	noauth, _, _ := newLocalService(t, DefaultLimits())
	keystone, _, _ := newLocalService(t, DefaultLimits())
	keystone.authRequired = true
	alice := &auth.Identity{Token: "alice-token", ProjectID: "alpha", UserID: "alice", Roles: []string{"member"}}
	base := Credentials{ClientID: testClientID, HasClientID: true, Project: "alpha", HasProject: true}
	with := func(change func(*Credentials)) Credentials {
		c := base
		change(&c)
		return c
	}
	msgs := Operation{Rule: "messages:get_all", Name: "q", Method: http.MethodGet, Resource: "/v2/queues/q/messages"}
	// framed gives op a transport framing check that refuses with status.
	framed := func(op Operation, status int) Operation {
		op.Framing = func() *Error { return &Error{Status: status, Title: "framing"} }
		return op
	}
	cases := []struct {
		name    string
		svc     *Service
		cred    Credentials
		op      Operation
		status  int    // 0: admitted
		project string // when admitted
		roles   int
	}{
		{"no-auth: the headers say who", noauth, with(func(c *Credentials) { c.Roles = "admin, member" }), msgs, 0, "alpha", 2},
		{"no-auth: the admin role opens health", noauth, with(func(c *Credentials) { c.Roles = "admin" }), Operation{Rule: "health:get"}, 0, "alpha", 1},
		{"no-auth: without it health is denied", noauth, base, Operation{Rule: "health:get"}, http.StatusForbidden, "", 0},
		{"a missing Client-ID", noauth, with(func(c *Credentials) { c.HasClientID = false }), msgs, http.StatusBadRequest, "", 0},
		{"a malformed Client-ID", noauth, with(func(c *Credentials) { c.ClientID = "nope" }), msgs, http.StatusBadRequest, "", 0},
		{"a missing project", noauth, with(func(c *Credentials) { c.HasProject, c.Project = false, "" }), msgs, http.StatusBadRequest, "", 0},
		{"an empty project", noauth, with(func(c *Credentials) { c.Project = "" }), msgs, http.StatusBadRequest, "", 0},
		{"a bad queue name", noauth, base, Operation{Name: "..", Rule: "queues:get"}, http.StatusBadRequest, "", 0},
		{"keystone: the token's project and roles", keystone, with(func(c *Credentials) { c.Identity, c.Roles = alice, "admin" }), msgs, 0, "alpha", 1},
		{"keystone: X-Roles is not believed", keystone, with(func(c *Credentials) { c.Identity, c.Roles = alice, "admin" }), Operation{Rule: "health:get"}, http.StatusForbidden, "", 0},
		{"keystone: no project header is the token's", keystone, with(func(c *Credentials) { c.Identity, c.HasProject, c.Project = alice, false, "" }), msgs, 0, "alpha", 1},
		{"keystone: a header naming another project is refused", keystone, with(func(c *Credentials) { c.Identity, c.Project = alice, "beta" }), msgs, http.StatusForbidden, "", 0},
		{"keystone: no identity and no signature", keystone, base, msgs, http.StatusForbidden, "", 0},
		{"keystone: a valid signature acts in its project", keystone, with(func(c *Credentials) { c.Signature = grant(keystone, "alpha", "q") }), msgs, 0, "alpha", 0},
		{"keystone: a signature for another queue", keystone, with(func(c *Credentials) { c.Signature = grant(keystone, "alpha", "other") }), msgs, http.StatusNotFound, "", 0},
		{"keystone: a signature for another project", keystone, with(func(c *Credentials) { c.Signature = grant(keystone, "beta", "q") }), msgs, http.StatusNotFound, "", 0},
		{"keystone: a signature does not cover a method it lacks", keystone, with(func(c *Credentials) { c.Signature = grant(keystone, "alpha", "q") }),
			Operation{Rule: "messages:delete", Name: "q", Method: http.MethodDelete, Resource: "/v2/queues/q/messages/x"}, http.StatusNotFound, "", 0},
		{"keystone: an identity needs no signature", keystone, with(func(c *Credentials) { c.Identity, c.Signature = alice, &SignedRequest{} }), msgs, 0, "alpha", 1},
		{"a bad signature is refused before the transport's framing check", noauth, with(func(c *Credentials) { c.Signature = grant(noauth, "alpha", "other") }),
			framed(msgs, http.StatusNotAcceptable), http.StatusNotFound, "", 0},
		{"a good signature still gets the framing check", noauth, with(func(c *Credentials) { c.Signature = grant(noauth, "alpha", "q") }),
			framed(msgs, http.StatusNotAcceptable), http.StatusNotAcceptable, "", 0},
		{"the framing check comes before Client-ID", noauth, with(func(c *Credentials) { c.HasClientID = false }),
			framed(msgs, http.StatusNotAcceptable), http.StatusNotAcceptable, "", 0},
		{"keystone: the framing check comes after the project rule", keystone, with(func(c *Credentials) { c.Identity, c.Project = alice, "beta" }),
			framed(msgs, http.StatusNotAcceptable), http.StatusForbidden, "", 0},
		{"unscoped: no Client-ID or project needed", noauth, Credentials{Roles: "admin"}, Operation{Rule: "cluster:admin", Unscoped: true}, 0, "", 1},
		{"unscoped: a signature grants nothing", keystone, with(func(c *Credentials) { c.Signature = grant(keystone, "alpha", "q") }), Operation{Rule: "cluster:admin", Unscoped: true}, http.StatusForbidden, "", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, e := tc.svc.Admit(context.Background(), tc.cred, tc.op)
			if tc.status != 0 {
				if e == nil || e.Status != tc.status {
					t.Fatalf("Admit = %+v, %v; want %d", c, e, tc.status)
				}
				return
			}
			if e != nil {
				t.Fatalf("Admit refused: %d %s %s", e.Status, e.Title, e.Description)
			}
			if c.Project != tc.project || len(c.Roles) != tc.roles || (!tc.op.Unscoped && c.ClientID != "3381af922b9e11e3b191718613007343") {
				t.Fatalf("caller %+v", c)
			}
			// A trust subscription creates its trust with the caller's
			// own token: only an identity gives one.
			if want := tc.cred.Identity != nil; (c.Token == "alice-token") != want || (!want && c.Token != "") {
				t.Fatalf("caller token %q with identity %v", c.Token, tc.cred.Identity)
			}
		})
	}
}

func TestAdmit_ThrottlesAProjectOverItsRate(t *testing.T) {
	svc, _, _ := newLocalService(t, DefaultLimits())
	svc.limiter = newProjectLimiter(RateLimit{PerSecond: 1, Burst: 2})
	cred := Credentials{ClientID: testClientID, HasClientID: true, Project: "busy", HasProject: true}
	var refused *Error
	for i := 0; i < 5 && refused == nil; i++ {
		_, refused = svc.Admit(context.Background(), cred, Operation{Rule: "queues:get_all"})
	}
	if refused == nil || refused.Status != http.StatusTooManyRequests {
		t.Fatalf("five requests at a rate of one per second: %v", refused)
	}
	cred.Project = "quiet"
	if _, e := svc.Admit(context.Background(), cred, Operation{Rule: "queues:get_all"}); e != nil {
		t.Fatalf("another project was throttled: %v", e)
	}
}
