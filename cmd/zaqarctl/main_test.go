package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zaqar-raft/zaqar/internal/tlsconf"
	"github.com/zaqar-raft/zaqar/testkit/testcluster"
)

func TestZaqarctl_StatusListsEveryMemberWithTheLeader(t *testing.T) {
	c := testcluster.Start(t, 3)
	leader := c.Leader()
	var out, errb bytes.Buffer
	if code := run([]string{"-addr", c.Followers()[0].URL(), "status"}, &out, &errb); code != 0 {
		t.Fatalf("status exited %d: %s", code, errb.String())
	}
	text := out.String()
	if !strings.Contains(text, "leader "+leader.ID) {
		t.Errorf("status does not name leader %s:\n%s", leader.ID, text)
	}
	for _, n := range c.Nodes {
		if !strings.Contains(text, n.ID) || !strings.Contains(text, n.RaftAddr) {
			t.Errorf("status lacks %s at %s:\n%s", n.ID, n.RaftAddr, text)
		}
	}
	if strings.Count(text, "Follower") != 2 || strings.Count(text, "Leader ") < 1 {
		t.Errorf("want one leader and two followers:\n%s", text)
	}
}

// TestZaqarctl_StatusShowsWhyAMemberHasNoStatus joins two members that
// answer the status call badly: one with an error page whose body is JSON,
// one claiming to be another node. Each row must still name the member and
// say what went wrong, not come out blank or as the impostor.
func TestZaqarctl_StatusShowsWhyAMemberHasNoStatus(t *testing.T) {
	c := testcluster.Start(t, 3)
	fake := func(status int, body string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_, _ = io.WriteString(w, body)
		}))
		t.Cleanup(srv.Close)
		return srv.Listener.Addr().String()
	}
	broken := fake(http.StatusInternalServerError, `{}`)
	impostor := fake(http.StatusOK, `{"id": "node1", "state": "Leader", "term": 99}`)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for id, addr := range map[string]string{"broken": broken, "ghost": impostor} {
		if err := c.Leader().Server.Node().Join(ctx, id, addr); err != nil {
			t.Fatalf("join %s: %v", id, err)
		}
	}

	var out, errb bytes.Buffer
	if code := run([]string{"-addr", c.Followers()[0].URL(), "status"}, &out, &errb); code != 0 {
		t.Fatalf("status exited %d: %s", code, errb.String())
	}
	rows := map[string]string{}
	for _, line := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			rows[f[0]] = line
		}
	}
	for id, want := range map[string][]string{
		"broken": {broken, "unknown", "error: status call answered 500 Internal Server Error"},
		"ghost":  {impostor, "unknown", `error: the node at ` + impostor + ` answered as "node1", not "ghost"`},
	} {
		row := rows[id]
		for _, w := range want {
			if !strings.Contains(row, w) {
				t.Errorf("row of %s lacks %q:\n%s", id, w, out.String())
			}
		}
	}
	if strings.Count(out.String(), "Leader") != 1 {
		t.Errorf("the impostor's status was shown as a member's:\n%s", out.String())
	}
}

func TestZaqarctl_TransferLeaderMovesLeadership(t *testing.T) {
	c := testcluster.Start(t, 3)
	target := c.Followers()[1]
	var out, errb bytes.Buffer
	if code := run([]string{"-addr", c.Followers()[0].URL(), "transfer-leader", target.ID}, &out, &errb); code != 0 {
		t.Fatalf("transfer-leader exited %d: %s", code, errb.String())
	}
	c.Eventually(10*time.Second, func() bool { return target.Server.Node().IsLeader() }, "leadership did not move to %s", target.ID)

	// Without an ID it sends {} (any successor): the node refuses an
	// empty body.
	out.Reset()
	if code := run([]string{"-addr", target.URL(), "transfer-leader"}, &out, &errb); code != 0 {
		t.Fatalf("transfer-leader without an ID exited %d: %s", code, errb.String())
	}
	c.Eventually(10*time.Second, func() bool { l := c.Leader(); return l != nil && l != target }, "leadership did not move away from %s", target.ID)
}

func TestZaqarctl_RemoveUnknownMemberFailsClearly(t *testing.T) {
	c := testcluster.Start(t, 3)
	var out, errb bytes.Buffer
	if code := run([]string{"-addr", c.Leader().URL(), "remove", "nobody"}, &out, &errb); code != 1 {
		t.Fatalf("remove of an unknown member exited %d, want 1", code)
	}
	if !strings.Contains(errb.String(), "404") || !strings.Contains(errb.String(), "nobody") {
		t.Fatalf("error does not say the member is unknown: %s", errb.String())
	}
}

func TestZaqarctl_UnreachableNodeAndBadUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"-addr", "http://127.0.0.1:1", "status"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "cannot reach") {
		t.Fatalf("unreachable node: exit %d, %q", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"join", "only-an-id"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "usage") {
		t.Fatalf("bad usage: exit %d, %q", code, errb.String())
	}
}

func TestZaqarctl_SnapshotSaveVerifyAndRestoreIntoAnEmptyDirectoryOnly(t *testing.T) {
	c := testcluster.Start(t, 3)
	dir := t.TempDir()
	file := filepath.Join(dir, "b.snap")
	var out, errb bytes.Buffer
	// The leader writes on its own now and then (GC, the signing secret):
	// the backup is compared with the source only if the source's state
	// did not change around it.
	var digest [32]byte
	for attempt := 1; ; attempt++ {
		digest = c.WaitConverged(30 * time.Second)
		out.Reset()
		if code := run([]string{"-addr", c.Followers()[0].URL(), "snapshot", "save", file}, &out, &errb); code != 0 {
			t.Fatalf("snapshot save exited %d: %s", code, errb.String())
		}
		if !strings.Contains(out.String(), "checksum verified") {
			t.Fatalf("snapshot save said %q", out.String())
		}
		if c.WaitConverged(30*time.Second) == digest {
			break
		}
		if attempt == 5 {
			t.Fatal("the source's state kept changing around the backup")
		}
	}
	out.Reset()
	if code := run([]string{"snapshot", "verify", file}, &out, &errb); code != 0 || !strings.Contains(out.String(), "valid, state at index") {
		t.Fatalf("snapshot verify exited %d: %q %q", code, out.String(), errb.String())
	}

	target := filepath.Join(dir, "node1")
	errb.Reset()
	if code := run([]string{"snapshot", "restore", file, target, "not-a-peer"}, &out, &errb); code != 1 {
		t.Fatalf("restore with a bad peer list exited %d: %s", code, errb.String())
	}
	if code := run([]string{"snapshot", "restore", file, target}, &out, &errb); code != 2 {
		t.Fatalf("restore without a peer list exited %d, want the usage", code)
	}
	out.Reset()
	if code := run([]string{"snapshot", "restore", file, target, "node1=127.0.0.1:1"}, &out, &errb); code != 0 {
		t.Fatalf("restore exited %d: %s", code, errb.String())
	}
	if want := fmt.Sprintf("digest %x", digest); !strings.Contains(out.String(), want) {
		t.Errorf("restore said %q; want the source's %s", out.String(), want)
	}
	if snaps, _ := filepath.Glob(filepath.Join(target, "raft", "snapshots", "*", "state.bin")); len(snaps) != 1 {
		t.Errorf("restore left %d Raft snapshots, want 1", len(snaps))
	}
	errb.Reset()
	if code := run([]string{"snapshot", "restore", file, target, "node1=127.0.0.1:1"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "existing node") {
		t.Fatalf("a second restore into the same directory exited %d: %s", code, errb.String())
	}
}

// TestZaqarctl_HTTPSNodeIsReachedWithTheCAAndClientCertificate runs
// zaqarctl against nodes whose REST ports serve https with certificates of
// a development CA and require client certificates from it: -ca (or
// ZAQAR_CA) verifies the node, -cert/-key (or ZAQAR_CERT/ZAQAR_KEY) are
// presented, a flag wins over its variable, and every missing or wrong
// piece fails with the reason.
func TestZaqarctl_HTTPSNodeIsReachedWithTheCAAndClientCertificate(t *testing.T) {
	dir := t.TempDir()
	if err := (tlsconf.DevelopmentSet{Dir: dir, Nodes: []string{"node1", "node2", "node3"}}).Write(); err != nil {
		t.Fatal(err)
	}
	other := t.TempDir() // another CA, whose client certificate the nodes refuse
	if err := (tlsconf.DevelopmentSet{Dir: other, Nodes: []string{"node1"}}).Write(); err != nil {
		t.Fatal(err)
	}
	c := testcluster.Start(t, 3, testcluster.WithRESTTLS(t, dir, tlsconf.RequireClientCert))
	url := c.Followers()[0].URL()
	if !strings.HasPrefix(url, "https://") {
		t.Fatalf("node URL %s is not https", url)
	}
	file := func(d, name string) string { return filepath.Join(d, name) }
	good := []string{"-ca", file(dir, "ca.pem"), "-cert", file(dir, "client.pem"), "-key", file(dir, "client-key.pem")}
	for _, tc := range []struct {
		name    string
		env     map[string]string
		args    []string
		code    int
		errText string
	}{
		{name: "flags", args: good},
		{name: "environment", env: map[string]string{
			"ZAQAR_CA": file(dir, "ca.pem"), "ZAQAR_CERT": file(dir, "client.pem"), "ZAQAR_KEY": file(dir, "client-key.pem")}},
		{name: "a flag wins over its variable", env: map[string]string{
			"ZAQAR_CA": file(other, "ca.pem"), "ZAQAR_CERT": file(other, "client.pem"), "ZAQAR_KEY": file(other, "client-key.pem")}, args: good},
		{name: "no CA: the system roots do not know the node", args: good[2:], code: 1, errText: "certificate signed by unknown authority"},
		{name: "no client certificate", args: good[:2], code: 1, errText: "certificate required"},
		{name: "a client certificate of another CA", args: []string{"-ca", file(dir, "ca.pem"),
			"-cert", file(other, "client.pem"), "-key", file(other, "client-key.pem")}, code: 1, errText: "bad certificate"},
		{name: "a certificate without its key", args: good[:4], code: 1, errText: "needs its key"},
		{name: "a CA file that is missing", args: []string{"-ca", file(dir, "nope.pem")}, code: 1, errText: "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var out, errb bytes.Buffer
			code := run(append(append([]string{"-addr", url}, tc.args...), "status"), &out, &errb)
			if code != tc.code || !strings.Contains(errb.String(), tc.errText) {
				t.Fatalf("exit %d (want %d), stderr %q (want it to say %q)", code, tc.code, errb.String(), tc.errText)
			}
			if tc.code == 0 && strings.Count(out.String(), "Follower") != 2 {
				t.Errorf("status over https:\n%s", out.String())
			}
		})
	}
}

// fakeNode serves /admin/cluster with the given answer and /v2/pools with
// pools (a 404 when nil), as a node of some pool would.
func fakeNode(t *testing.T, cluster string, pools http.HandlerFunc) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin/cluster", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, cluster)
	})
	if pools != nil {
		mux.HandleFunc("GET /v2/pools", pools)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

// groupJSON is an /admin/cluster answer: asked is the node answering,
// leader the leader's id, and each member "id@address" (the first is the
// leader, the others followers).
func groupJSON(asked, leader string, members ...string) string {
	var ms, ns []string
	for i, m := range members {
		id, addr, _ := strings.Cut(m, "@")
		ms = append(ms, fmt.Sprintf(`{"id":%q,"address":%q,"suffrage":"Voter"}`, id, addr))
		state := "Follower"
		if i == 0 {
			state = "Leader"
		}
		ns = append(ns, fmt.Sprintf(`{"id":%q,"address":%q,"state":%q,"term":3,"last_index":40,"commit_index":40,"applied_index":%d,"last_contact":"1ms"}`, id, addr, state, 40-i))
	}
	return fmt.Sprintf(`{"node":%q,"leader":%q,"members":[%s],"nodes":[%s]}`, asked, leader, strings.Join(ms, ","), strings.Join(ns, ","))
}

// TestZaqarctl_StatusListsEveryPoolAndTheMembersOfThoseReached runs
// status against a node of pool1 with -endpoints naming a node of pool2,
// a node of a group registered as no pool and a port where nothing
// answers. The pool listing comes in two pages. Every pool is listed with
// its weight, flavor and uri; pool1's members are the group shown first,
// pool2's those its node reports, pool3's could not be reached; the
// endpoints that did not help say why.
func TestZaqarctl_StatusListsEveryPoolAndTheMembersOfThoseReached(t *testing.T) {
	pools := func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Roles") != "admin" || r.Header.Get("Client-ID") == "" || r.Header.Get("X-Project-ID") == "" {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = fmt.Fprintf(w, `{"title":"headers","description":"%v"}`, r.Header)
			return
		}
		if r.URL.Query().Get("detailed") != "true" {
			t.Errorf("pool listing without detailed=true: %s", r.URL)
		}
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Query().Get("marker") {
		case "":
			_, _ = io.WriteString(w, `{"pools":[
				{"name":"pool2","uri":"zaqar+raft://10.0.1.1:7888,10.0.1.2:7888","weight":50,"flavor":"gold","options":{}},
				{"name":"pool1","uri":"zaqar+raft://10.0.0.1:7888","weight":100,"flavor":null,"options":{}}],
				"links":[{"rel":"next","href":"/v2/pools?limit=2&marker=pool2&detailed=true"}]}`)
		case "pool2":
			_, _ = io.WriteString(w, `{"pools":[{"name":"pool3","uri":"zaqar+raft://10.0.2.1:7888","weight":0,"flavor":null}],
				"links":[{"rel":"next","href":"/v2/pools?limit=2&marker=pool3&detailed=true"}]}`)
		default:
			_, _ = io.WriteString(w, `{"pools":[],"links":[]}`)
		}
	}
	addr := fakeNode(t, groupJSON("node2", "node1", "node1@10.0.0.1:7888", "node2@10.0.0.2:7888", "node3@10.0.0.3:7888"), pools)
	// pool2's uri names two of its members; the node asked is the third.
	other := fakeNode(t, groupJSON("node6", "node4", "node4@10.0.1.1:7888", "node5@10.0.1.2:7888", "node6@10.0.1.3:7888"), nil)
	stray := fakeNode(t, groupJSON("node9", "node9", "node9@10.0.9.1:7888"), nil)

	var out, errb bytes.Buffer
	args := []string{"-addr", addr, "-endpoints", other + "/," + stray + "," + addr + ", http://127.0.0.1:1", "status"}
	if code := run(args, &out, &errb); code != 0 {
		t.Fatalf("status exited %d: %s", code, errb.String())
	}
	// The error of the unreachable endpoint is the HTTP client's; only its
	// beginning is compared.
	got := out.String()
	if i := strings.Index(got, "endpoint http://127.0.0.1:1: not reached: cannot reach http://127.0.0.1:1: "); i >= 0 {
		if j := strings.IndexByte(got[i:], '\n'); j >= 0 {
			got = got[:i] + "endpoint http://127.0.0.1:1: not reached: cannot reach http://127.0.0.1:1: ..." + got[i+j:]
		}
	}
	want := `asked node2; leader node1
ID     ADDRESS        STATE     TERM  LAST  COMMIT  APPLIED  LAG  LAST CONTACT
node1  10.0.0.1:7888  Leader    3     40    40      40       0    1ms
node2  10.0.0.2:7888  Follower  3     40    40      39       1    1ms
node3  10.0.0.3:7888  Follower  3     40    40      38       2    1ms

pools: 3 registered
pool1: weight 100, flavor -, uri zaqar+raft://10.0.0.1:7888
  members: the group above (asked node2)
pool2: weight 50, flavor gold, uri zaqar+raft://10.0.1.1:7888,10.0.1.2:7888
  asked node6 at ` + other + `; leader node4
  ID     ADDRESS        STATE     TERM  LAST  COMMIT  APPLIED  LAG  LAST CONTACT
  node4  10.0.1.1:7888  Leader    3     40    40      40       0    1ms
  node5  10.0.1.2:7888  Follower  3     40    40      39       1    1ms
  node6  10.0.1.3:7888  Follower  3     40    40      38       2    1ms
pool3: weight 0, flavor -, uri zaqar+raft://10.0.2.1:7888
  members: not reachable from the given endpoints
endpoint ` + stray + `: node9's group (10.0.9.1:7888) is in no registered pool
endpoint http://127.0.0.1:1: not reached: cannot reach http://127.0.0.1:1: ...
`
	if got != want {
		t.Errorf("status said:\n%s\nwant:\n%s", got, want)
	}
}

// TestZaqarctl_StatusAddsNothingWithoutPools: a server without the pool
// API (404, 501) or a deployment that registered none shows the group
// alone, exactly as before pools; a listing that fails otherwise says so
// after the group; with a token no project header is sent (the token's
// project is the one); a pool no asked node belongs to is not reachable,
// with a hint when no -endpoints were given; -endpoints must be URLs.
func TestZaqarctl_StatusAddsNothingWithoutPools(t *testing.T) {
	group := groupJSON("node1", "node1", "node1@10.0.0.1:7888", "node2@10.0.0.2:7888")
	var alone bytes.Buffer
	if code := run([]string{"-addr", fakeNode(t, group, nil), "status"}, &alone, io.Discard); code != 0 {
		t.Fatalf("status without the pool API exited %d", code)
	}
	if strings.Contains(alone.String(), "pool") || strings.Count(alone.String(), "\n") != 4 {
		t.Fatalf("status without the pool API:\n%s", alone.String())
	}
	answer := func(status int, body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_, _ = io.WriteString(w, body)
		}
	}
	for _, tc := range []struct {
		name  string
		pools http.HandlerFunc
		args  []string
		more  string // after the group
	}{
		{name: "404", pools: answer(http.StatusNotFound, `{"title":"Not found"}`)},
		{name: "501", pools: answer(http.StatusNotImplemented, `{"title":"Not implemented"}`)},
		{name: "no pools", pools: answer(http.StatusOK, `{"pools":[],"links":[]}`)},
		{name: "no pools but -endpoints", pools: answer(http.StatusOK, `{"pools":[],"links":[]}`),
			args: []string{"-endpoints", "http://127.0.0.1:1"}, more: "\nno pools registered: -endpoints not asked\n"},
		{name: "503", pools: answer(http.StatusServiceUnavailable, `{"title":"Service Unavailable","description":"no quorum"}`),
			more: "\npools: cannot be listed: GET /v2/pools?detailed=true: 503 Service Unavailable: no quorum\n"},
		{name: "a token and a pool not reached", args: []string{"-token", "tok"},
			pools: func(w http.ResponseWriter, r *http.Request) {
				if _, ok := r.Header["X-Project-Id"]; ok || r.Header.Get("X-Auth-Token") != "tok" {
					answer(http.StatusForbidden, `{"title":"headers"}`)(w, r)
					return
				}
				answer(http.StatusOK, `{"pools":[{"name":"p","uri":"zaqar+raft://10.0.5.5:7888","weight":1,"flavor":null}],"links":[]}`)(w, r)
			},
			more: "\npools: 1 registered\np: weight 1, flavor -, uri zaqar+raft://10.0.5.5:7888\n" +
				"  members: not reachable from the given endpoints\n" +
				"the group above (asked node1) is in no registered pool\n" +
				"(to list the members of other pools, give -endpoints with the REST URL of a node of each)\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			args := append(append([]string{"-addr", fakeNode(t, group, tc.pools)}, tc.args...), "status")
			if code := run(args, &out, &errb); code != 0 {
				t.Fatalf("status exited %d: %s", code, errb.String())
			}
			if want := alone.String() + tc.more; out.String() != want {
				t.Errorf("status said:\n%s\nwant:\n%s", out.String(), want)
			}
		})
	}

	var errb bytes.Buffer
	if code := run([]string{"-endpoints", "127.0.0.1:8891", "status"}, io.Discard, &errb); code != 2 || !strings.Contains(errb.String(), `"127.0.0.1:8891" is not a URL`) {
		t.Fatalf("-endpoints without a scheme: exit %d, %q", code, errb.String())
	}
}

// TestZaqarctl_StatusShowsTheClusterRegisteredAsAPool registers a real
// cluster's own group as a pool (its Raft addresses in the uri): status
// lists the pool after the group and knows that group as its members.
func TestZaqarctl_StatusShowsTheClusterRegisteredAsAPool(t *testing.T) {
	c := testcluster.Start(t, 3)
	var addrs []string
	for _, n := range c.Nodes {
		addrs = append(addrs, n.RaftAddr)
	}
	uri := "zaqar+raft://" + strings.Join(addrs[:2], ",")
	// A pool can be registered once every node has told the others its
	// version (503 until then).
	register := func() (int, string) {
		req, err := http.NewRequest(http.MethodPut, c.Nodes[0].URL()+"/v2/pools/main", strings.NewReader(fmt.Sprintf(`{"uri":%q,"weight":7}`, uri)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Roles", "admin")
		req.Header.Set("X-Project-ID", "admin")
		req.Header.Set("Client-ID", ctlClientID)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	var status int
	var body string
	c.Eventually(30*time.Second, func() bool {
		status, body = register()
		return status != 0 && status < 500
	}, "registering the pool answered 5xx (or nothing) for 30s")
	if status != http.StatusCreated {
		t.Fatalf("registering the pool: %d %s", status, body)
	}

	// The node asked is the one whose address the uri does not name.
	var out, errb bytes.Buffer
	if code := run([]string{"-addr", c.Nodes[2].URL(), "status"}, &out, &errb); code != 0 {
		t.Fatalf("status exited %d: %s", code, errb.String())
	}
	want := "\npools: 1 registered\nmain: weight 7, flavor -, uri " + uri + "\n  members: the group above (asked " + c.Nodes[2].ID + ")\n"
	if !strings.HasSuffix(out.String(), want) || strings.Count(out.String(), "Follower") != 2 {
		t.Errorf("status said:\n%s\nwant it to end with:\n%s", out.String(), want)
	}
}
