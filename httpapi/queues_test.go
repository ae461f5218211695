package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// reservedDefaults is what GET shows for reserved keys that are not stored
// (contract §5.4).
const reservedDefaults = `"_max_messages_post_size": 262144, "_default_message_ttl": 3600,
	"_default_message_delay": 0, "_dead_letter_queue": null, "_dead_letter_queue_messages_ttl": null,
	"_max_claim_count": null, "_enable_encrypt_messages": false`

// withDefaults returns a metadata document: the given members (JSON object
// members, "" for none) plus the reserved defaults.
func withDefaults(members string) string {
	if members == "" {
		return "{" + reservedDefaults + "}"
	}
	return "{" + members + ", " + reservedDefaults + "}"
}

// paddedObject returns a JSON object of exactly size bytes.
func paddedObject(size int) string {
	const frame = `{"pad": ""}`
	return `{"pad": "` + strings.Repeat("x", size-len(frame)) + `"}`
}

type queueListing struct {
	Queues []struct {
		Name     string          `json:"name"`
		Href     string          `json:"href"`
		Metadata json.RawMessage `json:"metadata"`
	} `json:"queues"`
	Links []struct {
		Rel  string `json:"rel"`
		Href string `json:"href"`
	} `json:"links"`
	Count *int `json:"count"`
}

func (l queueListing) names() []string {
	out := make([]string, len(l.Queues))
	for i, q := range l.Queues {
		out[i] = q.Name
	}
	return out
}

func listQueues(c *client, path string) (queueListing, *reply) {
	c.t.Helper()
	r := c.expect(http.StatusOK, "GET", path, nil)
	var l queueListing
	r.decode(&l)
	if raw := r.raw(); string(raw["links"]) == "null" || raw["links"] == nil || raw["queues"] == nil || string(raw["queues"]) == "null" {
		c.t.Fatalf("%s: queues and links must be arrays: %s", path, r.Body)
	}
	for _, q := range l.Queues {
		if q.Href != "/v2/queues/"+q.Name {
			c.t.Fatalf("%s: queue %s href %q", path, q.Name, q.Href)
		}
	}
	return l, r
}

// TestQueues covers the queue resource (contract §5) through every node.
func TestQueues(t *testing.T) {
	s := startSuite(t)

	s.run(t, "PUT creates with 201, then answers 204, always with a root-relative Location", func(t *testing.T, n nodes) {
		r := n.f1.expect(http.StatusCreated, "PUT", "/v2/queues/jobs", `{"description": "first"}`).empty()
		if loc := r.Header.Get("Location"); loc != "/v2/queues/jobs" {
			t.Fatalf("Location %q", loc)
		}
		for _, c := range []*client{n.f2, n.leader} {
			r := c.expect(http.StatusNoContent, "PUT", "/v2/queues/jobs", `{"description": "second", "_default_message_ttl": 120}`).empty()
			if loc := r.Header.Get("Location"); loc != "/v2/queues/jobs" {
				t.Fatalf("Location %q", loc)
			}
		}
		// The metadata of an existing queue is neither merged nor replaced.
		jsonEqual(t, "metadata", n.f2.expect(http.StatusOK, "GET", "/v2/queues/jobs", nil).Body, withDefaults(`"description": "first"`))
		// No body, an empty body and a chunked body all mean {}.
		n.f1.expect(http.StatusCreated, "PUT", "/v2/queues/nobody", nil)
		n.f2.expect(http.StatusCreated, "PUT", "/v2/queues/emptybody", "")
		n.leader.expect(http.StatusCreated, "PUT", "/v2/queues/chunked", `{"c": true}`, chunked())
		jsonEqual(t, "chunked metadata", n.f1.expect(http.StatusOK, "GET", "/v2/queues/chunked", nil).Body, withDefaults(`"c": true`))
		jsonEqual(t, "empty metadata", n.f1.expect(http.StatusOK, "GET", "/v2/queues/emptybody", nil).Body, withDefaults(""))
	})

	s.run(t, "PUT rejects arrays, scalars and metadata over 65536 bytes without creating the queue", func(t *testing.T, n nodes) {
		n.next().expect(http.StatusBadRequest, "PUT", "/v2/queues/bad", `[{"a": 1}]`).apiError("Invalid request body", "Document type not supported.")
		for _, body := range []string{`"x"`, `42`, `null`, `true`} {
			n.next().expect(http.StatusBadRequest, "PUT", "/v2/queues/bad", body).apiError("Invalid request body", "Request body could not be parsed.")
		}
		n.next().expect(http.StatusBadRequest, "PUT", "/v2/queues/bad", paddedObject(65537)).
			apiError("Invalid API request", "Queue metadata is too large. Max size: 65536")
		n.next().expect(http.StatusBadRequest, "PUT", "/v2/queues/bad", paddedObject(200000), chunked()).
			apiError("Invalid API request", "Queue metadata is too large. Max size: 65536")
		n.f1.expect(http.StatusNotFound, "HEAD", "/v2/queues/bad", nil)
		n.f2.expect(http.StatusCreated, "PUT", "/v2/queues/edge", paddedObject(65536))
		if pad := n.f1.expect(http.StatusOK, "GET", "/v2/queues/edge", nil).object()["pad"].(string); len(pad) != 65536-11 {
			t.Fatalf("stored pad has %d bytes", len(pad))
		}
	})

	s.run(t, "the names . and .. are refused on every queue route", func(t *testing.T, n nodes) {
		const refused = `Queue names may not be "." or "..".`
		for _, name := range []string{".", ".."} {
			base := "/v2/queues/" + name
			n.next().expect(http.StatusBadRequest, "PUT", base, nil).apiError("Invalid queue identification", refused)
			n.next().expect(http.StatusBadRequest, "GET", base+"/stats", nil).apiError("Invalid queue identification", refused)
			n.next().expect(http.StatusBadRequest, "POST", base+"/messages", `{"messages": [{"body": 1}]}`).apiError("Invalid queue identification", refused)
			n.next().expect(http.StatusBadRequest, "POST", base+"/subscriptions", `{"subscriber": "http://127.0.0.1:9/x"}`).apiError("Invalid queue identification", refused)
		}
		// Dots inside or around other characters stay valid names.
		for _, name := range []string{"...", ".a", "a..b"} {
			n.next().expect(http.StatusCreated, "PUT", "/v2/queues/"+name, nil)
		}
		if l, _ := listQueues(n.f1, "/v2/queues"); strings.Join(l.names(), " ") != "... .a a..b" {
			t.Fatalf("queues %v", l.names())
		}
		n.next().expect(http.StatusBadRequest, "PUT", "/v2/queues/dlq", `{"_dead_letter_queue": "..", "_max_claim_count": 2}`).
			apiError("Invalid API request", "_dead_letter_queue must be a valid queue name.")
	})

	s.run(t, "reserved metadata keys are validated on PUT", func(t *testing.T, n nodes) {
		cases := []struct {
			meta string
			ok   bool
		}{
			{`{"_default_message_ttl": 60}`, true},
			{`{"_default_message_ttl": 1209600}`, true},
			{`{"_default_message_ttl": null}`, true},
			{`{"_default_message_ttl": 59}`, false},
			{`{"_default_message_ttl": 1209601}`, false},
			{`{"_default_message_ttl": 0}`, false},
			{`{"_default_message_ttl": "3600"}`, false},
			{`{"_default_message_ttl": 3600.5}`, false},
			{`{"_default_message_ttl": true}`, false},
			{`{"_max_messages_post_size": 1}`, true},
			{`{"_max_messages_post_size": 262144}`, true},
			{`{"_max_messages_post_size": 0}`, false},
			{`{"_max_messages_post_size": -1}`, false},
			{`{"_max_messages_post_size": 262145}`, false},
			{`{"_max_messages_post_size": "big"}`, false},
			{`{"_default_message_delay": 0}`, true},
			{`{"_default_message_delay": 900}`, true},
			{`{"_default_message_delay": -1}`, false},
			{`{"_default_message_delay": 901}`, false},
			{`{"_default_message_delay": "5"}`, false},
			{`{"_dead_letter_queue_messages_ttl": 60}`, true},
			{`{"_dead_letter_queue_messages_ttl": 1209600}`, true},
			{`{"_dead_letter_queue_messages_ttl": 59}`, false},
			{`{"_dead_letter_queue_messages_ttl": 1209601}`, false},
			{`{"_dead_letter_queue_messages_ttl": "x"}`, false},
			{`{"_max_claim_count": 5}`, true},
			{`{"_max_claim_count": 0}`, true},
			{`{"_max_claim_count": -1}`, true},
			{`{"_max_claim_count": "5"}`, false},
			{`{"_max_claim_count": 1.5}`, false},
			{`{"_enable_encrypt_messages": false}`, true},
			{`{"_enable_encrypt_messages": "yes"}`, false},
			{`{"_enable_encrypt_messages": 1}`, false},
			// This cluster has no message encryption key (encryption_test.go
			// covers clusters with one).
			{`{"_enable_encrypt_messages": true}`, false},
			{`{"_dead_letter_queue": "dlq"}`, true},
			{`{"_dead_letter_queue": null}`, true},
			{`{"_retry_policy": {}}`, true},
			{`{"_retry_policy": {"minimum_delay": 5, "maximum_delay": 30, "retry_backoff_function": "linear"}}`, true},
			{`{"_retry_policy": "x"}`, false},
			{`{"_retry_policy": {"minimum_delay": 30, "maximum_delay": 10}}`, false},
			{`{"_retry_policy": {"retry_backoff_function": "cubic"}}`, false},
			{`{"_custom": [1, 2], "node": 31, "_x": {"y": null}}`, true},
		}
		for i, tc := range cases {
			q := fmt.Sprintf("meta%d", i)
			r := n.next().do("PUT", "/v2/queues/"+q, tc.meta)
			if tc.ok {
				r.status(http.StatusCreated)
				continue
			}
			r.status(http.StatusBadRequest).errorLike("Invalid API request", "")
			n.next().expect(http.StatusNotFound, "HEAD", "/v2/queues/"+q, nil)
		}
	})

	s.run(t, "GET fills reserved defaults for missing or falsy keys and answers a missing queue with the defaults", func(t *testing.T, n nodes) {
		jsonEqual(t, "missing queue", n.f1.expect(http.StatusOK, "GET", "/v2/queues/ghost", nil).Body, withDefaults(""))
		n.f2.expect(http.StatusNotFound, "HEAD", "/v2/queues/ghost", nil)
		n.leader.expect(http.StatusCreated, "PUT", "/v2/queues/described", `{"description": "x"}`)
		jsonEqual(t, "described", n.f1.expect(http.StatusOK, "GET", "/v2/queues/described", nil).Body, withDefaults(`"description": "x"`))
		n.f2.expect(http.StatusCreated, "PUT", "/v2/queues/falsy", `{"_default_message_delay": 0, "_dead_letter_queue": "",
			"_max_claim_count": 0, "_enable_encrypt_messages": false, "_dead_letter_queue_messages_ttl": null, "_flavor": "gold"}`)
		jsonEqual(t, "falsy", n.leader.expect(http.StatusOK, "GET", "/v2/queues/falsy", nil).Body, withDefaults(`"_flavor": "gold"`))
		n.f1.expect(http.StatusCreated, "PUT", "/v2/queues/set", `{"_max_messages_post_size": 1000, "_default_message_ttl": 120,
			"_default_message_delay": 5, "_dead_letter_queue": "dlq", "_dead_letter_queue_messages_ttl": 600,
			"_max_claim_count": 3, "_retry_policy": {"minimum_delay": 1, "maximum_delay": 20}}`)
		jsonEqual(t, "set", n.f2.expect(http.StatusOK, "GET", "/v2/queues/set", nil).Body, `{"_max_messages_post_size": 1000,
			"_default_message_ttl": 120, "_default_message_delay": 5, "_dead_letter_queue": "dlq",
			"_dead_letter_queue_messages_ttl": 600, "_max_claim_count": 3, "_enable_encrypt_messages": false,
			"_retry_policy": {"minimum_delay": 1, "maximum_delay": 20}}`)
	})

	s.run(t, "HEAD answers 204 for an existing queue and 404 for a missing one, without bodies", func(t *testing.T, n nodes) {
		n.f1.expect(http.StatusNotFound, "HEAD", "/v2/queues/h", nil).empty()
		n.f2.expect(http.StatusCreated, "PUT", "/v2/queues/h", nil)
		for _, c := range n.all {
			c.expect(http.StatusNoContent, "HEAD", "/v2/queues/h", nil).empty()
		}
		n.leader.expect(http.StatusNoContent, "DELETE", "/v2/queues/h", nil)
		n.f1.expect(http.StatusNotFound, "HEAD", "/v2/queues/h", nil).empty()
	})

	s.run(t, "list pages in byte order with exact next links until an empty page", func(t *testing.T, n nodes) {
		names := []string{"a0", "a1", "a2", "a3", "a4", "B", "b-other", "Zed", "_x", "a10"}
		for _, name := range names {
			n.next().expect(http.StatusCreated, "PUT", "/v2/queues/"+name, nil)
		}
		sort.Strings(names)
		l, _ := listQueues(n.f1, "/v2/queues?limit=2&detailed=true")
		if len(l.Links) != 1 || l.Links[0].Rel != "next" || l.Links[0].Href != "/v2/queues?limit=2&detailed=true&marker="+names[1] {
			t.Fatalf("first page links %+v", l.Links)
		}
		var seen []string
		path := "/v2/queues?limit=3"
		for pages := 0; ; pages++ {
			if pages > 10 {
				t.Fatalf("paging does not end: %v", seen)
			}
			l, r := listQueues(n.next(), path)
			if len(l.Queues) == 0 {
				if string(r.raw()["links"]) != "[]" {
					t.Fatalf("empty page links %s", r.raw()["links"])
				}
				break
			}
			seen = append(seen, l.names()...)
			last := l.Queues[len(l.Queues)-1].Name
			if len(l.Links) != 1 || l.Links[0].Rel != "next" || l.Links[0].Href != "/v2/queues?limit=3&marker="+last {
				t.Fatalf("page links %+v", l.Links)
			}
			if l.Queues[0].Metadata != nil || l.Count != nil {
				t.Fatalf("undetailed page has metadata or count: %s", r.Body)
			}
			path = l.Links[0].Href
		}
		if fmt.Sprint(seen) != fmt.Sprint(names) {
			t.Fatalf("paged names %v, want %v", seen, names)
		}
		// Default page size is 10; the marker is exclusive.
		l, _ = listQueues(n.f2, "/v2/queues")
		if fmt.Sprint(l.names()) != fmt.Sprint(names[:10]) {
			t.Fatalf("default page %v", l.names())
		}
		l, _ = listQueues(n.leader, "/v2/queues?marker=a2&limit=20")
		if fmt.Sprint(l.names()) != fmt.Sprint(names[sort.SearchStrings(names, "a3"):]) {
			t.Fatalf("after a2: %v", l.names())
		}
		for _, limit := range []string{"0", "-1", "21", "1000"} {
			n.next().expect(http.StatusBadRequest, "GET", "/v2/queues?limit="+limit, nil).
				apiError("Invalid API request", "Limit must be at least 1 and no greater than 20.")
		}
		listQueues(n.next(), "/v2/queues?limit=20")
	})

	s.run(t, "list shows metadata with defaults only when detailed", func(t *testing.T, n nodes) {
		n.f1.expect(http.StatusCreated, "PUT", "/v2/queues/d1", `{"node": 31}`)
		l, _ := listQueues(n.f2, "/v2/queues?detailed=true")
		if len(l.Queues) != 1 {
			t.Fatalf("queues %v", l.names())
		}
		jsonEqual(t, "detailed metadata", l.Queues[0].Metadata, withDefaults(`"node": 31`))
		l, r := listQueues(n.leader, "/v2/queues?detailed=false")
		if l.Queues[0].Metadata != nil || l.Links[0].Href != "/v2/queues?detailed=false&marker=d1" {
			t.Fatalf("detailed=false: %s", r.Body)
		}
	})

	s.run(t, "list filters by name substring and metadata and counts with with_count", func(t *testing.T, n nodes) {
		_, r := listQueues(n.f1, "/v2/queues?with_count=true")
		if _, has := r.raw()["count"]; has {
			t.Fatalf("count present for an empty project: %s", r.Body)
		}
		meta := map[string]string{
			"red-31":   `{"color": "red", "node": 31}`,
			"blue-31":  `{"color": "blue", "node": 31}`,
			"red-32":   `{"color": "red", "node": 32}`,
			"plain":    ``,
			"reddish":  `{"node": "31"}`,
			"xred-31x": `{"node": 31.5}`,
		}
		for name, m := range meta {
			var body any
			if m != "" {
				body = m
			}
			n.next().expect(http.StatusCreated, "PUT", "/v2/queues/"+name, body)
		}
		cases := []struct {
			query string
			want  []string
		}{
			{"name=red", []string{"red-31", "red-32", "reddish", "xred-31x"}},
			{"name=-3", []string{"blue-31", "red-31", "red-32", "xred-31x"}},
			{"name=.", nil}, // a literal substring, not a regular expression
			{"node=31", []string{"blue-31", "red-31"}},
			{"node=31&color=red", []string{"red-31"}},
			{"color=red&name=32", []string{"red-32"}},
			{"color=green", nil},
		}
		for _, tc := range cases {
			l, r := listQueues(n.next(), "/v2/queues?"+tc.query+"&with_count=true")
			if fmt.Sprint(l.names()) != fmt.Sprint(tc.want) && !(len(tc.want) == 0 && len(l.Queues) == 0) {
				t.Fatalf("%s: %v, want %v", tc.query, l.names(), tc.want)
			}
			if l.Count == nil || *l.Count != len(meta) {
				t.Fatalf("%s: count %v, want %d (count ignores filters): %s", tc.query, l.Count, len(meta), r.Body)
			}
			if len(tc.want) == 0 {
				continue
			}
			// The next link carries the parameters sent, filters included.
			next, err := url.Parse(l.Links[0].Href)
			if err != nil || next.Path != "/v2/queues" {
				t.Fatalf("%s: next %q", tc.query, l.Links[0].Href)
			}
			want, _ := url.ParseQuery(tc.query + "&with_count=true&marker=" + tc.want[len(tc.want)-1])
			if fmt.Sprint(next.Query()) != fmt.Sprint(want) {
				t.Fatalf("%s: next query %v, want %v", tc.query, next.Query(), want)
			}
			l2, _ := listQueues(n.next(), l.Links[0].Href)
			if len(l2.Queues) != 0 || len(l2.Links) != 0 {
				t.Fatalf("%s: page after the last %+v", tc.query, l2)
			}
		}
		l, _ := listQueues(n.f2, "/v2/queues?name=red&limit=2")
		if l.Links[0].Href != "/v2/queues?limit=2&name=red&marker=red-32" {
			t.Fatalf("name link %q", l.Links[0].Href)
		}
	})

	s.run(t, "a queue's _message_schema refuses posts that do not match it, from every node", func(t *testing.T, n nodes) {
		n.leader.expect(http.StatusBadRequest, "PUT", "/v2/queues/typed", `{"_message_schema": {"type": "nonsense"}}`)
		n.f1.expect(http.StatusCreated, "PUT", "/v2/queues/typed", `{"_message_schema": {"type": "object", "required": ["id"]}}`)
		n.f2.expect(http.StatusCreated, "POST", "/v2/queues/typed/messages", `{"messages": [{"body": {"id": 1}}]}`)
		r := n.leader.expect(http.StatusBadRequest, "POST", "/v2/queues/typed/messages", `{"messages": [{"body": {"id": 2}}, {"body": {"no": "id"}}]}`)
		if d, _ := r.object()["description"].(string); !strings.HasPrefix(d, "Message 1 does not match the queue's _message_schema") {
			t.Fatalf("refusal says %q", d)
		}
		if page := n.f1.list("typed", "echo=true"); len(page.Messages) != 1 {
			t.Fatalf("the queue holds %d messages, want the one that matched", len(page.Messages))
		}
	})
	s.run(t, "PATCH needs exactly the json-patch media type", func(t *testing.T, n nodes) {
		n.f1.expect(http.StatusCreated, "PUT", "/v2/queues/pq", `{"a": 1}`)
		for _, opts := range [][]opt{
			nil,
			{hdr("Content-Type", "application/openstack-messaging-v2.0-json-patch; charset=utf-8")},
			{without("Content-Type")},
			{hdr("Content-Type", "application/json-patch+json")},
		} {
			r := n.next().expect(http.StatusUnsupportedMediaType, "PATCH", "/v2/queues/pq", `[{"op": "add", "path": "/metadata/b", "value": 2}]`, opts...).
				apiError("415 Unsupported Media Type", "Accepted media type for PATCH: {'Accept-Patch': 'application/openstack-messaging-v2.0-json-patch'}.")
			if ap := r.Header.Get("Accept-Patch"); ap != "application/openstack-messaging-v2.0-json-patch" {
				t.Fatalf("Accept-Patch %q", ap)
			}
		}
		jsonEqual(t, "unchanged", n.f2.expect(http.StatusOK, "GET", "/v2/queues/pq", nil).Body, withDefaults(`"a": 1`))
	})

	s.run(t, "PATCH validates the operation list before touching the queue", func(t *testing.T, n nodes) {
		n.f1.expect(http.StatusCreated, "PUT", "/v2/queues/pv", `{"a": 1}`)
		for _, q := range []string{"pv", "pv-missing"} {
			path := "/v2/queues/" + q
			n.next().expect(http.StatusBadRequest, "PATCH", path, nil, patchType()).apiError("Invalid request body", "PATCH body could not be empty for update.")
			n.next().expect(http.StatusBadRequest, "PATCH", path, "", patchType()).apiError("Invalid request body", "PATCH body could not be empty for update.")
			n.next().expect(http.StatusBadRequest, "PATCH", path, `{"op": "add", "path": "/metadata/a", "value": 2}`, patchType()).
				apiError("Invalid request body", "Request body must be a JSON array of operation objects.")
			n.next().expect(http.StatusBadRequest, "PATCH", path, `[{"op": "add", "path": "/metadata/pad", "value": "`+strings.Repeat("x", 65536)+`"}]`, patchType()).
				apiError("Invalid API request", "Queue metadata is too large. Max size: 65536")
			for _, op := range []string{
				`1`,
				`"add"`,
				`{"path": "/metadata/a", "value": 1}`,
				`{"op": null, "path": "/metadata/a", "value": 1}`,
				`{"op": "move", "path": "/metadata/a", "value": 1}`,
				`{"op": "ADD", "path": "/metadata/a", "value": 1}`,
				`{"op": "add", "value": 1}`,
				`{"op": "add", "path": 5, "value": 1}`,
				`{"op": "add", "path": "metadata/a", "value": 1}`,
				`{"op": "add", "path": "/metadata//a", "value": 1}`,
				`{"op": "add", "path": "/metadata/a/", "value": 1}`,
				`{"op": "add", "path": "/metadata/a~2", "value": 1}`,
				`{"op": "add", "path": "/metadata/a~", "value": 1}`,
				`{"op": "add", "path": "/metadata", "value": 1}`,
				`{"op": "add", "path": "/metadata/a/b", "value": 1}`,
				`{"op": "add", "path": "/meta/a", "value": 1}`,
				`{"op": "replace", "path": "/data/a", "value": 1}`,
				`{"op": "add", "path": "/metadata/a"}`,
				`{"op": "replace", "path": "/metadata/a"}`,
				`{"op": "remove", "path": "/metadata"}`,
				`{"op": "remove", "path": "/metadata/a/b"}`,
			} {
				// A valid operation first: nothing of the list may be applied.
				body := `[{"op": "add", "path": "/metadata/first", "value": 1}, ` + op + `]`
				n.next().expect(http.StatusBadRequest, "PATCH", path, body, patchType()).errorLike("Invalid request body", "")
			}
		}
		jsonEqual(t, "unchanged", n.f2.expect(http.StatusOK, "GET", "/v2/queues/pv", nil).Body, withDefaults(`"a": 1`))
		n.f1.expect(http.StatusNotFound, "HEAD", "/v2/queues/pv-missing", nil)
	})

	s.run(t, "PATCH applies add, replace and remove in order and returns the metadata with defaults", func(t *testing.T, n nodes) {
		n.f1.expect(http.StatusCreated, "PUT", "/v2/queues/pa", `{"a": 1, "b": 2, "gone": true}`)
		r := n.f2.expect(http.StatusOK, "PATCH", "/v2/queues/pa", `[
			{"op": "add", "path": "/metadata/c", "value": {"deep": [1, 2]}},
			{"op": "replace", "path": "/metadata/a", "value": 10},
			{"op": "remove", "path": "/metadata/b"},
			{"op": "add", "path": "/metadata/n", "value": null},
			{"op": "add", "path": "/metadata/x~1y~0z", "value": "escaped"},
			{"op": "add", "path": "/METADATA/_default_message_ttl", "value": 120},
			{"op": "add", "path": "/metadata/c", "value": "overwritten"},
			{"op": "remove", "path": "/anything/gone"}
		]`, patchType())
		want := `{"a": 10, "c": "overwritten", "n": null, "x/y~z": "escaped", "_default_message_ttl": 120,
			"_max_messages_post_size": 262144, "_default_message_delay": 0, "_dead_letter_queue": null,
			"_dead_letter_queue_messages_ttl": null, "_max_claim_count": null, "_enable_encrypt_messages": false}`
		jsonEqual(t, "PATCH result", r.Body, want)
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Fatalf("PATCH Content-Type %q", ct)
		}
		jsonEqual(t, "GET after PATCH", n.leader.expect(http.StatusOK, "GET", "/v2/queues/pa", nil).Body, want)
		// The new default TTL applies to posted messages.
		id := n.f1.post("pa", `1`)[0]
		var m message
		n.f2.expect(http.StatusOK, "GET", "/v2/queues/pa/messages/"+id, nil).decode(&m)
		if m.TTL != 120 {
			t.Fatalf("message ttl %d, want the patched default 120", m.TTL)
		}
	})

	s.run(t, "PATCH replace or remove of a missing key is 409 and applies nothing", func(t *testing.T, n nodes) {
		n.f1.expect(http.StatusCreated, "PUT", "/v2/queues/pc", `{"a": 1}`)
		n.f2.expect(http.StatusConflict, "PATCH", "/v2/queues/pc",
			`[{"op": "add", "path": "/metadata/z", "value": 1}, {"op": "replace", "path": "/metadata/nope", "value": 1}]`, patchType()).
			apiError("Resource conflict", "Can't replace non-existent object nope.")
		n.leader.expect(http.StatusConflict, "PATCH", "/v2/queues/pc",
			`[{"op": "remove", "path": "/metadata/a"}, {"op": "remove", "path": "/metadata/nope"}]`, patchType()).
			apiError("Resource conflict", "Can't remove non-existent object nope.")
		// A key removed earlier in the same list is missing for later operations.
		n.f1.expect(http.StatusConflict, "PATCH", "/v2/queues/pc",
			`[{"op": "remove", "path": "/metadata/a"}, {"op": "replace", "path": "/metadata/a", "value": 2}]`, patchType()).
			apiError("Resource conflict", "Can't replace non-existent object a.")
		jsonEqual(t, "unchanged", n.f2.expect(http.StatusOK, "GET", "/v2/queues/pc", nil).Body, withDefaults(`"a": 1`))
	})

	s.run(t, "PATCH treats reserved keys that are not stored as present, as python-zaqarclient and gophercloud need", func(t *testing.T, n nodes) {
		n.f1.expect(http.StatusCreated, "PUT", "/v2/queues/pz", `{"a": 1}`)
		// python-zaqarclient's Queue.metadata(new_meta={"a": 2, "b": 3}):
		// it reads the default-filled view and removes every key it saw
		// that is not in the new metadata, reserved defaults included.
		view := n.f2.expect(http.StatusOK, "GET", "/v2/queues/pz", nil).raw()
		newMeta := map[string]any{"a": 2, "b": 3}
		var ops []map[string]any
		for _, k := range keys(view) {
			if v, keep := newMeta[k]; keep {
				ops = append(ops, map[string]any{"op": "replace", "path": "/metadata/" + k, "value": v})
			} else {
				ops = append(ops, map[string]any{"op": "remove", "path": "/metadata/" + k})
			}
		}
		ops = append(ops, map[string]any{"op": "add", "path": "/metadata/b", "value": 3})
		r := n.leader.expect(http.StatusOK, "PATCH", "/v2/queues/pz", ops, patchType())
		jsonEqual(t, "client-style update", r.Body, withDefaults(`"a": 2, "b": 3`))
		// gophercloud replaces reserved keys that were never stored.
		r = n.f1.expect(http.StatusOK, "PATCH", "/v2/queues/pz", `[{"op": "replace", "path": "/metadata/_max_claim_count", "value": 5}]`, patchType())
		if v := r.object()["_max_claim_count"]; v != float64(5) {
			t.Fatalf("_max_claim_count %v", v)
		}
		// Removing a stored reserved key brings its default back.
		r = n.f2.expect(http.StatusOK, "PATCH", "/v2/queues/pz", `[{"op": "remove", "path": "/metadata/_max_claim_count"}]`, patchType())
		jsonEqual(t, "after remove", r.Body, withDefaults(`"a": 2, "b": 3`))
	})

	s.run(t, "PATCH whose result breaks the reserved rules is 400 and applies nothing", func(t *testing.T, n nodes) {
		n.f1.expect(http.StatusCreated, "PUT", "/v2/queues/pr", `{"a": 1, "_default_message_ttl": 120}`)
		for _, ops := range []string{
			`[{"op": "add", "path": "/metadata/x", "value": 1}, {"op": "add", "path": "/metadata/_default_message_ttl", "value": 10}]`,
			`[{"op": "add", "path": "/metadata/x", "value": 1}, {"op": "replace", "path": "/metadata/_default_message_delay", "value": 901}]`,
			`[{"op": "add", "path": "/metadata/x", "value": 1}, {"op": "add", "path": "/metadata/_enable_encrypt_messages", "value": "yes"}]`,
			`[{"op": "add", "path": "/metadata/pad", "value": "` + strings.Repeat("x", 65500) + `"}, {"op": "add", "path": "/metadata/pad2", "value": "` + strings.Repeat("y", 10) + `"}]`,
		} {
			n.next().expect(http.StatusBadRequest, "PATCH", "/v2/queues/pr", ops, patchType()).errorLike("Invalid API request", "")
		}
		// The combined metadata may exceed the limit even when the request does not.
		n.f2.expect(http.StatusOK, "PATCH", "/v2/queues/pr", `[{"op": "add", "path": "/metadata/pad", "value": "`+strings.Repeat("x", 40000)+`"}]`, patchType())
		n.leader.expect(http.StatusBadRequest, "PATCH", "/v2/queues/pr", `[{"op": "add", "path": "/metadata/pad2", "value": "`+strings.Repeat("y", 40000)+`"}]`, patchType()).
			apiError("Invalid API request", "Queue metadata is too large. Max size: 65536")
		m := n.f1.expect(http.StatusOK, "GET", "/v2/queues/pr", nil).object()
		if _, has := m["x"]; has || m["_default_message_ttl"] != float64(120) || m["pad2"] != nil || len(m["pad"].(string)) != 40000 {
			t.Fatalf("metadata changed by a rejected PATCH: x=%v ttl=%v pad2 present=%v", m["x"], m["_default_message_ttl"], m["pad2"] != nil)
		}
	})

	s.run(t, "PATCH on a missing queue is 404 and does not create it", func(t *testing.T, n nodes) {
		n.f1.expect(http.StatusNotFound, "PATCH", "/v2/queues/nosuch", `[{"op": "add", "path": "/metadata/a", "value": 1}]`, patchType()).
			errorLike("Not found", "")
		n.f2.expect(http.StatusNotFound, "HEAD", "/v2/queues/nosuch", nil)
	})

	s.run(t, "DELETE answers 204 even for a missing queue and a re-created queue starts clean", func(t *testing.T, n nodes) {
		n.f1.expect(http.StatusNoContent, "DELETE", "/v2/queues/never", nil).empty()
		n.f1.expect(http.StatusCreated, "PUT", "/v2/queues/dq", `{"_default_message_ttl": 120, "tag": "old"}`)
		msgs := n.f2.post("dq", `1`, `2`, `3`)
		cid, claimed := n.leader.claim("dq", "limit=1", "")
		if len(claimed) != 1 {
			t.Fatalf("claimed %d", len(claimed))
		}
		n.f2.expect(http.StatusNoContent, "DELETE", "/v2/queues/dq", nil).empty()
		n.leader.expect(http.StatusNotFound, "HEAD", "/v2/queues/dq", nil)
		n.f1.expect(http.StatusNoContent, "DELETE", "/v2/queues/dq", nil)
		n.leader.expect(http.StatusCreated, "PUT", "/v2/queues/dq", nil)
		jsonEqual(t, "re-created metadata", n.f1.expect(http.StatusOK, "GET", "/v2/queues/dq", nil).Body, withDefaults(""))
		if page := n.f2.as(newUUID()).list("dq", "include_claimed=true"); len(page.Messages) != 0 {
			t.Fatalf("re-created queue lists %v", messageIDs(page.Messages))
		}
		for _, id := range msgs {
			n.next().expect(http.StatusNotFound, "GET", "/v2/queues/dq/messages/"+id, nil)
		}
		n.next().expect(http.StatusNotFound, "GET", "/v2/queues/dq/claims/"+cid, nil)
		jsonEqual(t, "stats", n.next().expect(http.StatusOK, "GET", "/v2/queues/dq/stats", nil).Body, `{"messages": {"claimed": 0, "free": 0, "total": 0}}`)
		if id, _ := n.next().claim("dq", "", ""); id != "" {
			t.Fatalf("claimed %s in a re-created queue", id)
		}
		// Ids and markers of the new queue do not collide with the old ones.
		fresh := n.f1.post("dq", `"new"`)
		sameIDs(t, "new messages", messageIDs(n.f2.as(newUUID()).list("dq", "").Messages), fresh)
	})

	s.run(t, "stats count free and claimed messages and describe the oldest and newest", func(t *testing.T, n nodes) {
		zero := `{"messages": {"claimed": 0, "free": 0, "total": 0}}`
		jsonEqual(t, "missing queue", n.f1.expect(http.StatusOK, "GET", "/v2/queues/sq/stats", nil).Body, zero)
		n.f2.expect(http.StatusNotFound, "HEAD", "/v2/queues/sq", nil)
		n.f2.expect(http.StatusCreated, "PUT", "/v2/queues/sq", nil)
		jsonEqual(t, "empty queue", n.leader.expect(http.StatusOK, "GET", "/v2/queues/sq/stats", nil).Body, zero)
		before := time.Now().UTC().Add(-2 * time.Second)
		first := n.f1.post("sq", `1`, `2`)
		last := n.f2.post("sq", `3`)[0]
		after := time.Now().UTC().Add(2 * time.Second)
		if cid, _ := n.leader.claim("sq", "limit=1", ""); cid == "" {
			t.Fatal("nothing claimed")
		}
		var st struct {
			Messages struct {
				Claimed, Free, Total int
				Oldest, Newest       *struct {
					Href    string `json:"href"`
					Age     int64  `json:"age"`
					Created string `json:"created"`
				}
			} `json:"messages"`
		}
		// The caller's own messages count (no echo filtering).
		r := n.f1.expect(http.StatusOK, "GET", "/v2/queues/sq/stats", nil)
		r.decode(&st)
		var shape map[string]map[string]json.RawMessage
		r.decode(&shape)
		wantKeys(t, "stats", shape["messages"], "claimed", "free", "total", "oldest", "newest")
		if st.Messages.Claimed != 1 || st.Messages.Free != 2 || st.Messages.Total != 3 {
			t.Fatalf("counts %+v", st.Messages)
		}
		created := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)
		for _, e := range []struct {
			name string
			id   string
			edge *struct {
				Href    string `json:"href"`
				Age     int64  `json:"age"`
				Created string `json:"created"`
			}
		}{{"oldest", first[0], st.Messages.Oldest}, {"newest", last, st.Messages.Newest}} {
			var edge map[string]json.RawMessage
			if err := json.Unmarshal(shape["messages"][e.name], &edge); err != nil {
				t.Fatal(err)
			}
			wantKeys(t, e.name, edge, "href", "age", "created")
			if e.edge.Href != "/v2/queues/sq/messages/"+e.id {
				t.Fatalf("%s href %q, want message %s", e.name, e.edge.Href, e.id)
			}
			if e.edge.Age < 0 || e.edge.Age > 30 {
				t.Fatalf("%s age %d", e.name, e.edge.Age)
			}
			ts, err := time.Parse("2006-01-02T15:04:05Z", e.edge.Created)
			if !created.MatchString(e.edge.Created) || err != nil || ts.Before(before.Truncate(time.Second)) || ts.After(after) {
				t.Fatalf("%s created %q not within [%s, %s]", e.name, e.edge.Created, before, after)
			}
		}
	})

	s.run(t, "purge deletes the requested resources, claimed messages included", func(t *testing.T, n nodes) {
		n.f1.expect(http.StatusCreated, "PUT", "/v2/queues/pg", `{"keep": "me"}`)
		post3 := func() []string { return n.f2.post("pg", `1`, `2`, `3`) }
		post3()
		cid, _ := n.leader.claim("pg", "limit=2", "")
		n.f1.expect(http.StatusNoContent, "POST", "/v2/queues/pg/purge", nil).empty()
		jsonEqual(t, "stats after purge", n.f2.expect(http.StatusOK, "GET", "/v2/queues/pg/stats", nil).Body, `{"messages": {"claimed": 0, "free": 0, "total": 0}}`)
		n.leader.expect(http.StatusNotFound, "GET", "/v2/queues/pg/claims/"+cid, nil)
		// Purge keeps the queue and its metadata.
		if m := n.f1.expect(http.StatusOK, "GET", "/v2/queues/pg", nil).object(); m["keep"] != "me" {
			t.Fatalf("metadata after purge %v", m)
		}

		post3()
		n.f2.expect(http.StatusNoContent, "POST", "/v2/queues/pg/purge", `{"resource_types": ["subscriptions"]}`)
		if page := n.leader.as(newUUID()).list("pg", ""); len(page.Messages) != 3 {
			t.Fatalf("subscriptions purge removed messages: %v", messageIDs(page.Messages))
		}
		n.leader.claim("pg", "limit=1", "")
		n.leader.expect(http.StatusNoContent, "POST", "/v2/queues/pg/purge", `{"resource_types": ["messages", "subscriptions"]}`)
		jsonEqual(t, "stats", n.f1.expect(http.StatusOK, "GET", "/v2/queues/pg/stats", nil).Body, `{"messages": {"claimed": 0, "free": 0, "total": 0}}`)
		post3()
		n.f1.expect(http.StatusNoContent, "POST", "/v2/queues/pg/purge", `{"resource_types": ["messages"]}`)
		jsonEqual(t, "stats", n.f2.expect(http.StatusOK, "GET", "/v2/queues/pg/stats", nil).Body, `{"messages": {"claimed": 0, "free": 0, "total": 0}}`)

		post3()
		n.next().expect(http.StatusBadRequest, "POST", "/v2/queues/pg/purge", `{}`).
			apiError("Invalid API request", `Post body must contain key "resource_types".`)
		for _, body := range []string{`{"resource_types": ["bogus"]}`, `{"resource_types": ["messages", "claims"]}`, `{"resource_types": "messages"}`, `{"resource_types": [1]}`, `{"resource_types": []}`} {
			n.next().expect(http.StatusBadRequest, "POST", "/v2/queues/pg/purge", body).errorLike("Invalid API request", "")
		}
		n.next().expect(http.StatusBadRequest, "POST", "/v2/queues/pg/purge", `["messages"]`).errorLike("Invalid request body", "")
		if page := n.leader.as(newUUID()).list("pg", ""); len(page.Messages) != 3 {
			t.Fatalf("a rejected purge removed messages: %v", messageIDs(page.Messages))
		}
		n.f2.expect(http.StatusNoContent, "POST", "/v2/queues/pg-missing/purge", nil)
		n.f1.expect(http.StatusNotFound, "HEAD", "/v2/queues/pg-missing", nil)
	})
}
