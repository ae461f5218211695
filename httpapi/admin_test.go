package httpapi_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/zaqar-raft/zaqar/httpapi"
	"github.com/zaqar-raft/zaqar/service"
	"github.com/zaqar-raft/zaqar/testkit/testcluster"
)

// TestAdmin_TransferLeadershipMovesOnlyForAWellFormedBody sends
// transfer-leadership requests whose body is empty, blank or malformed to
// every node: each is a 400 with a Zaqar error body, and the leader and
// its term stay what they were. Then {} and {"id": ...} do move it.
func TestAdmin_TransferLeadershipMovesOnlyForAWellFormedBody(t *testing.T) {
	s := startSuite(t)
	n := s.nodes(t)
	admin := hdr("X-Roles", "admin")
	leader := s.c.Leader()
	term := leader.Server.Node().LocalStatus().Term
	const path = "/admin/cluster/transfer-leadership"
	const refusal = `Expected {"id": "node2"}, or {} for any successor.`

	for _, body := range []any{nil, "", " ", "\n\t \r\n", "{", "null", `{"id": ""}`, `{"id": null}`,
		`{"address": "127.0.0.1:1"}`, `{"id": "` + leader.ID + `", "extra": 1}`, `{"id": "x"} {}`} {
		for _, c := range n.all {
			c.expect(http.StatusBadRequest, "POST", path, body, admin).apiError("Invalid request body", refusal)
		}
	}
	// A transfer completes before its request is answered; give a stray
	// election time to show anyway.
	time.Sleep(500 * time.Millisecond)
	if now := s.c.Leader(); now != leader || now.Server.Node().LocalStatus().Term != term {
		t.Fatalf("refused requests moved leadership: leader %s (term %d), was %s (term %d)",
			now.ID, now.Server.Node().LocalStatus().Term, leader.ID, term)
	}

	n.f1.expect(http.StatusNoContent, "POST", path, `{}`, admin).empty()
	s.c.Eventually(10*time.Second, func() bool { l := s.c.Leader(); return l != nil && l != leader }, "{} did not move leadership from %s", leader.ID)
	target := s.c.Followers()[0]
	n.f2.expect(http.StatusNoContent, "POST", path, `{"id": "`+target.ID+`"}`, admin).empty()
	s.c.Eventually(10*time.Second, func() bool { return s.c.Leader() == target }, "leadership did not move to %s", target.ID)
}

// TestAdmin_JoinAndRemoveRefuseEmptyAndUnknownBodies checks the other
// membership calls share the strict body rules.
func TestAdmin_JoinAndRemoveRefuseEmptyAndUnknownBodies(t *testing.T) {
	c := testcluster.Start(t, 1)
	a := &client{t: t, http: http.DefaultClient, base: c.Nodes[0].URL(), node: c.Nodes[0].ID}
	admin := hdr("X-Roles", "admin")
	for _, body := range []any{nil, " ", `{"id": ""}`, `{"id": "n9", "address": null}`, `{"id": "n9", "port": 1}`} {
		a.expect(http.StatusBadRequest, "POST", "/admin/cluster/join", body, admin).
			apiError("Invalid request body", `Expected {"id": "node4", "address": "host:7888"}.`)
	}
	for _, body := range []any{nil, "\n", `{"id": "n9", "address": "h:1"}`} {
		a.expect(http.StatusBadRequest, "POST", "/admin/cluster/remove", body, admin).
			apiError("Invalid request body", `Expected {"id": "node4"}.`)
	}
	if m := c.Nodes[0].Server.Node().Members(); len(m) != 1 {
		t.Fatalf("members %v after refused requests", m)
	}
}

// drainingOps is a node that has been told to drain.
type drainingOps struct{}

func (drainingOps) Drain(context.Context) error { return nil }
func (drainingOps) Draining() bool              { return true }
func (drainingOps) Backup(context.Context, io.Writer) (uint64, error) {
	return 0, errors.New("not in this test")
}

// TestAdmin_ADrainingNodeRefusesClientsBeforeAuthenticationButServesOperators
// checks where draining sits among the REST layers: after the request id,
// before authentication. Client requests get 503 with Retry-After (no
// token needed to learn it: a load balancer's ping is refused too), while
// administration still authenticates and answers and metrics are served.
func TestAdmin_ADrainingNodeRefusesClientsBeforeAuthenticationButServesOperators(t *testing.T) {
	c := testcluster.Start(t, 1)
	ks := newKeystoneStub()
	ks.issue("tok-admin", "alpha", "admin")
	base := keystoneFront(t, c.Leader(), ks, func(cfg *httpapi.Config) { cfg.Operations = drainingOps{} })
	cl := tokenClient(t, base, "alpha")
	for _, rt := range []struct{ method, path string }{
		{"GET", "/v2/ping"}, {"HEAD", "/v2/ping"}, {"GET", "/v2/queues"}, {"POST", "/v2/queues/q/messages"}, {"GET", "/"}, {"GET", "/v2/no-such-route"},
	} {
		r := cl.do(rt.method, rt.path, nil)
		r.status(http.StatusServiceUnavailable)
		if rt.method != "HEAD" {
			r.apiError(service.TitleServiceUnavailable, "This node is draining before it stops. Please use another node.")
		}
		if r.Header.Get("Retry-After") != "1" || !strings.HasPrefix(r.Header.Get("X-Openstack-Request-Id"), "req-") {
			t.Fatalf("%s: headers %v", r.what, r.Header)
		}
	}
	cl.do("GET", "/admin/node", nil).is401()
	var node struct {
		Draining bool `json:"draining"`
	}
	cl.expect(http.StatusOK, "GET", "/admin/node", nil, authed("tok-admin")).decode(&node)
	if !node.Draining {
		t.Fatal("/admin/node does not report draining")
	}
	cl.expect(http.StatusOK, "GET", "/metrics", nil, bare())
}
