package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/zaqar-raft/zaqar/auth"
	"github.com/zaqar-raft/zaqar/store"
)

// Trusts is what the notifier needs from Keystone for trust subscribers
// (auth.Keystone implements it): tokens scoped to a subscription's trust,
// and the deletion of trusts no subscription holds any more. Keystone's
// refusals of a trust are errors wrapping auth.ErrTrustRefused.
type Trusts interface {
	TrustToken(ctx context.Context, trustID string) (string, error)
	// ForgetTrustToken drops the cached token of a trust.
	ForgetTrustToken(trustID string)
	// DeleteTrust deletes a trust; nil if Keystone no longer knows it.
	DeleteTrust(ctx context.Context, trustID string) error
}

// trustRecheck is how long a trust Keystone refused is not asked about
// again: its subscription's notifications are given up meanwhile.
const trustRecheck = 5 * time.Minute

// TrustStopReasons label zaqar_notify_trust_refusals_total: Keystone's
// refusals (auth.TrustRefusal.Reason) and a subscription that has no
// trust to deliver with (no_trust), or no Keystone to ask (no_keystone).
var TrustStopReasons = []string{"not_found", "forbidden", "unauthorized", "no_trust", "no_keystone"}

// trustDeliverer serves trust+http and trust+https subscribers (Heat's
// MistralTrigger, Mistral and Aodh subscribe this way), as upstream's
// TrustTask does: a webhook to the URL without "trust+", carrying a token
// of the subscription's Keystone trust in X-Auth-Token. Without Keystone
// such subscriptions are refused when they are made.
//
// When Keystone refuses a subscription's trust (deleted, revoked,
// expired, the trustor disabled) the subscription's notifications are
// given up (outcome "stopped") without asking Keystone again for
// trustRecheck; the refusal is logged once and counted by reason. A new
// trust (PATCH of the subscriber) resumes deliveries at once.
type trustDeliverer struct {
	client *http.Client
	deny   []netip.Prefix
	trusts Trusts // nil without Keystone
	log    *slog.Logger
	// stopped counts a subscription stopped for a reason (the notifier
	// installs its metric).
	stopped func(reason string)

	mu      sync.Mutex
	refused map[string]refusedTrust // by trust id
	logged  map[string]bool         // subscription ids whose lack of a trust was logged
}

// refusedTrust is a trust Keystone refused, not asked about until until.
type refusedTrust struct {
	reason string
	until  time.Time
}

func newTrustDeliverer(cfg Config, client *http.Client) *trustDeliverer {
	log := cfg.Logger
	if log == nil {
		log = discardLogger()
	}
	return &trustDeliverer{
		client: client, deny: cfg.DenyCIDRs, trusts: cfg.Trusts, log: log, stopped: func(string) {},
		refused: map[string]refusedTrust{}, logged: map[string]bool{},
	}
}

func (*trustDeliverer) Schemes() []string { return []string{"trust+http", "trust+https"} }

// Check refuses trust subscribers without Keystone; with it, the URL
// after "trust+" is judged as a webhook's.
func (d *trustDeliverer) Check(subscriber string) error {
	if d.trusts == nil {
		return fmt.Errorf("Trust subscribers (%s) need Keystone authentication (auth strategy keystone), which this deployment does not use.", schemeOf(subscriber))
	}
	return (&webhookDeliverer{deny: d.deny}).Check(strings.TrimPrefix(subscriber, "trust+"))
}

func (d *trustDeliverer) Deliver(ctx context.Context, sub *store.Subscription, payload []byte) error {
	switch {
	case d.trusts == nil:
		return d.stopWithoutTrust(sub, "no_keystone", "Keystone authentication is not configured")
	case sub.TrustID == "":
		return d.stopWithoutTrust(sub, "no_trust", "the subscription holds no Keystone trust")
	}
	if err := d.stillRefused(sub.TrustID); err != nil {
		return err
	}
	token, err := d.trusts.TrustToken(ctx, sub.TrustID)
	var refusal *auth.TrustRefusal
	switch {
	case errors.As(err, &refusal):
		return d.refuse(sub, refusal)
	case err != nil:
		return fmt.Errorf("no token for the subscription's trust: %w", err) // Keystone unavailable: retried
	}
	d.accepted(sub)
	target := strings.TrimPrefix(sub.Subscriber, "trust+")
	status, err := postWebhook(ctx, d.client, target, sub.Options, payload, token)
	if err == nil && status == http.StatusUnauthorized {
		// The receiver does not take the token: it may have been revoked
		// since it was cached. The retry uses a new one, or learns that
		// Keystone refuses the trust.
		d.trusts.ForgetTrustToken(sub.TrustID)
		return fmt.Errorf("webhook %s answered 401 to the trust's token", redactSubscriber(target))
	}
	return webhookOutcome(target, status, err)
}

// stillRefused returns the stopped error while a refused trust is not to
// be asked about again.
func (d *trustDeliverer) stillRefused(trustID string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	r, ok := d.refused[trustID]
	if ok && time.Now().Before(r.until) {
		return stopped(fmt.Errorf("Keystone refused the subscription's trust (%s)", r.reason))
	}
	return nil
}

// refuse records Keystone's refusal of a subscription's trust: logged the
// first time, counted each time Keystone is asked.
func (d *trustDeliverer) refuse(sub *store.Subscription, refusal *auth.TrustRefusal) error {
	d.mu.Lock()
	_, known := d.refused[sub.TrustID]
	d.refused[sub.TrustID] = refusedTrust{reason: refusal.Reason(), until: time.Now().Add(trustRecheck)}
	d.mu.Unlock()
	d.stopped(refusal.Reason())
	if !known {
		d.log.Warn("trust subscription stopped: Keystone refuses its trust; its notifications are given up until Keystone accepts the trust again (asked every 5 minutes) or a PATCH of the subscriber gives it a new one",
			"subscription", sub.ID, "subscriber", redactSubscriber(sub.Subscriber), "reason", refusal.Reason(), "keystone", refusal.Message)
	}
	return stopped(refusal)
}

// accepted clears a refusal Keystone has taken back.
func (d *trustDeliverer) accepted(sub *store.Subscription) {
	d.mu.Lock()
	_, was := d.refused[sub.TrustID]
	delete(d.refused, sub.TrustID)
	d.mu.Unlock()
	if was {
		d.log.Info("trust subscription resumed: Keystone accepts its trust again", "subscription", sub.ID, "subscriber", redactSubscriber(sub.Subscriber))
	}
}

// stopWithoutTrust gives up a notification of a trust subscription that
// cannot have a token, logging that once per subscription.
func (d *trustDeliverer) stopWithoutTrust(sub *store.Subscription, reason, why string) error {
	d.mu.Lock()
	first := !d.logged[sub.ID]
	d.logged[sub.ID] = true
	d.mu.Unlock()
	if first {
		d.stopped(reason)
		d.log.Warn("trust subscription stopped: "+why, "subscription", sub.ID, "subscriber", redactSubscriber(sub.Subscriber), "reason", reason)
	}
	return stopped(errors.New(why))
}

// forget drops what the deliverer remembers of a trust that is gone.
func (d *trustDeliverer) forget(trustID string) {
	d.mu.Lock()
	delete(d.refused, trustID)
	d.mu.Unlock()
}
