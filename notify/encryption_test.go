package notify_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zaqar-raft/zaqar/internal/bodycrypt"
	"github.com/zaqar-raft/zaqar/server"
	"github.com/zaqar-raft/zaqar/testkit/testcluster"
)

// lead makes node id the leader and waits until it is.
func lead(t *testing.T, c *testcluster.Cluster, id string) {
	t.Helper()
	if c.Leader().ID == id {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Leader().Server.Node().TransferLeadership(ctx, id); err != nil {
		t.Fatalf("transfer leadership to %s: %v", id, err)
	}
	c.Eventually(10*time.Second, func() bool { return c.Leader().ID == id }, "%s did not become leader", id)
}

// metric returns the value of the first sample of node n's /metrics whose
// line starts with name and contains every part (-1 if there is none).
func metric(t *testing.T, n *testcluster.Node, name string, parts ...string) float64 {
	t.Helper()
	resp, err := http.Get(n.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, name) {
			continue
		}
		matches := true
		for _, p := range parts {
			matches = matches && strings.Contains(line, p)
		}
		if !matches {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndex(line, " ")+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q", line)
		}
		return v
	}
	return -1
}

// delivering waits until only node id delivers notifications: the others'
// notifiers stop within 100 ms of losing leadership, and until then a
// deposed leader may still deliver.
func delivering(t *testing.T, c *testcluster.Cluster, id string, subscriptions float64) {
	t.Helper()
	c.Eventually(10*time.Second, func() bool {
		for _, n := range c.Nodes {
			want := 0.0
			if n.ID == id {
				want = subscriptions
			}
			if metric(t, n, "zaqar_notify_subscriptions ") != want {
				return false
			}
		}
		return true
	}, "%s did not become the only node delivering", id)
}

func TestDelivery_EncryptedQueuesAndTopicsAreNotifiedInClearAndOnlyByALeaderWithTheKey(t *testing.T) {
	key, err := bodycrypt.NewKeyring(bytes.Repeat([]byte{9}, bodycrypt.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	// node3 has no key: as leader it cannot open the payloads.
	c := testcluster.Start(t, 3, testcluster.WithConfig(func(cfg *server.Config) {
		if cfg.NodeID != "node3" {
			cfg.MessageKeys = key
		}
	}))
	lead(t, c, "node1")
	n := clientsOf(t, c, "p-sealed")
	r := newReceiver(t, nil)
	n[0].expect(http.StatusCreated, "PUT", "/v2/queues/vault", `{"_enable_encrypt_messages": true}`)
	n[0].expect(http.StatusCreated, "PUT", "/v2/topics/alerts", `{"_enable_encrypt_messages": true}`)
	n[1].subscribe("/v2/queues/vault", map[string]any{"subscriber": r.URL("/vault")})
	n[0].subscribe("/v2/topics/alerts", map[string]any{"subscriber": r.URL("/alerts")})

	n[1].post("/v2/queues/vault", `{"body": {"card": "4111"}, "ttl": 300}`)
	n[1].post("/v2/topics/alerts", `{"body": "disk full", "ttl": 120}`)
	got := r.waitCount(2)
	byPath := map[string][]byte{}
	for _, d := range got {
		byPath[d.Path] = d.Body
	}
	jsonEqual(t, "queue notification", byPath["/vault"], payload("vault", `{"card": "4111"}`, 300))
	jsonEqual(t, "topic notification", byPath["/alerts"], payload("alerts", `"disk full"`, 120))

	// Under the keyless leader the notification stays pending, not lost.
	lead(t, c, "node3")
	delivering(t, c, "node3", 2)
	n[1].post("/v2/queues/vault", `{"body": "while keyless", "ttl": 300}`)
	c.Eventually(deliveryTimeout, func() bool {
		return metric(t, c.Nodes[2], "zaqar_notify_deliveries_total{", `outcome="undecryptable"`, `scheme="http"`) >= 1
	}, "node3 never reported an undecryptable notification")
	// Several cursor flushes (every 200 ms): a cursor moved past the
	// message would now be recorded, and the next leader would skip it.
	time.Sleep(time.Second)
	for _, d := range r.deliveries() {
		if bytes.Contains(d.Body, []byte("while keyless")) || bytes.Contains(d.Body, []byte{bodycrypt.Marker}) {
			t.Fatalf("the keyless leader delivered %q", d.Body)
		}
	}
	lead(t, c, "node1")
	got = r.waitBody(`"while keyless"`)
	for _, d := range got {
		if messageBody(d.Body) == `"while keyless"` {
			jsonEqual(t, "notification delivered after the leader change", d.Body, payload("vault", `"while keyless"`, 300))
		}
	}
}
