package notify

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestAddressRefusal_AlwaysRefusesLinkLocalAndUnspecifiedAddresses(t *testing.T) {
	deny, err := ParseCIDRs("127.0.0.0/8,::1/128,10.0.0.0/8")
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]string{
		"169.254.169.254":        "169.254.169.254 is a link-local address",
		"169.254.0.1":            "169.254.0.1 is a link-local address",
		"fe80::1":                "fe80::1 is a link-local address",
		"fe80::1%eth0":           "fe80::1 is a link-local address",
		"::ffff:169.254.169.254": "169.254.169.254 is a link-local address",
		"64:ff9b::a9fe:a9fe":     "64:ff9b::a9fe:a9fe is a link-local address", // NAT64 of 169.254.169.254
		"0.0.0.0":                "0.0.0.0 is an unspecified address",
		"0.1.2.3":                "0.1.2.3 is an unspecified address",
		"::":                     ":: is an unspecified address",
		"::ffff:0.0.0.0":         "0.0.0.0 is an unspecified address",
		"127.0.0.1":              "127.0.0.1 is in a denied range (127.0.0.0/8)",
		"127.9.9.9":              "127.9.9.9 is in a denied range (127.0.0.0/8)",
		"::ffff:127.0.0.1":       "127.0.0.1 is in a denied range (127.0.0.0/8)",
		"::1":                    "::1 is in a denied range (::1/128)",
		"10.20.30.40":            "10.20.30.40 is in a denied range (10.0.0.0/8)",
		"64:ff9b::a00:1":         "64:ff9b::a00:1 is in a denied range (10.0.0.0/8)",
		"192.168.1.1":            "",
		"8.8.8.8":                "",
		"2001:db8::1":            "",
		"::2":                    "",
	} {
		if got := AddressRefusal(netip.MustParseAddr(addr), deny); got != want {
			t.Errorf("AddressRefusal(%s) = %q, want %q", addr, got, want)
		}
	}
	// Without a deny list loopback and private addresses are fine (tests
	// and make run deliver to loopback); the always-refused ranges are not.
	for addr, refused := range map[string]bool{"127.0.0.1": false, "::1": false, "10.0.0.1": false, "169.254.169.254": true, "0.0.0.0": true, "::": true} {
		if got := AddressRefusal(netip.MustParseAddr(addr), nil) != ""; got != refused {
			t.Errorf("with no deny list, %s refused: %v, want %v", addr, got, refused)
		}
	}
}

func TestParseCIDRs_AcceptsPrefixesAndBareAddressesOnly(t *testing.T) {
	got, err := ParseCIDRs(" 10.1.2.3/8 ,fc00::/7,,192.0.2.7, ::ffff:172.16.0.0/108, 2001:db8::1")
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, p := range got {
		s = append(s, p.String())
	}
	if want := "10.0.0.0/8 fc00::/7 192.0.2.7/32 172.16.0.0/12 2001:db8::1/128"; strings.Join(s, " ") != want {
		t.Fatalf("ParseCIDRs = %v, want %s", s, want)
	}
	if p, err := ParseCIDRs(""); err != nil || len(p) != 0 {
		t.Fatalf(`ParseCIDRs("") = %v, %v`, p, err)
	}
	for _, bad := range []string{"intranet", "10.0.0.0/33", "10.0.0.0/8;11.0.0.0/8", "fe80::1%eth0", "localhost"} {
		if _, err := ParseCIDRs(bad); err == nil {
			t.Errorf("ParseCIDRs(%q) accepted", bad)
		}
	}
}

// listener is a real HTTP server counting the requests it gets.
type listener struct {
	srv  *httptest.Server
	hits atomic.Int32
	port string
}

// listen serves on addr ("127.0.0.1:0", ":0" for every interface);
// handler nil answers 204.
func listen(t *testing.T, addr string, handler http.HandlerFunc) *listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	l := &listener{srv: httptest.NewUnstartedServer(nil)}
	l.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.hits.Add(1)
		if handler != nil {
			handler(w, r)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	l.srv.Listener.Close()
	l.srv.Listener = ln
	l.srv.Start()
	t.Cleanup(l.srv.Close)
	_, l.port, _ = net.SplitHostPort(ln.Addr().String())
	return l
}

// deliver sends one webhook with client and reports the error.
func deliver(client *http.Client, target string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return webhook(ctx, client, target, nil, []byte(`{"body": 1}`))
}

// wantRefused fails unless err is a final refusal of the address.
func wantRefused(t *testing.T, target string, err error) {
	t.Helper()
	if !errors.Is(err, ErrRefusedAddress) || !errors.Is(err, errPermanent) {
		t.Fatalf("webhook to %s: %v, want a final refusal of the address", target, err)
	}
}

func TestWebhook_RefusesUnspecifiedAddressesThatWouldReachThisHost(t *testing.T) {
	all := listen(t, ":0", nil) // every interface: 0.0.0.0 and :: dial this host
	client := newWebhookClient(5*time.Second, nil)
	if err := deliver(client, "http://127.0.0.1:"+all.port+"/"); err != nil || all.hits.Load() != 1 {
		t.Fatalf("the receiver is not reachable on loopback (%v), so this test proves nothing", err)
	}
	for _, target := range []string{"http://0.0.0.0:" + all.port + "/", "http://[::]:" + all.port + "/", "http://[::ffff:0.0.0.0]:" + all.port + "/"} {
		wantRefused(t, target, deliver(client, target))
	}
	if n := all.hits.Load(); n != 1 {
		t.Fatalf("the receiver got %d requests, want only the loopback one", n)
	}
}

func TestWebhook_RefusesLinkLocalAddresses(t *testing.T) {
	client := newWebhookClient(5*time.Second, nil)
	for _, target := range []string{"http://169.254.169.254/latest/meta-data/", "http://[fe80::1%25lo]:8080/", "http://[::ffff:169.254.169.254]/"} {
		start := time.Now()
		wantRefused(t, target, deliver(client, target))
		if d := time.Since(start); d > time.Second {
			t.Fatalf("refusing %s took %s: it was dialled, not refused", target, d)
		}
	}
}

func TestWebhook_RefusesAHostNameThatResolvesToADeniedAddress(t *testing.T) {
	r := listen(t, "127.0.0.1:0", nil)
	deny, _ := ParseCIDRs("127.0.0.0/8,::1/128")
	target := "http://localhost:" + r.port + "/hook"
	if err := deliver(newWebhookClient(5*time.Second, nil), target); err != nil || r.hits.Load() != 1 {
		t.Fatalf("localhost does not reach the receiver (%v), so this test proves nothing", err)
	}
	wantRefused(t, target, deliver(newWebhookClient(5*time.Second, deny), target))
	if n := r.hits.Load(); n != 1 {
		t.Fatalf("the receiver got %d requests through a denied host name", n-1)
	}
}

func TestWebhook_ChecksTheAddressOfEveryRedirect(t *testing.T) {
	denied := listen(t, "127.0.0.2:0", nil)
	allowed := listen(t, "127.0.0.1:0", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://127.0.0.2:"+denied.port+"/inside", http.StatusTemporaryRedirect)
	})
	deny, _ := ParseCIDRs("127.0.0.2/32")
	target := "http://127.0.0.1:" + allowed.port + "/"

	// Deliveries do not follow redirects: the 307 is the answer.
	if err := deliver(newWebhookClient(5*time.Second, deny), target); err != nil {
		t.Fatalf("a redirect answer: %v, want success", err)
	}
	// Were they followed, the dialer would still refuse the hop: the
	// follow-up request reaches the denied receiver without a deny list,
	// and does not with one.
	for _, tc := range []struct {
		deny []netip.Prefix
		hits int32
	}{{nil, 1}, {deny, 1}} {
		following := newWebhookClient(5*time.Second, tc.deny)
		following.CheckRedirect = nil
		err := deliver(following, target)
		if tc.deny != nil {
			wantRefused(t, target, err)
		} else if err != nil {
			t.Fatalf("following the redirect without a deny list: %v", err)
		}
		if n := denied.hits.Load(); n != tc.hits {
			t.Fatalf("the redirect target got %d requests, want %d", n, tc.hits)
		}
	}
}

func TestWebhook_NeverGoesThroughAProxyFromTheEnvironment(t *testing.T) {
	// A proxy would dial in the client's stead, past the dialer's checks.
	tr, ok := newWebhookClient(time.Second, nil).Transport.(*http.Transport)
	if !ok || tr.Proxy != nil {
		t.Fatalf("webhook transport %T uses a proxy function", tr)
	}
}
