package service

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/zaqar-raft/zaqar/fsm"
	"github.com/zaqar-raft/zaqar/internal/jsonx"
	"github.com/zaqar-raft/zaqar/notify"
	"github.com/zaqar-raft/zaqar/store"
)

// DefaultSubscriberTypes are the subscriber URI schemes accepted by default
// (contract §2.9).
var DefaultSubscriberTypes = []string{"http", "https", "mailto", "trust+http", "trust+https"}

// Confirmer sends subscription confirmation requests (contract §10.5).
// The notify package implements it; nil means confirmations are not sent.
type Confirmer interface {
	// SendConfirmation delivers a confirmation (or unsubscribe
	// confirmation) payload to the subscriber, in the background.
	SendConfirmation(sub *store.Subscription, project string, payload []byte)
}

// newSubscriptionID returns an id whose order is creation order (8 bytes of
// the proposer's clock, then 8 random bytes), so listing by id lists
// subscriptions in the order they were made.
func newSubscriptionID() string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(time.Now().UnixNano()))
	_, _ = rand.Read(b[8:])
	return hex.EncodeToString(b[:])
}

// SubscriptionRequest is a validated subscription body.
type SubscriptionRequest struct {
	Subscriber string
	TTL        *int64
	Options    json.RawMessage
}

// parseSubscription validates a subscription body (contract §9.2, §9.5).
// On create the subscriber is required.
func (s *Service) parseSubscription(body []byte, create bool) (SubscriptionRequest, *Error) {
	var r SubscriptionRequest
	trimmed := strings.TrimSpace(string(body))
	if trimmed == "" || trimmed == "{}" {
		if create {
			return r, badRequest("Missing parameter subscriber in body.")
		}
		return r, badRequest("No subscription to create.")
	}
	if e := parseDocument(body); e != nil {
		return r, e
	}
	if jsonx.Kind(body) != '{' {
		return r, badRequest("Subscriptions must be a dict.")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil {
		return r, badBody("Request body could not be parsed.")
	}
	for k := range obj {
		if k != "subscriber" && k != "ttl" && k != "options" {
			return r, badRequest("Unknown subscription field %q; only subscriber, ttl and options can be set.", k)
		}
	}
	raw, has := obj["subscriber"]
	if create && !has {
		return r, badRequest("Missing parameter subscriber in body.")
	}
	if has {
		sub, ok := asString(raw)
		if !ok || sub == "" {
			return r, badRequest("The subscriber must be a URI string.")
		}
		if e := s.checkSubscriber(sub); e != nil {
			return r, e
		}
		r.Subscriber = sub
	}
	if raw, ok := obj["options"]; ok && !isNull(raw) {
		if jsonx.Kind(raw) != '{' {
			return r, badRequest("Options must be a dict.")
		}
		var opts map[string]json.RawMessage
		_ = json.Unmarshal(raw, &opts)
		if rp, ok := opts["_retry_policy"]; ok && !isNull(rp) {
			if e := validateRetryPolicy(rp); e != nil {
				return r, e
			}
		}
		if err := notify.CheckWebhookOptions(raw); err != nil {
			return r, badRequest("%s", err.Error())
		}
		r.Options = jsonx.Compact(raw)
	}
	if raw, ok := obj["ttl"]; ok {
		n, isInt := asInt(raw)
		if !isInt {
			return r, badRequest("TTL must be an integer.")
		}
		if n < MinSubscriptionTTL {
			return r, badRequest("The TTL for a subscription must be at least %d seconds long.", MinSubscriptionTTL)
		}
		if n > maxSubscriptionTTL(time.Now()) {
			return r, badRequest("The TTL seconds for a subscription plus current time must be less than 9999-12-31 23:59:59.999999.")
		}
		r.TTL = &n
	}
	return r, nil
}

// lastExpiry is the last second a subscription may live to: upstream
// accepts a TTL while now plus it is a Python datetime, which ends in year
// 9999. The store holds such an expiry as store.Never (year 2262 is as far
// as its clock goes) and the TTL as given.
var lastExpiry = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)

// maxSubscriptionTTL is the longest subscription TTL accepted at now: the
// one that ends at lastExpiry (now counted in whole seconds, as upstream).
func maxSubscriptionTTL(now time.Time) int64 {
	return lastExpiry.Unix() - now.Unix()
}

// signedExpiry is the expiry of a grant lasting ttl seconds from now,
// never past lastExpiry (the signed form has four-digit years) and computed
// in seconds, where a time.Duration would overflow after 292 years.
func signedExpiry(now time.Time, ttl int64) time.Time {
	if ttl >= maxSubscriptionTTL(now) {
		return lastExpiry
	}
	return time.Unix(now.Unix()+ttl, 0).UTC()
}

// subscribeCommand is the command that creates sub: a TTL above
// fsm.MaxShortTTL travels as SubscribeLong, which the command gate keeps
// from nodes whose builds would wrap its expiry (fsm/DESIGN.md).
func subscribeCommand(sub fsm.Subscribe) fsm.Command {
	if sub.TTL > fsm.MaxShortTTL {
		return &fsm.SubscribeLong{Subscribe: sub}
	}
	return &sub
}

// SubscriberChecker judges subscriber URIs: the notify package's
// registry of transports, where each scheme's transport says what it
// accepts.
type SubscriberChecker interface {
	CheckSubscriber(subscriber string) error
}

// checkSubscriber checks that a subscriber's scheme is one this deployment
// accepts (subscriber types, contract §2.9) and that its transport accepts
// the URI.
func (s *Service) checkSubscriber(sub string) *Error {
	scheme, _, _ := strings.Cut(sub, ":")
	allowed := false
	for _, t := range s.subscriberTypes {
		allowed = allowed || t == scheme
	}
	if !allowed {
		quoted := make([]string, len(s.subscriberTypes))
		for i, t := range s.subscriberTypes {
			quoted[i] = "'" + t + "'"
		}
		return badRequest("The subscriber type of subscription must be supported in the list [%s].", strings.Join(quoted, ", "))
	}
	if err := s.subscribers.CheckSubscriber(sub); err != nil {
		return badRequest("%s", err.Error())
	}
	return nil
}

// SubscriptionResult is what CreateSubscription returns.
type SubscriptionResult struct {
	ID string
	// Existing is set when the subscriber already had an unconfirmed
	// subscription, whose id is returned (the request's ttl and options
	// were not applied).
	Existing bool
}

// CreateSubscription subscribes to a queue or topic (contract §9.2).
func (s *Service) CreateSubscription(ctx context.Context, c Caller, queue string, body []byte) (SubscriptionResult, *Error) {
	r, e := s.parseSubscription(body, true)
	if e != nil {
		return SubscriptionResult{}, e
	}
	return s.subscribe(ctx, c, queue, r, false)
}

// SubscribeConnection subscribes the websocket connection connID held by
// the node nodeID (contract §13.7).
func (s *Service) SubscribeConnection(ctx context.Context, c Caller, queue, nodeID, connID string, body []byte) (SubscriptionResult, *Error) {
	r := SubscriptionRequest{}
	if len(strings.TrimSpace(string(body))) > 0 {
		obj, e := parseObject(body, "Subscriptions must be a dict.")
		if e != nil {
			return SubscriptionResult{}, e
		}
		delete(obj, "subscriber")
		b, _ := json.Marshal(obj)
		if len(obj) > 0 {
			if r, e = s.parseSubscription(b, false); e != nil {
				return SubscriptionResult{}, e
			}
		}
	}
	r.Subscriber = notify.WebsocketSubscriber(nodeID, connID)
	return s.subscribe(ctx, c, queue, r, true)
}

func (s *Service) subscribe(ctx context.Context, c Caller, queue string, r SubscriptionRequest, confirmed bool) (SubscriptionResult, *Error) {
	ttl := s.limits.DefaultSubscriptionTTL
	if r.TTL != nil {
		ttl = *r.TTL
	}
	opts := []byte(r.Options)
	if opts == nil {
		opts = []byte("{}")
	}
	const what = "Subscription could not be created."
	op := &Op{Kind: OpSubscribe, Caller: c, Queue: queue, Subscription: &OpSubscription{
		ID: newSubscriptionID(), Subscriber: r.Subscriber, Options: opts, Confirmed: confirmed,
	}}
	if e := s.pipeline.before(ctx, op); e != nil {
		return SubscriptionResult{}, e
	}
	cmd := fsm.Subscribe{
		Project: c.scope(), Queue: queue, ID: op.Subscription.ID, Subscriber: r.Subscriber, TTL: ttl, Options: opts, Confirmed: confirmed,
	}
	// The trust is made once every stage has admitted the subscription,
	// so that a refused subscription leaves no trust behind.
	var hold *fsm.HoldTrust
	if notify.IsTrustSubscriber(r.Subscriber) {
		trust, e := s.trustFor(ctx, c, what)
		if e != nil {
			return SubscriptionResult{}, e
		}
		// A duplicate or a conflict does not take the trust: HoldTrust
		// retires it then.
		hold = &fsm.HoldTrust{Project: cmd.Project, Queue: queue, ID: cmd.ID, Subscriber: r.Subscriber, TrustID: trust}
	}
	res, e := s.proposeWithTrust(ctx, what, subscribeCommand(cmd), hold)
	if e != nil {
		return SubscriptionResult{}, e
	}
	if res.Status == fsm.StatusConflict {
		return SubscriptionResult{ID: res.ID}, Errf(http.StatusConflict, TitleConflict,
			"Such subscription already exists.Subscriptions are unique by project + queue + subscriber URI.")
	}
	out := SubscriptionResult{ID: res.ID, Existing: !res.Changed}
	op.Subscription.ID, op.Subscription.Existing = res.ID, out.Existing
	s.pipeline.after(ctx, op)
	return out, nil
}

// GetSubscription returns an unexpired subscription.
func (s *Service) GetSubscription(ctx context.Context, c Caller, queue, id string) (Subscription, *Error) {
	const what = "Subscription could not be retrieved."
	v, now, e := s.view(ctx, c, what)
	if e != nil {
		return Subscription{}, e
	}
	defer v.Close()
	sub, err := v.Subscription(c.scope(), queue, id, now)
	if err != nil {
		return Subscription{}, storeFailure(what, err)
	}
	if sub == nil {
		return Subscription{}, notFound("Subscription %s does not exist in %s %s for project %s", id, c.noun(), queue, c.Project)
	}
	return subscriptionAt(sub, now), nil
}

// SubscriptionList is a page of subscriptions.
type SubscriptionList struct {
	Subscriptions []Subscription
	Limit         int // the page size used
}

// ListSubscriptions lists a queue's subscriptions in creation order; a nil
// limit is the default page size.
func (s *Service) ListSubscriptions(ctx context.Context, c Caller, queue, marker string, limitParam *int) (SubscriptionList, *Error) {
	limit, e := pageSize(limitParam, s.limits.MaxSubscriptionsPerPage, "Limit must be at least 1 and may not be greater than %d.")
	if e != nil {
		return SubscriptionList{}, e
	}
	const what = "Subscriptions could not be listed."
	v, now, e := s.view(ctx, c, what)
	if e != nil {
		return SubscriptionList{}, e
	}
	defer v.Close()
	subs, err := v.ListSubscriptions(c.scope(), queue, marker, limit, now)
	if err != nil {
		return SubscriptionList{}, storeFailure(what, err)
	}
	out := SubscriptionList{Subscriptions: make([]Subscription, len(subs)), Limit: limit}
	for i, sub := range subs {
		out.Subscriptions[i] = subscriptionAt(sub, now)
	}
	return out, nil
}

// UpdateSubscription patches a subscription (contract §9.5): ttl restarts
// its expiry, options replace the stored options. A trust subscriber given
// in the patch gets a new trust from the caller (the old one was delegated
// for sending elsewhere, or by someone else); another subscriber ends the
// trust.
func (s *Service) UpdateSubscription(ctx context.Context, c Caller, queue, id string, body []byte) *Error {
	r, e := s.parseSubscription(body, false)
	if e != nil {
		return e
	}
	cmd := &fsm.UpdateSubscription{Project: c.scope(), Queue: queue, ID: id, TTL: r.TTL}
	if r.Subscriber != "" {
		cmd.Subscriber = &r.Subscriber
	}
	if r.Options != nil {
		cmd.Options = r.Options
	}
	const what = "Subscription could not be updated."
	var proposed fsm.Command = cmd
	if r.TTL != nil && *r.TTL > fsm.MaxShortTTL {
		proposed = &fsm.UpdateSubscriptionLong{UpdateSubscription: *cmd}
	}
	var hold *fsm.HoldTrust
	if notify.IsTrustSubscriber(r.Subscriber) {
		trust, e := s.trustFor(ctx, c, what)
		if e != nil {
			return e
		}
		hold = &fsm.HoldTrust{Project: cmd.Project, Queue: queue, ID: id, Subscriber: r.Subscriber, TrustID: trust}
	}
	res, e := s.proposeWithTrust(ctx, what, proposed, hold)
	if e != nil {
		return e
	}
	switch res.Status {
	case fsm.StatusNotFound:
		return notFound("Subscription %s does not exist in %s %s for project %s", id, c.noun(), queue, c.Project)
	case fsm.StatusConflict:
		return Errf(http.StatusConflict, TitleConflict, "Such subscription already exists.Subscriptions are unique by project + queue + subscriber URI.")
	}
	return nil
}

// DeleteSubscription removes a subscription; a missing one is not an error.
func (s *Service) DeleteSubscription(ctx context.Context, c Caller, queue, id string) *Error {
	_, _, e := s.propose(ctx, "Subscription could not be deleted.", &fsm.DeleteSubscription{Project: c.scope(), Queue: queue, ID: id})
	return e
}

// ConfirmSubscription sets the confirmed flag (contract §9.7); confirming
// false also sends an unsubscribe confirmation.
func (s *Service) ConfirmSubscription(ctx context.Context, c Caller, queue, id string, body []byte) *Error {
	var confirmed bool
	obj, e := parseObject(body, "The 'confirmed' should be boolean.")
	if e != nil {
		if len(strings.TrimSpace(string(body))) == 0 {
			return badRequest("The 'confirmed' should be boolean.")
		}
		return e
	}
	v, ok := asBool(obj["confirmed"])
	if !ok {
		return badRequest("The 'confirmed' should be boolean.")
	}
	confirmed = v
	op := &Op{Kind: OpConfirmSubscription, Caller: c, Queue: queue, Subscription: &OpSubscription{ID: id, Confirmed: confirmed}}
	if e := s.pipeline.before(ctx, op); e != nil {
		return e
	}
	res, _, e := s.propose(ctx, "Subscription could not be confirmed.", &fsm.ConfirmSubscription{Project: c.scope(), Queue: queue, ID: id, Confirmed: confirmed})
	if e != nil {
		return e
	}
	if res.Status == fsm.StatusNotFound {
		return notFound("Subscription %s does not exist in %s %s for project %s", id, c.noun(), queue, c.Project)
	}
	s.pipeline.after(ctx, op)
	return nil
}

// sendConfirmation builds and hands a (un)subscribe confirmation to the
// confirmer when the deployment requires confirmation (contract §10.5).
func (s *Service) sendConfirmation(ctx context.Context, c Caller, queue, id string, subscribe bool) {
	if !s.notify.RequireConfirmation || s.confirmer == nil {
		return
	}
	// A follower's store may not have applied the command the leader just
	// committed: read after the barrier, or the confirmation is lost.
	if err := s.node.ReadBarrier(ctx); err != nil {
		s.log.Warn("subscription confirmation not sent", "id", id, "err", err)
		return
	}
	v := s.store.View()
	sub, err := v.Subscription(c.scope(), queue, id, time.Now().UnixNano())
	v.Close()
	if err != nil || sub == nil || strings.HasPrefix(sub.Subscriber, notify.WebsocketScheme+":") {
		return
	}
	key, e := s.signingKey()
	if e != nil && s.ensureSecret(ctx) && s.node.ReadBarrier(ctx) == nil {
		// A new cluster may not have made its signing secret yet.
		key, e = s.signingKey()
	}
	if e != nil {
		s.log.Warn("no signing key for a subscription confirmation", "err", e)
		return
	}
	ttl := sub.TTL
	msgType, message := "SubscriptionConfirmation", "You have chosen to subscribe to the queue: "+queue
	if !subscribe {
		ttl = s.limits.DefaultSubscriptionTTL
		msgType = "UnsubscribeConfirmation"
		message = "You have unsubscribed successfully to the queue: " + queue + ", you can resubscribe it by using confirmed=True."
	}
	path := "/v2/" + c.noun() + "s/" + queue + "/subscriptions/" + id + "/confirm"
	expires := signedExpiry(time.Now(), ttl).Format(expiresLayout)
	doc := map[string]any{
		"Message_Type": msgType, "Message": message,
		"URL-Signature": Sign(key, []string{path}, []string{"PUT"}, c.Project, expires),
		"URL-Methods":   "PUT", "URL-Paths": path, "X-Project-ID": c.Project, "URL-Expires": expires,
		"SubscribeBody": map[string]bool{"confirmed": true}, "UnsubscribeBody": map[string]bool{"confirmed": false},
		"queue_name": queue,
	}
	if s.notify.PublicURL != "" {
		doc["WSGISubscribeURL"] = strings.TrimRight(s.notify.PublicURL, "/") + path
	}
	if s.notify.PublicWebsocketURL != "" {
		doc["WebSocketSubscribeURL"] = strings.TrimRight(s.notify.PublicWebsocketURL, "/") + path
	}
	payload, _ := json.Marshal(doc)
	s.confirmer.SendConfirmation(sub, c.Project, payload)
}

// noun is "queue" or "topic", for messages.
func (c Caller) noun() string {
	if c.Namespace == Topics {
		return "topic"
	}
	return "queue"
}
