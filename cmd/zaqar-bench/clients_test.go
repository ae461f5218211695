package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zaqar-raft/zaqar/internal/tlsconf"
	"github.com/zaqar-raft/zaqar/testkit/testcluster"
)

// TestBenchmark_RESTAndWebsocketClientsWorkOverTLS runs a short load of
// both transports against nodes that serve https and wss and require a
// client certificate: every operation succeeds, and without the CA none
// does.
func TestBenchmark_RESTAndWebsocketClientsWorkOverTLS(t *testing.T) {
	dir := t.TempDir()
	if err := (tlsconf.DevelopmentSet{Dir: dir, Nodes: []string{"node1", "node2", "node3"}}).Write(); err != nil {
		t.Fatal(err)
	}
	c := testcluster.Start(t, 3, testcluster.WithRESTTLS(t, dir, tlsconf.RequireClientCert))
	var targets []string
	for _, n := range c.Nodes {
		targets = append(targets, n.URL())
	}
	files := tlsconf.Files{CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, "client.pem"), Key: filepath.Join(dir, "client-key.pem")}
	load := func(transport string, f tlsconf.Files) (*results, error) {
		tr, err := httpTransport(f)
		if err != nil {
			t.Fatal(err)
		}
		cfg := config{
			targets: targets, transport: transport, duration: time.Second, warmup: 200 * time.Millisecond,
			producers: 1, producerWorkers: 2, consumers: 1, consumerWorkers: 2, observers: 1, observerWorkers: 1,
			queues: 2, messageSize: 64, perPost: 1, perClaim: 5, perList: 10, project: "bench-tls",
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return benchmark(ctx, cfg, nil, tr)
	}
	for _, transport := range []string{"rest", "ws"} {
		t.Run(transport, func(t *testing.T) {
			res, err := load(transport, files)
			if err != nil {
				t.Fatal(err)
			}
			// Every operation went through; a failure may only be the
			// node's own answer (a leader change on a loaded machine), never
			// a connection or certificate error.
			for _, o := range res.Ops {
				if o.Requests == 0 {
					t.Errorf("no %s over %s succeeded (%d errors, the last: %s)", o.Op, transport, o.Errors, o.LastError)
				}
				if o.Errors > 0 && !strings.HasPrefix(o.LastError, "status ") {
					t.Errorf("%s over %s: %d errors, the last: %s", o.Op, transport, o.Errors, o.LastError)
				}
			}
		})
	}
	t.Run("without the CA", func(t *testing.T) {
		if _, err := load("ws", tlsconf.Files{Cert: files.Cert, Key: files.Key}); err == nil {
			t.Fatal("a websocket dial without the CA succeeded")
		}
		res, err := load("rest", tlsconf.Files{Cert: files.Cert, Key: files.Key})
		if err != nil {
			t.Fatal(err)
		}
		if n := res.totalOps(); n != 0 {
			t.Fatalf("%d requests succeeded without the CA", n)
		}
	})
}
