package notify

import (
	"errors"
	"strings"
	"testing"
)

func TestFormatTemplate_FillsWhatPythonsFormatFillsAndRefusesTheRest(t *testing.T) {
	args := []string{"q", "p", "https://x/?a=1&b=2"}
	for _, c := range []struct{ tmpl, want string }{
		{"", ""},
		{"plain", "plain"},
		{"{0}/{1}: {2}", "q/p: https://x/?a=1&b=2"},
		{"{2}{2}{0}", "https://x/?a=1&b=2https://x/?a=1&b=2q"},
		{"{{0}} is {0}; }} and {{", "{0} is q; } and {"},
		{"{{{0}}}", "{q}"},
		{"é {1} ✓", "é p ✓"},
		{DefaultSubscriptionConfirmationEmail.Body, "You have chosen to subscribe to the queue: q. This queue belongs to project: p. To confirm this subscription, click or visit this link below: https://x/?a=1&b=2"},
		{DefaultUnsubscribeConfirmationEmail.Body, "You have unsubscribed successfully to the queue: q. This queue belongs to project: p. To resubscribe this subscription, click or visit this link below: https://x/?a=1&b=2"},
	} {
		got, err := formatTemplate(c.tmpl, args...)
		if err != nil || got != c.want {
			t.Errorf("formatTemplate(%q) = %q, %v; want %q", c.tmpl, got, err, c.want)
		}
	}
	for _, bad := range []string{"{3}", "{}", "{name}", "{0!r}", "{0:>9}", "{-1}", "{+1}", "{01}", "{ 0}", "open {", "close }", "{0", "}{0}"} {
		if got, err := formatTemplate(bad, args...); err == nil {
			t.Errorf("formatTemplate(%q) = %q, want an error", bad, got)
		}
	}
}

func TestEmailConfigCheck_RefusesTemplatesAndTLSSettingsThatCannotWork(t *testing.T) {
	if err := (EmailConfig{}).Check(); err != nil {
		t.Fatalf("the zero config: %v", err)
	}
	ok := EmailConfig{ImplicitTLS: true, SMTPPort: 465, SubscriptionConfirmation: EmailTemplate{Body: "{0} {1} {2} {{}}"}}
	if err := ok.Check(); err != nil {
		t.Fatalf("%+v: %v", ok, err)
	}
	for want, cfg := range map[string]EmailConfig{
		"exclude each other":                   {ImplicitTLS: true, StartTLS: true},
		"subscription-confirmation-email-body": {SubscriptionConfirmation: EmailTemplate{Body: "see {3}"}},
		"unsubscribe-confirmation-email-body":  {UnsubscribeConfirmation: EmailTemplate{Body: "a lone {"}},
		"SMTP port":                            {SMTPPort: 70000},
	} {
		if err := cfg.Check(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: %v, want an error saying %q", cfg, err, want)
		}
	}
}

func TestParseSMTPURL(t *testing.T) {
	for _, c := range []struct {
		url      string
		host     string
		port     int
		implicit bool
	}{
		{"smtp://relay.example.com", "relay.example.com", 25, false},
		{"smtp://relay.example.com:587", "relay.example.com", 587, false},
		{"smtps://relay.example.com", "relay.example.com", 465, true},
		{"smtps://relay.example.com:2465/", "relay.example.com", 2465, true},
		{"smtps://[::1]:465", "::1", 465, true},
	} {
		host, port, implicit, err := ParseSMTPURL(c.url)
		if err != nil || host != c.host || port != c.port || implicit != c.implicit {
			t.Errorf("ParseSMTPURL(%q) = %q %d %v %v", c.url, host, port, implicit, err)
		}
	}
	for _, bad := range []string{"relay.example.com", "http://relay", "smtps://", "smtps://u:p@relay", "smtp://relay/x", "smtp://relay:0", "smtp://relay:99999", "smtps://relay?tls=1", "smtp:relay"} {
		if _, _, _, err := ParseSMTPURL(bad); err == nil {
			t.Errorf("ParseSMTPURL(%q) accepted", bad)
		}
	}
}

func TestEnvelopeSender_IsTheAddressOfTheFromHeader(t *testing.T) {
	for from, want := range map[string]string{
		"":                                  "zaqar@localhost",
		"ops@example.com":                   "ops@example.com",
		"Ops Team <ops@example.com>":        "ops@example.com",
		`"Zaqar, Notifier" <z@example.com>`: "z@example.com",
		"not an address":                    "not an address",
	} {
		if got := envelopeSender(from); got != want {
			t.Errorf("envelopeSender(%q) = %q, want %q", from, got, want)
		}
	}
}

func TestConfirmationMessage_TakesTopicSenderAndBodyFromTheTemplate(t *testing.T) {
	payload := []byte(`{"Message_Type": "SubscriptionConfirmation", "URL-Signature": "abc", "URL-Methods": "PUT",
		"URL-Paths": "/v2/queues/q/subscriptions/s/confirm", "X-Project-ID": "p", "URL-Expires": "9009-06-29T12:00:00",
		"WSGISubscribeURL": "https://z/v2/queues/q/subscriptions/s/confirm", "queue_name": "q"}`)
	const sub = "mailto:ops@example.com?subject=Alerts"
	opts := []byte(`{"from": "app@example.com", "subject": "from options"}`)

	// The reference's templates by default; the subscription's sender.
	m, err := confirmationMessage(sub, opts, "p", payload, EmailConfig{ExternalConfirmationURL: "https://c/page"})
	if err != nil {
		t.Fatal(err)
	}
	if m.To != "ops@example.com" || m.From != "app@example.com" || m.Subject != DefaultSubscriptionConfirmationEmail.Topic {
		t.Fatalf("default confirmation %+v", m)
	}
	wantLink := "https://c/page?Expires=9009-06-29T12%3A00%3A00&Methods=PUT&Paths=%2Fv2%2Fqueues%2Fq%2Fsubscriptions%2Fs%2Fconfirm&Project=p&Queue=q&Signature=abc&Url=https%3A%2F%2Fz%2Fv2%2Fqueues%2Fq%2Fsubscriptions%2Fs%2Fconfirm"
	if want := "You have chosen to subscribe to the queue: q. This queue belongs to project: p. To confirm this subscription, click or visit this link below: " + wantLink; m.Body != want {
		t.Fatalf("body %q\nwant %q", m.Body, want)
	}

	// Configured: the unsubscribe template for an unsubscribe payload.
	cfg := EmailConfig{ExternalConfirmationURL: "https://c/page?lang=en", UnsubscribeConfirmation: EmailTemplate{Topic: "Bye", Body: "{1}/{0}", Sender: "Ops <ops-noreply@example.com>"}}
	unsub := []byte(strings.Replace(string(payload), "SubscriptionConfirmation", "UnsubscribeConfirmation", 1))
	m, err = confirmationMessage(sub, opts, "p", unsub, cfg)
	if err != nil || m.Subject != "Bye" || m.From != "Ops <ops-noreply@example.com>" || m.Body != "p/q" {
		t.Fatalf("configured unsubscribe confirmation %+v, %v", m, err)
	}
	if link := confirmationLink(cfg.ExternalConfirmationURL, confirmationDoc{Queue: "q"}); !strings.HasPrefix(link, "https://c/page?lang=en&") {
		t.Fatalf("link %q does not keep the page's own query", link)
	}

	// Without a confirmation page the payload is sent as it is.
	if m, err = confirmationMessage(sub, opts, "p", payload, EmailConfig{}); err != nil || m.Body != string(payload) {
		t.Fatalf("without a page: %+v, %v", m, err)
	}
	if _, err := confirmationMessage(sub, opts, "p", []byte("{"), EmailConfig{}); !errors.Is(err, errPermanent) {
		t.Fatalf("a broken payload: %v, want a permanent error", err)
	}
}
