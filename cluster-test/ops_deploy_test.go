package clustertest

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// opsReadDeployFile reads a file of docs/deploy.
func opsReadDeployFile(t *testing.T, rel string) []byte {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "docs", "deploy", rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// opsDrainCommand finds the zaqarctl drain command line in a deployment
// file (the systemd unit's ExecStop, the StatefulSet's preStop) and
// returns its arguments after the binary.
func opsDrainCommand(t *testing.T, rel string, re *regexp.Regexp) []string {
	t.Helper()
	m := re.FindSubmatch(opsReadDeployFile(t, rel))
	if m == nil {
		t.Fatalf("docs/deploy/%s has no zaqarctl drain command matching %s", rel, re)
	}
	var args []string
	for _, f := range strings.FieldsFunc(string(m[1]), func(r rune) bool { return r == ' ' || r == ',' || r == '"' || r == '[' || r == ']' }) {
		args = append(args, f)
	}
	if len(args) == 0 || args[len(args)-1] != "drain" {
		t.Fatalf("docs/deploy/%s: the command %q does not end in drain", rel, m[1])
	}
	return args
}

// opsWithAddr replaces the value of -addr in args with p's URL, and the
// deployment's certificate directory (deployTLSDir) in any argument with
// p's.
func opsWithAddr(t *testing.T, args []string, p *proc, deployTLSDir string) []string {
	t.Helper()
	out := append([]string(nil), args...)
	found := false
	for i := range out {
		if out[i] == "-addr" && i+1 < len(out) {
			out[i+1] = p.URL()
			found = true
		}
		out[i] = opsLocalTLSPath(out[i], deployTLSDir, p.tls)
	}
	if !found {
		t.Fatalf("no -addr in %v", args)
	}
	return out
}

// opsLocalTLSPath maps a file of the deployment's certificate directory
// (deployTLSDir, e.g. /etc/zaqar/tls/) to the same file of certs.
func opsLocalTLSPath(s, deployTLSDir string, certs *devTLS) string {
	if rest, ok := strings.CutPrefix(s, deployTLSDir); ok && certs != nil {
		return filepath.Join(certs.dir, rest)
	}
	return s
}

// opsTLSSettings are the settings that turn TLS on for both ports; the
// deployment files set every one.
var opsTLSSettings = []string{"tls-cert", "tls-key", "peer-tls-ca", "peer-tls-cert", "peer-tls-key"}

// opsTLSStarted matches the log line (text or JSON) of a node that started
// with TLS on its REST port and its node port.
var opsTLSStarted = regexp.MustCompile(`node started.*[" ]tls"?[=:]true.*[" ]peer_tls"?[=:]true`)

// opsRequireTLSStarted fails the test unless p logged that it started with
// TLS on both ports.
func opsRequireTLSStarted(t *testing.T, p *proc) {
	t.Helper()
	if !opsTLSStarted.MatchString(p.Log()) {
		t.Errorf("%s did not start with TLS on both ports:\n%s", p.ID, tailLines(p.Log(), 10))
	}
}

// TestOps_DeployConfigFilesFormAThreeNodeClusterThatStopsByTheUnitsSequence
// starts three servers with nothing but -config, using the example files
// of docs/deploy/systemd with their addresses, data directory and
// certificate directory moved to this machine (every other setting as
// written; certificates from zaqar-server certs' development CA), and
// checks that they form the cluster the files describe, with TLS on both
// ports. It reloads a node's new certificate the way the unit's
// ExecReload does, then stops the node the way the systemd unit does
// (its ExecStop zaqarctl drain, then SIGTERM) and runs the StatefulSet's
// preStop drain command against another.
func TestOps_DeployConfigFilesFormAThreeNodeClusterThatStopsByTheUnitsSequence(t *testing.T) {
	opsCtlBinary(t)
	c, base := opsNewCluster(t)
	const etcTLS = "/etc/zaqar/tls/"
	certs := newDevTLS(t, filepath.Join(base, "tls"), nil, "node1", "node2", "node3")
	ports, err := freePorts(6)
	if err != nil {
		t.Fatal(err)
	}
	type cfg = map[string]any
	files := map[string]cfg{}
	raftOf := map[string]string{} // the file's raft address -> ours
	for i := 1; i <= 3; i++ {
		var f cfg
		if err := json.Unmarshal(opsReadDeployFile(t, fmt.Sprintf("systemd/node%d.json", i)), &f); err != nil {
			t.Fatalf("node%d.json: %v", i, err)
		}
		id, _ := f["node-id"].(string)
		if id != fmt.Sprintf("node%d", i) {
			t.Fatalf("node%d.json has node-id %q", i, id)
		}
		for _, k := range opsTLSSettings {
			if v, _ := f[k].(string); !strings.HasPrefix(v, etcTLS) {
				t.Errorf("node%d.json sets %s to %q, want a file of %s", i, k, v, etcTLS)
			}
		}
		raftOf[f["raft-addr"].(string)] = ports[2*i-1]
		files[id] = f
	}
	for i := 1; i <= 3; i++ {
		id := fmt.Sprintf("node%d", i)
		f := files[id]
		boot := f["bootstrap"].(string)
		for from, to := range raftOf {
			boot = strings.ReplaceAll(boot, from, to)
		}
		f["bootstrap"] = boot
		f["raft-addr"] = ports[2*i-1]
		f["api-addr"] = ports[2*i-2]
		f["data-dir"] = filepath.Join(base, id)
		for k, v := range f {
			if s, ok := v.(string); ok {
				f[k] = opsLocalTLSPath(s, etcTLS, certs)
			}
		}
		b, _ := json.MarshalIndent(f, "", "  ")
		path := filepath.Join(base, id+".json")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		p := &proc{ID: id, APIAddr: ports[2*i-2], RaftAddr: ports[2*i-1], DataDir: filepath.Join(base, id),
			LogPath: filepath.Join(base, id+".log"), args: []string{"-config", path}, tls: certs}
		c.Nodes = append(c.Nodes, p)
	}
	start := time.Now()
	for _, p := range c.Nodes {
		if err := p.start(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.waitForLeader(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	for _, p := range c.Nodes {
		opsWaitServing(t, p, 60*time.Second)
	}
	t.Logf("three nodes started from docs/deploy/systemd/node*.json serve after %s", time.Since(start).Round(time.Millisecond))
	opsWaitVoters(t, c.Nodes, c.Nodes, 30*time.Second)
	for _, p := range c.Nodes {
		if !strings.Contains(p.Log(), `"msg":"node started"`) {
			t.Errorf("%s does not log JSON although its file says log-format json", p.ID)
		}
		opsRequireTLSStarted(t, p)
	}

	// A new certificate, then the unit's ExecReload: served at once.
	unit := string(opsReadDeployFile(t, "systemd/zaqar.service"))
	if !regexp.MustCompile(`(?m)^ExecReload=/bin/kill -HUP \$MAINPID$`).MatchString(unit) {
		t.Fatal("the unit's ExecReload does not send SIGHUP to the server")
	}
	reloaded := c.Nodes[2]
	if err := certs.issue(reloaded.ID); err != nil {
		t.Fatal(err)
	}
	if err := reloaded.send(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	want, err := certs.fileSerial(reloaded.ID)
	if err != nil {
		t.Fatal(err)
	}
	c.waitUntil(5*time.Second, reloaded.ID+" to serve its new certificate after the unit's reload", func() (bool, string) {
		got, err := servedSerial(reloaded)
		return err == nil && got == want, fmt.Sprintf("serves %s (%v), want %s", got, err, want)
	})

	// The unit's stop sequence: ExecStop (drain), then SIGTERM.
	unitDrain := opsDrainCommand(t, "systemd/zaqar.service", regexp.MustCompile(`(?m)^ExecStop=-?/usr/local/bin/zaqarctl (.*)$`))
	// node1 leads first: it comes first in the configuration, which is
	// the order Raft's own choice of a successor goes through (see the
	// preStop drain below).
	opsMustCtl(t, c.Nodes[1], "transfer-leader", "node1")
	c.waitUntil(30*time.Second, "node1 to lead", func() (bool, string) {
		l, why := c.agreedLeader()
		return l == c.Nodes[0], why
	})
	leader := c.Nodes[0]
	stopped := time.Now()
	opsMustCtl(t, nil, opsWithAddr(t, unitDrain, leader, etcTLS)...)
	if state, draining, err := opsNodeState(leader); err != nil || !draining || state == "Leader" {
		t.Fatalf("after the unit's ExecStop drain, %s is %s, draining=%v (%v)", leader.ID, state, draining, err)
	}
	c.Stop(leader)
	t.Logf("the unit's stop sequence (drain, SIGTERM) on leader %s took %s", leader.ID, time.Since(stopped).Round(time.Millisecond))
	if _, err := c.waitForLeader(30 * time.Second); err != nil {
		t.Fatalf("no leader after stopping %s: %v", leader.ID, err)
	}

	// The StatefulSet's preStop command drains the new leader while node1
	// is down: leadership must go to the member that is up. (Raft's own
	// pick, the first voter with the highest next index, is node1 when
	// nothing was written since the election.)
	preStop := opsDrainCommand(t, "kubernetes/statefulset.yaml", regexp.MustCompile(`command: \[\"/usr/local/bin/zaqarctl\", (.*drain\")\]`))
	other := c.Leader()
	opsMustCtl(t, nil, opsWithAddr(t, preStop, other, "/tls/")...)
	if state, draining, err := opsNodeState(other); err != nil || !draining || state == "Leader" {
		t.Fatalf("after the StatefulSet's preStop command, %s is %s, draining=%v (%v)", other.ID, state, draining, err)
	}
	if l, err := c.waitForLeader(30 * time.Second); err != nil || l == other {
		t.Fatalf("after draining %s with a member down: leader %v, %v", other.ID, l, err)
	}
}

// opsInitContainerSettings runs the StatefulSet's init container script
// (with sh) for a pod and returns the settings file it writes.
func opsInitContainerSettings(t *testing.T, pod, namespace string) string {
	t.Helper()
	manifest := string(opsReadDeployFile(t, "kubernetes/statefulset.yaml"))
	const start = "          args:\n            - |\n"
	i := strings.Index(manifest, start)
	if i < 0 {
		t.Fatal("statefulset.yaml: no init container script (args: - |)")
	}
	var script []string
	for _, line := range strings.Split(manifest[i+len(start):], "\n") {
		if !strings.HasPrefix(line, "              ") && strings.TrimSpace(line) != "" {
			break
		}
		script = append(script, strings.TrimPrefix(line, "              "))
	}
	dir := t.TempDir()
	text := strings.ReplaceAll(strings.Join(script, "\n"), "/config/", dir+"/")
	cmd := exec.Command("sh", "-c", text)
	cmd.Env = append(os.Environ(), "POD_NAME="+pod, "POD_NAMESPACE="+namespace)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the init container script for %s: %v\n%s", pod, err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "cluster.json"))
	if err != nil {
		t.Fatalf("the init container script for %s wrote no settings: %v", pod, err)
	}
	return string(b)
}

// opsContainerTLSFlags reads the zaqar container's ZAQAR_*TLS* settings
// from docs/deploy/kubernetes/statefulset.yaml and returns them as flags
// for pod, with the Secret's mount (/tls/) mapped to certs. Every one of
// opsTLSSettings must be there.
func opsContainerTLSFlags(t *testing.T, pod string, certs *devTLS) []string {
	t.Helper()
	manifest := string(opsReadDeployFile(t, "kubernetes/statefulset.yaml"))
	re := regexp.MustCompile(`(?m)^\s+- name: ZAQAR_([A-Z_]*TLS[A-Z_]*)\n\s+value: (\S+)$`)
	var flags []string
	set := map[string]bool{}
	for _, m := range re.FindAllStringSubmatch(manifest, -1) {
		name := strings.ToLower(strings.ReplaceAll(m[1], "_", "-"))
		value := opsLocalTLSPath(strings.ReplaceAll(m[2], "$(POD_NAME)", pod), "/tls/", certs)
		flags = append(flags, "-"+name, value)
		set[name] = true
	}
	for _, k := range opsTLSSettings {
		if !set[k] {
			t.Errorf("the StatefulSet's container does not set ZAQAR_%s", strings.ToUpper(strings.ReplaceAll(k, "-", "_")))
		}
	}
	// A pod that serves https is only Ready and alive if its probes speak it.
	if n := strings.Count(manifest, "scheme: HTTPS"); n != 2 {
		t.Errorf("the StatefulSet has %d probes with scheme HTTPS, want the readiness and the liveness probe", n)
	}
	return flags
}

// TestOps_PodsStartWithTheStatefulSetsBootstrapAndJoinSettings runs the
// init container script of docs/deploy/kubernetes/statefulset.yaml for
// pods zaqar-0..3 and starts the pods with the settings it writes: the
// three initial pods -bootstrap (the three of them) plus -join (their
// addresses), later pods -join alone; and with the container's TLS
// settings, certificates from zaqar-server certs' development CA. The
// initial three form the cluster; zaqar-3 joins as a voter; an initial
// pod, removed with zaqarctl after it lost its volume, comes back empty
// with the same settings and is a voter again with every acknowledged
// post.
func TestOps_PodsStartWithTheStatefulSetsBootstrapAndJoinSettings(t *testing.T) {
	opsCtlBinary(t)
	c, base := opsNewCluster(t)
	certs := newDevTLS(t, filepath.Join(base, "tls"), nil, "zaqar-0", "zaqar-1", "zaqar-2", "zaqar-3")
	var pods []*proc
	for i := 0; i < 4; i++ {
		id := fmt.Sprintf("zaqar-%d", i)
		p := opsNewProc(t, c, base, id, opsContainerTLSFlags(t, id, certs)...)
		p.tls = certs
		pods = append(pods, p)
	}
	// Each pod's settings as the StatefulSet's init container writes
	// them, with the pods' DNS names mapped to this machine's addresses.
	const ns = "ops-test"
	for i, p := range pods {
		settings := opsInitContainerSettings(t, p.ID, ns)
		for j, q := range pods {
			settings = strings.ReplaceAll(settings, fmt.Sprintf("zaqar-%d.zaqar-raft.%s.svc.cluster.local:7888", j, ns), q.RaftAddr)
		}
		var f map[string]string
		if err := json.Unmarshal([]byte(settings), &f); err != nil {
			t.Fatalf("the init container's settings for %s: %v in %q", p.ID, err, settings)
		}
		wantKeys := "join"
		if i < 3 {
			wantKeys = "bootstrap,join"
			if f["bootstrap"] != opsPeers(pods[:3]) {
				t.Fatalf("%s would bootstrap with %q, want %q", p.ID, f["bootstrap"], opsPeers(pods[:3]))
			}
		}
		var keys []string
		for k := range f {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if strings.Join(keys, ",") != wantKeys || f["join"] != opsRaftAddrs(pods[:3]) {
			t.Fatalf("the init container gives %s %v; want %s with join %s", p.ID, f, wantKeys, opsRaftAddrs(pods[:3]))
		}
		path := filepath.Join(base, p.ID+".json")
		if err := os.WriteFile(path, []byte(settings), 0o644); err != nil {
			t.Fatal(err)
		}
		p.args = append(p.args, "-config", path)
	}
	c.Nodes = pods[:3]
	for _, p := range pods[:3] {
		if err := p.start(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.waitForLeader(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	for _, p := range pods[:3] {
		opsRequireTLSStarted(t, p)
	}
	lb := opsNewBalancer(t, pods[:3]...)
	const project = "p-pods"
	load := opsStartLoad(t, lb, project, 2, "pods-a")
	load.WaitAcked(t, 100, 60*time.Second)

	// Scale up: zaqar-3 joins.
	start := time.Now()
	c.Nodes = pods
	if err := pods[3].start(); err != nil {
		t.Fatal(err)
	}
	opsWaitVoters(t, pods, pods, 60*time.Second)
	opsWaitServing(t, pods[3], 60*time.Second)
	lb.Add(pods[3])
	t.Logf("zaqar-3 (-join only) is a voter and serving after %s", time.Since(start).Round(time.Millisecond))

	// An initial pod that follows loses its volume: it is removed, then
	// rescheduled empty with the same settings.
	leader := c.Leader()
	lost := pods[0]
	for _, p := range pods[:3] {
		if p != leader {
			lost = p
			break
		}
	}
	lb.Remove(lost)
	killed := time.Now()
	c.Kill(lost)
	if err := os.RemoveAll(lost.DataDir); err != nil {
		t.Fatal(err)
	}
	opsMustCtl(t, leader, "remove", lost.ID)
	load.WaitAcked(t, 50, 60*time.Second)
	start = time.Now()
	c.Restart(lost)
	opsWaitVoters(t, pods, pods, 60*time.Second)
	opsWaitServing(t, lost, 60*time.Second)
	lb.Add(lost)
	t.Logf("%s came back with an empty volume: a voter again and serving after %s", lost.ID, time.Since(start).Round(time.Millisecond))
	load.WaitAcked(t, 50, 60*time.Second)
	load.Stop()
	t.Logf("load: %s", load.Summary())
	for _, e := range load.Errors() {
		if e.Node == lost.ID && e.At.After(killed.Add(-time.Second)) && e.At.Before(killed.Add(5*time.Second)) {
			continue // in flight on the pod when it was killed
		}
		t.Errorf("client error: %s", e)
	}
	opsWaitConverged(t, pods, 60*time.Second)
	for _, p := range []*proc{pods[3], lost} {
		opsCheckAllPresent(t, p, load, true)
	}
}
