package clustertest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// systemPython is Debian's interpreter, the one python3-zaqarclient and
// python3-openstackclient are installed for.
const systemPython = "/usr/bin/python3"

// requirePython fails the test unless systemPython can import module.
func requirePython(t *testing.T, module, debianPackage string) {
	t.Helper()
	out, err := exec.Command(systemPython, "-c", "import "+module).CombinedOutput()
	if err != nil {
		t.Fatalf("%s cannot import %s (%v): install the Debian package %s.\n%s", systemPython, module, err, debianPackage, out)
	}
}

// pythonEnv is the test's environment without OS_* (the openstack CLI
// would read them as credentials) and ZAQAR_* variables.
func pythonEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OS_") && !strings.HasPrefix(kv, "ZAQAR_") {
			env = append(env, kv)
		}
	}
	return env
}

// runScenarioScript runs the python-zaqarclient script testdata/script
// against url (target's REST or websocket URL) with queue and project, and
// target's CA when it serves TLS, and decodes the JSON object it prints
// into out (runPythonScript).
func runScenarioScript(t *testing.T, script, url string, target *proc, queue, project string, out any) {
	t.Helper()
	args := []string{url, queue, project}
	if target.tls != nil {
		args = append(args, target.tls.CA())
	}
	runPythonScript(t, script, out, args...)
}

// runPythonScript runs testdata/script with args and decodes the JSON
// object it prints into out. The scripts print "failed_step" and "error"
// (a traceback) when a step fails, which fails the test.
func runPythonScript(t *testing.T, script string, out any, args ...string) {
	t.Helper()
	path, err := filepath.Abs(filepath.Join("testdata", script))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, systemPython, append([]string{path}, args...)...)
	cmd.Env = pythonEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var failure struct {
		FailedStep string `json:"failed_step"`
		Error      string `json:"error"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &failure); err != nil {
		t.Fatalf("%s output is not JSON (%v, exit %v):\nstdout: %s\nstderr: %s", script, err, runErr, stdout.Bytes(), stderr.Bytes())
	}
	if failure.Error != "" || runErr != nil {
		t.Fatalf("%s failed at step %q (exit %v):\n%s\nstderr: %s", script, failure.FailedStep, runErr, failure.Error, stderr.Bytes())
	}
	if err := json.Unmarshal(stdout.Bytes(), out); err != nil {
		t.Fatalf("%s output: %v in %s", script, err, stdout.Bytes())
	}
}

// scenarioResult is what testdata/zaqarclient_scenario.py prints.
type scenarioResult struct {
	ExistsBefore      *bool          `json:"exists_before_create"`
	ExistsAfterCreate *bool          `json:"exists_after_create"`
	ExistsAfterDelete *bool          `json:"exists_after_delete"`
	SetMetadata       map[string]any `json:"set_metadata"`
	GetMetadata       map[string]any `json:"get_metadata"`
	PostedIDs         []string       `json:"posted_ids"`
	ListEchoPaged     []struct {
		ID   string         `json:"id"`
		TTL  int            `json:"ttl"`
		Body map[string]any `json:"body"`
	} `json:"list_echo_paged"`
	ListOwnWithoutEcho []map[string]any `json:"list_own_without_echo"`
	ListAsConsumer     []map[string]any `json:"list_as_consumer"`
	GetMany            []string         `json:"get_many"`
	GetOne             map[string]any   `json:"get_one"`
	Claim              struct {
		ID       string           `json:"id"`
		Bodies   []map[string]any `json:"bodies"`
		ClaimIDs []string         `json:"claim_ids"`
	} `json:"claim"`
	ClaimTTLAfterUpdate int              `json:"claim_ttl_after_update"`
	DeletedWithClaim    []map[string]any `json:"deleted_with_claim"`
	StatsAfterDelete    queueStats       `json:"stats_after_delete"`
	StatsAfterRelease   queueStats       `json:"stats_after_release"`
	Popped              []map[string]any `json:"popped"`
	StatsAfterPop       queueStats       `json:"stats_after_pop"`
	SignedURL           struct {
		Project   string   `json:"project"`
		Paths     []string `json:"paths"`
		Methods   []string `json:"methods"`
		Expires   string   `json:"expires"`
		Signature string   `json:"signature"`
	} `json:"signed_url"`
	ListWithSignedURL []map[string]any `json:"list_with_signed_url"`
	QueueListPaged    struct {
		Names []string `json:"names"`
		Count int      `json:"count"`
	} `json:"queue_list_paged"`
	Ping   bool `json:"ping"`
	Health struct {
		StorageReachable bool     `json:"storage_reachable"`
		Succeeded        []string `json:"succeeded"`
	} `json:"health"`
}

type queueStats struct {
	Claimed int `json:"claimed"`
	Free    int `json:"free"`
	Total   int `json:"total"`
}

func seqs(bodies []map[string]any) []int {
	out := []int{}
	for _, b := range bodies {
		out = append(out, seqOf(b))
	}
	return out
}

func TestPythonZaqarclient_ScenarioWorksAgainstFollowerAndLeader(t *testing.T) {
	requirePython(t, "zaqarclient.queues.v2.client", "python3-zaqarclient")
	c := startCluster(t, 3)
	leader := c.Leader()
	follower := c.Followers()[0]
	for _, tc := range []struct {
		name          string
		target, other *proc
	}{
		{"follower", follower, leader},
		{"leader", leader, follower},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runPythonScenario(t, tc.target, tc.other, "pyq-"+tc.name, "py-"+tc.name)
		})
	}
}

// runPythonScenario runs testdata/zaqarclient_scenario.py against target's
// REST API with queue and project (a project of its own: the scenario
// lists the project's queues), checks what it printed, and that the queue
// it deleted is gone through other, another node of the deployment.
func runPythonScenario(t *testing.T, target, other *proc, queue, project string) {
	t.Helper()
	var r scenarioResult
	runScenarioScript(t, "zaqarclient_scenario.py", target.URL(), target, queue, project, &r)
	checkScenario(t, &r, queue, project)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// The queue the scenario deleted is gone on the other node too.
	rc := newRESTClient(other, "6c7d8e9f-0a1b-4c2d-8e3f-4a5b6c7d8e9f", project)
	if resp, err := rc.do(ctx, http.MethodHead, "/v2/queues/"+queue, nil); err != nil || resp.Status != http.StatusNotFound {
		t.Errorf("HEAD /v2/queues/%s on %s after the scenario deleted it: %v %v, want 404", queue, other.ID, resp, err)
	}
}

func checkScenario(t *testing.T, r *scenarioResult, queue, project string) {
	t.Helper()
	boolIs := func(name string, got *bool, want bool) {
		if got == nil || *got != want {
			t.Errorf("%s: %v, want %v", name, got, want)
		}
	}
	boolIs("exists before create", r.ExistsBefore, false)
	boolIs("exists after create", r.ExistsAfterCreate, true)
	boolIs("exists after delete", r.ExistsAfterDelete, false)
	for name, md := range map[string]map[string]any{"set metadata": r.SetMetadata, "get metadata": r.GetMetadata} {
		if md["description"] != "python" || md["n"] != float64(1) || md["_default_message_ttl"] != float64(3600) {
			t.Errorf("%s: %v", name, md)
		}
	}
	if len(r.PostedIDs) != 6 {
		t.Fatalf("posted %d messages, want 6: %v", len(r.PostedIDs), r.PostedIDs)
	}
	var listedIDs []string
	var listedSeqs []int
	for _, m := range r.ListEchoPaged {
		listedIDs = append(listedIDs, m.ID)
		listedSeqs = append(listedSeqs, seqOf(m.Body))
		if m.TTL != 600 {
			t.Errorf("listed message %s has ttl %d, want 600", m.ID, m.TTL)
		}
	}
	if !slices.Equal(listedIDs, r.PostedIDs) || !slices.Equal(listedSeqs, intRange(0, 6)) {
		t.Errorf("paged listing with echo: ids %v seqs %v; want the posted ids %v with seqs 0..5", listedIDs, listedSeqs, r.PostedIDs)
	}
	if len(r.ListOwnWithoutEcho) != 0 {
		t.Errorf("listing without echo showed the producer its own messages: %v", r.ListOwnWithoutEcho)
	}
	if got := seqs(r.ListAsConsumer); !slices.Equal(got, intRange(0, 6)) {
		t.Errorf("consumer listing: seqs %v, want 0..5", got)
	}
	if !slices.Equal(r.GetMany, r.PostedIDs[:2]) {
		t.Errorf("get many %v returned %v", r.PostedIDs[:2], r.GetMany)
	}
	if seqOf(r.GetOne) != 5 {
		t.Errorf("get one: %v, want seq 5", r.GetOne)
	}
	if got := seqs(r.Claim.Bodies); r.Claim.ID == "" || !slices.Equal(got, []int{0, 1, 2, 3}) {
		t.Errorf("claim %q took seqs %v, want 0..3", r.Claim.ID, got)
	}
	for _, id := range r.Claim.ClaimIDs {
		if id != r.Claim.ID {
			t.Errorf("claimed message carries claim id %q, the claim is %q", id, r.Claim.ID)
		}
	}
	if r.ClaimTTLAfterUpdate != 120 {
		t.Errorf("claim ttl after update: %d, want 120", r.ClaimTTLAfterUpdate)
	}
	if got := seqs(r.DeletedWithClaim); !slices.Equal(got, []int{0, 1}) {
		t.Errorf("deleted with the claim: %v", got)
	}
	statsIs := func(name string, got, want queueStats) {
		if got != want {
			t.Errorf("stats %s: %+v, want %+v", name, got, want)
		}
	}
	statsIs("after deleting two claimed messages", r.StatsAfterDelete, queueStats{Claimed: 2, Free: 2, Total: 4})
	statsIs("after releasing the claim", r.StatsAfterRelease, queueStats{Claimed: 0, Free: 4, Total: 4})
	if got := seqs(r.Popped); !slices.Equal(got, []int{2, 3}) {
		t.Errorf("pop 2: seqs %v, want [2 3]", got)
	}
	statsIs("after pop", r.StatsAfterPop, queueStats{Claimed: 0, Free: 2, Total: 2})
	s := r.SignedURL
	if s.Project != project || !slices.Equal(s.Paths, []string{"/v2/queues/" + queue + "/messages"}) ||
		!slices.Equal(s.Methods, []string{"GET"}) || s.Signature == "" || s.Expires == "" {
		t.Errorf("signed url: %+v", s)
	}
	if got := seqs(r.ListWithSignedURL); !slices.Equal(got, []int{4, 5}) {
		t.Errorf("listing with the signed url: seqs %v, want [4 5]", got)
	}
	if !slices.Equal(r.QueueListPaged.Names, []string{queue}) || r.QueueListPaged.Count != 1 {
		t.Errorf("queue list: %+v, want [%s] with count 1", r.QueueListPaged, queue)
	}
	if !r.Ping {
		t.Error("ping returned false")
	}
	wantOps := []string{"bulk_delete_messages", "claim_messages", "create_queue", "delete_claim",
		"delete_messages", "delete_queue", "list_messages", "post_messages"}
	if !r.Health.StorageReachable || !slices.Equal(r.Health.Succeeded, wantOps) {
		t.Errorf("health: %+v, want storage reachable and every operation %v succeeded", r.Health, wantOps)
	}
}

func TestPythonZaqarclient_OpenstackMessagingCLIWorksAgainstFollowerAndLeader(t *testing.T) {
	requirePython(t, "zaqarclient.queues.cli", "python3-zaqarclient")
	requirePython(t, "openstackclient.shell", "python3-openstackclient")
	openstack, err := exec.LookPath("openstack")
	if err != nil {
		t.Fatalf("the openstack CLI is not on PATH (%v): install python3-openstackclient", err)
	}
	// The CLI logs in to a real Keystone as a member of the subtest's
	// project and reaches the cluster through the catalog's messaging
	// endpoint, which each subtest points at its target node.
	ks := sharedKeystone(t)
	c := startKeystoneCluster(t, 3, ks)
	leader, followers := keystoneLeader(t, c, ks.token(t, "carol", "alpha"))
	follower := followers[0]
	for _, tc := range []struct {
		name          string
		target, other *proc
	}{
		{"follower", follower, leader},
		{"leader", leader, follower},
	} {
		t.Run(tc.name, func(t *testing.T) {
			project, queue := "cli-"+tc.name, "cliq-"+tc.name
			const clientID = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"
			ks.pointMessagingAt(t, tc.target.URL())
			cli := func(args ...string) []byte {
				t.Helper()
				return runOpenstack(t, openstack, ks, "cliuser", project, args...)
			}

			var created map[string]string
			if err := json.Unmarshal(cli("messaging", "queue", "create", queue, "-f", "json"), &created); err != nil || created["Name"] != queue {
				t.Fatalf("queue create: %v %v", created, err)
			}
			var queues []map[string]string
			if err := json.Unmarshal(cli("messaging", "queue", "list", "-f", "json"), &queues); err != nil ||
				len(queues) != 1 || queues[0]["Name"] != queue {
				t.Errorf("queue list: %v %v, want only %s", queues, err, queue)
			}
			cli("messaging", "message", "post", "--client-id", clientID, queue,
				`[{"body": {"seq": 0}, "ttl": 300}, {"body": {"seq": 1}}]`)
			var listed []struct {
				ID   string         `json:"ID"`
				Body map[string]any `json:"Body"`
				TTL  int            `json:"TTL"`
			}
			if err := json.Unmarshal(cli("messaging", "message", "list", "--client-id", clientID, "--echo", queue, "-f", "json"), &listed); err != nil {
				t.Fatalf("message list: %v", err)
			}
			if len(listed) != 2 || seqOf(listed[0].Body) != 0 || listed[0].TTL != 300 || seqOf(listed[1].Body) != 1 || listed[1].TTL != 3600 {
				t.Errorf("message list --echo: %+v, want seq 0 (ttl 300) and seq 1 (ttl 3600)", listed)
			}

			// What the CLI wrote through one node is what another node
			// serves, to another token of the same project.
			rc := withToken(tc.other, ks.token(t, "cliuser", project), "6c7d8e9f-0a1b-4c2d-8e3f-4a5b6c7d8e9f")
			ms, err := rc.listAll(context.Background(), queue)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range ms {
				got = append(got, fmt.Sprintf("%s seq=%d", m.ID, seqOf(m.Body)))
			}
			want := []string{}
			for _, m := range listed {
				want = append(want, fmt.Sprintf("%s seq=%d", m.ID, seqOf(m.Body)))
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s lists %v, the CLI listed %v through %s", tc.other.ID, got, want, tc.target.ID)
			}
		})
	}

	t.Run("pool and flavor commands, as an admin, through a node of another pool", func(t *testing.T) {
		// A second group (one node) that knows the cluster above as the
		// catalog pool: the CLI talks to its node, which carries every pool
		// and flavor request to the catalog pool (docs/pools.md). The pool
		// registered is that second group, which holds no queue.
		second := startKeystoneCluster(t, 1, ks, "-catalog", opsRaftAddrs(c.Nodes))
		ks.pointMessagingAt(t, second.Nodes[0].URL())
		cli := func(args ...string) []byte {
			t.Helper()
			return runOpenstack(t, openstack, ks, "carol", "alpha", args...)
		}
		uri := "zaqar+raft://" + second.Nodes[0].RaftAddr
		var pool map[string]any
		if err := json.Unmarshal(cli("messaging", "pool", "create", "cli-pool", uri, "10", "--pool_options", `{"zone": "a"}`, "-f", "json"), &pool); err != nil ||
			pool["Name"] != "cli-pool" || pool["URI"] != uri || pool["Weight"] != float64(10) {
			t.Fatalf("pool create: %v %v", pool, err)
		}
		// Not 0: the CLI leaves a falsy weight out of the patch.
		cli("messaging", "pool", "update", "cli-pool", "--pool_weight", "3")
		var pools []map[string]any
		if err := json.Unmarshal(cli("messaging", "pool", "list", "-f", "json"), &pools); err != nil || len(pools) != 1 || pools[0]["Name"] != "cli-pool" {
			t.Fatalf("pool list: %v %v", pools, err)
		}
		if err := json.Unmarshal(cli("messaging", "pool", "show", "cli-pool", "-f", "json"), &pool); err != nil || pool["Weight"] != float64(3) {
			t.Fatalf("pool show after update: %v %v", pool, err)
		}
		var flavor map[string]any
		if err := json.Unmarshal(cli("messaging", "flavor", "create", "cli-flavor", "--pool_list", "cli-pool", "-f", "json"), &flavor); err != nil || flavor["Name"] != "cli-flavor" {
			t.Fatalf("flavor create: %v %v", flavor, err)
		}
		if err := json.Unmarshal(cli("messaging", "flavor", "show", "cli-flavor", "-f", "json"), &flavor); err != nil ||
			fmt.Sprint(flavor["Pool list"]) != "[cli-pool]" {
			t.Fatalf("flavor show: %v %v", flavor, err)
		}
		var flavors []map[string]any
		if err := json.Unmarshal(cli("messaging", "flavor", "list", "-f", "json"), &flavors); err != nil || len(flavors) != 1 {
			t.Fatalf("flavor list: %v %v", flavors, err)
		}
		// A pool in a flavor cannot be deleted; the CLI says so.
		rc := withToken(leader, ks.token(t, "carol", "alpha"), newClientID())
		if r, err := rc.do(context.Background(), http.MethodDelete, "/v2/pools/cli-pool", nil); err != nil || r.Status != http.StatusForbidden {
			t.Fatalf("deleting a pool in a flavor: %v %v, want 403", r, err)
		}
		cli("messaging", "flavor", "delete", "cli-flavor")
		cli("messaging", "pool", "delete", "cli-pool")
		if err := json.Unmarshal(cli("messaging", "pool", "list", "-f", "json"), &pools); err != nil || len(pools) != 0 {
			t.Fatalf("pool list after delete: %v %v", pools, err)
		}
	})
}

// runOpenstack runs the openstack CLI as user in project of the test
// Keystone and returns what it printed; a failure fails the test.
func runOpenstack(t *testing.T, openstack string, ks *keystone, user, project string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	full := append([]string{"--os-auth-type", "password", "--os-auth-url", ks.URL,
		"--os-username", user, "--os-password", password(user), "--os-user-domain-id", "default",
		"--os-project-name", project, "--os-project-domain-id", "default", "--os-interface", "public"}, args...)
	cmd := exec.CommandContext(ctx, openstack, full...)
	cmd.Env = pythonEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("openstack %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.Bytes()
}
