package notify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// ErrRefusedAddress means a webhook would be sent to an address that is
// refused (AddressRefusal says why). Such a delivery is never retried.
var ErrRefusedAddress = errors.New("refused webhook address")

// alwaysRefused are the ranges no webhook is sent to, whatever the
// configuration. Link-local addresses hold the cloud metadata services
// that hand out credentials (169.254.169.254; AWS's IPv6 one,
// fd00:ec2::254, is unique-local, which the recommended deny list covers);
// an unspecified address (0.0.0.0, ::) reaches this very host on Linux,
// and the rest of 0.0.0.0/8 is no destination anyone can mean.
var alwaysRefused = []struct {
	prefix netip.Prefix
	why    string
}{
	{netip.MustParsePrefix("169.254.0.0/16"), "a link-local address"},
	{netip.MustParsePrefix("fe80::/10"), "a link-local address"},
	{netip.MustParsePrefix("0.0.0.0/8"), "an unspecified address"},
	{netip.MustParsePrefix("::/128"), "an unspecified address"},
}

// nat64 is the well-known NAT64 prefix (RFC 6052): its addresses reach the
// IPv4 address in their last 32 bits through a NAT64 gateway.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// AddressRefusal says why a webhook may not be sent to ip ("169.254.169.254
// is a link-local address"), or returns "" if it may: ip is refused when
// it is in an always-refused range or in deny. An IPv4-mapped IPv6 address
// and a NAT64 address are judged as the IPv4 address they carry; a zone is
// ignored.
func AddressRefusal(ip netip.Addr, deny []netip.Prefix) string {
	ip = ip.WithZone("").Unmap()
	candidates := []netip.Addr{ip}
	if nat64.Contains(ip) {
		b := ip.As16()
		candidates = append(candidates, netip.AddrFrom4([4]byte(b[12:])))
	}
	for _, a := range candidates {
		for _, r := range alwaysRefused {
			if r.prefix.Contains(a) {
				return fmt.Sprintf("%s is %s", ip, r.why)
			}
		}
		for _, p := range deny {
			if p.Contains(a) {
				return fmt.Sprintf("%s is in a denied range (%s)", ip, p)
			}
		}
	}
	return ""
}

// ParseCIDRs parses a comma-separated list of CIDR prefixes
// ("10.0.0.0/8, fc00::/7"); a bare address stands for itself alone.
// IPv4-mapped prefixes are turned into IPv4 ones, since addresses are
// judged unmapped (AddressRefusal).
func ParseCIDRs(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		p, err := netip.ParsePrefix(item)
		if err != nil {
			a, aerr := netip.ParseAddr(item)
			if aerr != nil || a.Zone() != "" {
				return nil, fmt.Errorf("%q is not a CIDR prefix (like 10.0.0.0/8 or fc00::/7)", item)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// newWebhookClient returns the client webhooks (and webhook confirmations)
// are sent with. Its dialer checks the address of every connection it
// opens, after name resolution, so a host name that resolves to a refused
// address and a redirect to one are caught as surely as a literal address;
// it never goes through a proxy from the environment, which would dial in
// its stead; and it does not follow redirects (a 3xx is the answer).
func newWebhookClient(timeout time.Duration, deny []netip.Prefix) *http.Client {
	dialer := &net.Dialer{
		Timeout:   timeout,
		KeepAlive: 30 * time.Second,
		ControlContext: func(_ context.Context, _, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: cannot tell the address of %q", ErrRefusedAddress, address)
			}
			if why := AddressRefusal(ap.Addr(), deny); why != "" {
				return fmt.Errorf("%w: %s", ErrRefusedAddress, why)
			}
			return nil
		},
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.Proxy = nil
	transport.DialContext = dialer.DialContext
	// Deliveries to one receiver run concurrently (up to -notify-workers);
	// with net/http's default of 2 idle connections per host, all but two
	// of them would open a new connection for every notification. The
	// total stays bounded by MaxIdleConns.
	transport.MaxIdleConnsPerHost = transport.MaxIdleConns
	return &http.Client{
		Transport: transport,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
