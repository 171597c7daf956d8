package resolve

import (
	"context"
	"fmt"
	"strings"

	"github.com/miekg/dns"
)

// CAA is one CAA resource record (RFC 8659 §4.1).
type CAA struct {
	Flag  uint8
	Tag   string
	Value string
}

// Critical reports the issuer critical flag (bit 0 of the flags octet,
// value 128): a CA that does not understand the tag must not issue.
func (c CAA) Critical() bool { return c.Flag&128 != 0 }

// String renders the record in zone-file presentation, as a customer would
// type it: 0 issue "letsencrypt.org".
func (c CAA) String() string { return fmt.Sprintf("%d %s %q", c.Flag, c.Tag, c.Value) }

// CAASet is the Relevant RRset of a name (RFC 8659 §3): the CAA records of
// the closest name, from the name itself up towards the root, that has any.
type CAASet struct {
	// Name is where the records were found; empty when no name up to the
	// top-level domain has CAA records, which allows every CA.
	Name    string
	Records []CAA
}

// LookupCAA finds the Relevant RRset for name, climbing to parent domains
// as RFC 8659 §3 prescribes. A leading "*." is dropped first: the RRset of
// *.example.com is that of example.com (§3). CNAMEs are followed by the
// recursive resolver, and every CAA record of its answer counts, since the
// records of an alias's target are the alias's own. A lookup that gets no
// usable answer returns an *Error; RFC 8659 §3 leaves issuance after a
// failed lookup to the CA, and dcvaas chooses not to order then.
func (r *Resolver) LookupCAA(ctx context.Context, name string) (*CAASet, error) {
	name = strings.TrimPrefix(Normalize(name), "*.")
	for cur := name; cur != ""; cur = parent(cur) {
		a, err := r.query(ctx, cur, dns.TypeCAA)
		if err != nil {
			return nil, err
		}
		var recs []CAA
		for _, rr := range a.msg.Answer {
			if c, ok := rr.(*dns.CAA); ok {
				recs = append(recs, CAA{Flag: c.Flag, Tag: strings.ToLower(c.Tag), Value: c.Value})
			}
		}
		if len(recs) > 0 {
			return &CAASet{Name: cur, Records: recs}, nil
		}
	}
	return &CAASet{}, nil
}

// parent drops the first label; "" after the top-level domain, since RFC
// 8659 §3 stops before the root.
func parent(name string) string {
	_, rest, ok := strings.Cut(name, ".")
	if !ok {
		return ""
	}
	return rest
}
