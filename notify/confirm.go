package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/zaqar-raft/zaqar/store"
)

// confirmationPolicy is what confirmations get: a few immediate retries.
// (Upstream gives them effectively none.)
var confirmationPolicy = Policy{RetriesWithNoDelay: 3}

// SendConfirmation sends a subscription confirmation (or unsubscribe
// confirmation) to the subscriber in the background, from whichever node
// handled the request (contract §10.5). Webhooks receive the payload as
// their POST body; email subscribers get an email made from the
// configured template, with a confirmation link built from
// EmailConfig.ExternalConfirmationURL (the payload itself when that is not
// configured).
func (n *Notifier) SendConfirmation(sub *store.Subscription, project string, payload []byte) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		scheme := n.registry.metricScheme(sub.Subscriber)
		for attempt := 0; ; attempt++ {
			err := n.attemptConfirmation(ctx, sub, project, payload)
			if err == nil {
				n.metrics.outcome(scheme, "confirmation_sent")
				return
			}
			if errors.Is(err, errPermanent) || attempt >= len(confirmationPolicy.Schedule()) || ctx.Err() != nil {
				n.metrics.outcome(scheme, "confirmation_failed")
				n.log.Warn("subscription confirmation not delivered", "subscriber", redactSubscriber(sub.Subscriber), "err", err)
				return
			}
		}
	}()
}

// attemptConfirmation makes one attempt to deliver a confirmation.
func (n *Notifier) attemptConfirmation(ctx context.Context, sub *store.Subscription, project string, payload []byte) error {
	d, err := n.registry.deliverer(sub.Subscriber)
	if err != nil {
		return err
	}
	actx, cancel := context.WithTimeout(ctx, n.cfg.AttemptTimeout)
	defer cancel()
	if cd, ok := d.(confirmationDeliverer); ok {
		return cd.DeliverConfirmation(actx, sub, project, payload)
	}
	return d.Deliver(actx, sub, payload)
}

// confirmationDoc is the part of a confirmation payload an email needs.
type confirmationDoc struct {
	MessageType string `json:"Message_Type"`
	Signature   string `json:"URL-Signature"`
	Methods     string `json:"URL-Methods"`
	Paths       string `json:"URL-Paths"`
	Project     string `json:"X-Project-ID"`
	Expires     string `json:"URL-Expires"`
	URL         string `json:"WSGISubscribeURL"`
	Queue       string `json:"queue_name"`
}

// EmailTemplate is a confirmation email. Topic is its subject; Body its
// text, where {0} is the queue's name, {1} the project and {2} the
// confirmation link ({{ and }} are literal braces, as in the reference's
// Python str.format; any other field is refused at start-up); Sender its
// From header (empty: the subscription's options.from, else
// EmailConfig.From). An empty Topic or Body is the reference's.
type EmailTemplate struct {
	Topic, Body, Sender string
}

// The reference's templates (zaqar/conf/notification.py). Its default
// sender, "Zaqar Notifications <no-reply@openstack.org>", is not taken: a
// deployment does not own openstack.org, and relays refuse or flag mail
// from domains the sender does not own.
var (
	DefaultSubscriptionConfirmationEmail = EmailTemplate{
		Topic: "Zaqar Notification - Subscription Confirmation",
		Body:  "You have chosen to subscribe to the queue: {0}. This queue belongs to project: {1}. To confirm this subscription, click or visit this link below: {2}",
	}
	DefaultUnsubscribeConfirmationEmail = EmailTemplate{
		Topic: "Zaqar Notification - Unsubscribe Confirmation",
		Body:  "You have unsubscribed successfully to the queue: {0}. This queue belongs to project: {1}. To resubscribe this subscription, click or visit this link below: {2}",
	}
)

// or fills t's empty topic and body from def.
func (t EmailTemplate) or(def EmailTemplate) EmailTemplate {
	if t.Topic == "" {
		t.Topic = def.Topic
	}
	if t.Body == "" {
		t.Body = def.Body
	}
	return t
}

// confirmationMessage is the email of a confirmation payload for a mailto
// subscriber, as the reference makes it: the template's topic as subject
// (whatever the subscriber URI's subject says), its sender if set, and its
// body with the link to the confirmation page.
func confirmationMessage(subscriber string, options []byte, project string, payload []byte, cfg EmailConfig) (emailMessage, error) {
	var d confirmationDoc
	if err := json.Unmarshal(payload, &d); err != nil {
		return emailMessage{}, permanent(fmt.Errorf("confirmation payload: %w", err))
	}
	tmpl := cfg.SubscriptionConfirmation.or(DefaultSubscriptionConfirmationEmail)
	if d.MessageType == "UnsubscribeConfirmation" {
		tmpl = cfg.UnsubscribeConfirmation.or(DefaultUnsubscribeConfirmationEmail)
	}
	m, err := buildEmail(subscriber, options, payload, cfg)
	if err != nil {
		return m, err
	}
	m.Subject = tmpl.Topic
	if tmpl.Sender != "" {
		m.From = tmpl.Sender
	}
	if cfg.ExternalConfirmationURL == "" {
		return m, nil // the reference fails here; the payload is still usable
	}
	if m.Body, err = formatTemplate(tmpl.Body, d.Queue, project, confirmationLink(cfg.ExternalConfirmationURL, d)); err != nil {
		return m, permanent(err)
	}
	return m, nil
}

// confirmationLink is the confirmation page with the signature as
// URL-encoded query parameters.
func confirmationLink(page string, d confirmationDoc) string {
	q := url.Values{}
	q.Set("Signature", d.Signature)
	q.Set("Methods", d.Methods)
	q.Set("Paths", d.Paths)
	q.Set("Project", d.Project)
	q.Set("Expires", d.Expires)
	q.Set("Url", d.URL)
	q.Set("Queue", d.Queue)
	if strings.Contains(page, "?") {
		return page + "&" + q.Encode()
	}
	return page + "?" + q.Encode()
}

// formatTemplate fills a template body as Python's str.format does with
// the positional arguments args: {N} is args[N]; {{ and }} are braces.
// Anything else in braces ({}, {name}, {0!r}, {0:>9}, an index past args)
// and a lone brace are errors.
func formatTemplate(tmpl string, args ...string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(tmpl); i++ {
		switch c := tmpl[i]; {
		case c == '{' && strings.HasPrefix(tmpl[i:], "{{"), c == '}' && strings.HasPrefix(tmpl[i:], "}}"):
			b.WriteByte(c)
			i++
		case c == '{':
			end := strings.IndexByte(tmpl[i:], '}')
			if end < 0 {
				return "", fmt.Errorf("an unmatched { at byte %d (write {{ for a brace)", i)
			}
			field := tmpl[i+1 : i+end]
			n, err := strconv.Atoi(field)
			if err != nil || n < 0 || n >= len(args) || strconv.Itoa(n) != field {
				return "", fmt.Errorf("{%s}: only {0} (queue), {1} (project) and {2} (confirmation link) are filled", field)
			}
			b.WriteString(args[n])
			i += end
		case c == '}':
			return "", fmt.Errorf("an unmatched } at byte %d (write }} for a brace)", i)
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}
