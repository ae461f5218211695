package wsapi_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/zaqar-raft/zaqar/server"
	"github.com/zaqar-raft/zaqar/testkit/testcluster"
	"github.com/zaqar-raft/zaqar/wsapi"
)

// TestLifecycle_ShutdownClosesEveryConnectionWithGoingAway stops a node
// holding connections on both its ports, in both encodings, one of them
// with a request in flight: each client gets a close frame with 1001.
func TestLifecycle_ShutdownClosesEveryConnectionWithGoingAway(t *testing.T) {
	c := testcluster.Start(t, 3, testcluster.WithConfig(func(cfg *server.Config) { cfg.WSAddr = "127.0.0.1:0" }))
	node := c.Followers()[0]
	var clients []*wsClient
	for _, enc := range encodings {
		ws := dial(t, node, "follower", enc)
		ws.expect(http.StatusOK, "queue_list", "")
		extra := dialURL(t, "ws://"+node.Server.WSAddr()+"/", "extra listener", enc)
		extra.expect(http.StatusOK, "queue_list", "")
		clients = append(clients, ws, extra, dial(t, node, "follower, never sent a frame", enc))
	}
	// One connection has a request queued behind a slow one when the
	// node stops: it still gets the close frame.
	busy := dial(t, node, "follower", wsapi.JSON)
	busy.sendJSON(busy.frame("check_node_health", "", map[string]any{"X-Roles": "admin"}))
	clients = append(clients, busy)

	// A connection is registered just after its handshake is answered.
	eventually(t, 10*time.Second, func() bool { return node.Server.Websocket().OpenConnections() == len(clients) },
		"the node never registered all %d connections", len(clients))
	// Clients read all the time, as real ones do, so they answer the
	// close handshake while the node waits for it.
	results := make(chan error, len(clients))
	for _, ws := range clients {
		go func() { results <- readUntilClose(ws, websocket.StatusGoingAway) }()
	}
	start := time.Now()
	c.Stop(node)
	for range clients {
		if err := <-results; err != nil {
			t.Error(err)
		}
	}
	// The handshakes complete at once; only a client that does not
	// answer would make the node wait (about 5 s at most).
	if took := time.Since(start); took > 4*time.Second {
		t.Errorf("stopping the node took %s", took)
	}
}

// TestLifecycle_IdleConnectionsAreClosed checks that a connection that
// sends nothing for the idle timeout is closed with 1001, not dropped.
func TestLifecycle_IdleConnectionsAreClosed(t *testing.T) {
	c := testcluster.Start(t, 3, testcluster.WithConfig(func(cfg *server.Config) {
		cfg.WS.IdleTimeout = 300 * time.Millisecond
		cfg.WS.PingInterval = 50 * time.Millisecond
	}))
	for _, enc := range encodings {
		ws := dial(t, c.Leader(), "leader", enc)
		start := time.Now() // before the last frame the node receives
		ws.expect(http.StatusOK, "queue_list", "")
		wantClose(t, ws, websocket.StatusGoingAway)
		if waited := time.Since(start); waited < 290*time.Millisecond {
			t.Fatalf("connection closed as idle after %s, before the 300ms idle timeout", waited)
		}
	}
}
