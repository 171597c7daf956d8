// Package propagate waits until a zone's authoritative servers serve a DNS
// change. A publisher that writes challenge values through a DNS provider's
// API (Cloudflare) must not ask the CA to validate before then: a CA's
// resolver that reaches a server still without the value caches the
// absence (RFC 2308) and the validation fails.
package propagate

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

// Checker polls the authoritative servers of one zone.
type Checker struct {
	// Zone is the zone whose servers are asked, e.g. "dcvaas-verify.com".
	Zone string
	// Servers are "host:port" authoritative servers to poll; empty: the
	// zone's NS records, looked up through Resolvers, on Port.
	Servers []string
	// Resolvers are "host:port" recursive resolvers for that lookup.
	Resolvers []string
	// Port of the discovered servers (default "53").
	Port string
	// Interval between polls (default 500ms) and Timeout of the whole wait
	// (default 2m); QueryTimeout bounds one query (default 2s).
	Interval, Timeout, QueryTimeout time.Duration
}

// WaitTXT returns once every authoritative server of the zone answers
// value among the TXT records at name, or fails when Timeout passes.
func (c *Checker) WaitTXT(ctx context.Context, name, value string) error {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	interval := c.Interval
	if interval <= 0 {
		interval = 500 * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	servers, err := c.servers(ctx)
	if err != nil {
		return err
	}
	pending := slices.Clone(servers)
	var last error
	for {
		var still []string
		for _, s := range pending {
			ok, err := c.hasTXT(ctx, s, name, value)
			if err != nil {
				last = err
			}
			if !ok {
				still = append(still, s)
			}
		}
		if pending = still; len(pending) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			msg := fmt.Sprintf("TXT value at %s not served by %s after %s", name, strings.Join(pending, ", "), timeout)
			if last != nil {
				msg += " (last error: " + last.Error() + ")"
			}
			return errors.New(msg)
		case <-time.After(interval):
		}
	}
}

// servers returns the configured servers or discovers them from NS.
func (c *Checker) servers(ctx context.Context) ([]string, error) {
	if len(c.Servers) > 0 {
		return c.Servers, nil
	}
	if len(c.Resolvers) == 0 {
		return nil, errors.New("propagate: no resolvers to look up the zone's nameservers")
	}
	ns, err := c.recursive(ctx, c.Zone, dns.TypeNS)
	if err != nil {
		return nil, fmt.Errorf("look up NS of %s: %w", c.Zone, err)
	}
	port := c.Port
	if port == "" {
		port = "53"
	}
	var out []string
	for _, rr := range ns {
		host, ok := rr.(*dns.NS)
		if !ok {
			continue
		}
		for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
			addrs, err := c.recursive(ctx, host.Ns, t)
			if err != nil {
				continue
			}
			for _, a := range addrs {
				switch a := a.(type) {
				case *dns.A:
					out = append(out, net.JoinHostPort(a.A.String(), port))
				case *dns.AAAA:
					out = append(out, net.JoinHostPort(a.AAAA.String(), port))
				}
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no address for any nameserver of %s", c.Zone)
	}
	return out, nil
}

// recursive asks the resolvers in turn for name's records of type t.
func (c *Checker) recursive(ctx context.Context, name string, t uint16) ([]dns.RR, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), t)
	var err error
	for _, r := range c.Resolvers {
		var in *dns.Msg
		if in, err = c.exchange(ctx, m, r); err != nil {
			continue
		}
		if in.Rcode != dns.RcodeSuccess {
			err = fmt.Errorf("%s answered %s", r, dns.RcodeToString[in.Rcode])
			continue
		}
		return in.Answer, nil
	}
	return nil, err
}

// hasTXT asks server, without recursion, whether value is at name.
func (c *Checker) hasTXT(ctx context.Context, server, name, value string) (bool, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeTXT)
	m.RecursionDesired = false
	in, err := c.exchange(ctx, m, server)
	if err != nil {
		return false, err
	}
	for _, rr := range in.Answer {
		if t, ok := rr.(*dns.TXT); ok && strings.Join(t.Txt, "") == value {
			return true, nil
		}
	}
	return false, nil
}

// exchange sends m over UDP, and over TCP when the answer is truncated.
func (c *Checker) exchange(ctx context.Context, m *dns.Msg, server string) (*dns.Msg, error) {
	qt := c.QueryTimeout
	if qt <= 0 {
		qt = 2 * time.Second
	}
	cl := &dns.Client{Timeout: qt}
	in, _, err := cl.ExchangeContext(ctx, m, server)
	if err == nil && in.Truncated {
		cl.Net = "tcp"
		in, _, err = cl.ExchangeContext(ctx, m, server)
	}
	return in, err
}
