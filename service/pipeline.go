package service

import (
	"context"
	"encoding/json"
	"fmt"
)

// Stage is one link in the service's pipeline, as Zaqar's
// message_pipeline, queue_pipeline and subscription_pipeline are: it sees
// an operation before its command is proposed and, on the node that
// proposed it, after the command has committed. Stages are registered when
// the server is built (Config.Stages), in order; the service adds its own
// after them (see DESIGN.md).
type Stage interface {
	// Name identifies the stage in logs.
	Name() string
	// Before runs once the service has validated op and before its
	// command is built. A non-nil error refuses the operation and nothing
	// is proposed: a 4xx for what the caller sent, a 503 when something
	// the stage needs is unavailable. Before may change what Op
	// marks as changeable (message bodies). The command is fixed when it
	// enters the log, so whatever Before decides must depend only on op
	// and the stage's configuration, never on the node it runs on.
	Before(ctx context.Context, op *Op) *Error
	// After runs after the operation committed, on the node that proposed
	// it, with op as committed (Op.IDs filled in). It cannot change the
	// answer; what it sends is at most once: a node that fails between
	// commit and After does not run it (work that must survive that, like
	// message notifications, follows the log instead; see DESIGN.md).
	After(ctx context.Context, op *Op)
}

// OpKind says what an operation does.
type OpKind int

// The operations that pass through the pipeline.
const (
	// OpPostMessages posts Op.Messages to Op.Queue.
	OpPostMessages OpKind = iota + 1
	// OpSetQueueMetadata creates Op.Queue or changes its metadata to
	// Op.Metadata.
	OpSetQueueMetadata
	// OpSubscribe creates Op.Subscription on Op.Queue.
	OpSubscribe
	// OpConfirmSubscription sets Op.Subscription's confirmed flag.
	OpConfirmSubscription
)

func (k OpKind) String() string {
	switch k {
	case OpPostMessages:
		return "post messages"
	case OpSetQueueMetadata:
		return "set queue metadata"
	case OpSubscribe:
		return "subscribe"
	case OpConfirmSubscription:
		return "confirm subscription"
	}
	return fmt.Sprintf("OpKind(%d)", int(k))
}

// Op is an operation as the pipeline's stages see it.
type Op struct {
	Kind   OpKind
	Caller Caller
	// Queue is the queue or topic (Caller.Namespace says which).
	Queue string
	// Metadata is the queue's metadata as a JSON object: for
	// OpSetQueueMetadata what will be stored; for OpPostMessages what this
	// node holds when the post is checked (nil for a queue that does not
	// exist yet), which a concurrent change may have overtaken by the time
	// the post applies.
	Metadata json.RawMessage
	// Messages are a post's messages in request order. A Before stage may
	// replace a Body with other valid, compact JSON.
	Messages []OpMessage
	// Subscription is the subscription of OpSubscribe and
	// OpConfirmSubscription.
	Subscription *OpSubscription
}

// OpMessage is one message of a post.
type OpMessage struct {
	// ID is the id the message is stored under.
	ID   string
	Body json.RawMessage
	// TTL is the message's TTL in seconds, 0 for the queue's default.
	TTL int64
}

// OpSubscription is a subscription as the pipeline sees it.
type OpSubscription struct {
	// ID is the subscription's id; for OpSubscribe it is known in After.
	ID         string
	Subscriber string
	Options    json.RawMessage
	Confirmed  bool
	// Existing is set in After when the subscriber already had a
	// subscription to the queue and no new one was made.
	Existing bool
}

// MetadataValue returns the value of key in op.Metadata, if present.
func (op *Op) MetadataValue(key string) (json.RawMessage, bool) {
	if len(op.Metadata) == 0 {
		return nil, false
	}
	var meta map[string]json.RawMessage
	if json.Unmarshal(op.Metadata, &meta) != nil {
		return nil, false
	}
	v, ok := meta[key]
	return v, ok
}

// pipeline is the ordered chain of stages.
type pipeline []Stage

// before runs every stage's Before in order and stops at the first refusal.
func (p pipeline) before(ctx context.Context, op *Op) *Error {
	for _, st := range p {
		if e := st.Before(ctx, op); e != nil {
			return e
		}
	}
	return nil
}

// after runs every stage's After in order.
func (p pipeline) after(ctx context.Context, op *Op) {
	for _, st := range p {
		st.After(ctx, op)
	}
}
