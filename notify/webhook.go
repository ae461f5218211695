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

// webhook POSTs a payload to an http(s) subscriber (contract §10.3) and
// says what the answer means (webhookOutcome).
func webhook(ctx context.Context, client *http.Client, target string, options, payload []byte) error {
	status, err := postWebhook(ctx, client, target, options, payload, "")
	return webhookOutcome(target, status, err)
}

// webhookOptions are the subscription options a webhook reads.
type webhookOptions struct {
	PostData    *string           `json:"post_data"`
	PostHeaders map[string]string `json:"post_headers"`
}

// CheckWebhookOptions judges the options webhooks read, when a
// subscription is made or its options are replaced: options.post_data,
// unless absent or null, must be a string, and options.post_headers an
// object of header names to string values that can be sent. The error's
// text is shown to the client (400).
func CheckWebhookOptions(options []byte) error {
	var raw struct {
		PostData    json.RawMessage `json:"post_data"`
		PostHeaders json.RawMessage `json:"post_headers"`
	}
	if len(options) == 0 || json.Unmarshal(options, &raw) != nil {
		return nil // not an object: the service refuses it on its own terms
	}
	if d := bytes.TrimSpace(raw.PostData); len(d) > 0 && string(d) != "null" && d[0] != '"' {
		return errors.New("options.post_data must be a string.")
	}
	if h := bytes.TrimSpace(raw.PostHeaders); len(h) > 0 && string(h) != "null" {
		var headers map[string]string
		if json.Unmarshal(h, &headers) != nil || h[0] != '{' {
			return errors.New("options.post_headers must be an object of header names to string values.")
		}
		for k, v := range headers {
			if !validHeaderName(k) || !validHeaderValue(v) {
				return fmt.Errorf("options.post_headers holds a header that cannot be sent: %q.", k)
			}
		}
	}
	return nil
}

// postWebhook POSTs a payload to target and returns the answer's status:
// Content-Type application/json plus options.post_headers; the body is the
// payload, or options.post_data with "$zaqar_message$" (quotes included)
// replaced by it. token, if set, is sent as X-Auth-Token after the
// post_headers, which cannot replace it. Options that cannot be sent
// (stored before they were checked) are a permanent failure.
func postWebhook(ctx context.Context, client *http.Client, target string, options, payload []byte, token string) (int, error) {
	var opts webhookOptions
	_ = json.Unmarshal(options, &opts)
	body := payload
	if opts.PostData != nil {
		body = []byte(strings.ReplaceAll(*opts.PostData, `"$zaqar_message$"`, string(payload)))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 0, permanent(redactURLError(err))
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range opts.PostHeaders {
		if !validHeaderName(k) || !validHeaderValue(v) {
			return 0, permanent(fmt.Errorf("options.post_headers holds a header that cannot be sent: %q", k))
		}
		if strings.EqualFold(k, "Host") {
			req.Host = v // net/http sends req.Host, not a Host header
			continue
		}
		req.Header.Set(k, v)
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode, nil
}

// webhookOutcome classifies a webhook POST: statuses below 400 are
// success; 429 and 5xx are retried, other 4xx are final, and so is a
// refused address (newWebhookClient); transport errors are retried.
func webhookOutcome(target string, status int, err error) error {
	switch {
	case errors.Is(err, errPermanent):
		return err
	case errors.Is(err, ErrRefusedAddress):
		return permanent(redactURLError(err))
	case err != nil:
		return redactURLError(err) // transport error: retried
	case status < 400:
		return nil
	case status == http.StatusTooManyRequests || status >= 500:
		return fmt.Errorf("webhook %s answered %d", redactSubscriber(target), status)
	default:
		return permanent(fmt.Errorf("webhook %s answered %d", redactSubscriber(target), status))
	}
}

// validHeaderName reports whether s is an HTTP field name (RFC 9110 token).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validHeaderValue reports whether s can be sent as a field value: no
// control characters but tab.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
