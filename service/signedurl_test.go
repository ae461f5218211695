package service

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestShare_WhatIsGrantedVerifiesAndWhatCouldNotIsRefused(t *testing.T) {
	svc, _, _ := newLocalService(t, DefaultLimits())
	c := Caller{Project: "p-share", ClientID: "3381af922b9e11e3b191718613007343"}
	ctx := context.Background()
	verifies := func(t *testing.T, g ShareResult) {
		t.Helper()
		// As a holder sends it back: comma-separated headers.
		sr := SignedRequest{Signature: g.Signature, Expires: g.Expires, Project: g.Project,
			Methods: strings.Split(strings.Join(g.Methods, ","), ","), Paths: strings.Split(strings.Join(g.Paths, ","), ",")}
		for _, m := range g.Methods {
			for _, p := range g.Paths {
				if !svc.verifySigned(Operation{Method: m, Resource: p}, sr) {
					t.Fatalf("grant %+v does not verify for %s %s", g, m, p)
				}
			}
		}
	}
	granted := []struct {
		body                   string
		methods, paths, expiry string
	}{
		// The last second a four-digit year holds, in UTC.
		{`{"methods": ["PUT"], "expires": "9999-12-31T23:59:59.999999Z"}`, "PUT", "/v2/queues/q/messages", "9999-12-31T23:59:59"},
		{`{"expires": "9999-12-31T23:59:59+00:00"}`, "GET", "/v2/queues/q/messages", "9999-12-31T23:59:59"},
		// Empty lists mean the defaults, as upstream's "or".
		{`{"paths": [], "methods": []}`, "GET", "/v2/queues/q/messages", ""},
		{`{"paths": null, "methods": null}`, "GET", "/v2/queues/q/messages", ""},
		{`{"paths": ["claims", "messages"], "methods": ["POST", "GET", "GET"]}`, "GET,GET,POST", "/v2/queues/q/claims,/v2/queues/q/messages", ""},
	}
	for _, g := range granted {
		res, e := svc.Share(ctx, c, "q", []byte(g.body))
		if e != nil {
			t.Fatalf("%s: %v", g.body, e)
		}
		if strings.Join(res.Methods, ",") != g.methods || strings.Join(res.Paths, ",") != g.paths || (g.expiry != "" && res.Expires != g.expiry) {
			t.Fatalf("%s granted %+v", g.body, res)
		}
		verifies(t, res)
	}

	refused := []struct{ body, description string }{
		// A zone offset pushes it into year 10000 in UTC.
		{`{"expires": "9999-12-31T23:59:59-05:00"}`, "outside years 0001-9999"},
		{`{"expires": "10000-01-01T00:00:00"}`, "not a valid ISO 8601"},
		// Methods the holder could not send back as signed.
		{`{"methods": [" GET"]}`, `Invalid methods: " GET"`},
		{`{"methods": ["GET", "GET,POST"]}`, `Invalid methods: "GET,POST"`},
		{`{"methods": [""]}`, `Invalid methods: ""`},
		{`{"methods": ["GET "]}`, `Invalid methods: "GET "`},
		// The end of the current second: in the future, but signed in
		// whole seconds it would be born expired.
		{`{"expires": "` + time.Now().UTC().Truncate(time.Second).Format("2006-01-02T15:04:05") + `.999999"}`, "Expiration date must be in the future."},
	}
	for _, r := range refused {
		res, e := svc.Share(ctx, c, "q", []byte(r.body))
		if e == nil || e.Status != 400 || !strings.Contains(e.Description, r.description) {
			t.Fatalf("%s: %+v %v, want 400 with %q", r.body, res, e, r.description)
		}
	}
}
