package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/zaqar-raft/zaqar/httpapi"
	"github.com/zaqar-raft/zaqar/service"
	"github.com/zaqar-raft/zaqar/store"
	"github.com/zaqar-raft/zaqar/testkit/fsmnode"
)

// fuzzAPI is a REST handler over a fresh store and an fsmnode, with a log
// that records panics and 5xx answers.
type fuzzAPI struct {
	h     http.Handler
	tmp   *fsmnode.Temp
	st    *store.Store
	log   *problemLog
	count int
}

func newFuzzAPI(tb testing.TB) *fuzzAPI {
	tb.Helper()
	tmp, err := fsmnode.OpenTemp("zaqar-fuzz-rest-")
	if err != nil {
		tb.Fatal(err)
	}
	logs := &problemLog{}
	svc := service.New(tmp.Node, tmp.Store, service.Config{SignedURLSecret: "fuzz-secret", Logger: slog.New(logs)})
	h := httpapi.New(httpapi.Config{Service: svc, Cluster: tmp.Node, Logger: slog.New(logs), RequestTimeout: 10 * time.Second})
	return &fuzzAPI{h: h, tmp: tmp, st: tmp.Store, log: logs}
}

func (a *fuzzAPI) close() { a.tmp.Close() }

// headerValueOK reports whether net/http would let v through as a header
// value (no control characters but tab).
func headerValueOK(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

var fuzzMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

// FuzzRESTRequest sends arbitrary requests — method, path, query string,
// Client-ID, project, roles, Content-Type and body — through the whole
// REST handler (middleware, router, query parsing, body parsing, service,
// store). Whatever the input: no panic, no 5xx other than 501 for the
// routes not implemented yet, every error is a Zaqar JSON error body, and
// a refused request (4xx) leaves the store byte-for-byte unchanged.
// Seeds: testdata/fuzz/FuzzRESTRequest.
func FuzzRESTRequest(f *testing.F) {
	const cid, mid = "3381af92-2b9e-11e3-b191-718613007343", "0123456789abcdef0123456789abcdef"
	for _, s := range []struct {
		m                     uint8
		path, query, ct, body string
	}{
		{3, "/v2/queues/q", "", "application/json", `{"_default_message_ttl": 300}`},
		{4, "/v2/queues/q", "", "application/openstack-messaging-v2.0-json-patch", `[{"op": "add", "path": "/metadata/a", "value": 1}]`},
		{2, "/v2/queues/q/messages", "", "application/json", `{"messages": [{"body": {"k": 1}, "ttl": 60}]}`},
		{0, "/v2/queues/q/messages", "echo=true&limit=5&include_claimed=1", "", ""},
		{0, "/v2/queues/q/messages", "ids=" + mid + "," + mid, "", ""},
		{5, "/v2/queues/q/messages", "pop=2", "", ""},
		{5, "/v2/queues/q/messages/" + mid, "claim_id=" + mid, "", ""},
		{2, "/v2/queues/q/claims", "limit=3", "application/json", `{"ttl": 60, "grace": 60}`},
		{4, "/v2/queues/q/claims/" + mid, "", "application/json", `{"ttl": 120}`},
		{0, "/v2/queues", "detailed=true&with_count=true&limit=2&marker=a&name=q&k=v", "", ""},
		{2, "/v2/queues/q/share", "", "application/json", `{"paths": ["messages"], "methods": ["GET"]}`},
		{2, "/v2/queues/q/purge", "", "application/json", `{"resource_types": ["messages"]}`},
		{2, "/v2/queues/q/subscriptions", "", "application/json", `{"subscriber": "http://127.0.0.1:9/x", "ttl": 3600}`},
		{3, "/v2/queues/q/subscriptions/" + mid + "/confirm", "", "application/json", `{"confirmed": true}`},
		{3, "/v2/topics/t", "", "application/json", `{}`},
		{2, "/v2/topics/t/messages", "", "application/json", `{"messages": [{"body": 1}]}`},
		{0, "/v2/pools", "", "", ""},
		{0, "/v2/health", "", "", ""},
		{2, "/admin/cluster/transfer-leadership", "", "application/json", `{"id": "x"}`},
		{6, "/v2/queues/q", "", "", ""},
		{0, "/", "", "", ""},
	} {
		f.Add(s.m, s.path, s.query, cid, "p1", "", s.ct, []byte(s.body))
	}
	// The catalog, as an admin.
	f.Add(uint8(3), "/v2/pools/a", "", cid, "p1", "admin", "application/json", []byte(`{"weight": 1, "uri": "zaqar+raft://127.0.0.1:1", "options": {"a": 1}}`))
	f.Add(uint8(4), "/v2/pools/a", "", cid, "p1", "admin", "application/json", []byte(`{"weight": 0, "flavor": "f"}`))
	f.Add(uint8(3), "/v2/flavors/f", "", cid, "p1", "admin", "application/json", []byte(`{"pool_list": ["a"], "capabilities": {}}`))
	f.Add(uint8(0), "/v2/flavors", "detailed=true&limit=1", cid, "p1", "", "", []byte(nil))
	f.Add(uint8(5), "/v2/pools/a", "", cid, "p1", "admin", "", []byte(nil))
	api := newFuzzAPI(f)
	f.Cleanup(func() { api.close() })
	f.Fuzz(func(t *testing.T, m uint8, path, query, clientID, project, roles, contentType string, body []byte) {
		for _, v := range []string{clientID, project, roles, contentType} {
			if !headerValueOK(v) {
				return // net/http refuses such requests before any handler
			}
		}
		if path == "" || path[0] != '/' {
			path = "/" + path
		}
		api.count++
		if api.count%500 == 0 {
			// Keep the store small so that digests stay cheap.
			logs := api.log
			api.close()
			api = newFuzzAPI(t)
			api.log = logs
		}
		method := fuzzMethods[int(m)%len(fuzzMethods)]
		req := &http.Request{
			Method: method, URL: &url.URL{Path: path, RawQuery: query}, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{}, Host: "fuzz", RemoteAddr: "127.0.0.1:1", RequestURI: path,
			Body: http.NoBody,
		}
		if len(body) > 0 {
			req.Body, req.ContentLength = readCloser{bytes.NewReader(body)}, int64(len(body))
		}
		req = req.WithContext(context.Background())
		for name, v := range map[string]string{"Client-ID": clientID, "X-Project-ID": project, "X-Roles": roles, "Content-Type": contentType} {
			if v = strings.Trim(v, " \t"); v != "" {
				req.Header.Set(name, v)
			}
		}
		before, err := api.st.Digest()
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		api.h.ServeHTTP(rec, req)
		what := method + " " + path + "?" + query
		api.log.check(t)
		if rec.Code >= 500 && rec.Code != http.StatusNotImplemented {
			t.Fatalf("%s: %d %s", what, rec.Code, rec.Body.Bytes())
		}
		if rec.Code >= 400 {
			if b := rec.Body.Bytes(); len(b) > 0 && method != "HEAD" {
				var doc map[string]any
				if rec.Header().Get("Content-Type") != "application/json" || json.Unmarshal(b, &doc) != nil || doc["title"] == nil && doc["error"] == nil {
					t.Fatalf("%s: %d with a body that is not a Zaqar error: %q", what, rec.Code, b)
				}
			}
			after, err := api.st.Digest()
			if err != nil {
				t.Fatal(err)
			}
			if after != before {
				t.Fatalf("%s with body %q was refused (%d %s) but changed the store", what, body, rec.Code, rec.Body.Bytes())
			}
		}
	})
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }
