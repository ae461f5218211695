package wsapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zaqar-raft/zaqar/service"
)

// notifyEncoding is how notifications are framed on a connection: JSON,
// unless the connection's most recent successful subscription request came
// in a binary frame (contract §13.7).
type notifyEncoding struct{ v atomic.Int32 }

func (e *notifyEncoding) set(enc Encoding) { e.v.Store(int32(enc)) }
func (e *notifyEncoding) get() Encoding    { return Encoding(e.v.Load()) }

// ErrNoConnection means a push found no open connection with that id on
// this node.
var ErrNoConnection = errors.New("wsapi: no such connection on this node")

// PushToConnection sends a notification as a bare frame to a connection
// held by this node; ErrNoConnection if the connection is not open here.
func (s *Server) PushToConnection(ctx context.Context, connID string, payload []byte) error {
	c, ok := s.Conn(connID)
	if !ok {
		return ErrNoConnection
	}
	if err := c.Push(ctx, c.notifyEnc.get(), payload); err != nil {
		return fmt.Errorf("%w: %v", ErrNoConnection, err) // a connection that cannot take a frame is closed
	}
	return nil
}

// connSubscriptions are the subscriptions a connection made of itself;
// they end with the connection.
type connSubscriptions struct {
	mu   sync.Mutex
	subs map[connSub]service.Caller
}

type connSub struct{ queue, id string }

func (s *connSubscriptions) add(c service.Caller, queue, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.subs == nil {
		s.subs = map[connSub]service.Caller{}
	}
	s.subs[connSub{queue, id}] = c
}

func (s *connSubscriptions) remove(queue, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.subs, connSub{queue, id})
}

func (s *connSubscriptions) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.subs)
}

// endSubscriptions deletes the connection's own subscriptions once it has
// closed (best effort: if this node cannot reach the cluster, the leader
// deletes them when a push finds the connection gone).
func (c *Conn) endSubscriptions() {
	c.subscriptions.mu.Lock()
	subs := c.subscriptions.subs
	c.subscriptions.subs = nil
	c.subscriptions.mu.Unlock()
	if len(subs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for s, caller := range subs {
		if e := c.srv.endSubscription(ctx, caller, s.queue, s.id); e != nil {
			c.srv.log.Warn("could not end a closed connection's subscription", "conn", c.ID, "subscription", s.id, "err", e)
		}
	}
}

// subscriptionCreate subscribes a subscriber, or with no subscriber the
// connection itself (contract §13.4, §13.7). Websocket subscriptions have
// no confirmation step, so any duplicate is a 409.
func subscriptionCreate(ctx context.Context, c *call) reply {
	queue := c.str("queue_name")
	conflict := reply{http.StatusConflict, "Subscription " + queue + " not created."}
	if c.has("subscriber") {
		res, e := c.svc.CreateSubscription(ctx, c.caller, queue, c.withoutQueueName())
		if e != nil {
			if e.Status == http.StatusConflict {
				return conflict
			}
			return errorReply(e)
		}
		if res.Existing {
			return conflict
		}
		return reply{http.StatusCreated, map[string]any{"subscription_id": res.ID, "message": "Subscription " + queue + " created."}}
	}
	res, e := c.svc.SubscribeConnection(ctx, c.caller, queue, c.conn.srv.cfg.NodeID, c.conn.ID, c.withoutQueueName())
	if e != nil {
		if e.Status == http.StatusConflict {
			return conflict
		}
		return errorReply(e)
	}
	c.conn.subscriptions.add(c.caller, queue, res.ID)
	c.conn.notifyEnc.set(c.enc)
	return reply{http.StatusCreated, map[string]any{"subscription_id": res.ID, "message": "Subscription " + queue + " created."}}
}

// withoutQueueName returns the body without queue_name, which the
// subscription fields do not include.
func (c *call) withoutQueueName() []byte {
	m := make(map[string]json.RawMessage, len(c.body))
	for k, v := range c.body {
		if k != "queue_name" {
			m[k] = v
		}
	}
	b, _ := json.Marshal(m)
	return b
}

func subscriptionGet(ctx context.Context, c *call) reply {
	sub, e := c.svc.GetSubscription(ctx, c.caller, c.str("queue_name"), c.str("subscription_id"))
	if e != nil {
		return errorReply(e)
	}
	return reply{http.StatusOK, sub}
}

func subscriptionList(ctx context.Context, c *call) reply {
	list, e := c.svc.ListSubscriptions(ctx, c.caller, c.str("queue_name"), c.str("marker"), c.int("limit"))
	if e != nil {
		return errorReply(e)
	}
	return reply{http.StatusOK, map[string]any{"subscriptions": list.Subscriptions}}
}

func subscriptionDelete(ctx context.Context, c *call) reply {
	queue, id := c.str("queue_name"), c.str("subscription_id")
	if e := c.svc.DeleteSubscription(ctx, c.caller, queue, id); e != nil {
		return errorReply(e)
	}
	c.conn.subscriptions.remove(queue, id)
	return reply{http.StatusNoContent, "Subscription " + id + " removed."}
}
