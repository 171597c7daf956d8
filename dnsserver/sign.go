package dnsserver

import (
	"context"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/dcvaas/dcvaas/dnssec"
)

// DNSSEC (Config.DNSSEC): answers to queries with the DO bit carry the
// RRSIGs of their RRsets, and negative answers are compact denial of
// existence (RFC 9824): one NSEC at the query name, whose next name is
// the name's immediate successor, so it says nothing about any other
// name (no zone walking) and can be made on the fly. A name that does not
// exist is answered NOERROR with NXNAME in the NSEC's bitmap (NXDOMAIN
// only when the query sets the CO bit, §3.5); a name without the type
// asked lists what it has. Queries without DO are answered as unsigned.
//
// Signatures are cached with the RRset they cover (zone entries, the
// nameservers' addresses, the apex's, the SOA of the second), so a hit
// costs no signing; only denials of names that do not exist, a new name
// each in a random-label flood, are signed per query (a bounded cache
// keeps those that repeat, as resolvers retrying do).

// keyReload is how often the keys are read again (a variable for tests).
var keyReload = dnssec.KeyReload

// maxDenialCache bounds the NSEC signatures kept for names that do not
// exist.
const maxDenialCache = 10000

// hostSigs are the signatures of an in-zone nameserver's RRsets.
type hostSigs struct{ a, aaaa, nsec dnssec.Cache }

func (h *hostSigs) cache(rrtype uint16) *dnssec.Cache {
	if rrtype == dns.TypeA {
		return &h.a
	}
	return &h.aaaa
}

// soaEntry is the SOA record of one second and its signature.
type soaEntry struct {
	soa *dns.SOA
	sig dnssec.Cache
}

// reloadKeys reloads the DNSSEC keys every keyReload until ctx ends.
// A failed reload keeps the keys held: their schedule is in them, so the
// node keeps signing, and switching keys, as every other node does.
func (s *Server) reloadKeys(ctx context.Context) {
	if s.signer == nil || s.cfg.DNSSECKeys == nil {
		return
	}
	t := time.NewTicker(keyReload)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		keys, err := s.cfg.DNSSECKeys(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("dnssec: reload keys", "err", err)
			}
			continue
		}
		s.signer.SetKeys(keys)
	}
}

// sigs returns the RRSIGs of the RRsets in rrs (records of one owner and
// type, wherever they stand in rrs: addresses of both families may
// alternate), with the RRsets' owner spelling and TTL. cache gives an
// RRset's signature cache (nil: sign afresh).
func (s *Server) sigs(rrs []dns.RR, now time.Time, cache func(rrtype uint16) *dnssec.Cache) ([]dns.RR, error) {
	type key struct {
		name  string
		rtype uint16
	}
	var order []key
	sets := map[key][]dns.RR{}
	for _, rr := range rrs {
		h := rr.Header()
		k := key{strings.ToLower(h.Name), h.Rrtype}
		if sets[k] == nil {
			order = append(order, k)
		}
		sets[k] = append(sets[k], rr)
	}
	out := make([]dns.RR, 0, len(order))
	for _, k := range order {
		set := sets[k]
		var c *dnssec.Cache
		if cache != nil {
			c = cache(k.rtype)
		}
		sig, err := s.signer.Sign(c, set, now)
		if err != nil {
			return nil, err
		}
		h := set[0].Header()
		out = append(out, withOwner(sig, h.Name, h.Ttl))
	}
	return out, nil
}

// withOwner is a copy of a shared RRSIG with the owner spelled as in the
// answer (0x20) and the RRset's TTL.
func withOwner(sig *dns.RRSIG, owner string, ttl uint32) *dns.RRSIG {
	c := *sig
	c.Hdr.Name, c.Hdr.Ttl = owner, ttl
	return &c
}

// deny fills m's authority section with a signed denial at q.Name: the
// SOA and the compact-denial NSEC listing types (none: the name does not
// exist), each with its RRSIG. co: the query set Compact Answers OK, so a
// name that does not exist may be NXDOMAIN again (RFC 9824 §3.5).
func (s *Server) deny(m *dns.Msg, q dns.Question, c *dnssec.Cache, now time.Time, co bool, types ...uint16) error {
	soa, soaSig, err := s.signedSOA(now)
	if err != nil {
		return err
	}
	neg := seconds(s.cfg.NegativeTTL)
	nx := len(types) == 0
	if nx {
		types = []uint16{dns.TypeNXNAME}
		if co {
			m.Rcode = dns.RcodeNameError
		} else {
			m.Rcode = dns.RcodeSuccess
		}
	}
	nsec := dnssec.NSEC(q.Name, neg, types...)
	nsecSig, err := s.signer.Sign(c, []dns.RR{nsec}, now)
	if err != nil {
		return err
	}
	m.Ns = []dns.RR{soa, soaSig, nsec, withOwner(nsecSig, q.Name, neg)}
	return nil
}

// signedSOA returns the SOA of this second (as negativeSOA) and its RRSIG.
func (s *Server) signedSOA(now time.Time) (*dns.SOA, dns.RR, error) {
	e := s.soaEntry(now)
	sig, err := s.signer.Sign(&e.sig, []dns.RR{e.soa}, now)
	if err != nil {
		return nil, nil, err
	}
	return e.soa, withOwner(sig, e.soa.Hdr.Name, e.soa.Hdr.Ttl), nil
}

// signFailed turns m into SERVFAIL: an answer that should be signed and
// is not would be bogus to a validator anyway, and SERVFAIL is retried
// at another nameserver.
func (s *Server) signFailed(m *dns.Msg, err error) *dns.Msg {
	s.log.Error("dnssec: signing failed", "err", err)
	opt := m.IsEdns0()
	m.Answer, m.Ns, m.Extra = nil, nil, nil
	if opt != nil {
		m.Extra = []dns.RR{opt}
	}
	m.Rcode = dns.RcodeServerFailure
	m.Authoritative = false
	return m
}
