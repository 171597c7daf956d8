package dnsserver

import (
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// ServeDNS implements dns.Handler. miekg/dns's server has already
// answered messages acceptMsg rejects (FORMERR/NOTIMP) by the time this
// runs.
func (s *Server) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	start := time.Now()
	udp, _ := w.RemoteAddr().(*net.UDPAddr)
	m := refusal(req)
	if m == nil {
		m = s.answer(req)
		// Over UDP the answer must fit the requester's buffer (512 bytes
		// without EDNS0, RFC 1035 §4.2.1; its advertised size with it, RFC
		// 6891 §6.2.5); Truncate sets TC so that it retries over TCP.
		if udp != nil {
			size := dns.MinMsgSize
			if opt := req.IsEdns0(); opt != nil {
				size = max(int(opt.UDPSize()), dns.MinMsgSize)
			}
			m.Truncate(size)
		}
	}
	if udp != nil && s.rrl != nil {
		switch s.rrl.decide(udp.IP, start) {
		case rrlDrop:
			s.limited.dropped.Add(1)
			return
		case rrlTruncate:
			// Empty and truncated: useless to a reflection attack's
			// victim, a cue to a real resolver to ask over TCP.
			s.limited.truncated.Add(1)
			tc := new(dns.Msg)
			tc.SetReply(req)
			tc.Authoritative, tc.Truncated = m.Authoritative, true
			tc.Rcode = m.Rcode
			if req.IsEdns0() != nil && m.Rcode <= 0xF {
				tc.SetEdns0(ednsSize, false)
			}
			m = tc
		}
	}
	// Counted before the write, so that whoever got the answer also sees
	// it counted.
	s.counts.add(m.Rcode)
	if s.cfg.OnQuery != nil && len(req.Question) > 0 {
		s.cfg.OnQuery(req.Question[0], m.Rcode, time.Since(start))
	}
	if err := w.WriteMsg(m); err != nil {
		s.log.Debug("dns write failed", "err", err)
	}
}

// answer builds the response to one query.
func (s *Server) answer(req *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(req)
	// Never recursion (RA off): this server only knows its zone, and a
	// CA's resolver must not be able to use it as an open resolver.
	m.RecursionAvailable = false
	if opt := req.IsEdns0(); opt != nil {
		m.SetEdns0(ednsSize, false)
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	if !dns.IsSubDomain(s.zone, name) {
		m.Rcode = dns.RcodeRefused
		return m
	}
	if q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY {
		m.Rcode = dns.RcodeRefused
		return m
	}
	m.Authoritative = true
	if q.Qtype == dns.TypeAXFR || q.Qtype == dns.TypeIXFR {
		// Records change by the second and live in the database; zone
		// transfers would only hand out stale copies.
		m.Rcode = dns.RcodeRefused
		m.Authoritative = false
		return m
	}
	if name == s.zone {
		s.apex(m, q)
		return m
	}
	if ips, ok := s.hosts[name]; ok {
		// One of the zone's own nameservers: its addresses, NODATA for
		// other types.
		m.Answer = addressRecords(q.Name, ips, q.Qtype, seconds(s.cfg.ApexTTL))
		if len(m.Answer) == 0 {
			m.Ns = []dns.RR{s.negativeSOA()}
		}
		return m
	}
	values, fresh := s.zoneCopy.lookup(name, time.Now(), s.cfg.NegativeTTL)
	if !fresh {
		// The copy may lack a value written since it was last confirmed.
		m.Authoritative = false
		m.Rcode = dns.RcodeServerFailure
		return m
	}
	if len(values) == 0 {
		// Nothing lives at the name. NXDOMAIN with the SOA lets resolvers
		// cache the absence for at most the SOA minimum (RFC 2308 §3).
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{s.negativeSOA()}
		return m
	}
	if q.Qtype != dns.TypeTXT && q.Qtype != dns.TypeANY {
		// The name exists but has no record of this type: NODATA.
		m.Ns = []dns.RR{s.negativeSOA()}
		return m
	}
	ttl := seconds(s.cfg.TTL)
	for _, v := range values {
		// The question's spelling is kept as the owner name, so that
		// resolvers using 0x20 case randomization accept the answer.
		m.Answer = append(m.Answer, &dns.TXT{
			Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: ttl},
			Txt: v,
		})
	}
	return m
}

// apex answers SOA and NS at the zone's own name; every other type is
// NODATA there.
func (s *Server) apex(m *dns.Msg, q dns.Question) {
	switch q.Qtype {
	case dns.TypeSOA:
		soa := s.soa()
		soa.Hdr.Name, soa.Hdr.Ttl = q.Name, seconds(s.cfg.ApexTTL)
		m.Answer = []dns.RR{soa}
	case dns.TypeNS:
		m.Answer = s.nsRecords(q.Name)
		// The in-zone nameservers' addresses (glue), so that a resolver
		// need not ask again (RFC 1034 §4.3.2).
		for _, ns := range s.ns {
			if ips, ok := s.hosts[ns]; ok {
				m.Extra = append(m.Extra, addressRecords(ns, ips, dns.TypeANY, seconds(s.cfg.ApexTTL))...)
			}
		}
	case dns.TypeANY:
		// RFC 8482 allows a subset; SOA and NS are what exists here.
		soa := s.soa()
		soa.Hdr.Name, soa.Hdr.Ttl = q.Name, seconds(s.cfg.ApexTTL)
		m.Answer = append([]dns.RR{soa}, s.nsRecords(q.Name)...)
	default:
		m.Ns = []dns.RR{s.negativeSOA()}
	}
}

func (s *Server) nsRecords(owner string) []dns.RR {
	out := make([]dns.RR, 0, len(s.ns))
	for _, ns := range s.ns {
		out = append(out, &dns.NS{
			Hdr: dns.RR_Header{Name: owner, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: seconds(s.cfg.ApexTTL)},
			Ns:  ns,
		})
	}
	return out
}

// soa is the zone's SOA record. Its TTL equals the minimum, because
// negative answers are cached for the smaller of the two (RFC 2308 §5).
// The serial follows the clock: records live in a database and change
// without zone versions, and nothing transfers the zone.
func (s *Server) soa() *dns.SOA {
	neg := seconds(s.cfg.NegativeTTL)
	return &dns.SOA{
		Hdr:     dns.RR_Header{Name: s.zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: neg},
		Ns:      s.ns[0],
		Mbox:    s.mbox,
		Serial:  uint32(time.Now().Unix()),
		Refresh: 3600,
		Retry:   600,
		Expire:  86400,
		Minttl:  neg,
	}
}

// negativeSOA is the SOA of negative answers' authority sections: one
// record per second, shared by every answer of that second (packing only
// reads it), since building it was a good part of an NXDOMAIN's cost.
func (s *Server) negativeSOA() *dns.SOA {
	now := uint32(time.Now().Unix())
	if soa := s.soaCache.Load(); soa != nil && soa.Serial == now {
		return soa
	}
	soa := s.soa()
	soa.Serial = now
	s.soaCache.Store(soa)
	return soa
}

// splitTXT cuts a value into <character-string>s of at most 255 octets
// (RFC 1035 §3.3.14); validators concatenate them again.
// DNS-01 digests are 43 characters, so this only guards odd inputs.
func splitTXT(v string) []string {
	var out []string
	for len(v) > 255 {
		out = append(out, v[:255])
		v = v[255:]
	}
	return append(out, v)
}

func seconds(d time.Duration) uint32 { return uint32(d / time.Second) }
