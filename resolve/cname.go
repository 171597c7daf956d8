package resolve

import (
	"context"
	"strings"

	"github.com/miekg/dns"
)

// End says why a CNAME chain stopped.
type End string

const (
	EndTarget   End = "target"   // reached the name we were looking for
	EndNXDOMAIN End = "nxdomain" // the last name does not exist
	EndNoData   End = "nodata"   // the last name exists but has no CNAME
	EndLoop     End = "loop"     // the chain comes back to a name it passed
	EndTooLong  End = "too_long" // more than MaxHops links
)

// Chain is the result of following a CNAME chain.
type Chain struct {
	// Name is where the chain starts, normalized.
	Name string
	// Targets are the CNAME targets in order, normalized; empty when Name
	// has no CNAME.
	Targets []string
	End     End
	// TXT holds the TXT strings found at Name when it has no CNAME: a
	// leftover DNS-01 record of another ACME client is the usual reason the
	// delegation is missing, and saying so saves the customer a search.
	TXT []string
	// Servers are the resolvers that gave the answers, in order.
	Servers []string
}

// Reaches reports whether the chain arrives at target (compared normalized).
func (c *Chain) Reaches(target string) bool {
	target = Normalize(target)
	for _, t := range c.Targets {
		if t == target {
			return true
		}
	}
	return false
}

// Last returns the final name of the chain: its last target, or Name.
func (c *Chain) Last() string {
	if len(c.Targets) == 0 {
		return c.Name
	}
	return c.Targets[len(c.Targets)-1]
}

// FollowCNAME queries CNAME records from name onwards, hop by hop, the way a
// CA resolving a TXT record at name would be led (RFC 8555 §8.4 validates
// DNS-01 by a TXT lookup that follows CNAMEs). It stops at stopAt (when not
// empty) without querying it, so the chain's end in dcvaas's own zone never
// depends on that zone answering. A lookup that gets no usable answer
// returns an *Error; NXDOMAIN and NODATA are results.
func (r *Resolver) FollowCNAME(ctx context.Context, name, stopAt string) (*Chain, error) {
	name, stopAt = Normalize(name), Normalize(stopAt)
	c := &Chain{Name: name}
	seen := map[string]bool{name: true}
	cur := name
	for {
		a, err := r.query(ctx, cur, dns.TypeCNAME)
		if err != nil {
			return nil, err
		}
		c.Servers = append(c.Servers, a.server)
		// Resolvers may return more of the chain than asked for; walk what
		// the message holds before asking again.
		links := cnames(a.msg)
		progressed := false
		for {
			next, ok := links[cur]
			if !ok {
				break
			}
			progressed = true
			c.Targets = append(c.Targets, next)
			switch {
			case next == stopAt:
				c.End = EndTarget
				return c, nil
			case seen[next]:
				c.End = EndLoop
				return c, nil
			case len(c.Targets) >= r.MaxHops:
				c.End = EndTooLong
				return c, nil
			}
			seen[next] = true
			cur = next
		}
		if progressed {
			continue
		}
		if a.msg.Rcode == dns.RcodeNameError {
			c.End = EndNXDOMAIN
		} else {
			c.End = EndNoData
		}
		if len(c.Targets) == 0 && c.End == EndNoData {
			c.TXT = r.txt(ctx, name)
		}
		return c, nil
	}
}

// txt returns the TXT strings at name, nil when there are none or the
// lookup fails: it only enriches a message, so its failure must not turn a
// clear "no CNAME" into an error.
func (r *Resolver) txt(ctx context.Context, name string) []string {
	a, err := r.query(ctx, name, dns.TypeTXT)
	if err != nil {
		return nil
	}
	var out []string
	for _, rr := range a.msg.Answer {
		if t, ok := rr.(*dns.TXT); ok && Normalize(t.Hdr.Name) == name {
			out = append(out, strings.Join(t.Txt, ""))
		}
	}
	return out
}

// cnames maps owner → target for every CNAME in the answer section.
func cnames(m *dns.Msg) map[string]string {
	out := make(map[string]string)
	for _, rr := range m.Answer {
		if c, ok := rr.(*dns.CNAME); ok {
			out[Normalize(c.Hdr.Name)] = Normalize(c.Target)
		}
	}
	return out
}
