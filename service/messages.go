package service

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/zaqar-raft/zaqar/fsm"
	"github.com/zaqar-raft/zaqar/internal/ids"
	"github.com/zaqar-raft/zaqar/internal/jsonx"
	"github.com/zaqar-raft/zaqar/store"
)

// PostMessages posts the messages of a `{"messages": [...]}` document
// (contract §6.2) and returns their ids in request order. The queue is
// created with the messages, never by a rejected post.
func (s *Service) PostMessages(ctx context.Context, c Caller, queue string, body []byte) ([]string, *Error) {
	target, e := s.postTarget(ctx, c, queue, body)
	if e != nil {
		return nil, e
	}
	settings := target.settings
	limit := s.limits.MaxMessagesPostSize
	if settings.MaxPostSize > 0 && int(settings.MaxPostSize) < limit && len(body) > int(settings.MaxPostSize) {
		// The queue's own cap as this node knows it; the FSM checks it
		// again against the queue as it is when the post applies.
		return nil, s.tooLarge(settings.MaxPostSize)
	}
	if len(body) > limit {
		return nil, badRequest("Message collection size is too large. Max size %d", limit)
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil, badBody("Request body can not be empty")
	}
	if e := parseDocument(body); e != nil {
		return nil, e
	}
	var doc map[string]json.RawMessage
	if jsonx.Kind(body) != '{' || json.Unmarshal(body, &doc) != nil {
		return nil, badRequest("No messages were found in the request body.")
	}
	list, ok := doc["messages"]
	if !ok {
		return nil, badRequest("No messages were found in the request body.")
	}
	return s.postMessageList(ctx, c, queue, target, list, int64(len(body)))
}

func (s *Service) tooLarge(queueMax int64) *Error {
	return badRequest("Message collection size is too large. The max size for current queue is %d. It is calculated by max size = min(max_messages_post_size_config: %d, max_messages_post_size_queue: %d).",
		queueMax, s.limits.MaxMessagesPostSize, queueMax)
}

// postTarget is what a post needs to know of its queue: the settings it
// is checked against (size cap, delay) and whether its bodies are sealed.
type postTarget struct {
	settings store.QueueSettings
	encrypt  bool
	// metadata is the queue's metadata, for the pipeline's stages (nil
	// for a queue this node does not know).
	metadata []byte
}

// postTarget reads the queue from this node's state, without the read
// barrier: the FSM checks the size cap again when the post applies, and
// decides whether a delay counts from the queue as it is then. Two answers
// depend on this read alone, and for them the node reads again after the
// barrier when its state may be behind a command that changed them:
//
//   - whether a delay is rejected as invalid: a post that carries a
//     "delay" to a queue this node does not know as delayed;
//   - whether bodies are sealed, on a node with a key: a queue this node
//     does not know as encrypted (say, created with the flag through
//     another node a moment ago). A body proposed in clear stays in the
//     log in clear, so this is checked before proposing, at the price of
//     one barrier per post to such queues. A node without a key refuses
//     posts to queues it knows as encrypted and does not pay the barrier
//     (all nodes must share the key; docs/security.md).
func (s *Service) postTarget(ctx context.Context, c Caller, queue string, body []byte) (postTarget, *Error) {
	read := func(v *store.View) (postTarget, *Error) {
		defer v.Close()
		q, err := v.Queue(c.scope(), queue)
		if err != nil {
			return postTarget{}, storeFailure("Messages could not be enqueued.", err)
		}
		if q == nil {
			return postTarget{}, nil
		}
		return postTarget{settings: q.Settings, encrypt: encryptsMessages(q.Metadata), metadata: q.Metadata}, nil
	}
	t, e := read(s.store.View())
	if e != nil {
		return t, e
	}
	delayUnknown := t.settings.DefaultDelay == 0 && bytes.Contains(body, []byte(`"delay"`))
	encryptUnknown := s.keys != nil && !t.encrypt
	if !delayUnknown && !encryptUnknown {
		return t, nil
	}
	v, _, e := s.view(ctx, c, "Messages could not be enqueued.")
	if e != nil {
		return postTarget{}, e
	}
	return read(v)
}

func (s *Service) postMessageList(ctx context.Context, c Caller, queue string, target postTarget, list json.RawMessage, bodySize int64) ([]string, *Error) {
	if jsonx.Kind(list) != '[' {
		return nil, badBody("Document type not supported.")
	}
	var items []json.RawMessage
	if err := json.Unmarshal(list, &items); err != nil {
		return nil, badBody("Request body could not be parsed.")
	}
	if len(items) == 0 {
		return nil, badRequest("No messages to enqueu.")
	}
	delayed := target.settings.DefaultDelay != 0
	msgs := make([]store.NewMessage, len(items))
	out := make([]string, len(items))
	for i, item := range items {
		if jsonx.Kind(item) != '{' {
			return nil, badBody("Each message must be a JSON object.")
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(item, &m); err != nil {
			return nil, badBody("Each message must be a JSON object.")
		}
		body, ok := m["body"]
		if !ok {
			return nil, badBody(`Missing "body" field.`)
		}
		ttl, hasTTL, e := intField(m, "ttl")
		if e != nil {
			return nil, e
		}
		if hasTTL && (ttl < MinMessageTTL || ttl > s.limits.MaxMessageTTL) {
			return nil, badRequest("The TTL for a message may not exceed %d seconds, and must be at least %d seconds long.", s.limits.MaxMessageTTL, MinMessageTTL)
		}
		nm := store.NewMessage{ID: ids.New(), TTL: ttl, Delay: -1, Body: jsonx.Compact(body)}
		// A delay only counts in delayed queues (the store decides, from
		// the queue as it is when the post applies); on other queues the
		// reference drops it silently, invalid or not.
		delay, hasDelay, e := intField(m, "delay")
		validDelay := e == nil && delay >= 0 && delay <= s.limits.MaxMessageDelay
		switch {
		case delayed && e != nil:
			return nil, e
		case delayed && hasDelay && !validDelay:
			return nil, badRequest("The delay for a message may not exceed %d seconds, and must be at least %d seconds long.", s.limits.MaxMessageDelay, 0)
		case hasDelay && validDelay:
			nm.Delay = delay
		}
		msgs[i] = nm
		out[i] = nm.ID
	}
	op, e := s.beforePost(ctx, c, queue, target.metadata, msgs)
	if e != nil {
		return nil, e
	}
	if s.limits.EnableChecksum {
		for i := range msgs {
			if !isNull(msgs[i].Body) {
				msgs[i].Checksum = checksum(msgs[i].Body)
			}
		}
	}
	if target.encrypt {
		if e := s.sealBodies(msgs); e != nil {
			return nil, e
		}
	}
	res, _, e := s.propose(ctx, "Messages could not be enqueued.", &fsm.PostMessages{
		Project: c.scope(), Queue: queue, ClientID: c.ClientID, DefaultTTL: s.limits.DefaultMessageTTL, Messages: msgs,
		BodySize: bodySize,
	})
	if e != nil {
		return nil, e
	}
	if res.Status == fsm.StatusTooLarge {
		return nil, s.tooLarge(int64(res.Count))
	}
	if op != nil {
		s.pipeline.after(ctx, op)
	}
	return out, nil
}

// beforePost runs the pipeline's stages on a post and takes back the
// bodies they may have changed; it returns the Op for after (nil when no
// stage is registered).
func (s *Service) beforePost(ctx context.Context, c Caller, queue string, metadata []byte, msgs []store.NewMessage) (*Op, *Error) {
	if len(s.pipeline) == 0 {
		return nil, nil
	}
	op := &Op{Kind: OpPostMessages, Caller: c, Queue: queue, Metadata: metadata, Messages: make([]OpMessage, len(msgs))}
	for i, m := range msgs {
		op.Messages[i] = OpMessage{ID: m.ID, Body: m.Body, TTL: m.TTL}
	}
	if e := s.pipeline.before(ctx, op); e != nil {
		return nil, e
	}
	for i := range msgs {
		msgs[i].Body = op.Messages[i].Body
	}
	return op, nil
}

// MessageListOptions select messages for ListMessages (contract §6.3).
type MessageListOptions struct {
	Marker         string
	Limit          *int // nil: the default page size
	Echo           bool
	IncludeClaimed bool
	IncludeDelayed bool
}

// MessageList is a page of messages.
type MessageList struct {
	Messages []Message
	// Marker is the cursor after the last message ("" if the page is empty).
	Marker string
	// DelayedForced is set when the queue is not a delayed queue, so
	// include_delayed was forced on.
	DelayedForced bool
}

// pageSize applies the one rule for a page size: absent means
// defaultPageSize, present must be from 1 to max (message says how).
func pageSize(limit *int, max int, message string) (int, *Error) {
	if limit == nil {
		return defaultPageSize, nil
	}
	if *limit < 1 || *limit > max {
		return 0, badRequest(message, max)
	}
	return *limit, nil
}

// ListMessages lists a queue's messages in FIFO order.
func (s *Service) ListMessages(ctx context.Context, c Caller, queue string, o MessageListOptions) (MessageList, *Error) {
	limit, e := pageSize(o.Limit, s.limits.MaxMessagesPerPage, "Limit must be at least 1 and may not be greater than %d.")
	if e != nil {
		return MessageList{}, e
	}
	const what = "Messages could not be listed."
	v, now, e := s.view(ctx, c, what)
	if e != nil {
		return MessageList{}, e
	}
	defer v.Close()
	var out MessageList
	var after uint64
	if o.Marker != "" {
		n, err := strconv.ParseUint(o.Marker, 10, 64)
		if err != nil {
			return out, nil // an unparsable marker is an empty page
		}
		after = n
	}
	q, err := v.Queue(c.scope(), queue)
	if err != nil {
		return MessageList{}, storeFailure(what, err)
	}
	if q == nil || q.Settings.DefaultDelay == 0 {
		out.DelayedForced = !o.IncludeDelayed
		o.IncludeDelayed = true
	}
	if q == nil {
		return out, nil
	}
	msgs, err := v.ListMessages(c.scope(), queue, now, store.ListOptions{
		AfterSeq: after, Limit: limit, ClientID: c.ClientID, Echo: o.Echo,
		IncludeClaimed: o.IncludeClaimed, IncludeDelayed: o.IncludeDelayed,
	})
	if err != nil {
		return MessageList{}, storeFailure(what, err)
	}
	if n := len(msgs); n > 0 {
		out.Marker = strconv.FormatUint(msgs[n-1].Seq, 10)
	}
	if out.Messages, err = s.messagesAt(msgs, now); err != nil {
		return MessageList{}, s.sealedFailure(what, err)
	}
	return out, nil
}

// GetMessage returns one unexpired message, claimed, delayed or not.
func (s *Service) GetMessage(ctx context.Context, c Caller, queue, id string) (Message, *Error) {
	const what = "Message could not be retrieved."
	v, now, e := s.view(ctx, c, what)
	if e != nil {
		return Message{}, e
	}
	defer v.Close()
	m, err := v.Message(c.scope(), queue, id, now)
	if err != nil {
		return Message{}, storeFailure(what, err)
	}
	if m == nil {
		return Message{}, notFound("Message %s does not exist in queue %s for project %s", id, queue, c.Project)
	}
	msg, err := s.messageAt(m, now)
	if err != nil {
		return Message{}, s.sealedFailure(what, err)
	}
	return msg, nil
}

// validateIDs checks the count of ids in a get-many or bulk delete.
func (s *Service) validateIDs(idList []string) *Error {
	if len(idList) < 1 || len(idList) > s.limits.MaxMessagesPerPage {
		return badRequest("ids parameter should have at least 1 and not greater than %d values.", s.limits.MaxMessagesPerPage)
	}
	return nil
}

// GetMessages returns the listed messages that exist, in request order.
func (s *Service) GetMessages(ctx context.Context, c Caller, queue string, idList []string) ([]Message, *Error) {
	if e := s.validateIDs(idList); e != nil {
		return nil, e
	}
	const what = "Messages could not be retrieved."
	v, now, e := s.view(ctx, c, what)
	if e != nil {
		return nil, e
	}
	defer v.Close()
	var out []*store.Message
	seen := map[string]bool{}
	for _, id := range idList {
		if seen[id] {
			continue
		}
		seen[id] = true
		m, err := v.Message(c.scope(), queue, id, now)
		if err != nil {
			return nil, storeFailure(what, err)
		}
		if m != nil {
			out = append(out, m)
		}
	}
	if len(out) == 0 {
		return nil, notFound("No messages with IDs: %s found in the queue %s for project %s.", strings.Join(idList, ", "), queue, c.Project)
	}
	msgs, err := s.messagesAt(out, now)
	if err != nil {
		return nil, s.sealedFailure(what, err)
	}
	return msgs, nil
}

// DeleteMessage deletes one message under the claim rules (contract §6.6).
func (s *Service) DeleteMessage(ctx context.Context, c Caller, queue, id, claimID string) *Error {
	res, _, e := s.propose(ctx, "Message could not be deleted.", &fsm.DeleteMessage{Project: c.scope(), Queue: queue, ID: id, ClaimID: claimID})
	if e != nil {
		return e
	}
	return deleteStatusError(res.Status)
}

func deleteStatusError(st fsm.Status) *Error {
	switch st {
	case fsm.StatusClaimed:
		return Errf(http.StatusForbidden, TitleUnableToDelete, "This message is claimed; it cannot be deleted without a valid claim ID.")
	case fsm.StatusBadClaim:
		return Errf(http.StatusBadRequest, TitleUnableToDelete, "The specified claim does not exist or has expired.")
	case fsm.StatusNotClaimed:
		return Errf(http.StatusBadRequest, TitleUnableToDelete, "A claim was specified, but the message is not currently claimed.")
	}
	return nil
}

// BulkDelete is a bulk delete or pop request (contract §6.7, §6.8).
type BulkDelete struct {
	IDs      []string // nil when the request has no ids
	ClaimIDs []string // nil when the request has no claim ids
	Pop      int
	HasPop   bool
}

// DeleteMessages deletes listed messages or pops some; for a pop it
// returns the popped messages and the time they were popped at.
func (s *Service) DeleteMessages(ctx context.Context, c Caller, queue string, r BulkDelete) ([]PoppedMessage, *Error) {
	switch {
	case r.HasPop && r.IDs != nil:
		return nil, badRequest("pop and id params cannot be present together in the delete request.")
	case !r.HasPop && r.IDs == nil:
		return nil, badRequest(`The request should have either "ids" or "pop" parameter in the request, to be able to delete.`)
	case r.HasPop:
		if r.Pop < 1 || r.Pop > s.limits.MaxMessagesPerClaimOrPop {
			return nil, badRequest("Pop value must be at least 1 and may not be greater than %d.", s.limits.MaxMessagesPerClaimOrPop)
		}
		const what = "Messages could not be popped."
		if e := s.checkKeysBeforeTake(c, queue, r.Pop, what); e != nil {
			return nil, e
		}
		res, now, e := s.propose(ctx, what, &fsm.PopMessages{Project: c.scope(), Queue: queue, Limit: r.Pop})
		if e != nil {
			return nil, e
		}
		popped, err := s.poppedAt(res.Messages, now)
		if err != nil {
			return nil, s.sealedFailure(what, err)
		}
		return popped, nil
	}
	if e := s.validateIDs(r.IDs); e != nil {
		return nil, e
	}
	if s.limits.DeleteWithClaimID && (len(r.ClaimIDs) == 0) {
		return nil, badRequest(`The request should have both "ids" and "claim_ids" parameter in the request when message_delete_with_claim_id is True.`)
	}
	res, _, e := s.propose(ctx, "Messages could not be deleted.", &fsm.DeleteMessages{
		Project: c.scope(), Queue: queue, IDs: r.IDs, ClaimIDs: r.ClaimIDs, RequireClaims: s.limits.DeleteWithClaimID,
	})
	if e != nil {
		return nil, e
	}
	if res.Status == fsm.StatusClaimed {
		return nil, Errf(http.StatusForbidden, TitleUnableToDelete, "A message in the list is not held by any of the given claims.")
	}
	return nil, nil
}
