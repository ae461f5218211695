package clustertest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// The upstream conformance suite: zaqar-tempest-plugin's v2 tests, run by
// tempest against a three-node cluster in Keystone mode, with a real
// Keystone holding the messaging endpoint. It runs only when asked:
//
//	COMPAT            "full" (make compat): every v2 test; "smoke" (make
//	                  compat-smoke): every v2 test but the one that sleeps
//	                  140 s (compatSmokeExclude)
//	COMPAT_REGEX      another selection (a tempest --regex) instead
//	COMPAT_WORKERS    tempest's --concurrency (default 2)
//	COMPAT_KEEP       "1": keep the workspace (tempest.conf, tempest's log,
//	                  the results, every node's and Keystone's log) even when
//	                  the run passes; it is always kept on failure
//	COMPAT_ARTIFACTS  where to put it (default: a new directory under $TMPDIR)
//
// testdata/compat/expected-failures.txt names the tests that are known not
// to pass yet, each with its reason. The run fails if any other selected
// test does not pass (fails, errors, is skipped, or never reports, as when
// its class's set-up fails), and also if an expected failure passes, so
// that the list is trimmed when the feature lands.
//
// Why a Go test and not a shell script: it starts Keystone and the nodes
// with the same code as the other system tests (keystone.sh and its
// bootstrap, free ports, processes that die with the test binary, logs
// printed on failure), and the verdict is a tested function (judgeCompat)
// rather than greps of tempest's output.
const (
	compatV2Regex = `^zaqar_tempest_plugin\.tests\.v2\.`
	// compatSmokeExclude leaves out test_dead_letter_queue, which sleeps
	// twice for 70 s waiting for claims to expire: it alone is over half of
	// a full run.
	compatSmokeExclude = `\.test_claims\.TestClaims\.test_dead_letter_queue`
	compatExpectedList = "testdata/compat/expected-failures.txt"
)

// TestCompat_TempestV2SuitePassesAgainstAKeystoneCluster runs the
// zaqar-tempest-plugin v2 suite (COMPAT=full or COMPAT=smoke) and fails on
// every deviation from the expected results.
func TestCompat_TempestV2SuitePassesAgainstAKeystoneCluster(t *testing.T) {
	sel, err := compatSelectionFromEnv()
	if err != nil {
		t.Skip(err.Error())
	}
	for _, bin := range []string{"tempest", "stestr", "subunit2csv"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s is not on PATH: scripts/test-deps.sh compat installs the Debian packages (python3-tempest, zaqar-tempest-plugin, subunit)", bin)
		}
	}
	if out, err := exec.Command(systemPython, "-c", "import zaqar_tempest_plugin").CombinedOutput(); err != nil {
		t.Fatalf("%s cannot import zaqar_tempest_plugin (Debian package zaqar-tempest-plugin): %v\n%s", systemPython, err, out)
	}
	expected, err := readExpectedFailures(compatExpectedList)
	if err != nil {
		t.Fatal(err)
	}
	dir := compatArtifactsDir(t)
	start := time.Now()

	// Keystone's own cache (testdata/keystone.sh): uncached, one token
	// validation costs a second or more of CPU here, and the nodes' 5 s
	// calls to Keystone time out behind tempest's user creation.
	t.Setenv("KEYSTONE_CACHE", "memory")
	ks, err := startKeystone(filepath.Join(dir, "keystone"), 0, keystoneUsers)
	if err != nil {
		t.Fatalf("keystone: %v", err)
	}
	t.Cleanup(ks.stop)
	c := startKeystoneCluster(t, 3, ks)
	// Registered after the cluster, so it runs before the cluster's
	// cleanup kills the nodes and removes their directory.
	t.Cleanup(func() {
		for _, p := range c.Nodes {
			_ = os.WriteFile(filepath.Join(dir, p.ID+".log"), []byte(p.Log()), 0o644)
		}
	})
	var addrs []string
	for _, p := range c.Nodes {
		addrs = append(addrs, p.APIAddr)
	}
	front, err := startRoundRobin(addrs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(front.close)
	ks.pointMessagingAt(t, "http://"+front.Addr())
	setUp := time.Since(start)

	ws := filepath.Join(dir, "tempest")
	// Run in dir: tempest writes its tempest.log into the working directory.
	initCmd := tempestCommand(context.Background(), dir, "init", "--workspace-path", filepath.Join(dir, "workspace.yaml"), ws)
	if out, err := initCmd.CombinedOutput(); err != nil {
		t.Fatalf("tempest init: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(ws, "etc", "tempest.conf"), []byte(tempestConf(ks, ws)), 0o644); err != nil {
		t.Fatal(err)
	}
	selected, err := sel.list(ws)
	if err != nil {
		t.Fatal(err)
	}
	if len(selected) == 0 {
		t.Fatalf("%s selects no test", sel)
	}
	runStart := time.Now()
	runErr := sel.run(ws, filepath.Join(dir, "tempest.out"))
	runTime := time.Since(runStart)
	results, err := tempestResults(ws, filepath.Join(dir, "results.csv"))
	if err != nil {
		t.Fatalf("results of the tempest run (%v): %v\n%s", runErr, err, tailFile(filepath.Join(dir, "tempest.out"), 60))
	}
	rep := judgeCompat(selected, results, expected)
	fmt.Print(rep.format(sel.String(), setUp, runTime))
	var spread []string
	for i, n := range front.Served() {
		spread = append(spread, fmt.Sprintf("%s=%d", c.Nodes[i].ID, n))
	}
	fmt.Printf("compat:   connections through the catalog's endpoint per node: %s\n", strings.Join(spread, " "))
	if !rep.ok() {
		t.Errorf("the tempest suite deviates (tempest exited with %v); tempest's output: %s\n%s", runErr,
			filepath.Join(dir, "tempest.out"), tailFile(filepath.Join(dir, "tempest.out"), 80))
	}
	if t.Failed() || os.Getenv("COMPAT_KEEP") == "1" {
		fmt.Printf("compat:   workspace kept in %s (tempest.out, results.csv, tempest/logs/tempest.log, node*.log, keystone/)\n", dir)
	}
}

// compatSelection is the tests one run selects: a tempest --regex, less
// those matching exclude.
type compatSelection struct {
	regex   string
	exclude string
}

func compatSelectionFromEnv() (compatSelection, error) {
	if re := os.Getenv("COMPAT_REGEX"); re != "" {
		return compatSelection{regex: re}, nil
	}
	switch mode := os.Getenv("COMPAT"); mode {
	case "full":
		return compatSelection{regex: compatV2Regex}, nil
	case "smoke":
		return compatSelection{regex: compatV2Regex, exclude: compatSmokeExclude}, nil
	case "":
		return compatSelection{}, errors.New("COMPAT=full (make compat) or COMPAT=smoke (make compat-smoke) runs the zaqar-tempest-plugin suite")
	default:
		return compatSelection{}, fmt.Errorf("COMPAT=%q: want full or smoke", mode)
	}
}

func (s compatSelection) String() string {
	if s.exclude != "" {
		return "regex " + s.regex + " exclude " + s.exclude
	}
	return "regex " + s.regex
}

func (s compatSelection) args() []string {
	args := []string{"--regex", s.regex}
	if s.exclude != "" {
		args = append(args, "--exclude-regex", s.exclude)
	}
	return args
}

// tempestCommand is a tempest command run in directory ws with Debian's
// Python first on PATH (stestr starts its workers with the interpreter
// that runs it) and no OS_* variables of the caller's cloud.
func tempestCommand(ctx context.Context, ws string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "tempest", args...)
	cmd.Dir = ws
	cmd.Env = append(pythonEnv(), "PYTHON="+systemPython, "PATH=/usr/bin:/bin:"+os.Getenv("PATH"))
	return cmd
}

// list returns the ids (without their [id-...] attributes) of the tests
// the selection names.
func (s compatSelection) list(ws string) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := tempestCommand(ctx, ws, append([]string{"run", "--list-tests"}, s.args()...)...).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("tempest run --list-tests: %v\n%s", err, out)
	}
	var ids []string
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "zaqar_tempest_plugin.") {
			ids = append(ids, bareTestID(line))
		}
	}
	sort.Strings(ids)
	return slices.Compact(ids), nil
}

// run runs the selected tests, tempest's output going to outPath. Its
// error only says that some test did not pass; the results say which.
func (s compatSelection) run(ws, outPath string) error {
	workers := os.Getenv("COMPAT_WORKERS")
	if workers == "" {
		workers = "2"
	}
	f, err := os.Create(outPath)
	if err != nil {
		return err
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	cmd := tempestCommand(ctx, ws, append([]string{"run", "--concurrency", workers}, s.args()...)...)
	cmd.Stdout, cmd.Stderr = f, f
	return cmd.Run()
}

// tempestResults reads the status of every test of the workspace's last
// run from its subunit stream (kept in csvPath too).
func tempestResults(ws, csvPath string) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	last := exec.CommandContext(ctx, "stestr", "last", "--subunit")
	last.Dir = ws
	last.Env = append(pythonEnv(), "PATH=/usr/bin:/bin:"+os.Getenv("PATH"))
	stream, _ := last.Output() // exits 1 when the run had failures
	if len(stream) == 0 {
		return nil, errors.New("stestr last --subunit: empty stream")
	}
	conv := exec.CommandContext(ctx, "subunit2csv")
	conv.Stdin = bytes.NewReader(stream)
	conv.Env = last.Env
	out, err := conv.Output() // exits 1 when the stream has failures
	if len(out) == 0 {
		return nil, fmt.Errorf("subunit2csv: no output (%v)", err)
	}
	if err := os.WriteFile(csvPath, out, 0o644); err != nil {
		return nil, err
	}
	return parseSubunitCSV(bytes.NewReader(out))
}

// parseSubunitCSV maps each test id (without attributes) of subunit2csv's
// output to its status: success, fail, skip, xfail, uxsuccess. A failed
// class set-up is reported under "setUpClass (module.Class)".
func parseSubunitCSV(r io.Reader) (map[string]string, error) {
	rows, err := csv.NewReader(r).ReadAll()
	if err != nil {
		return nil, err
	}
	results := map[string]string{}
	for i, row := range rows {
		if i == 0 || len(row) < 2 {
			continue // header: test,status,start_time,stop_time
		}
		id, status := bareTestID(row[0]), row[1]
		// A test reported twice (a retried class set-up) keeps its worst
		// status.
		if prev, ok := results[id]; ok && prev != "success" {
			continue
		}
		results[id] = status
	}
	return results, nil
}

var testAttrs = regexp.MustCompile(`\[[^\]]*\]$`)

// bareTestID strips the "[id-...,negative]" attributes tempest appends.
func bareTestID(id string) string {
	return testAttrs.ReplaceAllString(strings.TrimSpace(id), "")
}

// readExpectedFailures reads "test-id reason..." lines (# comments).
func readExpectedFailures(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, reason, _ := strings.Cut(line, " ")
		if strings.TrimSpace(reason) == "" {
			return nil, fmt.Errorf("%s: %q has no reason", path, id)
		}
		out[id] = strings.TrimSpace(reason)
	}
	return out, sc.Err()
}

// compatReport is the verdict of one run.
type compatReport struct {
	Selected         int
	Passed           []string
	ExpectedFailures []string          // failed as expected
	Failed           map[string]string // unexpected: id -> status
	UnexpectedPasses []string          // listed as expected failures, but passed
	ClassSetUpFailed []string
	expected         map[string]string
}

// judgeCompat compares the results with the selection and the expected
// failures. A selected test with no result at all counts as failed.
func judgeCompat(selected []string, results, expected map[string]string) compatReport {
	rep := compatReport{Selected: len(selected), Failed: map[string]string{}, expected: expected}
	for id, status := range results {
		if strings.HasPrefix(id, "setUpClass ") || strings.HasPrefix(id, "tearDownClass ") {
			if status != "success" {
				rep.ClassSetUpFailed = append(rep.ClassSetUpFailed, id+" "+status)
			}
		}
	}
	sort.Strings(rep.ClassSetUpFailed)
	for _, id := range selected {
		status, ok := results[id]
		if !ok {
			status = "no result"
		}
		_, exp := expected[id]
		switch {
		case status == "success" && exp:
			rep.UnexpectedPasses = append(rep.UnexpectedPasses, id)
		case status == "success":
			rep.Passed = append(rep.Passed, id)
		case exp:
			rep.ExpectedFailures = append(rep.ExpectedFailures, id)
		default:
			rep.Failed[id] = status
		}
	}
	return rep
}

// ok reports whether every selected test passed or failed as expected,
// and no class set-up or tear-down failed.
func (r compatReport) ok() bool {
	return len(r.Failed) == 0 && len(r.UnexpectedPasses) == 0 && len(r.ClassSetUpFailed) == 0
}

func (r compatReport) format(selection string, setUp, run time.Duration) string {
	var b strings.Builder
	verdict := "PASS"
	if !r.ok() {
		verdict = "FAIL"
	}
	fmt.Fprintf(&b, "compat: %s %s | tests=%d passed=%d expected-failures=%d failed=%d unexpected-passes=%d | set-up %s, tempest %s\n",
		verdict, selection, r.Selected, len(r.Passed), len(r.ExpectedFailures), len(r.Failed), len(r.UnexpectedPasses),
		setUp.Round(time.Second), run.Round(time.Second))
	ids := make([]string, 0, len(r.Failed))
	for id := range r.Failed {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		fmt.Fprintf(&b, "compat:   FAILED %s (%s)\n", id, r.Failed[id])
	}
	for _, s := range r.ClassSetUpFailed {
		fmt.Fprintf(&b, "compat:   CLASS %s\n", s)
	}
	for _, id := range r.UnexpectedPasses {
		fmt.Fprintf(&b, "compat:   PASSED BUT EXPECTED TO FAIL %s: remove it from %s\n", id, compatExpectedList)
	}
	for _, id := range r.ExpectedFailures {
		fmt.Fprintf(&b, "compat:   expected failure %s: %s\n", id, r.expected[id])
	}
	return b.String()
}

// tempestConf is the tempest.conf of a run: identity v3 on ks with its
// admin creating a project and user per test class (dynamic credentials,
// role member), only Zaqar available, and the messaging limits the nodes
// run with (the server's defaults, which are Zaqar's).
func tempestConf(ks *keystone, ws string) string {
	return fmt.Sprintf(`[DEFAULT]
log_file = tempest.log
log_dir = %[1]s/logs

[oslo_concurrency]
lock_path = %[1]s/tempest_lock

[auth]
use_dynamic_credentials = true
admin_username = admin
admin_password = %[2]s
admin_project_name = admin
admin_domain_name = Default
default_credentials_domain_name = Default
create_isolated_networks = false

[identity]
auth_version = v3
uri_v3 = %[3]s
region = RegionOne
disable_ssl_certificate_validation = true

[identity-feature-enabled]
api_v2 = false
api_v3 = true

[service_available]
zaqar = true
nova = false
cinder = false
glance = false
neutron = false
swift = false
horizon = false

[messaging]
catalog_type = messaging
max_queues_per_page = 20
max_queue_metadata = 65536
max_messages_per_page = 20
max_message_size = 262144
max_messages_per_claim = 20
max_message_ttl = 1209600
max_claim_ttl = 43200
max_claim_grace = 43200
`, ws, keystoneAdminPassword, ks.URL)
}

// compatArtifactsDir is the run's directory: removed when the test passes,
// unless COMPAT_KEEP=1.
func compatArtifactsDir(t *testing.T) string {
	t.Helper()
	parent := os.Getenv("COMPAT_ARTIFACTS")
	if parent != "" {
		if err := os.MkdirAll(parent, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dir, err := os.MkdirTemp(parent, "zaqar-compat-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !t.Failed() && os.Getenv("COMPAT_KEEP") != "1" {
			os.RemoveAll(dir)
		}
	})
	return dir
}

// tailFile returns the last n lines of a file.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return tailLines(string(b), n)
}

// roundRobin is a TCP proxy that hands each new connection to the next
// node in turn: the catalog holds one messaging endpoint, and through it
// the suite's requests reach the leader and the followers alike.
type roundRobin struct {
	ln       net.Listener
	backends []string

	mu     sync.Mutex
	next   int
	served []int // connections handed to each backend
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

func startRoundRobin(backends []string) (*roundRobin, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	rr := &roundRobin{ln: ln, backends: backends, served: make([]int, len(backends)), conns: map[net.Conn]struct{}{}}
	rr.wg.Add(1)
	go rr.serve()
	return rr, nil
}

// Addr is the proxy's host:port.
func (rr *roundRobin) Addr() string { return rr.ln.Addr().String() }

// Served returns how many connections went to each backend.
func (rr *roundRobin) Served() []int {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	return slices.Clone(rr.served)
}

func (rr *roundRobin) serve() {
	defer rr.wg.Done()
	for {
		in, err := rr.ln.Accept()
		if err != nil {
			return
		}
		rr.mu.Lock()
		i := rr.next % len(rr.backends)
		backend := rr.backends[i]
		rr.served[i]++
		rr.next++
		rr.mu.Unlock()
		rr.wg.Add(1)
		go func() {
			defer rr.wg.Done()
			rr.pipe(in, backend)
		}()
	}
}

// pipe copies both ways between in and a new connection to backend until
// either side closes.
func (rr *roundRobin) pipe(in net.Conn, backend string) {
	out, err := net.DialTimeout("tcp", backend, 5*time.Second)
	if err != nil {
		in.Close()
		return
	}
	if !rr.track(in, out) {
		return
	}
	defer rr.untrack(in, out)
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(out, in); done <- struct{}{} }()
	go func() { _, _ = io.Copy(in, out); done <- struct{}{} }()
	<-done
	in.Close()
	out.Close()
	<-done
}

// track registers a connection pair, or closes it if the proxy is closed.
func (rr *roundRobin) track(cs ...net.Conn) bool {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	if rr.conns == nil {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	for _, c := range cs {
		rr.conns[c] = struct{}{}
	}
	return true
}

func (rr *roundRobin) untrack(cs ...net.Conn) {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	for _, c := range cs {
		delete(rr.conns, c)
	}
}

// close stops accepting, cuts every connection and waits for the copies.
func (rr *roundRobin) close() {
	rr.ln.Close()
	rr.mu.Lock()
	for c := range rr.conns {
		c.Close()
	}
	rr.conns = nil
	rr.mu.Unlock()
	rr.wg.Wait()
}
