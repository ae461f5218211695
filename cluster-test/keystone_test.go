package clustertest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/endpoints"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/projects"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/roles"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/services"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/users"
	"github.com/gophercloud/gophercloud/v2/pagination"
)

// keystone is a real Keystone (Debian's python3-keystone, started by
// testdata/keystone.sh on 127.0.0.1 with an SQLite database), bootstrapped
// with the projects, users and roles the tests use and a "messaging"
// service whose public endpoint the tests point at a cluster node.
type keystone struct {
	URL      string // http://127.0.0.1:PORT/v3
	Dir      string
	cmd      *exec.Cmd
	done     chan struct{}
	identity *gophercloud.ServiceClient // the admin's identity client

	mu                  sync.Mutex
	messagingEndpointID string
}

// keystoneUser is a user the bootstrap creates, with a role in each of
// its projects.
type keystoneUser struct {
	name     string
	role     string
	projects []string
}

// keystoneUsers are the accounts of the shared Keystone. zaqar is the
// service account the nodes validate tokens with (Keystone's policy lets
// role "service" validate other users' tokens).
var keystoneUsers = []keystoneUser{
	{"zaqar", "service", []string{"service"}},
	{"alice", "member", []string{"alpha"}},
	{"bob", "member", []string{"beta"}},
	{"carol", "admin", []string{"alpha"}},
	{"dave", "member", []string{"gamma"}},
	{"cliuser", "member", []string{"cli-follower", "cli-leader"}},
	{"erin", "member", []string{"epsilon"}}, // trust subscriptions (trust_test.go)
}

// password is a test user's password.
func password(user string) string { return "pw-" + user }

const keystoneAdminPassword = "admin-secret"

// sharedKeystoneOnce starts one Keystone for the whole package run (it
// takes ten seconds or more); it lives in the directory TestMain removes
// and dies with the test binary.
var sharedKeystoneOnce struct {
	sync.Once
	ks  *keystone
	err error
}

// sharedKeystone returns the package's Keystone, starting it on first use.
func sharedKeystone(t *testing.T) *keystone {
	t.Helper()
	sharedKeystoneOnce.Do(func() {
		if serverBinary == "" {
			sharedKeystoneOnce.err = errors.New("TestMain did not run")
			return
		}
		sharedKeystoneOnce.ks, sharedKeystoneOnce.err = startKeystone(filepath.Join(filepath.Dir(serverBinary), "keystone"), 0, keystoneUsers)
	})
	if sharedKeystoneOnce.err != nil {
		t.Fatalf("keystone: %v", sharedKeystoneOnce.err)
	}
	return sharedKeystoneOnce.ks
}

// startKeystone starts and bootstraps a Keystone in dir. A non-zero
// tokenLifetime sets Keystone's token expiration.
func startKeystone(dir string, tokenLifetime time.Duration, accounts []keystoneUser) (*keystone, error) {
	for _, bin := range []string{"keystone-manage", "keystone-wsgi-public", "sqlite3"} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("%s is not installed (Debian packages python3-keystone and sqlite3): %v", bin, err)
		}
	}
	script, err := filepath.Abs(filepath.Join("testdata", "keystone.sh"))
	if err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		ports, err := freePorts(1)
		if err != nil {
			return nil, err
		}
		port := strings.TrimPrefix(ports[0], "127.0.0.1:")
		runDir := filepath.Join(dir, "run"+fmt.Sprint(attempt))
		ks, err := launchKeystone(script, runDir, port, tokenLifetime)
		if err != nil {
			lastErr = err
			continue
		}
		if err := ks.bootstrap(accounts); err != nil {
			ks.stop()
			return nil, fmt.Errorf("bootstrap: %w\n%s", err, ks.logTail())
		}
		return ks, nil
	}
	return nil, lastErr
}

func launchKeystone(script, dir, port string, tokenLifetime time.Duration) (*keystone, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cmd := exec.Command("bash", script, dir, port, keystoneAdminPassword)
	cmd.Env = pythonEnv()
	if tokenLifetime > 0 {
		cmd.Env = append(cmd.Env, fmt.Sprintf("KEYSTONE_TOKEN_EXPIRATION=%d", int(tokenLifetime.Seconds())))
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	// If the test binary dies, Keystone dies with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start keystone.sh: %w", err)
	}
	ks := &keystone{URL: "http://127.0.0.1:" + port + "/v3", Dir: dir, cmd: cmd, done: make(chan struct{})}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		ok := false
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == "READY" {
				ok = true
				break
			}
		}
		ready <- ok
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() {
		_ = cmd.Wait()
		close(ks.done)
	}()
	select {
	case ok := <-ready:
		if !ok {
			<-ks.done
			return nil, fmt.Errorf("keystone.sh failed: %s\n%s", stderr.String(), ks.logTail())
		}
	case <-time.After(3 * time.Minute):
		ks.stop()
		return nil, fmt.Errorf("keystone.sh printed no READY within 3 minutes\n%s", ks.logTail())
	}
	// READY is printed before the server execs; wait until it answers.
	err = poll(2*time.Minute, func() (bool, string) {
		if isClosed(ks.done) {
			return true, ""
		}
		resp, err := http.Get(ks.URL)
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
	if isClosed(ks.done) {
		return nil, fmt.Errorf("keystone exited while starting (port %s taken?)\n%s", port, ks.logTail())
	}
	if err != nil {
		ks.stop()
		return nil, fmt.Errorf("keystone does not answer: %v\n%s", err, ks.logTail())
	}
	return ks, nil
}

// stop kills Keystone and waits for it.
func (ks *keystone) stop() {
	if ks.cmd.Process != nil && !isClosed(ks.done) {
		_ = ks.cmd.Process.Kill()
	}
	<-ks.done
}

// logTail returns the end of Keystone's logs (for failure messages).
func (ks *keystone) logTail() string {
	var out strings.Builder
	for _, f := range []string{"manage.log", "server.log", "keystone.log"} {
		b, err := os.ReadFile(filepath.Join(ks.Dir, f))
		if err != nil {
			continue
		}
		fmt.Fprintf(&out, "---- %s ----\n%s\n", f, tailLines(string(b), 40))
	}
	return out.String()
}

// bootstrap logs in as the admin and creates the service role, the
// projects, users and role assignments, and the messaging service.
func (ks *keystone) bootstrap(accounts []keystoneUser) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	provider, err := openstack.AuthenticatedClient(ctx, gophercloud.AuthOptions{
		IdentityEndpoint: ks.URL, Username: "admin", Password: keystoneAdminPassword, DomainID: "default",
		Scope: &gophercloud.AuthScope{ProjectName: "admin", DomainID: "default"}, AllowReauth: true,
	})
	if err != nil {
		return fmt.Errorf("admin login: %w", err)
	}
	provider.HTTPClient = http.Client{Timeout: time.Minute}
	ks.identity, err = openstack.NewIdentityV3(provider, gophercloud.EndpointOpts{})
	if err != nil {
		return err
	}
	roleIDs := map[string]string{}
	err = roles.List(ks.identity, nil).EachPage(ctx, func(_ context.Context, p pagination.Page) (bool, error) {
		rs, err := roles.ExtractRoles(p)
		for _, r := range rs {
			roleIDs[r.Name] = r.ID
		}
		return true, err
	})
	if err != nil {
		return fmt.Errorf("list roles: %w", err)
	}
	projectIDs := map[string]string{}
	for _, a := range accounts {
		if roleIDs[a.role] == "" {
			r, err := roles.Create(ctx, ks.identity, roles.CreateOpts{Name: a.role}).Extract()
			if err != nil {
				return fmt.Errorf("create role %s: %w", a.role, err)
			}
			roleIDs[a.role] = r.ID
		}
		for _, p := range a.projects {
			if projectIDs[p] == "" {
				pr, err := projects.Create(ctx, ks.identity, projects.CreateOpts{Name: p, DomainID: "default"}).Extract()
				if err != nil {
					return fmt.Errorf("create project %s: %w", p, err)
				}
				projectIDs[p] = pr.ID
			}
		}
		u, err := users.Create(ctx, ks.identity, users.CreateOpts{Name: a.name, DomainID: "default", Password: password(a.name)}).Extract()
		if err != nil {
			return fmt.Errorf("create user %s: %w", a.name, err)
		}
		for _, p := range a.projects {
			if err := roles.Assign(ctx, ks.identity, roleIDs[a.role], roles.AssignOpts{UserID: u.ID, ProjectID: projectIDs[p]}).ExtractErr(); err != nil {
				return fmt.Errorf("assign %s to %s on %s: %w", a.role, a.name, p, err)
			}
			if a.role == "admin" {
				// Keystone's admin holds member too (role implication is
				// not set up by bootstrap); give it explicitly.
				_ = roles.Assign(ctx, ks.identity, roleIDs["member"], roles.AssignOpts{UserID: u.ID, ProjectID: projectIDs[p]}).ExtractErr()
			}
		}
	}
	svc, err := services.Create(ctx, ks.identity, services.CreateOpts{Type: "messaging", Name: "zaqar"}).Extract()
	if err != nil {
		return fmt.Errorf("create the messaging service: %w", err)
	}
	ep, err := endpoints.Create(ctx, ks.identity, endpoints.CreateOpts{
		Availability: gophercloud.AvailabilityPublic, Name: "zaqar", Region: "RegionOne", URL: "http://127.0.0.1:1", ServiceID: svc.ID,
	}).Extract()
	if err != nil {
		return fmt.Errorf("create the messaging endpoint: %w", err)
	}
	ks.messagingEndpointID = ep.ID
	return nil
}

// pointMessagingAt makes the catalog's messaging endpoint url.
func (ks *keystone) pointMessagingAt(t *testing.T, url string) {
	t.Helper()
	ks.mu.Lock()
	defer ks.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := endpoints.Update(ctx, ks.identity, ks.messagingEndpointID, endpoints.UpdateOpts{URL: url}).Extract(); err != nil {
		t.Fatalf("point the messaging endpoint at %s: %v", url, err)
	}
}

// token issues a token for user scoped to project.
func (ks *keystone) token(t *testing.T, user, project string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tok, err := tokens.Create(ctx, ks.identity, &tokens.AuthOptions{
		Username: user, Password: password(user), DomainID: "default",
		Scope: tokens.Scope{ProjectName: project, DomainID: "default"},
	}).ExtractTokenID()
	if err != nil || tok == "" {
		t.Fatalf("token for %s in %s: %q %v", user, project, tok, err)
	}
	return tok
}

// revoke revokes a token (DELETE /v3/auth/tokens).
func (ks *keystone) revoke(t *testing.T, token string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := tokens.Revoke(ctx, ks.identity, token).Err; err != nil {
		t.Fatalf("revoke: %v", err)
	}
}

// projectID returns the id of a project.
func (ks *keystone) projectID(t *testing.T, name string) string {
	t.Helper()
	var id string
	err := projects.List(ks.identity, projects.ListOpts{Name: name}).EachPage(context.Background(), func(_ context.Context, p pagination.Page) (bool, error) {
		ps, err := projects.ExtractProjects(p)
		if len(ps) > 0 {
			id = ps[0].ID
		}
		return false, err
	})
	if err != nil || id == "" {
		t.Fatalf("project %s: %q %v", name, id, err)
	}
	return id
}

// keystoneArgs are the zaqar-server flags of a node validating tokens
// with ks.
func keystoneArgs(ks *keystone, extra ...string) []string {
	return append([]string{
		"-auth-strategy", "keystone", "-keystone-auth-url", ks.URL, "-keystone-username", "zaqar",
		"-keystone-password", password("zaqar"), "-keystone-project", "service",
	}, extra...)
}

// tokenTransport adds X-Auth-Token to every request.
type tokenTransport struct{ token string }

func (tt tokenTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Auth-Token", tt.token)
	return http.DefaultTransport.RoundTrip(r)
}

// withToken returns a REST client of p that authenticates with token.
func withToken(p *proc, token, clientID string) *restClient {
	// No project header: the token's project is the caller's (a header
	// naming another one would be refused).
	rc := newRESTClient(p, clientID, "")
	rc.http = &http.Client{Timeout: 30 * time.Second, Transport: tokenTransport{token}}
	return rc
}

// launchProcs starts an n-node cluster of the binary with extra flags on
// every node, without waiting for anything.
func launchProcs(t *testing.T, n int, extraArgs ...string) *cluster {
	t.Helper()
	c := &cluster{t: t}
	base := t.TempDir()
	ports, err := freePorts(2 * n)
	if err != nil {
		t.Fatal(err)
	}
	var peers []string
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("node%d", i+1)
		p := &proc{ID: id, APIAddr: ports[2*i], RaftAddr: ports[2*i+1], DataDir: filepath.Join(base, id), LogPath: filepath.Join(base, id+".log")}
		c.Nodes = append(c.Nodes, p)
		peers = append(peers, id+"="+p.RaftAddr)
	}
	for _, p := range c.Nodes {
		p.args = append([]string{"-node-id", p.ID, "-data-dir", p.DataDir, "-api-addr", p.APIAddr, "-raft-addr", p.RaftAddr,
			"-bootstrap", strings.Join(peers, ","), "-raft-heartbeat-timeout", "500ms", "-raft-election-timeout", "500ms"},
			extraArgs...)
	}
	t.Cleanup(c.cleanup)
	for _, p := range c.Nodes {
		if err := p.start(); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// startKeystoneCluster starts an n-node cluster of the binary in Keystone
// mode and waits until the nodes agree on a leader (asking as an admin).
func startKeystoneCluster(t *testing.T, n int, ks *keystone, extraArgs ...string) *cluster {
	t.Helper()
	adminToken := ks.token(t, "carol", "alpha")
	c := launchProcs(t, n, keystoneArgs(ks, extraArgs...)...)
	c.waitUntil(90*time.Second, "the keystone-mode cluster to agree on a leader", func() (bool, string) {
		leader := ""
		for _, p := range c.Nodes {
			if !p.Running() {
				return false, p.ID + " exited"
			}
			r, err := withToken(p, adminToken, newClientID()).do(context.Background(), http.MethodGet, "/admin/cluster", nil)
			if err != nil || r.Status != http.StatusOK {
				return false, fmt.Sprintf("%s: %v %v", p.ID, r, err)
			}
			var st clusterStatus
			if err := json.Unmarshal(r.Body, &st); err != nil || st.Leader == "" || (leader != "" && st.Leader != leader) {
				return false, fmt.Sprintf("%s: leader %q (%v)", p.ID, st.Leader, err)
			}
			leader = st.Leader
		}
		return true, ""
	})
	return c
}

// keystoneLeader returns the node the cluster names leader.
func keystoneLeader(t *testing.T, c *cluster, adminToken string) (*proc, []*proc) {
	t.Helper()
	var leader *proc
	c.waitUntil(30*time.Second, "a leader", func() (bool, string) {
		r, err := withToken(c.Nodes[0], adminToken, newClientID()).do(context.Background(), http.MethodGet, "/admin/cluster", nil)
		if err != nil || r.Status != http.StatusOK {
			return false, fmt.Sprint(r, err)
		}
		var st clusterStatus
		_ = json.Unmarshal(r.Body, &st)
		leader = c.Node(st.Leader)
		return leader != nil, st.Leader
	})
	var followers []*proc
	for _, p := range c.Nodes {
		if p != leader {
			followers = append(followers, p)
		}
	}
	return leader, followers
}

// newClientID returns a random UUID.
func newClientID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// check401 checks a Keystone refusal (contract §14.2).
func check401(t *testing.T, what string, r *response, ks *keystone) {
	t.Helper()
	if r.Status != http.StatusUnauthorized {
		t.Fatalf("%s: %s, want 401", what, r)
	}
	var body map[string]any
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatalf("%s: 401 body %s: %v", what, r.Body, err)
	}
	e, _ := body["error"].(map[string]any)
	if e["code"] != float64(401) || e["title"] != "Unauthorized" || e["message"] != "The request you have made requires authentication." {
		t.Fatalf("%s: 401 body %s", what, r.Body)
	}
	if got, want := r.Header.Get("WWW-Authenticate"), `Keystone uri="`+ks.URL+`"`; got != want {
		t.Fatalf("%s: WWW-Authenticate %q, want %q", what, got, want)
	}
}

// TestKeystone_RealKeystoneGuardsEveryNode runs a three-node cluster of
// the binary in Keystone mode against a real Keystone and checks valid,
// missing, garbage and oversized tokens, project scoping, roles, and
// gophercloud, python-zaqarclient and websocket clients authenticating
// through Keystone and finding the service in its catalog.
func TestKeystone_RealKeystoneGuardsEveryNode(t *testing.T) {
	ks := sharedKeystone(t)
	c := startKeystoneCluster(t, 3, ks)
	carol := ks.token(t, "carol", "alpha")
	leader, followers := keystoneLeader(t, c, carol)
	alice := ks.token(t, "alice", "alpha")
	bob := ks.token(t, "bob", "beta")
	ctx := context.Background()

	t.Run("a valid token works on every node; missing, garbage and oversized tokens are 401", func(t *testing.T) {
		for i, p := range c.Nodes {
			r, err := withToken(p, alice, newClientID()).do(ctx, http.MethodPut, fmt.Sprintf("/v2/queues/alpha-%d", i), map[string]any{"by": "alice"})
			if err != nil || r.Status != http.StatusCreated {
				t.Fatalf("PUT with alice's token on %s: %v %v", p.ID, r, err)
			}
			anon := newRESTClient(p, newClientID(), "alpha")
			r, err = anon.do(ctx, http.MethodGet, "/v2/queues", nil)
			if err != nil {
				t.Fatal(err)
			}
			check401(t, "no token on "+p.ID, r, ks)
			for name, tok := range map[string]string{
				"garbage":            "not-a-token",
				"a mangled token":    alice[:len(alice)-4] + "AAAA",
				"an oversized token": strings.Repeat("A", 40<<10),
			} {
				r, err := withToken(p, tok, newClientID()).do(ctx, http.MethodGet, "/v2/queues", nil)
				if err != nil {
					t.Fatal(err)
				}
				check401(t, name+" on "+p.ID, r, ks)
			}
			// The version document and metrics need no token.
			for path, want := range map[string]int{"/": http.StatusMultipleChoices, "/metrics": http.StatusOK} {
				resp, err := http.Get(p.URL() + path)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != want {
					t.Fatalf("GET %s without a token on %s: %d, want %d", path, p.ID, resp.StatusCode, want)
				}
			}
		}
	})

	t.Run("the token's project decides; a header naming another project is refused", func(t *testing.T) {
		rb := withToken(followers[0], bob, newClientID())
		rb.project = "alpha" // bob claims alice's project
		r, err := rb.do(ctx, http.MethodGet, "/v2/queues", nil)
		if err != nil || r.Status != http.StatusForbidden || strings.Contains(string(r.Body), "alpha-") {
			t.Fatalf("bob (beta) listing with X-Project-ID alpha: %v %v, want 403", r, err)
		}
		rb.project = ks.projectID(t, "beta")
		if r, err := rb.do(ctx, http.MethodPut, "/v2/queues/bobs", nil); err != nil || r.Status != http.StatusCreated {
			t.Fatalf("bob's PUT: %v %v", r, err)
		}
		r, err = withToken(leader, alice, newClientID()).do(ctx, http.MethodGet, "/v2/queues", nil)
		if err != nil || r.Status != http.StatusOK || strings.Contains(string(r.Body), "bobs") || !strings.Contains(string(r.Body), "alpha-0") {
			t.Fatalf("alice's listing: %v %v", r, err)
		}
		// The signed URL alice shares names her project's id.
		r, err = withToken(leader, alice, newClientID()).do(ctx, http.MethodPost, "/v2/queues/alpha-0/share", map[string]any{})
		if err != nil || r.Status != http.StatusOK {
			t.Fatalf("share: %v %v", r, err)
		}
		var g struct {
			Project string `json:"project"`
		}
		_ = json.Unmarshal(r.Body, &g)
		if want := ks.projectID(t, "alpha"); g.Project != want {
			t.Fatalf("share for project %q, want alpha's id %q", g.Project, want)
		}
	})

	t.Run("roles come from Keystone: member versus admin", func(t *testing.T) {
		for _, tc := range []struct {
			path          string
			member, admin int
		}{
			{"/v2/health", 403, 200},
			{"/admin/cluster", 403, 200},
			{"/v2/pools", 403, 200},
			{"/v2/flavors", 200, 200},
			{"/v2/queues", 200, 200},
		} {
			m := withToken(followers[1], alice, newClientID())
			req, _ := http.NewRequest(http.MethodGet, m.base+tc.path, nil)
			req.Header.Set("Client-ID", m.clientID)
			req.Header.Set("X-Roles", "admin") // ignored under Keystone
			resp, err := m.http.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.member {
				t.Fatalf("GET %s as a member (claiming X-Roles admin): %d, want %d", tc.path, resp.StatusCode, tc.member)
			}
			r, err := withToken(followers[1], carol, newClientID()).do(ctx, http.MethodGet, tc.path, nil)
			if err != nil || r.Status != tc.admin {
				t.Fatalf("GET %s as an admin: %v %v, want %d", tc.path, r, err, tc.admin)
			}
		}
	})

	t.Run("gophercloud logs in and finds the service in the catalog", func(t *testing.T) {
		ks.pointMessagingAt(t, followers[0].URL())
		provider, err := openstack.AuthenticatedClient(ctx, gophercloud.AuthOptions{
			IdentityEndpoint: ks.URL, Username: "dave", Password: password("dave"), DomainID: "default",
			Scope: &gophercloud.AuthScope{ProjectName: "gamma", DomainID: "default"},
		})
		if err != nil {
			t.Fatalf("gophercloud login: %v", err)
		}
		sc, err := openstack.NewMessagingV2(provider, "8d3b5a2e-6f1c-4b7a-9e0d-2c4f6a8b0d1e", gophercloud.EndpointOpts{Region: "RegionOne"})
		if err != nil {
			t.Fatalf("NewMessagingV2: %v", err)
		}
		if sc.Endpoint != followers[0].URL()+"/" {
			t.Fatalf("catalog endpoint %q, want %q", sc.Endpoint, followers[0].URL()+"/")
		}
		// Under Keystone X-Project-ID must name the token's project; the
		// scenario compares it with the project its share is signed for.
		gamma := ks.projectID(t, "gamma")
		sc.MoreHeaders["X-Project-ID"] = gamma
		other := *sc
		other.Endpoint = leader.URL() + "/"
		other.MoreHeaders = map[string]string{"Client-ID": "5e7f9a1b-3c5d-4e6f-8a0b-1c2d3e4f5a6b", "X-Project-ID": gamma}
		runGophercloudScenario(t, sc, &other)
	})

	t.Run("python-zaqarclient logs in and finds the service in the catalog", func(t *testing.T) {
		requirePython(t, "zaqarclient.queues.v2.client", "python3-zaqarclient")
		ks.pointMessagingAt(t, followers[1].URL())
		var r struct {
			Endpoint    string           `json:"endpoint"`
			ProjectID   string           `json:"project_id"`
			Exists      []bool           `json:"exists"`
			Listed      []map[string]any `json:"listed"`
			Claimed     []map[string]any `json:"claimed"`
			Stats       queueStats       `json:"stats"`
			Queues      []string         `json:"queues"`
			Share       map[string]any   `json:"share"`
			SignedList  []map[string]any `json:"signed_list"`
			HealthError string           `json:"health_error"`
		}
		runPythonScript(t, "zaqarclient_keystone.py", &r, ks.URL, "alice", password("alice"), "alpha", "pyks")
		if strings.TrimSuffix(r.Endpoint, "/") != followers[1].URL() {
			t.Errorf("the catalog gave endpoint %q, want %q", r.Endpoint, followers[1].URL())
		}
		alphaID := ks.projectID(t, "alpha")
		if r.ProjectID != alphaID || r.Share["project"] != alphaID {
			t.Errorf("project %q, share %v; want alpha's id %s", r.ProjectID, r.Share, alphaID)
		}
		if fmt.Sprint(r.Exists) != "[false true false]" {
			t.Errorf("exists before create, after create, after delete: %v", r.Exists)
		}
		if len(r.Listed) != 2 || seqOf(r.Listed[0]) != 0 || seqOf(r.Listed[1]) != 1 {
			t.Errorf("listed %v, want seq 0 and 1", r.Listed)
		}
		if len(r.Claimed) != 1 || seqOf(r.Claimed[0]) != 0 {
			t.Errorf("claimed %v, want seq 0", r.Claimed)
		}
		if r.Stats != (queueStats{Claimed: 0, Free: 1, Total: 1}) {
			t.Errorf("stats after deleting the claimed message: %+v", r.Stats)
		}
		if !contains(r.Queues, "pyks") || contains(r.Queues, "bobs") {
			t.Errorf("queue list %v: want pyks and not bob's queue", r.Queues)
		}
		if len(r.SignedList) != 1 || seqOf(r.SignedList[0]) != 1 {
			t.Errorf("listing with the signed URL (no token): %v, want seq 1", r.SignedList)
		}
		if !strings.Contains(r.HealthError, "Forbidden") {
			t.Errorf("health as a member: %q, want a Forbidden error", r.HealthError)
		}
	})

	t.Run("the websocket API authenticates with Keystone tokens", func(t *testing.T) {
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		conn, err := followers[0].dialWS(wctx)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetReadLimit(1 << 20)
		defer conn.CloseNow()
		cid := newClientID()
		call := func(action string, headers map[string]any, body string) (int, string) {
			t.Helper()
			h, _ := json.Marshal(headers)
			frame := `{"action": "` + action + `", "headers": ` + string(h)
			if body != "" {
				frame += `, "body": ` + body
			}
			if err := conn.Write(wctx, websocket.MessageText, []byte(frame+"}")); err != nil {
				t.Fatal(err)
			}
			_, b, err := conn.Read(wctx)
			if err != nil {
				t.Fatal(err)
			}
			var resp struct {
				Headers struct {
					Status int `json:"status"`
				} `json:"headers"`
				Body json.RawMessage `json:"body"`
			}
			if err := json.Unmarshal(b, &resp); err != nil {
				t.Fatalf("%s: %s", action, b)
			}
			return resp.Headers.Status, string(resp.Body)
		}
		alphaID := ks.projectID(t, "alpha")
		hdrs := func(extra map[string]any) map[string]any {
			h := map[string]any{"Client-ID": cid, "X-Project-ID": alphaID}
			for k, v := range extra {
				h[k] = v
			}
			return h
		}
		if st, body := call("queue_list", hdrs(nil), ""); st != 403 || !strings.Contains(body, "Not authentified.") {
			t.Fatalf("unauthenticated queue_list: %d %s", st, body)
		}
		for name, tok := range map[string]string{
			"garbage": "nope", "an oversized token": strings.Repeat("A", 100<<10), "a token with a newline": alice + "\nX-Injected: 1",
			"a token with a NUL": "abc\x00def",
		} {
			if st, body := call("authenticate", hdrs(map[string]any{"X-Auth-Token": tok}), ""); st != 401 {
				t.Fatalf("authenticate with %s: %d %s, want 401", name, st, body)
			}
		}
		if st, body := call("authenticate", hdrs(map[string]any{"X-Auth-Token": alice}), ""); st != 200 {
			t.Fatalf("authenticate with alice's token: %d %s", st, body)
		}
		if st, body := call("queue_list", hdrs(nil), ""); st != 200 || !strings.Contains(body, "alpha-0") {
			t.Fatalf("queue_list as alice: %d %s", st, body)
		}
		if st, body := call("queue_list", hdrs(map[string]any{"X-Project-ID": ks.projectID(t, "beta")}), ""); st != 403 {
			t.Fatalf("queue_list naming bob's project: %d %s, want 403", st, body)
		}
		if st, body := call("check_node_health", hdrs(map[string]any{"X-Roles": "admin"}), ""); st != 403 {
			t.Fatalf("check_node_health as a member: %d %s, want 403", st, body)
		}
	})
}

// contains reports whether list holds s.
func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestKeystone_RevokedTokenIsRefusedOnceTheCacheTTLPasses revokes a token
// in Keystone and checks a node with -keystone-cache-ttl 1s refuses it
// within moments, while another token keeps working.
func TestKeystone_RevokedTokenIsRefusedOnceTheCacheTTLPasses(t *testing.T) {
	ks := sharedKeystone(t)
	c := startKeystoneCluster(t, 1, ks, "-keystone-cache-ttl", "1s")
	p := c.Nodes[0]
	doomed, kept := ks.token(t, "alice", "alpha"), ks.token(t, "alice", "alpha")
	ctx := context.Background()
	get := func(tok string) *response {
		r, err := withToken(p, tok, newClientID()).do(ctx, http.MethodGet, "/v2/queues", nil)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, tok := range []string{doomed, kept} {
		if r := get(tok); r.Status != http.StatusOK {
			t.Fatalf("before revocation: %s", r)
		}
	}
	ks.revoke(t, doomed)
	revoked := time.Now()
	var refusedAfter time.Duration
	c.waitUntil(30*time.Second, "the revoked token to be refused", func() (bool, string) {
		r := get(doomed)
		if r.Status == http.StatusUnauthorized {
			refusedAfter = time.Since(revoked)
			return true, ""
		}
		return false, r.String()
	})
	t.Logf("the revoked token was refused %s after revocation (cache TTL 1s)", refusedAfter.Round(time.Millisecond))
	for i := 0; i < 3; i++ {
		check401(t, "the revoked token again", get(doomed), ks)
	}
	if r := get(kept); r.Status != http.StatusOK {
		t.Fatalf("the other token after revocation: %s", r)
	}
}

// TestKeystone_ExpiredTokenIsRefusedAndClosesWebsockets uses a second
// Keystone whose tokens live 20 seconds: an expired token is refused over
// REST and a websocket authenticated with it is closed with 4003. The
// nodes' own service token expires too and is renewed transparently.
func TestKeystone_ExpiredTokenIsRefusedAndClosesWebsockets(t *testing.T) {
	const lifetime = 20 * time.Second
	short, err := startKeystone(t.TempDir(), lifetime, []keystoneUser{{"zaqar", "service", []string{"service"}}, {"alice", "member", []string{"alpha"}}, {"carol", "admin", []string{"alpha"}}})
	if err != nil {
		t.Fatalf("short-lived keystone: %v", err)
	}
	t.Cleanup(short.stop)
	c := startKeystoneCluster(t, 1, short)
	p := c.Nodes[0]
	ctx := context.Background()
	tok := short.token(t, "alice", "alpha")
	issued := time.Now()
	if r, err := withToken(p, tok, newClientID()).do(ctx, http.MethodGet, "/v2/queues", nil); err != nil || r.Status != http.StatusOK {
		t.Fatalf("fresh token: %v %v", r, err)
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	conn, err := p.dialWS(wctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	frame := fmt.Sprintf(`{"action": "authenticate", "headers": {"X-Auth-Token": %q, "X-Project-ID": "x"}}`, tok)
	if err := conn.Write(wctx, websocket.MessageText, []byte(frame)); err != nil {
		t.Fatal(err)
	}
	if _, b, err := conn.Read(wctx); err != nil || !strings.Contains(string(b), `"status":200`) {
		t.Fatalf("authenticate: %s %v", b, err)
	}
	_, _, err = conn.Read(wctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 4003 || ce.Reason != "Authentication expired." {
		t.Fatalf("websocket after the token expired: %v, want close 4003", err)
	}
	if closedAfter := time.Since(issued); closedAfter < lifetime-2*time.Second {
		t.Fatalf("the websocket was closed %s after the token was issued, before its %s lifetime", closedAfter, lifetime)
	}
	r, err := withToken(p, tok, newClientID()).do(ctx, http.MethodGet, "/v2/queues", nil)
	if err != nil {
		t.Fatal(err)
	}
	check401(t, "the expired token", r, short)
	// A new token works: the node renewed its own (expired) service token.
	if r, err := withToken(p, short.token(t, "alice", "alpha"), newClientID()).do(ctx, http.MethodGet, "/v2/queues", nil); err != nil || r.Status != http.StatusOK {
		t.Fatalf("a fresh token after the service token expired: %v %v", r, err)
	}
}

// TestKeystone_UnreachableKeystoneIsServiceUnavailable checks that a node
// whose Keystone cannot be reached answers 503, never lets a request
// through and never calls a token invalid.
func TestKeystone_UnreachableKeystoneIsServiceUnavailable(t *testing.T) {
	dead, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	c := launchProcs(t, 1, "-auth-strategy", "keystone", "-keystone-auth-url", "http://"+dead[0]+"/v3",
		"-keystone-username", "zaqar", "-keystone-password", "x")
	c.waitUntil(60*time.Second, "the node to answer GET /", func() (bool, string) {
		resp, err := http.Get(c.Nodes[0].URL() + "/")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusMultipleChoices, resp.Status
	})
	r, err := newRESTClient(c.Nodes[0], newClientID(), "p").do(context.Background(), http.MethodGet, "/v2/queues", nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != http.StatusUnauthorized {
		t.Fatalf("no token with Keystone down: %s, want 401 (no token needs no Keystone)", r)
	}
	rc := withToken(c.Nodes[0], "some-token", newClientID())
	r, err = rc.do(context.Background(), http.MethodGet, "/v2/queues", nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != http.StatusServiceUnavailable || !strings.Contains(string(r.Body), "Please try again") {
		t.Fatalf("a token with Keystone down: %s, want 503", r)
	}
}
