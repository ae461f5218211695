package clustertest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zaqar-raft/zaqar/internal/tlsconf"
)

// TestTLS_ClusterServesRealClientsRotatesCertificatesAndRefusesPlainTextPeers
// starts three real processes with TLS on every port (a development CA
// written into the test's directory; https and wss on the REST ports,
// mutual TLS on the node ports) and, on that one cluster: drives
// python-zaqarclient (REST and websocket) and gophercloud with the CA; has
// a plain-text node try to join; swaps a node's certificate files under
// load; moves the cluster to a new CA; and restarts every node in turn
// with new certificates under write load.
func TestTLS_ClusterServesRealClientsRotatesCertificatesAndRefusesPlainTextPeers(t *testing.T) {
	opsCtlBinary(t) // built before anything is timed
	start := time.Now()
	c := startTLSCluster(t, 3, opsNodeArgs...)
	t.Logf("started a 3-node TLS cluster in %s", time.Since(start).Round(time.Millisecond))
	leader := c.Leader()
	follower := c.Followers()[0]

	t.Run("python-zaqarclient over https with the CA", func(t *testing.T) {
		requirePython(t, "zaqarclient.queues.v2.client", "python3-zaqarclient")
		var r scenarioResult
		runScenarioScript(t, "zaqarclient_scenario.py", follower.URL(), follower, "pyq-tls", "py-tls", &r)
		checkScenario(t, &r, "pyq-tls", "py-tls")
	})

	t.Run("python-zaqarclient websocket over wss with the CA", func(t *testing.T) {
		requirePython(t, "websocket", "python3-websocket")
		requirePython(t, "zaqarclient.transport.ws", "python3-zaqarclient")
		var r wsScenarioResult
		runScenarioScript(t, "zaqarclient_ws_scenario.py", follower.WSURL(), follower, "wsq-tls", "ws-tls", &r)
		checkWSScenario(t, &r, "wsq-tls")
	})

	t.Run("gophercloud over https with the CA", func(t *testing.T) {
		sc := newGophercloudClient(follower, "8d3b5a2e-6f1c-4b7a-9e0d-2c4f6a8b0d1e", "gc-tls")
		other := newGophercloudClient(leader, "5e7f9a1b-3c5d-4e6f-8a0b-1c2d3e4f5a6b", "gc-tls")
		runGophercloudScenario(t, sc, other)
	})

	t.Run("a plain-text node that asks to join exits naming the peer TLS flags", func(t *testing.T) {
		pc, base := opsNewCluster(t)
		p := opsNewProc(t, pc, base, "node4", "-join", opsRaftAddrs(c.Nodes))
		started := time.Now()
		if err := p.start(); err != nil {
			t.Fatal(err)
		}
		exitErr, exited := p.waitExit(60 * time.Second)
		if !exited {
			t.Fatal("the plain-text node still runs a minute after asking a TLS cluster to join")
		}
		var ee *exec.ExitError
		if !errors.As(exitErr, &ee) || ee.ExitCode() == 0 {
			t.Errorf("the plain-text node exited with %v, want a non-zero status", exitErr)
		}
		log := p.Log()
		for _, line := range strings.Split(log, "\n") {
			if strings.Contains(line, "cannot run as configured") {
				t.Logf("the plain-text node exited with %v after %s: %s", exitErr, time.Since(started).Round(time.Millisecond), line)
			}
		}
		for _, want := range []string{"cannot run as configured", "-peer-tls-ca", "-peer-tls-cert", "-peer-tls-key"} {
			if !strings.Contains(log, want) {
				t.Errorf("the plain-text node's log does not say %q:\n%s", want, tailLines(log, 30))
			}
		}
		opsWaitVoters(t, c.Nodes, c.Nodes, 10*time.Second)
	})

	t.Run("swapped REST certificate files are served without a restart or a failed request", func(t *testing.T) {
		tlsSwapUnderLoad(t, c, c.Followers()[0])
	})

	t.Run("moving to a new CA through a bundle of both keeps every node serving, then the old CA is refused", func(t *testing.T) {
		tlsMoveToNewCA(t, c)
	})

	t.Run("rolling restart with new certificates of the same CA loses no acknowledged write", func(t *testing.T) {
		old := map[string]string{}
		for _, p := range c.Nodes {
			s, err := p.tls.fileSerial(p.ID)
			if err != nil {
				t.Fatal(err)
			}
			old[p.ID] = s
		}
		opsRollingRestartUnderLoad(t, c, "p-tls-rolling", func() {
			var ids []string
			for _, p := range c.Nodes {
				ids = append(ids, p.ID)
			}
			if err := c.Nodes[0].tls.issue(ids...); err != nil {
				t.Fatal(err)
			}
			t.Logf("issued new certificates for %v from the same CA", ids)
		})
		for _, p := range c.Nodes {
			want, err := p.tls.fileSerial(p.ID)
			if err != nil {
				t.Fatal(err)
			}
			got, err := servedSerial(p)
			if err != nil || got != want || got == old[p.ID] {
				t.Errorf("%s serves certificate %s (%v); its new file holds %s, the old one %s", p.ID, got, err, want, old[p.ID])
			}
		}
	})
}

// tlsMoveToNewCA follows docs/operations.md, "Moving to a new CA", on c,
// whose nodes share one CA file: (1) the CA file becomes a bundle of the
// old and the new CA; (2) every node gets a certificate of the new CA; (3)
// the CA file holds the new CA alone. Each step replaces files and sends
// SIGHUP (what systemctl reload does), and is checked by writes through
// every node (a follower forwards its writes over the node port). After
// step 3 a restarted follower (new connections both ways) catches up and
// takes writes, and a node certificate of the old CA is refused on the
// node port. The clients trust both CAs during the change, then the new
// one. The new CA's key replaces the old one's, so that later
// certificates come from the new CA.
func tlsMoveToNewCA(t *testing.T, c *cluster) {
	certs := c.Nodes[0].tls
	var ids []string
	for _, p := range c.Nodes {
		ids = append(ids, p.ID)
	}
	newDir, oldDir := t.TempDir(), t.TempDir()
	if err := (tlsconf.DevelopmentSet{Dir: newDir, Nodes: ids}).Write(); err != nil {
		t.Fatal(err)
	}
	read := func(dir, name string) []byte {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	put := func(name string, b []byte) {
		t.Helper()
		if err := replaceFile(filepath.Join(certs.dir, name), b); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"ca.pem", "node1.pem", "node1-key.pem"} {
		if err := os.WriteFile(filepath.Join(oldDir, name), read(certs.dir, name), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// reload sends SIGHUP to every node and waits until each has logged
	// n more certificate reloads than before.
	reload := func(n int) {
		t.Helper()
		before := map[string]int{}
		for _, p := range c.Nodes {
			before[p.ID] = countLines(p.currentRunLog(), "TLS certificate reloaded")
			if err := p.send(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
		}
		c.waitUntil(10*time.Second, "every node to reload its TLS files", func() (bool, string) {
			for _, p := range c.Nodes {
				if got := countLines(p.currentRunLog(), "TLS certificate reloaded"); got < before[p.ID]+n {
					return false, fmt.Sprintf("%s reloaded %d times, want %d", p.ID, got-before[p.ID], n)
				}
			}
			return true, ""
		})
	}
	step := 0
	writeThroughEvery := func(what string) {
		t.Helper()
		step++
		for _, p := range c.Nodes {
			rc := newRESTClient(p, "0f0f0f0f-1111-4222-8333-444444444444", "p-tls-ca")
			if _, err := rc.postMessages(context.Background(), "ca-move", map[string]any{"step": step, "via": p.ID}); err != nil {
				t.Fatalf("%s: a post through %s failed: %v", what, p.ID, err)
			}
		}
	}

	bundle := append(append(read(oldDir, "ca.pem"), '\n'), read(newDir, "ca.pem")...)
	put("ca.pem", bundle)
	certs.trust(t, certs.CA())
	reload(1) // the node port's CA bundle (the REST port asks for no client certificate)
	writeThroughEvery("with the bundle of both CAs")

	for _, id := range ids {
		put(id+"-key.pem", read(newDir, id+"-key.pem"))
		put(id+".pem", read(newDir, id+".pem"))
	}
	reload(2) // the REST port's certificate and the node port's
	writeThroughEvery("with certificates of the new CA")
	for _, p := range c.Nodes {
		want, err := certs.fileSerial(p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := servedSerial(p); err != nil || got != want {
			t.Errorf("%s serves %s (%v), want its new CA's certificate %s", p.ID, got, err, want)
		}
	}

	put("ca-key.pem", read(newDir, "ca-key.pem"))
	put("ca.pem", read(newDir, "ca.pem"))
	certs.trust(t, certs.CA())
	reload(1)
	writeThroughEvery("with the new CA alone")
	restarted := c.Followers()[0]
	c.Stop(restarted)
	c.Restart(restarted)
	c.WaitApplied(60 * time.Second)
	writeThroughEvery("after restarting " + restarted.ID)

	// A node certificate of the old CA no longer opens the node port.
	old, err := tls.X509KeyPair(read(oldDir, "node1.pem"), read(oldDir, "node1-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	target := c.Nodes[1]
	conn, err := tls.Dial("tcp", target.RaftAddr, &tls.Config{Certificates: []tls.Certificate{old}, InsecureSkipVerify: true})
	if err == nil {
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = conn.Write([]byte{0})
		if err == nil {
			_, err = conn.Read(make([]byte, 1))
		}
		conn.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("%s's node port with node1's certificate of the old CA: %v, want a refused certificate", target.ID, err)
	} else {
		t.Logf("%s's node port refuses node1's certificate of the old CA: %v", target.ID, err)
	}
}

// tlsSwapUnderLoad replaces p's certificate files twice while clients
// post to p, and checks that no request fails, that p serves each new
// certificate to new connections (the first found by its file watcher,
// the second after SIGHUP) without being restarted, and that connections
// opened before a swap keep working.
func tlsSwapUnderLoad(t *testing.T, c *cluster, p *proc) {
	serials := []string{}
	fileSerial := func() string {
		t.Helper()
		s, err := p.tls.fileSerial(p.ID)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	serials = append(serials, fileSerial())
	if got, err := servedSerial(p); err != nil || got != serials[0] {
		t.Fatalf("%s serves %s (%v), its file holds %s", p.ID, got, err, serials[0])
	}
	load := startSwapLoad(p, "tls-swap")
	load.mark(serials[0])
	time.Sleep(time.Second)

	swap := func(how string, after func()) {
		t.Helper()
		if err := p.tls.issue(p.ID); err != nil {
			t.Fatal(err)
		}
		swapped := time.Now()
		if after != nil {
			after()
		}
		want := fileSerial()
		c.waitUntil(15*time.Second, p.ID+" to serve its new certificate", func() (bool, string) {
			got, err := servedSerial(p)
			return err == nil && got == want, fmt.Sprintf("serves %s (%v), the file holds %s", got, err, want)
		})
		load.mark(want)
		t.Logf("%s served its new certificate %s… to new connections %s after the files were replaced (%s)",
			p.ID, want[:12], time.Since(swapped).Round(time.Millisecond), how)
		serials = append(serials, want)
		time.Sleep(time.Second)
	}
	swap("found by the file watcher", nil)
	swap("SIGHUP", func() {
		if err := p.send(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	})
	res := load.stop()

	p.mu.Lock()
	starts := p.starts
	p.mu.Unlock()
	if !p.Running() || starts != 1 {
		t.Errorf("%s was restarted (running %v, %d starts)", p.ID, p.Running(), starts)
	}
	if testing.Verbose() {
		for _, line := range strings.Split(p.LogOfRun(1), "\n") {
			if strings.Contains(line, "TLS certificate") || strings.Contains(line, "TLS files") {
				t.Logf("%s: %s", p.ID, line)
			}
		}
	}
	if n := countLines(p.LogOfRun(1), "TLS certificate reloaded"); n < 2 {
		t.Errorf("%s logged %d certificate reloads, want at least 2", p.ID, n)
	}
	t.Logf("load on %s: %d posts acknowledged (%d on a new connection each, %d over kept HTTP/2 connections), %d failed; new connections were served %v",
		p.ID, res.acked, res.fresh, res.kept, len(res.failures), res.servedFresh)
	for i, f := range res.failures {
		if i == 10 {
			t.Errorf("... %d failures in all", len(res.failures))
			break
		}
		t.Errorf("request failed: %s", f)
	}
	for _, s := range serials {
		if res.servedFresh[s] == 0 {
			t.Errorf("no new connection was served certificate %s; served %v", s, res.servedFresh)
		}
	}
	for _, e := range res.stale {
		t.Errorf("a new connection was served an older certificate after the newer one was in use: %s", e)
	}
	if res.kept == 0 || res.fresh == 0 {
		t.Errorf("the load did not use both kinds of connection: %d kept, %d new", res.kept, res.fresh)
	}
	if len(res.notH2) > 0 {
		t.Errorf("kept connections did not speak HTTP/2: %v", res.notH2[:min(3, len(res.notH2))])
	}
	listed, err := newRESTClient(p, "0d0d0d0d-1111-4222-8333-444444444444", "p-tls-swap").listAll(context.Background(), "tls-swap")
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != res.acked {
		t.Errorf("%d messages listed, %d posts acknowledged", len(listed), res.acked)
	}
}

// swapLoad posts to one node from two kinds of client until stopped: two
// workers open a new TLS connection for every request (each request is a
// handshake with whatever certificate the node has then), two share the
// harness's HTTP/2 transport (connections opened before a swap go on).
type swapLoad struct {
	p      *proc
	queue  string
	stopc  chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	res    swapResult
	newest string // the newest certificate the node is known to serve
	// superseded holds each certificate the node served before newest,
	// with the time a newer one was seen served: a new connection started
	// after that must not get it. A certificate not marked yet may be
	// newer than newest (the next swap, served before the test has seen
	// it), so only superseded ones count as stale.
	superseded map[string]time.Time
}

// swapResult is what the load saw.
type swapResult struct {
	acked, fresh, kept int
	failures           []string
	servedFresh        map[string]int // serial -> requests on new connections
	stale              []string       // new connections served an older certificate
	notH2              []string
}

func startSwapLoad(p *proc, queue string) *swapLoad {
	l := &swapLoad{p: p, queue: queue, stopc: make(chan struct{}), res: swapResult{servedFresh: map[string]int{}}, superseded: map[string]time.Time{}}
	fresh := p.tls.http1Transport()
	fresh.DisableKeepAlives = true
	for w := 0; w < 4; w++ {
		hc := p.httpClient(10 * time.Second)
		if w%2 == 0 {
			hc = &http.Client{Timeout: 10 * time.Second, Transport: fresh}
		}
		c := &restClient{base: p.URL(), clientID: fmt.Sprintf("0e0e0e0e-1111-4222-8333-%012d", w), project: "p-tls-swap", http: hc}
		l.wg.Add(1)
		go l.worker(c, w%2 == 0)
	}
	return l
}

func (l *swapLoad) worker(c *restClient, fresh bool) {
	defer l.wg.Done()
	for n := 0; ; n++ {
		select {
		case <-l.stopc:
			return
		case <-time.After(10 * time.Millisecond):
		}
		started := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r, err := c.do(ctx, http.MethodPost, "/v2/queues/"+l.queue+"/messages",
			map[string]any{"messages": []map[string]any{{"ttl": 3600, "body": map[string]any{"client": c.clientID, "n": n}}}})
		cancel()
		l.mu.Lock()
		switch {
		case err != nil:
			l.res.failures = append(l.res.failures, fmt.Sprintf("%s %v", started.Format("15:04:05.000"), err))
		case r.Status != http.StatusCreated:
			l.res.failures = append(l.res.failures, fmt.Sprintf("%s %s", started.Format("15:04:05.000"), r))
		default:
			l.res.acked++
			serial := r.TLS.PeerCertificates[0].SerialNumber.String()
			if fresh {
				l.res.fresh++
				l.res.servedFresh[serial]++
				if at, ok := l.superseded[serial]; ok && started.After(at) {
					l.res.stale = append(l.res.stale, fmt.Sprintf("%s at %s, superseded at %s", serial, started.Format("15:04:05.000"), at.Format("15:04:05.000")))
				}
			} else {
				l.res.kept++
				if r.TLS.NegotiatedProtocol != "h2" {
					l.res.notH2 = append(l.res.notH2, r.TLS.NegotiatedProtocol)
				}
			}
		}
		l.mu.Unlock()
	}
}

// mark records that the node serves certificate serial to new
// connections from now on.
func (l *swapLoad) mark(serial string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.newest != "" && l.newest != serial {
		l.superseded[l.newest] = time.Now()
	}
	l.newest = serial
}

// stop stops the workers and returns what they saw.
func (l *swapLoad) stop() swapResult {
	close(l.stopc)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.res
}

// TestTLS_PlainTextNodePortOnAPublicAddressWarnsUnlessInsecurePeers starts
// one node without peer TLS three times on the same data directory: with
// its node port on 0.0.0.0 it logs the loud warning, with -insecure-peers
// added it does not, and on 127.0.0.1 it does not either.
func TestTLS_PlainTextNodePortOnAPublicAddressWarnsUnlessInsecurePeers(t *testing.T) {
	c, base := opsNewCluster(t)
	p := opsNewProc(t, c, base, "node1")
	_, port, _ := strings.Cut(p.RaftAddr, ":")
	identity := append([]string(nil), p.args...)
	runs := []struct {
		name     string
		args     []string
		warnings int
	}{
		{"a node port on 0.0.0.0", []string{"-raft-addr", "0.0.0.0:" + port, "-raft-advertise", p.RaftAddr}, 1},
		{"the same with -insecure-peers", []string{"-raft-addr", "0.0.0.0:" + port, "-raft-advertise", p.RaftAddr, "-insecure-peers"}, 0},
		{"a node port on loopback", nil, 0},
	}
	for i, run := range runs {
		p.args = append(append([]string(nil), identity...), run.args...)
		c.Restart(p)
		log := p.LogOfRun(i + 1)
		if got := countLines(log, "IS PLAIN TEXT AND UNAUTHENTICATED ON A NON-LOOPBACK ADDRESS", "-peer-tls-ca", "-insecure-peers"); got != run.warnings {
			t.Errorf("%s: %d warnings about the plain-text node port, want %d:\n%s", run.name, got, run.warnings, tailLines(log, 20))
		}
		c.Stop(p)
	}
}
