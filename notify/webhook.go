package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/zaqar-raft/zaqar/store"
)

// webhookDeliverer POSTs notifications to http and https subscribers.
type webhookDeliverer struct {
	client *http.Client   // see newWebhookClient
	deny   []netip.Prefix // refused on top of the always-refused ranges
}

func newWebhookDeliverer(cfg Config) *webhookDeliverer {
	return &webhookDeliverer{client: newWebhookClient(cfg.AttemptTimeout, cfg.DenyCIDRs), deny: cfg.DenyCIDRs}
}

func (d *webhookDeliverer) Schemes() []string { return []string{"http", "https"} }

// Check requires a URL with a host; a literal address is judged now, a
// host name on each delivery, when it is resolved (newWebhookClient checks
// every address dialled).
func (d *webhookDeliverer) Check(subscriber string) error {
	u, err := url.Parse(subscriber)
	if err != nil || u.Host == "" {
		return fmt.Errorf("The subscriber %q is not a valid URL.", redactSubscriber(subscriber))
	}
	if ip, err := netip.ParseAddr(u.Hostname()); err == nil {
		if why := AddressRefusal(ip, d.deny); why != "" {
			return fmt.Errorf("The subscriber's address is refused: %s.", why)
		}
	}
	return nil
}

func (d *webhookDeliverer) Deliver(ctx context.Context, sub *store.Subscription, payload []byte) error {
	return webhook(ctx, d.client, sub.Subscriber, sub.Options, payload)
}

// webhook POSTs a payload to an http(s) subscriber (contract §10.3):
// Content-Type application/json plus options.post_headers; the body is the
// payload, or options.post_data with "$zaqar_message$" (quotes included)
// replaced by it. Statuses below 400 are success; 429 and 5xx are retried,
// other 4xx are final, and so is a refused address (newWebhookClient).
func webhook(ctx context.Context, client *http.Client, target string, options, payload []byte) error {
	var opts struct {
		PostData    *string           `json:"post_data"`
		PostHeaders map[string]string `json:"post_headers"`
	}
	_ = json.Unmarshal(options, &opts)
	body := payload
	if opts.PostData != nil {
		body = []byte(strings.ReplaceAll(*opts.PostData, `"$zaqar_message$"`, string(payload)))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return permanent(redactURLError(err))
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range opts.PostHeaders {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	switch {
	case errors.Is(err, ErrRefusedAddress):
		return permanent(redactURLError(err))
	case err != nil:
		return redactURLError(err) // transport error: retried
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode < 400:
		return nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return fmt.Errorf("webhook %s answered %d", redactSubscriber(target), resp.StatusCode)
	default:
		return permanent(fmt.Errorf("webhook %s answered %d", redactSubscriber(target), resp.StatusCode))
	}
}
