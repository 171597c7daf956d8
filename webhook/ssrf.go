// Package webhook carries dcvaas's signed webhooks: the rules for endpoint
// URLs and the SSRF guard of every delivery (this file), Standard Webhooks
// v1 signing (sign.go), one HTTP attempt (send.go) and the service behind
// the /api/webhooks endpoints (service.go).
package webhook

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// Policy is what endpoint URLs and deliveries may reach.
type Policy struct {
	// AllowHTTP admits http:// URLs (DCVAAS_WEBHOOK_ALLOW_HTTP); else
	// https only.
	AllowHTTP bool
	// AllowPrivate lifts the address rule (DCVAAS_WEBHOOK_ALLOW_PRIVATE):
	// on-premises receivers and tests on loopback.
	AllowPrivate bool
}

// MaxURLLength bounds an endpoint URL.
const MaxURLLength = 2048

// URLError is a URL refused by a named rule; its message says which.
type URLError struct {
	Rule   string // scheme, host, userinfo, fragment, length, address
	Detail string
}

func (e *URLError) Error() string { return fmt.Sprintf("%s (rule: %s)", e.Detail, e.Rule) }

// CheckURL checks an endpoint URL when it is created or changed: http(s)
// as the policy allows, a host, no credentials or fragment, and not a
// literal forbidden address (or a name of the loopback like localhost)
// unless AllowPrivate. Names that resolve to forbidden addresses are
// caught when a delivery dials them (Dialer), so DNS rebinding gains
// nothing.
func (p Policy) CheckURL(raw string) error {
	if len(raw) > MaxURLLength {
		return &URLError{"length", fmt.Sprintf("the URL is longer than %d characters", MaxURLLength)}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return &URLError{"syntax", "the URL does not parse"}
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
	case "http":
		if !p.AllowHTTP {
			return &URLError{"scheme", "the URL must use https (http is allowed only with DCVAAS_WEBHOOK_ALLOW_HTTP=true)"}
		}
	default:
		return &URLError{"scheme", "the URL must be https:// (or http:// where allowed)"}
	}
	if u.Opaque != "" || u.Host == "" || u.Hostname() == "" {
		return &URLError{"host", "the URL has no host"}
	}
	if u.User != nil {
		return &URLError{"userinfo", "the URL must not carry a user name or password"}
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return &URLError{"fragment", "the URL must not have a fragment"}
	}
	if port := u.Port(); port != "" {
		var n int
		if _, err := fmt.Sscanf(port, "%d", &n); err != nil || n < 1 || n > 65535 || fmt.Sprint(n) != port {
			return &URLError{"host", "the URL's port is not a number from 1 to 65535"}
		}
	}
	host := strings.ToLower(u.Hostname())
	if p.AllowPrivate {
		return nil
	}
	if addr, err := netip.ParseAddr(host); err == nil {
		if why := Forbidden(addr); why != "" {
			return &URLError{"address", fmt.Sprintf("the URL's address is %s, which deliveries never reach (allowed only with DCVAAS_WEBHOOK_ALLOW_PRIVATE=true)", why)}
		}
		return nil
	}
	if strings.Contains(host, "%") || strings.Contains(host, ":") {
		return &URLError{"host", "the URL's host is not a valid name or address"}
	}
	if h := strings.TrimSuffix(host, "."); h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return &URLError{"address", "the URL's host is the loopback (localhost), which deliveries never reach (allowed only with DCVAAS_WEBHOOK_ALLOW_PRIVATE=true)"}
	}
	// A legacy numeric form (http://2130706433/, http://0x7f.1/) would be
	// read as an address by some resolvers: refuse names of digits and
	// hex only.
	if legacyNumeric(host) {
		return &URLError{"host", "the URL's host looks like a numeric address in a legacy form"}
	}
	return nil
}

func legacyNumeric(host string) bool {
	for _, label := range strings.Split(strings.TrimSuffix(host, "."), ".") {
		l := strings.TrimPrefix(label, "0x")
		if l == "" {
			return false
		}
		for _, c := range l {
			if !(c >= '0' && c <= '9') && !(label != l && (c >= 'a' && c <= 'f')) {
				return false
			}
		}
	}
	return true
}

var forbiddenPrefixes = []struct {
	prefix netip.Prefix
	why    string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "the unspecified network (0.0.0.0/8)"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private (RFC 1918)"},
	{netip.MustParsePrefix("100.64.0.0/10"), "carrier-grade NAT (100.64.0.0/10)"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private (RFC 1918)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignments (192.0.0.0/24)"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private (RFC 1918)"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking (198.18.0.0/15)"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved (240.0.0.0/4, broadcast)"},
	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use NAT64 (64:ff9b:1::/48)"},
	{netip.MustParsePrefix("fc00::/7"), "unique local (RFC 4193)"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("fec0::/10"), "site-local"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
}

// Forbidden says why deliveries must not connect to addr ("" when they
// may): loopback, private (RFC 1918, RFC 4193), link-local, CGNAT,
// multicast, unspecified and reserved ranges. IPv4 inside IPv6 (mapped,
// NAT64 well-known prefix) is judged as the IPv4 address it carries.
func Forbidden(addr netip.Addr) string {
	addr = addr.WithZone("")
	if addr.Is4In6() {
		addr = addr.Unmap()
	}
	if addr.Is6() && netip.MustParsePrefix("64:ff9b::/96").Contains(addr) {
		b := addr.As16()
		addr = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
	}
	if !addr.IsValid() {
		return "not an address"
	}
	for _, f := range forbiddenPrefixes {
		if f.prefix.Contains(addr) {
			return f.why
		}
	}
	return ""
}

// ErrForbiddenAddress is the error of a dial the guard refused.
var ErrForbiddenAddress = errors.New("forbidden address")

// control refuses connections to forbidden addresses. It runs on the
// address actually dialled, after name resolution, for every connection
// (each address Happy Eyeballs tries), so a name that resolves — or
// rebinds — to the loopback or a private network is refused.
func (p Policy) control(network, address string, _ syscall.RawConn) error {
	if p.AllowPrivate {
		return nil
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot read %q", ErrForbiddenAddress, address)
	}
	if why := Forbidden(ap.Addr()); why != "" {
		return fmt.Errorf("%w: %s is %s", ErrForbiddenAddress, ap.Addr(), why)
	}
	return nil
}

// MaxResponseBody is how much of a response body a delivery reads.
const MaxResponseBody = 64 << 10

// Client returns the HTTP client of deliveries: the guarded dialer, no
// proxy (a proxy would dial in our place, unguarded), no redirects (a 3xx
// is the answer, and a failure), each request bounded by timeout.
func (p Policy) Client(timeout time.Duration) *http.Client {
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second, Control: p.control}
	t := &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: timeout,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{
		Transport: t,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
