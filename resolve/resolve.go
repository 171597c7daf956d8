// Package resolve looks names up the way a certificate authority does:
// straight over DNS to chosen recursive resolvers with miekg/dns, never
// through the operating system's stub resolver (which may cache, search
// domains, or consult /etc/hosts). The answer dcvaas acts on is then the one
// a CA's validator will see.
package resolve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// DefaultMaxHops bounds a CNAME chain. RFC 1034 §3.6.2 asks resolvers to
// follow chains but not forever; 8 is what recursive resolvers commonly allow
// and far more than any sane delegation uses.
const DefaultMaxHops = 8

// Resolver queries a fixed list of recursive resolvers, in order, falling
// over to the next one when a server fails or times out.
type Resolver struct {
	servers []string
	// Timeout bounds one query to one server.
	Timeout time.Duration
	// MaxHops bounds CNAME chains.
	MaxHops int
}

// New returns a resolver for servers ("host:port"; a missing port means 53).
// With no servers it uses the system's resolvers from /etc/resolv.conf.
func New(servers []string) (*Resolver, error) {
	if len(servers) == 0 {
		var err error
		if servers, err = SystemServers("/etc/resolv.conf"); err != nil {
			return nil, err
		}
	}
	out := make([]string, 0, len(servers))
	for _, s := range servers {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(s); err != nil {
			s = net.JoinHostPort(strings.Trim(s, "[]"), "53")
		}
		host, _, _ := net.SplitHostPort(s)
		if net.ParseIP(host) == nil {
			// A resolver named by hostname would need a resolver to find it.
			return nil, fmt.Errorf("resolver %q: want an IP address and port", s)
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, errors.New("no DNS resolvers configured")
	}
	return &Resolver{servers: out, Timeout: 3 * time.Second, MaxHops: DefaultMaxHops}, nil
}

// SystemServers reads the nameservers of a resolv.conf file.
func SystemServers(path string) ([]string, error) {
	cfg, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("read system resolvers: %w", err)
	}
	out := make([]string, 0, len(cfg.Servers))
	for _, s := range cfg.Servers {
		out = append(out, net.JoinHostPort(s, cfg.Port))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no nameserver in %s", path)
	}
	return out, nil
}

// Servers returns the resolvers in the order they are tried.
func (r *Resolver) Servers() []string { return append([]string(nil), r.servers...) }

// Normalize lowercases a name and drops the trailing dot: DNS names compare
// case-insensitively (RFC 4343) and the root label is implied.
func Normalize(name string) string { return strings.ToLower(strings.TrimSuffix(name, ".")) }

// Error is a lookup that got no usable answer: every server failed with
// SERVFAIL, REFUSED, a timeout or a network error. It is temporary by nature;
// NXDOMAIN and empty answers are results, not Errors.
type Error struct {
	Name     string
	Type     string
	Failures []Failure // one per server tried
}

// Failure is why one server gave no usable answer.
type Failure struct {
	Server string
	Reason string // "SERVFAIL", "REFUSED", "timeout", or a network error
}

func (e *Error) Error() string {
	parts := make([]string, len(e.Failures))
	for i, f := range e.Failures {
		parts[i] = f.Server + ": " + f.Reason
	}
	return fmt.Sprintf("DNS lookup of %s %s failed: %s", e.Name, e.Type, strings.Join(parts, "; "))
}

// Reason summarizes the failures without naming the servers, for messages
// that reach customers: which resolvers dcvaas uses is its own business.
func (e *Error) Reason() string {
	var rs []string
	for _, f := range e.Failures {
		if !slices.Contains(rs, f.Reason) {
			rs = append(rs, f.Reason)
		}
	}
	return strings.Join(rs, ", ")
}

// answer is one usable response: NOERROR or NXDOMAIN.
type answer struct {
	msg    *dns.Msg
	server string
}

// query asks each server in turn until one answers NOERROR or NXDOMAIN.
func (r *Resolver) query(ctx context.Context, name string, qtype uint16) (*answer, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = true
	// 1232 bytes avoids IP fragmentation (DNS flag day 2020); larger answers
	// come back truncated and are retried over TCP below.
	m.SetEdns0(1232, false)
	lerr := &Error{Name: Normalize(name), Type: dns.TypeToString[qtype]}
	for _, server := range r.servers {
		if err := ctx.Err(); err != nil {
			lerr.Failures = append(lerr.Failures, Failure{Reason: err.Error()})
			break
		}
		in, err := r.exchange(ctx, m, server, "udp")
		if err == nil && in.Truncated {
			in, err = r.exchange(ctx, m, server, "tcp")
		}
		switch {
		case err != nil:
			lerr.Failures = append(lerr.Failures, Failure{server, describeNetErr(err)})
		case in.Rcode == dns.RcodeSuccess || in.Rcode == dns.RcodeNameError:
			return &answer{msg: in, server: server}, nil
		default:
			lerr.Failures = append(lerr.Failures, Failure{server, dns.RcodeToString[in.Rcode]})
		}
	}
	return nil, lerr
}

func (r *Resolver) exchange(ctx context.Context, m *dns.Msg, server, network string) (*dns.Msg, error) {
	c := &dns.Client{Net: network, Timeout: r.Timeout}
	in, _, err := c.ExchangeContext(ctx, m, server)
	return in, err
}

func describeNetErr(err error) string {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	return err.Error()
}
