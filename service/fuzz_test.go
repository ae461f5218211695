package service

import (
	"context"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zaqar-raft/zaqar/internal/ids"
	"github.com/zaqar-raft/zaqar/internal/jsonx"
	"github.com/zaqar-raft/zaqar/testkit/fsmnode"
)

// bodyRoutes are the operations that parse a request body, in the order
// FuzzRequestBodies selects them (route % len).
var bodyRoutes = []string{
	"queue create (PUT /queues/q)",
	"queue update (PATCH /queues/q, JSON patch)",
	"message post (POST /queues/q/messages)",
	"claim create (POST /queues/q/claims)",
	"claim renew (PATCH /queues/q/claims/c)",
	"queue purge (POST /queues/q/purge)",
	"queue share (POST /queues/q/share)",
	"subscription create (POST /queues/q/subscriptions)",
	"subscription update (PATCH /queues/q/subscriptions/s)",
	"subscription confirm (PUT /queues/q/subscriptions/s/confirm)",
}

// bodyFixture is the state FuzzRequestBodies runs against: a queue with
// messages, a claim and a subscription, in one project.
type bodyFixture struct {
	svc   *Service
	node  *fsmnode.Node
	c     Caller
	claim string
	sub   string
	runs  int
}

func (f *bodyFixture) reset(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	if e := f.svc.PurgeQueue(ctx, f.c, "q", nil); e != nil {
		t.Fatalf("purge: %v", e)
	}
	if _, e := f.svc.CreateQueue(ctx, f.c, "q", []byte(`{"description": "fuzz"}`)); e != nil {
		t.Fatalf("create: %v", e)
	}
	if _, e := f.svc.PostMessages(ctx, f.c, "q", []byte(`{"messages": [{"body": 1}, {"body": {"a": [2]}}, {"body": "three"}]}`)); e != nil {
		t.Fatalf("post: %v", e)
	}
	one := 1
	cl, e := f.svc.CreateClaim(ctx, f.c, "q", &one, ClaimParams{TTL: 600, Grace: 60})
	if e != nil || cl.ID == "" {
		t.Fatalf("claim: %+v %v", cl, e)
	}
	sub, e := f.svc.CreateSubscription(ctx, f.c, "q", []byte(`{"subscriber": "http://127.0.0.1:9/hook", "ttl": 3600}`))
	if e != nil {
		t.Fatalf("subscribe: %v", e)
	}
	f.claim, f.sub = cl.ID, sub.ID
}

// FuzzRequestBodies sends arbitrary bodies to every service operation that
// parses one (route selects the operation; see bodyRoutes). Whatever the
// body: no panic; a rejection is a 4xx *Error, never 5xx, and leaves the
// store byte-for-byte unchanged (no partial write); an acceptance leaves
// well-formed state behind (stored JSON is valid, posted messages can be
// read back, a share's signature verifies). Seeds:
// testdata/fuzz/FuzzRequestBodies.
func FuzzRequestBodies(f *testing.F) {
	for i, body := range []string{
		`{"_default_message_ttl": 300, "description": "x"}`,
		`[{"op": "add", "path": "/metadata/k", "value": 1}]`,
		`{"messages": [{"body": {"n": 1}, "ttl": 60}]}`,
		`{"ttl": 60, "grace": 60}`,
		`{"ttl": 120}`,
		`{"resource_types": ["messages"]}`,
		`{"paths": ["messages"], "methods": ["GET"], "expires": "2099-01-01T00:00:00"}`,
		`{"subscriber": "mailto:a@example.com", "ttl": 120, "options": {}}`,
		`{"ttl": 600}`,
		`{"confirmed": true}`,
	} {
		f.Add(uint8(i), []byte(body))
	}
	svc, node, st := newLocalService(f, DefaultLimits())
	fx := &bodyFixture{svc: svc, node: node, c: Caller{Project: "fuzz", ClientID: "3381af922b9e11e3b191718613007343"}}
	fx.reset(f)
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		fx.runs++
		if fx.runs%200 == 0 {
			fx.reset(t) // keep the store small so digests stay cheap
		}
		ctx := context.Background()
		before := mustDigest(t, st)
		r := int(route) % len(bodyRoutes)
		var e *Error
		var check func()
		switch r {
		case 0:
			_, e = svc.CreateQueue(ctx, fx.c, "created", body)
			check = func() {
				info, ge := svc.GetQueue(ctx, fx.c, "created")
				if ge != nil || !info.Exists {
					t.Fatalf("created queue not readable: %+v %v", info, ge)
				}
				if enc := encodeMetadata(info.Metadata); !json.Valid(enc) {
					t.Fatalf("stored metadata %q", enc)
				}
			}
		case 1:
			var ops []PatchOp
			if ops, e = svc.ParsePatch(body); e == nil {
				_, e = svc.PatchQueue(ctx, fx.c, "q", ops)
			}
			check = func() {
				info, ge := svc.GetQueue(ctx, fx.c, "q")
				if ge != nil || !json.Valid(encodeMetadata(info.Metadata)) {
					t.Fatalf("patched metadata: %+v %v", info, ge)
				}
				if _, ve := svc.validateMetadata(info.Metadata); ve != nil {
					t.Fatalf("a patch stored metadata that fails validation: %v", ve)
				}
			}
		case 2:
			var got []string
			got, e = svc.PostMessages(ctx, fx.c, "q", body)
			check = func() {
				if len(got) == 0 {
					t.Fatal("a post accepted no messages")
				}
				msgs, ge := svc.GetMessages(ctx, fx.c, "q", got[:min(len(got), svc.limits.MaxMessagesPerPage)])
				if ge != nil {
					t.Fatalf("posted messages not readable: %v", ge)
				}
				for _, m := range msgs {
					if !ids.Valid(m.ID) || !json.Valid(m.Body) || m.TTL < MinMessageTTL || m.TTL > svc.limits.MaxMessageTTL {
						t.Fatalf("stored message %+v", m)
					}
				}
			}
		case 3:
			var p ClaimParams
			if p, e = svc.ParseClaimBody(body, false); e == nil {
				_, e = svc.CreateClaim(ctx, fx.c, "q", nil, p)
			}
			check = func() {
				if p.TTL < MinClaimTTL || p.TTL > svc.limits.MaxClaimTTL || p.Grace < MinClaimGrace || p.Grace > svc.limits.MaxClaimGrace {
					t.Fatalf("claim accepted with %+v", p)
				}
			}
		case 4:
			var p ClaimParams
			if p, e = svc.ParseClaimBody(body, true); e == nil {
				e = svc.RenewClaim(ctx, fx.c, "q", fx.claim, p)
			}
			check = func() {}
		case 5:
			e = svc.PurgeQueue(ctx, fx.c, "purged", body)
			check = func() {}
		case 6:
			var res ShareResult
			res, e = svc.Share(ctx, fx.c, "q", body)
			// What is granted verifies: every granted method on every
			// granted path, with the grant sent back as a holder sends it
			// (comma-separated headers), until it expires.
			check = func() {
				exp, err := parseExpires(res.Expires)
				if err != nil || res.Expires != exp.Format(expiresLayout) {
					t.Fatalf("share %+v granted an expiry that does not parse back: %v", res, err)
				}
				if len(res.Methods) == 0 || len(res.Paths) == 0 {
					t.Fatalf("share %+v grants nothing", res)
				}
				if !exp.After(time.Now().Add(time.Second)) {
					return // it may have expired since: time passes
				}
				sr := SignedRequest{Signature: res.Signature, Expires: res.Expires, Project: res.Project,
					Methods: strings.Split(strings.Join(res.Methods, ","), ","), Paths: strings.Split(strings.Join(res.Paths, ","), ",")}
				for _, m := range res.Methods {
					for _, p := range res.Paths {
						if !svc.verifySigned(Operation{Method: m, Resource: p}, sr) {
							t.Fatalf("share %+v does not verify for %s %s", res, m, p)
						}
					}
				}
			}
		case 7:
			var res SubscriptionResult
			res, e = svc.CreateSubscription(ctx, fx.c, "q", body)
			check = func() {
				if sub, ge := svc.GetSubscription(ctx, fx.c, "q", res.ID); ge != nil || sub.ID != res.ID {
					t.Fatalf("created subscription %q not readable: %v", res.ID, ge)
				}
			}
		case 8:
			e = svc.UpdateSubscription(ctx, fx.c, "q", fx.sub, body)
			check = func() {}
		case 9:
			e = svc.ConfirmSubscription(ctx, fx.c, "q", fx.sub, body)
			check = func() {}
		}
		if e != nil {
			if e.Status < 400 || e.Status > 499 {
				t.Fatalf("%s with %q: %d %s: %s; malformed input must be a 4xx", bodyRoutes[r], body, e.Status, e.Title, e.Description)
			}
			if after := mustDigest(t, st); after != before {
				t.Fatalf("%s with %q was rejected (%d %s) but changed the store", bodyRoutes[r], body, e.Status, e.Description)
			}
			return
		}
		check()
	})
}

// FuzzParsePatch checks the JSON-patch parser of queue PATCH: never a
// panic, rejections are 400 with a description, and every accepted patch
// is made of add/remove/replace operations on /metadata/<key> (trimmed,
// unescaped keys) that survive a round trip: re-encoded as a patch they
// parse to the same operations. Seeds: testdata/fuzz/FuzzParsePatch.
func FuzzParsePatch(f *testing.F) {
	for _, body := range []string{
		`[{"op": "add", "path": "/metadata/a", "value": 1}]`,
		`[{"op": "remove", "path": "/metadata/a~1b~0c"}]`,
		`[{"op": "replace", "path": "/metadata/ x ", "value": {"deep": [1, 2]}}]`,
		`[{"op": "move", "path": "/metadata/a"}]`,
		`[{"op": "add", "path": "metadata/a", "value": 1}]`,
		`[{"op": "add", "path": "/metadata//a", "value": 1}]`,
		`[{"op": "add", "path": "/metadata/a~2", "value": 1}]`,
		`{"op": "add"}`,
		`[]`,
	} {
		f.Add([]byte(body))
	}
	s := &Service{limits: DefaultLimits()}
	f.Fuzz(func(t *testing.T, body []byte) {
		ops, e := s.ParsePatch(body)
		if e != nil {
			if e.Status != 400 || e.Description == "" {
				t.Fatalf("rejection %+v", e)
			}
			return
		}
		var again []map[string]json.RawMessage
		var kept []PatchOp
		for _, op := range ops {
			if op.Op != "add" && op.Op != "remove" && op.Op != "replace" {
				t.Fatalf("accepted op %q", op.Op)
			}
			if op.Key != strings.TrimSpace(op.Key) {
				t.Fatalf("key %q is not trimmed", op.Key)
			}
			if op.Op != "remove" && (op.Value == nil || !json.Valid(op.Value)) {
				t.Fatalf("%s without a valid value: %q", op.Op, op.Value)
			}
			if op.Key == "" {
				// "/metadata/ " names the key "" (parts are trimmed, as
				// upstream), which no pointer spells without blanks.
				continue
			}
			kept = append(kept, op)
			esc := strings.ReplaceAll(strings.ReplaceAll(op.Key, "~", "~0"), "/", "~1")
			m := map[string]json.RawMessage{"op": mustJSON(t, op.Op), "path": mustJSON(t, "/metadata/"+esc)}
			if op.Op != "remove" {
				m["value"] = op.Value
			}
			again = append(again, m)
		}
		if len(kept) == 0 {
			return
		}
		re, err := json.Marshal(again)
		if err != nil {
			t.Fatal(err)
		}
		ops2, e := s.ParsePatch(re)
		if e != nil {
			t.Fatalf("the re-encoded patch %s is rejected: %v", re, e)
		}
		if len(ops2) != len(kept) {
			t.Fatalf("round trip: %d ops, want %d", len(ops2), len(kept))
		}
		for i := range kept {
			if kept[i].Op != ops2[i].Op || kept[i].Key != ops2[i].Key || string(jsonx.Compact(kept[i].Value)) != string(jsonx.Compact(ops2[i].Value)) {
				t.Fatalf("round trip op %d: %+v became %+v", i, kept[i], ops2[i])
			}
		}
	})
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	validNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
	hex32RE     = regexp.MustCompile(`^[0-9a-f]{32}$`)
)

// FuzzIdentityHeaders checks the parsers of the identity headers and
// names every request carries: Client-ID (strict UUID and "off" modes),
// the project header and queue/topic names. Never a panic; every
// rejection is a 400; a strict Client-ID normalises to 32 lowercase hex
// digits and normalising is idempotent and ignores dashes and case; a name
// is accepted exactly when it is 1-64 of [A-Za-z0-9_.-] and the project is
// at most 256 bytes. Seeds: testdata/fuzz/FuzzIdentityHeaders.
func FuzzIdentityHeaders(f *testing.F) {
	f.Add("3381af92-2b9e-11e3-b191-718613007343", "p1", "jobs", true)
	f.Add("urn:uuid:{3381AF922B9E11E3B191718613007343}", strings.Repeat("p", 257), "a.b-c_d", false)
	f.Add("", "", "", true)
	f.Add("not-a-uuid-at-all", "proj ect", "bad name", false)
	strict := &Service{limits: DefaultLimits()}
	offLimits := DefaultLimits()
	offLimits.ClientIDMode = "off"
	off := &Service{limits: offLimits}
	f.Fuzz(func(t *testing.T, clientID, project, name string, present bool) {
		got, e := strict.normalizeClientID(present, clientID)
		switch {
		case !present:
			if e == nil || e.Status != 400 {
				t.Fatalf("missing Client-ID: %v", e)
			}
		case e != nil:
			if e.Status != 400 {
				t.Fatalf("strict %q: %+v", clientID, e)
			}
		default:
			if !hex32RE.MatchString(got) {
				t.Fatalf("strict %q normalised to %q", clientID, got)
			}
			if again, e := strict.normalizeClientID(true, got); e != nil || again != got {
				t.Fatalf("normalising %q again: %q %v", got, again, e)
			}
			dashed := strings.ToUpper(got[:8] + "-" + got[8:12] + "-" + got[12:16] + "-" + got[16:20] + "-" + got[20:])
			if again, e := strict.normalizeClientID(true, dashed); e != nil || again != got {
				t.Fatalf("the dashed upper-case spelling %q: %q %v", dashed, again, e)
			}
		}
		if got, e := off.normalizeClientID(true, clientID); (e == nil) != (len(clientID) >= 10 && len(clientID) <= 36) || (e == nil && got != clientID) {
			t.Fatalf("off mode %q (%d bytes): %q %v", clientID, len(clientID), got, e)
		} else if e != nil && e.Status != 400 {
			t.Fatalf("off mode: %+v", e)
		}
		if e := checkProject(present, project); (e == nil) != (present && project != "") {
			t.Fatalf("checkProject(%v, %q) = %v", present, project, e)
		}
		qe := validateQueueName(project, name)
		// Upstream's pattern, less the dot-segments "." and "..".
		want := validNameRE.MatchString(name) && name != "." && name != ".." && len(project) <= MaxProjectLength
		if (qe == nil) != want || (qe != nil && qe.Status != 400) {
			t.Fatalf("validateQueueName(%q, %q) = %v, want accepted: %v", project, name, qe, want)
		}
		if te := validateTopicName(project, name); (te == nil) != want {
			t.Fatalf("validateTopicName(%q, %q) = %v, want accepted: %v", project, name, te, want)
		}
	})
}

// FuzzSignedURL checks pre-signed URL verification (contract §8.3) with
// arbitrary grants and requests: never a panic; a request verifies exactly
// when its method is granted (exactly, case-sensitive), a granted path
// covers the request path at a segment boundary, the grant has not expired
// and the signature is the grant's (in any letter case); a signature with
// one character changed, or a grant replayed for another project, never
// verifies. Seeds: testdata/fuzz/FuzzSignedURL.
func FuzzSignedURL(f *testing.F) {
	f.Add("key", "p1", "2099-01-01T00:00:00", "/v2/queues/q/messages", "GET,POST", "GET", "/v2/queues/q/messages/abc", uint8(3))
	f.Add("key", "", "2001-01-01T00:00:00", "/v2/queues/q/messages", "GET", "GET", "/v2/queues/q/messages", uint8(0))
	f.Add("k", "p", "2099-01-01 00:00:00", "/v2/queues/q/messages", "get", "GET", "/v2/queues/q/messagesX", uint8(9))
	f.Add("k", "p", "4102444800", "/v2/queues/q/", "DELETE", "DELETE", "/v2/queues/q/claims", uint8(1))
	f.Fuzz(func(t *testing.T, key, project, expires, paths, methods, method, path string, tamper uint8) {
		if key == "" {
			key = "k"
		}
		s := &Service{secret: []byte(key)}
		pathList, methodList := strings.Split(paths, ","), strings.Split(methods, ",")
		exp, err := parseExpires(expires)
		if err == nil && exp.Year() >= 1 && exp.Year() <= 9999 {
			back, err := parseExpires(exp.Format(expiresLayout))
			if err != nil || !back.Equal(exp.Truncate(time.Second)) {
				t.Fatalf("expires %q → %s does not survive its own format: %s %v", expires, exp, back, err)
			}
		}
		sig := ""
		if err == nil {
			trimmed := func(in []string) []string {
				out := make([]string, len(in))
				for i, v := range in {
					out[i] = strings.TrimSpace(v)
				}
				return out
			}
			sig = Sign([]byte(key), trimmed(pathList), trimmed(methodList), project, exp.Format(expiresLayout))
		}
		req := SignedRequest{Signature: sig, Expires: expires, Methods: methodList, Paths: pathList, Project: project}
		got := s.verifySigned(Operation{Method: method, Resource: path}, req)
		granted := err == nil && exp.Year() <= 9999 && slices.ContainsFunc(methodList, func(m string) bool { return strings.TrimSpace(m) == method }) &&
			slices.ContainsFunc(pathList, func(p string) bool {
				p = strings.TrimSpace(p)
				return p != "" && (path == p || strings.HasPrefix(path, strings.TrimSuffix(p, "/")+"/"))
			})
		now := time.Now()
		switch {
		case granted && exp.After(now.Add(2*time.Second)):
			if !got {
				t.Fatalf("VerifySigned(%q %q, %+v) refused a valid grant", method, path, req)
			}
		case !granted || exp.Before(now.Add(-2*time.Second)):
			if got {
				t.Fatalf("VerifySigned(%q %q, %+v) accepted (granted: %v, expires %s)", method, path, req, granted, exp)
			}
		}
		if sig == "" {
			return
		}
		upper := req
		upper.Signature = strings.ToUpper(sig)
		if s.verifySigned(Operation{Method: method, Resource: path}, upper) != got {
			t.Fatalf("the upper-case signature is judged differently")
		}
		bad := []byte(sig)
		i := int(tamper) % len(bad)
		bad[i] = "0123456789abcdef"[(strings.IndexByte("0123456789abcdef", bad[i])+1)%16]
		tampered := req
		tampered.Signature = string(bad)
		if s.verifySigned(Operation{Method: method, Resource: path}, tampered) {
			t.Fatalf("a tampered signature %s verified (grant %+v)", bad, req)
		}
		other := req
		other.Project = project + "x"
		if s.verifySigned(Operation{Method: method, Resource: path}, other) {
			t.Fatalf("the grant of project %q verified for project %q", project, other.Project)
		}
	})
}
