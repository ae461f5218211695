package notify

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/zaqar-raft/zaqar/store"
)

// A Deliverer sends notifications to the subscribers of some URI schemes.
// Adding a notification transport is one file holding a Deliverer and one
// line in NewRegistry; the accepted schemes, subscribe-time validation and
// metric labels all come from the registry.
type Deliverer interface {
	// Schemes are the subscriber URI schemes it serves.
	Schemes() []string
	// Check judges a subscriber URI of one of its schemes when a
	// subscription is made or changed; the error's text is shown to the
	// client (400). It needs nothing but configuration.
	Check(subscriber string) error
	// Deliver makes one delivery attempt. An error wrapping errPermanent
	// is not retried; one wrapping ErrGone ends the subscription.
	Deliver(ctx context.Context, sub *store.Subscription, payload []byte) error
}

// confirmationDeliverer is implemented by deliverers whose subscription
// confirmations are not the bare payload (email sends a message made from
// a template, with a link): DeliverConfirmation makes one attempt.
type confirmationDeliverer interface {
	DeliverConfirmation(ctx context.Context, sub *store.Subscription, project string, payload []byte) error
}

// selfSubscribing is implemented by deliverers whose subscribers no client
// names (websocket connections subscribe themselves): their schemes are
// not subscriber types a deployment can allow.
type selfSubscribing interface{ selfSubscribing() }

// Registry maps subscriber schemes to their deliverers.
type Registry struct {
	byScheme map[string]Deliverer
	schemes  []string // registration order
}

// NewRegistry registers every notification transport of this build,
// configured by cfg. This list is the one place transports are named.
func NewRegistry(cfg Config) *Registry {
	r := &Registry{byScheme: map[string]Deliverer{}}
	hooks := newWebhookDeliverer(cfg)
	r.register(hooks)
	r.register(newEmailDeliverer(cfg.Email))
	r.register(newTrustDeliverer(cfg, hooks.client))
	r.register(newWebsocketDeliverer(cfg.Node))
	return r
}

func (r *Registry) register(d Deliverer) {
	for _, s := range d.Schemes() {
		if _, dup := r.byScheme[s]; dup {
			panic("notify: scheme " + s + " registered twice") // a programming error in NewRegistry
		}
		r.byScheme[s] = d
		r.schemes = append(r.schemes, s)
	}
}

// Schemes are the registered schemes, in registration order.
func (r *Registry) Schemes() []string { return append([]string(nil), r.schemes...) }

// SubscriberTypes are the registered schemes clients may name as
// subscribers, in registration order: the subscriber types a deployment
// can allow.
func (r *Registry) SubscriberTypes() []string {
	var out []string
	for _, s := range r.schemes {
		if _, self := r.byScheme[s].(selfSubscribing); !self {
			out = append(out, s)
		}
	}
	return out
}

// CheckSubscriberTypes checks a deployment's allowed subscriber types
// (-subscriber-types) at start-up: each must be a subscriber type of a
// registered transport, listed once. An empty list is valid: clients then
// cannot subscribe anything (websocket connections still subscribe
// themselves).
func (r *Registry) CheckSubscriberTypes(types []string) error {
	known := r.SubscriberTypes()
	seen := map[string]bool{}
	var errs []error
	for _, t := range types {
		d, registered := r.byScheme[t]
		_, self := d.(selfSubscribing)
		switch {
		case seen[t]:
			errs = append(errs, fmt.Errorf("subscriber type %q is listed twice", t))
		case registered && self:
			errs = append(errs, fmt.Errorf("subscriber type %q cannot be allowed: its subscribers subscribe themselves", t))
		case !registered:
			errs = append(errs, fmt.Errorf("subscriber type %q has no notification transport (this build has %s)", t, strings.Join(known, ", ")))
		}
		seen[t] = true
	}
	return errors.Join(errs...)
}

// CheckSubscriber judges a subscriber URI with its scheme's deliverer.
func (r *Registry) CheckSubscriber(subscriber string) error {
	d, ok := r.byScheme[schemeOf(subscriber)]
	if !ok {
		return fmt.Errorf("no notification transport serves %q subscribers", schemeOf(subscriber))
	}
	return d.Check(subscriber)
}

// deliverer returns the deliverer of a subscriber URI.
func (r *Registry) deliverer(subscriber string) (Deliverer, error) {
	d, ok := r.byScheme[schemeOf(subscriber)]
	if !ok {
		return nil, permanent(errors.New("unsupported subscriber scheme " + schemeOf(subscriber)))
	}
	return d, nil
}

// IsTrustSubscriber reports whether a subscriber URI is a trust
// subscriber (trust+http, trust+https), for which the service creates a
// Keystone trust when it subscribes.
func IsTrustSubscriber(subscriber string) bool {
	switch schemeOf(subscriber) {
	case "trust+http", "trust+https":
		return true
	}
	return false
}

// schemeOf returns a subscriber URI's scheme ("http", "mailto", ...).
func schemeOf(subscriber string) string {
	s, _, _ := strings.Cut(subscriber, ":")
	return s
}

// metricScheme is the scheme label of a subscriber: its scheme if
// registered, else "other" (metric labels stay bounded by the registry).
func (r *Registry) metricScheme(subscriber string) string {
	if s := schemeOf(subscriber); r.byScheme[s] != nil {
		return s
	}
	return "other"
}
