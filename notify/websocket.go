package notify

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/zaqar-raft/zaqar/raftnode"
	"github.com/zaqar-raft/zaqar/store"
)

// websocketDeliverer pushes notifications to websocket connections, on
// this node or through the node holding them. Connections subscribe
// themselves (SubscribeConnection); no client names this scheme.
type websocketDeliverer struct {
	node   Node
	pusher atomic.Pointer[Pusher]
}

func newWebsocketDeliverer(node Node) *websocketDeliverer { return &websocketDeliverer{node: node} }

func (d *websocketDeliverer) setPusher(p Pusher) { d.pusher.Store(&p) }

func (d *websocketDeliverer) Schemes() []string { return []string{WebsocketScheme} }

// selfSubscribing marks wsconn as no subscriber type: connections
// subscribe themselves.
func (d *websocketDeliverer) selfSubscribing() {}

func (d *websocketDeliverer) Check(string) error {
	return errors.New("Websocket connections subscribe themselves; this subscriber cannot be named.")
}

func (d *websocketDeliverer) Deliver(ctx context.Context, sub *store.Subscription, payload []byte) error {
	return d.push(ctx, sub.Subscriber, payload)
}

// WebsocketScheme is the scheme of websocket connection subscribers:
// wsconn://<node id>/<connection id>.
const WebsocketScheme = "wsconn"

// WebsocketSubscriber returns the subscriber URI of a connection. nodeRef
// is the id of the node holding it, a member of the queue's pool, or, for
// a node of another pool (docs/pools.md), WebsocketNodeRef's id@address.
func WebsocketSubscriber(nodeRef, connID string) string {
	return WebsocketScheme + "://" + nodeRef + "/" + connID
}

// WebsocketNodeRef names a node of another pool in a subscriber URI: its
// id and node address (ids are unique inside a pool only).
func WebsocketNodeRef(nodeID, addr string) string { return nodeID + "@" + addr }

// pushPath is the internal route a node receives websocket pushes on from
// members of its pool; PoolPushRoute is the pool route (raftnode's pool
// prefix) on which it receives them from nodes of other pools.
const (
	pushPath      = "/internal/v1/ws-push"
	PoolPushRoute = "ws-push"
	poolPushPath  = "/internal/v1/pool/" + PoolPushRoute
)

type pushRequest struct {
	Conn    string          `json:"conn"`
	Payload json.RawMessage `json:"payload"`
}

// pushWebsocket delivers to the connection, locally or through the node
// that holds it.
func (d *websocketDeliverer) push(ctx context.Context, subscriber string, payload []byte) error {
	rest := strings.TrimPrefix(subscriber, WebsocketScheme+"://")
	nodeID, connID, ok := strings.Cut(rest, "/")
	if !ok {
		return ErrGone
	}
	if id, addr, other := strings.Cut(nodeID, "@"); other {
		return d.pushToPool(ctx, id, addr, connID, payload)
	}
	if nodeID == d.node.ID() {
		p := d.pusher.Load()
		if p == nil {
			return ErrGone
		}
		return (*p).PushToConnection(ctx, connID, payload)
	}
	body, _ := json.Marshal(pushRequest{Conn: connID, Payload: payload})
	status, _, err := d.node.PostToNode(ctx, nodeID, pushPath, body)
	switch {
	case errors.Is(err, raftnode.ErrNoSuchNode):
		return ErrGone // the node left the cluster, and its connections with it
	case err != nil:
		return err
	case status == http.StatusNotFound:
		return ErrGone
	case status != http.StatusOK:
		return errors.New("push through node " + nodeID + " failed: " + http.StatusText(status))
	}
	return nil
}

// pushToPool delivers to a connection held by a node of another pool.
func (d *websocketDeliverer) pushToPool(ctx context.Context, nodeID, addr, connID string, payload []byte) error {
	if nodeID == d.node.ID() && addr == d.node.Addr() {
		p := d.pusher.Load()
		if p == nil {
			return ErrGone
		}
		return (*p).PushToConnection(ctx, connID, payload)
	}
	body, _ := json.Marshal(pushRequest{Conn: connID, Payload: payload})
	status, _, err := d.node.CallGroup(ctx, []string{addr}, 0, poolPushPath, body)
	switch {
	case err != nil:
		return err
	case status == http.StatusNotFound:
		return ErrGone
	case status != http.StatusOK:
		return errors.New("push through node " + nodeID + " at " + addr + " failed: " + http.StatusText(status))
	}
	return nil
}

// PushHandler serves pushes from the leader to connections on this node.
func (d *websocketDeliverer) pushHandler() (string, http.Handler) {
	return "POST " + pushPath, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req pushRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 8<<20)).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		p := d.pusher.Load()
		if p == nil {
			http.Error(w, "no websocket connections on this node", http.StatusNotFound)
			return
		}
		err := (*p).PushToConnection(r.Context(), req.Conn, req.Payload)
		switch {
		case errors.Is(err, ErrGone):
			http.Error(w, "connection is gone", http.StatusNotFound)
		case err != nil:
			http.Error(w, err.Error(), http.StatusBadGateway)
		default:
			w.WriteHeader(http.StatusOK)
		}
	})
}
