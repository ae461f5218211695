package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
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
// their POST body; email subscribers get a message with a confirmation link
// built from EmailConfig.ExternalConfirmationURL (the payload itself when
// that is not configured).
func (n *Notifier) SendConfirmation(sub *store.Subscription, project string, payload []byte) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		scheme := n.registry.metricScheme(sub.Subscriber)
		confirm, body := *sub, payload
		if d, err := n.registry.deliverer(sub.Subscriber); err == nil {
			if r, ok := d.(confirmationRenderer); ok {
				confirm, body = r.Confirmation(*sub, project, payload)
			}
		}
		for attempt := 0; ; attempt++ {
			err := n.attempt(ctx, &confirm, body)
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

// confirmationEmail renders the reference's email templates with a link to
// the confirmation page carrying the signature.
func confirmationEmail(page, project string, payload []byte) string {
	var d confirmationDoc
	if page == "" || json.Unmarshal(payload, &d) != nil {
		return string(payload)
	}
	q := url.Values{}
	q.Set("Signature", d.Signature)
	q.Set("Methods", d.Methods)
	q.Set("Paths", d.Paths)
	q.Set("Project", d.Project)
	q.Set("Expires", d.Expires)
	q.Set("Url", d.URL)
	q.Set("Queue", d.Queue)
	link := page + "?" + q.Encode()
	if strings.Contains(page, "?") {
		link = page + "&" + q.Encode()
	}
	if d.MessageType == "UnsubscribeConfirmation" {
		return fmt.Sprintf("You have unsubscribed successfully to the queue: %s. This queue belongs to project: %s. To resubscribe this subscription, click or visit this link below: %s", d.Queue, project, link)
	}
	return fmt.Sprintf("You have chosen to subscribe to the queue: %s. This queue belongs to project: %s. To confirm this subscription, click or visit this link below: %s", d.Queue, project, link)
}

// confirmationEmailOptions sets the subject of a confirmation email.
func confirmationEmailOptions(options, payload []byte) []byte {
	var d confirmationDoc
	_ = json.Unmarshal(payload, &d)
	var opts map[string]any
	_ = json.Unmarshal(options, &opts)
	if opts == nil {
		opts = map[string]any{}
	}
	opts["subject"] = "Zaqar Notification - Subscription Confirmation"
	if d.MessageType == "UnsubscribeConfirmation" {
		opts["subject"] = "Zaqar Notification - Unsubscribe Confirmation"
	}
	b, _ := json.Marshal(opts)
	return b
}
