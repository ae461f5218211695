package service

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/zaqar-raft/zaqar/fsm"
	"github.com/zaqar-raft/zaqar/internal/jsonx"
	"github.com/zaqar-raft/zaqar/store"
)

// reservedKey is a reserved metadata key that GET fills in when it is
// missing or falsy (contract §5.4). This table is the one list of them.
type reservedKey struct {
	name string
	// value is the default as JSON, from the node's limits.
	value func(Limits) string
	// queuesOnly keys are not shown on topics (contract §11).
	queuesOnly bool
}

var reservedKeys = []reservedKey{
	{"_max_messages_post_size", func(l Limits) string { return strconv.Itoa(l.MaxMessagesPostSize) }, false},
	{"_default_message_ttl", func(l Limits) string { return strconv.FormatInt(l.DefaultMessageTTL, 10) }, false},
	{"_default_message_delay", func(l Limits) string { return strconv.FormatInt(l.DefaultMessageDelay, 10) }, false},
	{"_dead_letter_queue", func(Limits) string { return "null" }, true},
	{"_dead_letter_queue_messages_ttl", func(Limits) string { return "null" }, true},
	{"_max_claim_count", func(Limits) string { return "null" }, true},
	{"_enable_encrypt_messages", func(Limits) string { return "false" }, true},
}

func isReserved(key string) bool {
	for _, k := range reservedKeys {
		if k.name == key {
			return true
		}
	}
	return false
}

// CreateQueue creates a queue (contract §5.2). It reports whether the queue
// was created; an existing queue keeps its metadata.
func (s *Service) CreateQueue(ctx context.Context, c Caller, name string, body []byte) (bool, *Error) {
	if len(body) > s.limits.MaxQueueMetadata {
		return false, badRequest("Queue metadata is too large. Max size: %d", s.limits.MaxQueueMetadata)
	}
	meta := map[string]json.RawMessage{}
	if len(strings.TrimSpace(string(body))) > 0 {
		if e := parseDocument(body); e != nil {
			return false, e
		}
		switch jsonx.Kind(body) {
		case '{':
		case '[':
			return false, badBody("Document type not supported.")
		default:
			return false, badBody("Request body could not be parsed.")
		}
		if err := json.Unmarshal(body, &meta); err != nil {
			return false, badBody("Request body could not be parsed.")
		}
	}
	settings, e := s.validateMetadata(meta)
	if e != nil {
		return false, e
	}
	if e := s.placeBeside(ctx, c, name, settings.DeadLetter); e != nil {
		return false, e
	}
	encoded := encodeMetadata(meta)
	op := &Op{Kind: OpSetQueueMetadata, Caller: c, Queue: name, Metadata: encoded}
	if e := s.pipeline.before(ctx, op); e != nil {
		return false, e
	}
	res, _, e := s.propose(ctx, "Queue could not be created.", &fsm.CreateQueue{
		Project: c.scope(), Queue: name, Settings: settings, Metadata: encoded,
	})
	if e != nil {
		return false, e
	}
	if res.Changed {
		s.pipeline.after(ctx, op)
	}
	return res.Changed, nil
}

func encodeMetadata(meta map[string]json.RawMessage) []byte {
	b, _ := json.Marshal(meta) // raw values are validated JSON
	return b
}

// QueueInfo is a queue's metadata as stored.
type QueueInfo struct {
	Exists   bool
	Metadata map[string]json.RawMessage // stored metadata ({} for a missing queue)
}

// DefaultsFor returns the metadata with the reserved defaults filled in
// for missing or falsy keys (contract §5.4), as a JSON object; topics show
// only the message size, TTL and delay defaults (contract §11).
func (s *Service) DefaultsFor(ns Namespace, meta map[string]json.RawMessage) json.RawMessage {
	out := make(map[string]json.RawMessage, len(meta)+len(reservedKeys))
	for k, v := range meta {
		out[k] = v
	}
	for _, k := range reservedKeys {
		if k.queuesOnly && ns == Topics {
			continue
		}
		if v, ok := out[k.name]; !ok || isFalsy(v) {
			out[k.name] = json.RawMessage(k.value(s.limits))
		}
	}
	return encodeMetadata(out)
}

// GetQueue reads a queue's stored metadata.
func (s *Service) GetQueue(ctx context.Context, c Caller, name string) (QueueInfo, *Error) {
	v, _, e := s.view(ctx, c, "Queue metadata could not be read.")
	if e != nil {
		return QueueInfo{}, e
	}
	defer v.Close()
	q, err := v.Queue(c.scope(), name)
	if err != nil {
		return QueueInfo{}, storeFailure("Queue metadata could not be read.", err)
	}
	info := QueueInfo{Metadata: map[string]json.RawMessage{}}
	if q == nil {
		return info, nil
	}
	info.Exists = true
	if err := json.Unmarshal(q.Metadata, &info.Metadata); err != nil {
		return QueueInfo{}, storeFailure("Queue metadata could not be read.", err)
	}
	return info, nil
}

// QueueListOptions select queues for ListQueues (contract §5.3).
type QueueListOptions struct {
	Marker    string
	Limit     *int // nil: the default page size
	Detailed  bool
	Name      string // substring filter
	WithCount bool
	Filters   map[string]string // metadata key = value filters
}

// QueueSummary is one queue in a listing.
type QueueSummary struct {
	Name     string
	Metadata map[string]json.RawMessage // stored metadata; set when Detailed
}

// QueueList is a page of queues.
type QueueList struct {
	Queues []QueueSummary
	Count  uint64 // number of queues in the project, when WithCount
}

// ListQueues lists the caller's queues, of every pool (ListQueuesSpanning).
func (s *Service) ListQueues(ctx context.Context, c Caller, o QueueListOptions) (QueueList, *Error) {
	limit, e := pageSize(o.Limit, s.limits.MaxQueuesPerPage, "Limit must be at least 1 and no greater than %d.")
	if e != nil {
		return QueueList{}, e
	}
	inUse, e := s.localUnlessKnown(ctx, c.Stale)
	if e != nil {
		return QueueList{}, e
	}
	if inUse {
		return s.listQueuesSpanning(ctx, c, o, limit)
	}
	return s.listQueuesHere(ctx, c, o, limit)
}

// listQueuesHere lists the caller's queues this node's pool holds.
func (s *Service) listQueuesHere(ctx context.Context, c Caller, o QueueListOptions, limit int) (QueueList, *Error) {
	v, _, e := s.view(ctx, c, "Queues could not be listed.")
	if e != nil {
		return QueueList{}, e
	}
	defer v.Close()
	var keep func(q *store.Queue) bool
	if o.Name != "" || len(o.Filters) > 0 {
		keep = func(q *store.Queue) bool {
			if o.Name != "" && !strings.Contains(q.Name, o.Name) {
				return false
			}
			if len(o.Filters) == 0 {
				return true
			}
			var meta map[string]json.RawMessage
			if json.Unmarshal(q.Metadata, &meta) != nil {
				return false
			}
			for k, want := range o.Filters {
				if !metadataMatches(meta[k], want) {
					return false
				}
			}
			return true
		}
	}
	qs, err := v.ListQueues(c.scope(), o.Marker, limit, keep)
	if err != nil {
		return QueueList{}, storeFailure("Queues could not be listed.", err)
	}
	var out QueueList
	for _, q := range qs {
		sum := QueueSummary{Name: q.Name}
		if o.Detailed {
			sum.Metadata = map[string]json.RawMessage{}
			_ = json.Unmarshal(q.Metadata, &sum.Metadata)
		}
		out.Queues = append(out.Queues, sum)
	}
	if o.WithCount {
		if out.Count, err = v.QueueCount(c.scope()); err != nil {
			return QueueList{}, storeFailure("Queues could not be listed.", err)
		}
	}
	return out, nil
}

// metadataMatches compares a stored metadata value with a query filter
// (contract §5.3): a filter that parses as an integer is an integer and
// matches only that integer (`?node=31` matches {"node": 31}, not
// {"node": "31"}); any other filter matches an equal string.
func metadataMatches(stored json.RawMessage, want string) bool {
	if stored == nil {
		return false
	}
	if n, err := strconv.ParseInt(want, 10, 64); err == nil {
		v, ok := asInt(stored)
		return ok && v == n
	}
	sv, ok := asString(stored)
	return ok && sv == want
}

// PatchOp is one JSON-patch operation on queue metadata.
type PatchOp struct {
	Op    string
	Key   string
	Value json.RawMessage
}

// ParsePatch validates a queue PATCH body (contract §5.5).
func (s *Service) ParsePatch(body []byte) ([]PatchOp, *Error) {
	if len(body) > s.limits.MaxQueueMetadata {
		return nil, badRequest("Queue metadata is too large. Max size: %d", s.limits.MaxQueueMetadata)
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil, badBody("PATCH body could not be empty for update.")
	}
	if e := parseDocument(body); e != nil {
		return nil, e
	}
	if jsonx.Kind(body) != '[' {
		return nil, badBody("Request body must be a JSON array of operation objects.")
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, badBody("Request body could not be parsed.")
	}
	ops := make([]PatchOp, 0, len(raw))
	for _, r := range raw {
		if jsonx.Kind(r) != '{' {
			return nil, badBody("Operations must be JSON objects.")
		}
		var change map[string]json.RawMessage
		if err := json.Unmarshal(r, &change); err != nil {
			return nil, badBody("Operations must be JSON objects.")
		}
		opRaw, ok := change["op"]
		if !ok || isNull(opRaw) {
			return nil, badBody("Unable to find `op` in JSON Schema change. It must be one of the following: add, remove, replace.")
		}
		op, _ := asString(opRaw)
		if op != "add" && op != "remove" && op != "replace" {
			return nil, badBody("Invalid operation: `%s`. It must be one of the following: add, remove, replace.", strings.Trim(string(opRaw), `"`))
		}
		pathRaw, ok := change["path"]
		if !ok {
			return nil, badBody("Unable to find 'path' in JSON Schema change")
		}
		pointer, ok := asString(pathRaw)
		if !ok {
			return nil, badBody("Pointer `%s` does not start with \"/\".", string(pathRaw))
		}
		path, e := decodePointer(pointer)
		if e != nil {
			return nil, e
		}
		if len(path) != 2 {
			return nil, badBody("Invalid JSON pointer for this resource: '/%s, e.g /metadata/key'", strings.Join(path, "/"))
		}
		po := PatchOp{Op: op, Key: path[1]}
		if op != "remove" {
			v, ok := change["value"]
			if !ok {
				return nil, badBody("Operation \"%s\" requires a member named \"value\".", op)
			}
			po.Value = v
			if !strings.EqualFold(path[0], "metadata") {
				return nil, badBody("The root of path must be metadata, e.g /metadata/key.")
			}
		}
		ops = append(ops, po)
	}
	return ops, nil
}

// decodePointer validates and splits the limited JSON pointers Zaqar accepts.
func decodePointer(p string) ([]string, *Error) {
	if !strings.HasPrefix(p, "/") {
		return nil, badBody("Pointer `%s` does not start with \"/\".", p)
	}
	rest := p[1:]
	for i := 0; i < len(rest); i++ {
		if rest[i] != '/' {
			continue
		}
		j := i + 1
		for j < len(rest) && (rest[j] == ' ' || rest[j] == '\t') {
			j++
		}
		if j < len(rest) && rest[j] == '/' {
			return nil, badBody("Pointer `%s` contains adjacent \"/\".", p)
		}
	}
	if len(p) > 1 && strings.HasSuffix(p, "/") {
		return nil, badBody("Pointer `%s` end with \"/\".", p)
	}
	for i := 0; i < len(p); i++ {
		if p[i] == '~' && (i+1 >= len(p) || (p[i+1] != '0' && p[i+1] != '1')) {
			return nil, badBody("Pointer `%s` contains \"~\" not part of a recognized escape sequence.", p)
		}
	}
	parts := strings.Split(strings.TrimLeft(p, "/"), "/")
	for i, part := range parts {
		parts[i] = strings.TrimSpace(strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~"))
	}
	return parts, nil
}

// PatchQueue applies JSON-patch operations to a queue's metadata, all or
// nothing, and returns the resulting stored metadata. Concurrent updates
// are detected by the queue's metadata version and retried.
func (s *Service) PatchQueue(ctx context.Context, c Caller, name string, ops []PatchOp) (map[string]json.RawMessage, *Error) {
	const what = "Queue metadata could not be updated."
	for attempt := 0; attempt < 16; attempt++ {
		fresh := c
		fresh.Stale = false // a read-modify-write must start from the latest metadata
		v, _, e := s.view(ctx, fresh, what)
		if e != nil {
			return nil, e
		}
		q, err := v.Queue(c.scope(), name)
		v.Close()
		if err != nil {
			return nil, storeFailure(what, err)
		}
		if q == nil {
			return nil, notFound("Queue %s does not exist for project %s", name, c.Project)
		}
		meta := map[string]json.RawMessage{}
		if err := json.Unmarshal(q.Metadata, &meta); err != nil {
			return nil, storeFailure(what, err)
		}
		for _, op := range ops {
			_, stored := meta[op.Key]
			switch op.Op {
			case "add":
				meta[op.Key] = op.Value
			case "replace":
				if !stored && !isReserved(op.Key) {
					return nil, Errf(http.StatusConflict, TitleConflict, "Can't replace non-existent object %s.", op.Key)
				}
				meta[op.Key] = op.Value
			case "remove":
				if !stored && !isReserved(op.Key) {
					return nil, Errf(http.StatusConflict, TitleConflict, "Can't remove non-existent object %s.", op.Key)
				}
				delete(meta, op.Key)
			}
		}
		encoded := encodeMetadata(meta)
		if len(encoded) > s.limits.MaxQueueMetadata {
			return nil, badRequest("Queue metadata is too large. Max size: %d", s.limits.MaxQueueMetadata)
		}
		settings, e := s.validateMetadata(meta)
		if e != nil {
			return nil, e
		}
		if e := s.placeBeside(ctx, c, name, settings.DeadLetter); e != nil {
			return nil, e
		}
		op := &Op{Kind: OpSetQueueMetadata, Caller: c, Queue: name, Metadata: encoded}
		if e := s.pipeline.before(ctx, op); e != nil {
			return nil, e
		}
		res, _, e := s.propose(ctx, what, &fsm.SetQueueMetadata{
			Project: c.scope(), Queue: name, ExpectVersion: q.MetaVersion, Settings: settings, Metadata: encoded,
		})
		if e != nil {
			return nil, e
		}
		switch res.Status {
		case fsm.StatusOK:
			s.pipeline.after(ctx, op)
			return meta, nil
		case fsm.StatusNotFound:
			return nil, notFound("Queue %s does not exist for project %s", name, c.Project)
		}
		// StatusConflict: another update won; start again from its result.
	}
	return nil, Errf(http.StatusConflict, TitleConflict, "The queue metadata kept changing; try again.")
}

// DeleteQueue deletes a queue with its messages, claims and subscriptions.
func (s *Service) DeleteQueue(ctx context.Context, c Caller, name string) *Error {
	_, _, e := s.propose(ctx, "Queue could not be deleted.", &fsm.DeleteQueue{Project: c.scope(), Queue: name})
	return e
}

// QueueStats is the answer of Stats.
type QueueStats struct {
	Exists         bool
	Total, Claimed int64
	// Oldest and Newest are the first and last unexpired messages in FIFO
	// order (nil when Total is 0).
	Oldest, Newest *StatsEdge
}

// Stats counts a queue's messages (contract §5.7).
func (s *Service) Stats(ctx context.Context, c Caller, name string) (QueueStats, *Error) {
	const what = "Queue stats could not be read."
	v, now, e := s.view(ctx, c, what)
	if e != nil {
		return QueueStats{}, e
	}
	defer v.Close()
	q, err := v.Queue(c.scope(), name)
	if err != nil {
		return QueueStats{}, storeFailure(what, err)
	}
	out := QueueStats{Exists: q != nil}
	if q == nil {
		return out, nil
	}
	st, err := v.QueueStats(c.scope(), name, now)
	if err != nil {
		return QueueStats{}, storeFailure(what, err)
	}
	out.Total, out.Claimed = st.Total, st.Claimed
	out.Oldest, out.Newest = statsEdgeAt(st.Oldest, now), statsEdgeAt(st.Newest, now)
	return out, nil
}

// PurgeQueue deletes the requested resource types of a queue (contract
// §5.8): body is optional `{"resource_types": [...]}`.
func (s *Service) PurgeQueue(ctx context.Context, c Caller, name string, body []byte) *Error {
	messages, subscriptions := true, true
	if len(strings.TrimSpace(string(body))) > 0 {
		obj, e := parseObject(body, "Document type not supported.")
		if e != nil {
			return e
		}
		types, e := resourceTypes(obj)
		if e != nil {
			return e
		}
		messages, subscriptions = false, false
		for _, t := range types {
			messages = messages || t == "messages"
			subscriptions = subscriptions || t == "subscriptions"
		}
	}
	_, _, e := s.propose(ctx, "Queue could not be purged.", &fsm.PurgeQueue{
		Project: c.scope(), Queue: name, Messages: messages, Subscriptions: subscriptions,
	})
	return e
}

func resourceTypes(obj map[string]json.RawMessage) ([]string, *Error) {
	raw, ok := obj["resource_types"]
	if !ok {
		return nil, badRequest(`Post body must contain key "resource_types".`)
	}
	var types []string
	if err := json.Unmarshal(raw, &types); err != nil {
		return nil, badRequest("Resource types must be a sub set of ['messages', 'subscriptions'].")
	}
	if len(types) == 0 {
		return nil, badRequest("Resource types must be a non-empty sub set of ['messages', 'subscriptions'].")
	}
	for _, t := range types {
		if t != "messages" && t != "subscriptions" {
			return nil, badRequest("Resource types must be a sub set of ['messages', 'subscriptions'].")
		}
	}
	return types, nil
}

// validateMetadata checks reserved metadata keys (contract §5.9) and
// derives the settings the store acts on.
func (s *Service) validateMetadata(meta map[string]json.RawMessage) (store.QueueSettings, *Error) {
	var st store.QueueSettings
	intKey := func(key string, min, max int64, rangeMsg string) (int64, *Error) {
		v, ok := meta[key]
		if !ok || isNull(v) {
			return 0, nil
		}
		n, isInt := asInt(v)
		if !isInt {
			if !isFalsy(v) {
				return 0, badRequest("%s must be integer.", key)
			}
			n = 0
		}
		if n < min || n > max {
			return 0, badRequest("%s", rangeMsg)
		}
		return n, nil
	}
	var e *Error
	if st.DefaultTTL, e = intKey("_default_message_ttl", MinMessageTTL, s.limits.MaxMessageTTL,
		fmt.Sprintf("_default_message_ttl can not exceed %d seconds, and must be at least %d seconds long.", s.limits.MaxMessageTTL, MinMessageTTL)); e != nil {
		return st, e
	}
	if st.MaxPostSize, e = intKey("_max_messages_post_size", 1, int64(s.limits.MaxMessagesPostSize),
		fmt.Sprintf("_max_messages_post_size can not exceed %d, and must be at least greater than 0.", s.limits.MaxMessagesPostSize)); e != nil {
		return st, e
	}
	if st.DefaultDelay, e = intKey("_default_message_delay", 0, s.limits.MaxMessageDelay,
		fmt.Sprintf("The TTL can not exceed %d seconds, and must be at least %d seconds long.", s.limits.MaxMessageDelay, 0)); e != nil {
		return st, e
	}
	if st.DeadLetterTTL, e = intKey("_dead_letter_queue_messages_ttl", MinMessageTTL, s.limits.MaxMessageTTL,
		fmt.Sprintf("The TTL for a message may not exceed %d seconds, and must be at least %d seconds long.", s.limits.MaxMessageTTL, MinMessageTTL)); e != nil {
		return st, e
	}
	if v, ok := meta["_max_claim_count"]; ok && !isNull(v) {
		n, isInt := asInt(v)
		if !isInt && !isFalsy(v) {
			return st, badRequest("_max_claim_count must be integer.")
		}
		st.MaxClaimCount = n
	}
	if v, ok := meta["_dead_letter_queue"]; ok && !isNull(v) {
		name, isStr := asString(v)
		if !isStr && !isFalsy(v) {
			return st, badRequest("_dead_letter_queue must be a queue name.")
		}
		if name != "" && !validName(name) {
			return st, badRequest("_dead_letter_queue must be a valid queue name.")
		}
		st.DeadLetter = name
	}
	if v, ok := meta[encryptFlag]; ok && !isNull(v) && !isFalsy(v) {
		if _, isBool := asBool(v); !isBool {
			return st, badRequest("_enable_encrypt_messages must be boolean.")
		}
		if e := s.checkEncryptFlag(meta); e != nil {
			return st, e
		}
	}
	if v, ok := meta["_flavor"]; ok && !isNull(v) && !isFalsy(v) {
		if _, isStr := asString(v); !isStr {
			return st, badRequest("_flavor must be a string.")
		}
	}
	if v, ok := meta["_retry_policy"]; ok && !isNull(v) {
		if e := validateRetryPolicy(v); e != nil {
			return st, e
		}
	}
	return st, nil
}

// validateRetryPolicy checks a notification retry policy (contract §10.6).
func validateRetryPolicy(v json.RawMessage) *Error {
	if jsonx.Kind(v) != '{' {
		if isFalsy(v) {
			return nil
		}
		return badRequest("_retry_policy must be a dict.")
	}
	var p map[string]json.RawMessage
	if err := json.Unmarshal(v, &p); err != nil {
		return badRequest("_retry_policy must be a dict.")
	}
	ints := map[string]int64{
		"retries_with_no_delay": 3, "minimum_delay_retries": 3, "minimum_delay": 5,
		"maximum_delay": 30, "maximum_delay_retries": 3,
	}
	keys := make([]string, 0, len(ints))
	for k := range ints {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		raw, ok := p[k]
		if !ok || isNull(raw) || isFalsy(raw) {
			continue
		}
		n, isInt := asInt(raw)
		if !isInt {
			return badRequest("%s must be integer.", k)
		}
		ints[k] = n
	}
	if raw, ok := p["retry_backoff_function"]; ok && !isNull(raw) && !isFalsy(raw) {
		fn, isStr := asString(raw)
		if !isStr {
			return badRequest("retry_backoff_function must be string.")
		}
		switch fn {
		case "linear", "arithmetic", "geometric", "exponential":
		default:
			return badRequest("retry_backoff_function must be one of linear, arithmetic, geometric, exponential.")
		}
	}
	if raw, ok := p["ignore_subscription_override"]; ok && !isNull(raw) && !isFalsy(raw) {
		if _, isBool := asBool(raw); !isBool {
			return badRequest("ignore_subscription_override must be boolean.")
		}
	}
	if ints["maximum_delay"] < ints["minimum_delay"] {
		return badRequest("minimum_delay must less than maximum_delay.")
	}
	if ints["maximum_delay"]-ints["minimum_delay"] < 10 {
		return badRequest("The value of maximum_delay minus minimum_delay must be at least 10 seconds.")
	}
	return nil
}
