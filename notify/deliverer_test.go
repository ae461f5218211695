package notify

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/zaqar-raft/zaqar/store"
)

func TestRegistry_EverySchemeHasOneDeliverer(t *testing.T) {
	r := NewRegistry(Config{})
	want := []string{"http", "https", "mailto", "trust+http", "trust+https", WebsocketScheme}
	if got := r.Schemes(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("schemes %v, want %v", got, want)
	}
	for _, s := range want {
		if _, err := r.deliverer(s + "://x"); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	if _, err := r.deliverer("gopher://x"); err == nil {
		t.Error("an unknown scheme found a deliverer")
	}
	if got := r.metricScheme("gopher://x"); got != "other" {
		t.Errorf("metric label of an unknown scheme %q, want other", got)
	}
}

type fakeDeliverer struct{ schemes []string }

func (f fakeDeliverer) Schemes() []string { return f.schemes }
func (fakeDeliverer) Check(string) error  { return nil }
func (fakeDeliverer) Deliver(context.Context, *store.Subscription, []byte) error {
	return nil
}

func TestRegistry_RefusesASchemeRegisteredTwice(t *testing.T) {
	r := NewRegistry(Config{})
	defer func() {
		if recover() == nil {
			t.Fatal("a second deliverer for http was registered")
		}
	}()
	r.register(fakeDeliverer{schemes: []string{"http"}})
}

func TestRegistry_ChecksEachSubscriberWithItsTransport(t *testing.T) {
	r := NewRegistry(Config{DenyCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	cases := []struct {
		subscriber string
		refusal    string // "" accepted
	}{
		{"http://example.com/hook", ""},
		{"https://user:pw@example.com:8443/x", ""},
		{"http:///no-host", "is not a valid URL"},
		{"http://10.1.2.3/x", "address is refused"},
		{"http://169.254.169.254/latest", "address is refused"},
		{"http://[::]/x", "address is refused"},
		{"mailto:ops@example.com", ""},
		{"mailto:ops@example.com?subject=Hi", ""},
		{"mailto:nobody", "needs an email address"},
		{"trust+http://example.com/x", "need Keystone"},
		{WebsocketSubscriber("node1", "c1"), "subscribe themselves"},
		{"gopher://example.com", "no notification transport"},
	}
	for _, c := range cases {
		err := r.CheckSubscriber(c.subscriber)
		switch {
		case c.refusal == "" && err != nil:
			t.Errorf("%s refused: %v", c.subscriber, err)
		case c.refusal != "" && (err == nil || !strings.Contains(err.Error(), c.refusal)):
			t.Errorf("%s: %v, want a refusal saying %q", c.subscriber, err, c.refusal)
		}
	}
	// The refusal never shows the credentials of a URL.
	if err := r.CheckSubscriber("http://user:secret@:bad/x"); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("refusal %v", err)
	}
}

func TestRegistry_SubscriberTypesAreTheSchemesClientsMayName(t *testing.T) {
	r := NewRegistry(Config{})
	want := "http,https,mailto,trust+http,trust+https"
	if got := strings.Join(r.SubscriberTypes(), ","); got != want {
		t.Fatalf("subscriber types %s, want %s (no %s: connections subscribe themselves)", got, want, WebsocketScheme)
	}
	cases := []struct {
		types   []string
		refusal string // "" accepted
	}{
		{[]string{"http", "https", "mailto", "trust+http", "trust+https"}, ""},
		{[]string{"https"}, ""},
		{[]string{}, ""}, // nobody may subscribe
		{nil, ""},
		{[]string{"https", "gopher"}, `"gopher" has no notification transport (this build has http, https, mailto, trust+http, trust+https)`},
		{[]string{"HTTP"}, `"HTTP" has no notification transport`},
		{[]string{WebsocketScheme}, `"wsconn" cannot be allowed: its subscribers subscribe themselves`},
		{[]string{"mailto", "http", "mailto"}, `"mailto" is listed twice`},
	}
	for _, c := range cases {
		err := r.CheckSubscriberTypes(c.types)
		switch {
		case c.refusal == "" && err != nil:
			t.Errorf("%q refused: %v", c.types, err)
		case c.refusal != "" && (err == nil || !strings.Contains(err.Error(), c.refusal)):
			t.Errorf("%q: %v, want a refusal saying %s", c.types, err, c.refusal)
		}
	}
}
