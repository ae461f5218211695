package httpapi_test

import (
	"fmt"
	"net/http"
	"reflect"
	"testing"

	"github.com/zaqar-raft/zaqar/testkit/testcluster"
)

// catalogRoundTrip drives the pool and flavor API through every node of
// the suite's cluster c (contract §12): admin rules, upstream shapes and
// errors, and the rules that tie pools to flavors. The pools are c itself
// and a second, one-node group.
func catalogRoundTrip(t *testing.T, n nodes, c *testcluster.Cluster) {
	admin := hdr("X-Roles", "admin")
	other := testcluster.Start(t, 1)
	uriA := "zaqar+raft://" + c.Nodes[0].RaftAddr
	uriB := "zaqar+raft://127.0.0.1:1," + other.Nodes[0].RaftAddr // the first address does not answer
	put := func(uri string, weight int) string { return fmt.Sprintf(`{"weight": %d, "uri": %q}`, weight, uri) }
	// Pools are admin-only; flavor reads are open to the project.
	n.next().expect(http.StatusForbidden, "GET", "/v2/pools", nil).apiError("Not authorized", "You are not authorized to complete this action.")
	n.next().expect(http.StatusForbidden, "PUT", "/v2/flavors/f", `{"pool_list": ["a"]}`)
	jsonEqual(t, "flavors of a new project", n.next().expect(http.StatusOK, "GET", "/v2/flavors", nil).Body, `{"flavors": [], "links": []}`)

	r := n.next().expect(http.StatusCreated, "PUT", "/v2/pools/a", put(uriA, 100), admin)
	if loc := r.Header.Get("Location"); loc != "/v2/pools/a" {
		t.Fatalf("Location %q", loc)
	}
	n.next().expect(http.StatusConflict, "PUT", "/v2/pools/a", put(uriB, 1), admin).errorLike("Resource conflict", "already exists")
	// The group is registered, whichever of its members the uri names.
	n.next().expect(http.StatusConflict, "PUT", "/v2/pools/b", put("zaqar+raft://"+c.Nodes[2].RaftAddr, 1), admin).errorLike("Resource conflict", "pool a")
	n.next().expect(http.StatusBadRequest, "PUT", "/v2/pools/b", put("zaqar+raft://127.0.0.1:1", 1), admin).apiError("Invalid request body", "cannot connect to zaqar+raft://127.0.0.1:1")
	for _, bad := range []string{
		`{"weight": 1, "uri": "http://x"}`,
		`{"weight": 1, "uri": "zaqar+raft://host"}`,
		`{"weight": 1, "uri": "zaqar+raft://host:0"}`,
		`{"weight": -1, "uri": "zaqar+raft://h:1"}`,
		`{"weight": 4294967296, "uri": "zaqar+raft://h:1"}`,
		`{"weight": "1", "uri": "zaqar+raft://h:1"}`,
		`{"uri": "zaqar+raft://h:1"}`,
		`{"weight": 1, "uri": "zaqar+raft://h:1", "group": "g"}`,
		`{"weight": 1, "uri": "zaqar+raft://h:1", "options": []}`,
		`[]`,
	} {
		n.next().expect(http.StatusBadRequest, "PUT", "/v2/pools/b", bad, admin).errorLike("Invalid request body", "")
	}
	n.next().expect(http.StatusNotFound, "GET", "/v2/pools/b", nil, admin)

	jsonEqual(t, "pool a", n.next().expect(http.StatusOK, "GET", "/v2/pools/a", nil, admin).Body,
		`{"name": "a", "flavor": null, "uri": "`+uriA+`", "weight": 100, "href": "/v2/pools/a"}`)
	jsonEqual(t, "pool a detailed", n.next().expect(http.StatusOK, "GET", "/v2/pools/a?detailed=true", nil, admin).Body,
		`{"name": "a", "flavor": null, "uri": "`+uriA+`", "weight": 100, "href": "/v2/pools/a", "options": {}}`)
	n.next().expect(http.StatusBadRequest, "PATCH", "/v2/pools/a", `{}`, admin).errorLike("Invalid request body", "needs to be specified")
	n.next().expect(http.StatusNotFound, "PATCH", "/v2/pools/zz", `{"weight": 1}`, admin)
	jsonEqual(t, "pool a at weight 0", n.next().expect(http.StatusOK, "PATCH", "/v2/pools/a", `{"weight": 0, "options": {"k": [1]}}`, admin).Body,
		`{"name": "a", "flavor": null, "uri": "`+uriA+`", "weight": 0, "href": "/v2/pools/a"}`)
	n.next().expect(http.StatusCreated, "PUT", "/v2/pools/b", fmt.Sprintf(`{"weight": 5, "uri": %q, "options": {"x": 1}}`, uriB), admin)

	var page struct {
		Pools []struct{ Name, Href string }
		Links []struct{ Rel, Href string }
	}
	n.next().expect(http.StatusOK, "GET", "/v2/pools?limit=1", nil, admin).decode(&page)
	if len(page.Pools) != 1 || page.Pools[0].Name != "a" || page.Pools[0].Href != "/v2/pools/a" || len(page.Links) != 1 || page.Links[0].Rel != "next" {
		t.Fatalf("first page of pools: %+v", page)
	}
	page.Pools = nil
	n.next().expect(http.StatusOK, "GET", page.Links[0].Href, nil, admin).decode(&page)
	if len(page.Pools) != 1 || page.Pools[0].Name != "b" {
		t.Fatalf("second page of pools: %+v", page)
	}

	// A flavor's pools are the pools naming it.
	n.next().expect(http.StatusBadRequest, "PUT", "/v2/flavors/f", `{"pool_list": ["a", "nope"]}`, admin).errorLike("Unable to create", "nope")
	n.next().expect(http.StatusBadRequest, "PUT", "/v2/flavors/f", `{"pool_list": []}`, admin).errorLike("Unable to create", "empty")
	n.next().expect(http.StatusBadRequest, "PUT", "/v2/flavors/f", `{"capabilities": {}}`, admin).errorLike("Invalid request body", "pool_list")
	n.next().expect(http.StatusCreated, "PUT", "/v2/flavors/f", `{"pool_list": ["a"], "capabilities": {}}`, admin)
	jsonEqual(t, "flavor f", n.next().expect(http.StatusOK, "GET", "/v2/flavors/f", nil).Body,
		`{"name": "f", "pool_list": ["a"], "capabilities": ["FIFO", "CLAIMS", "DURABILITY", "AOD", "HIGH_THROUGHPUT"], "href": "/v2/flavors/f"}`)
	if got := n.next().expect(http.StatusOK, "GET", "/v2/pools/a", nil, admin).object()["flavor"]; got != "f" {
		t.Fatalf("pool a's flavor %v, want f", got)
	}
	n.next().inProject("other").expect(http.StatusNotFound, "GET", "/v2/flavors/f", nil)
	n.next().expect(http.StatusForbidden, "DELETE", "/v2/pools/a", nil, admin).apiError("Unable to delete", "This pool is used by flavors f; It cannot be deleted.")

	n.next().expect(http.StatusNotFound, "PATCH", "/v2/flavors/g", `{"pool_list": ["a"]}`, admin)
	var flavor struct {
		PoolList []string `json:"pool_list"`
	}
	n.next().expect(http.StatusOK, "PATCH", "/v2/flavors/f", `{"pool_list": ["b"]}`, admin).decode(&flavor)
	if !reflect.DeepEqual(flavor.PoolList, []string{"b"}) {
		t.Fatalf("flavor f after PATCH: pool_list %v", flavor.PoolList)
	}
	jsonEqual(t, "flavor listing", n.next().expect(http.StatusOK, "GET", "/v2/flavors", nil).Body,
		`{"flavors": [{"name": "f", "pool_list": ["b"], "href": "/v2/flavors/f"}], "links": [{"rel": "next", "href": "/v2/flavors?limit=10&marker=f"}]}`)
	n.next().expect(http.StatusNoContent, "DELETE", "/v2/pools/a", nil, admin).empty()
	n.next().expect(http.StatusNotFound, "GET", "/v2/pools/a", nil, admin)
	n.next().expect(http.StatusNoContent, "DELETE", "/v2/flavors/f", nil, admin).empty()
	n.next().expect(http.StatusNoContent, "DELETE", "/v2/flavors/f", nil, admin).empty()
	n.next().expect(http.StatusNoContent, "DELETE", "/v2/pools/b", nil, admin).empty()
	jsonEqual(t, "pools at the end", n.next().expect(http.StatusOK, "GET", "/v2/pools", nil, admin).Body, `{"pools": [], "links": []}`)
}
