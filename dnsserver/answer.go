package dnsserver

import (
	"net"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/dcvaas/dcvaas/dnssec"
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
	// do: the answer carries DNSSEC records (sign.go); co: the query
	// accepts NXDOMAIN with compact denial.
	var do, co bool
	if opt := req.IsEdns0(); opt != nil {
		do = s.signer != nil && opt.Do()
		m.SetEdns0(ednsSize, do)
		if co = do && opt.Co(); co {
			m.IsEdns0().SetCo()
		}
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
	now := time.Now()
	if name == s.zone {
		if err := s.apex(m, q, do, co, now); err != nil {
			return s.signFailed(m, err)
		}
		return m
	}
	if ips, ok := s.hosts[name]; ok {
		// One of the zone's own nameservers: its addresses, NODATA for
		// other types.
		m.Answer = addressRecords(q.Name, ips, q.Qtype, seconds(s.cfg.ApexTTL))
		if !do {
			if len(m.Answer) == 0 {
				m.Ns = []dns.RR{s.negativeSOA()}
			}
			return m
		}
		h := s.hostSigs[name]
		var err error
		if len(m.Answer) > 0 {
			var sigs []dns.RR
			sigs, err = s.sigs(m.Answer, now, h.cache)
			m.Answer = append(m.Answer, sigs...)
		} else {
			err = s.deny(m, q, &h.nsec, now, co, addressTypes(ips)...)
		}
		if err != nil {
			return s.signFailed(m, err)
		}
		return m
	}
	e, fresh := s.zoneCopy.lookup(name, now, s.cfg.NegativeTTL)
	if !fresh {
		// The copy may lack a value written since it was last confirmed.
		m.Authoritative = false
		m.Rcode = dns.RcodeServerFailure
		return m
	}
	if e == nil {
		if do {
			if err := s.deny(m, q, s.denials.Get(name), now, co); err != nil {
				return s.signFailed(m, err)
			}
			return m
		}
		// Nothing lives at the name. NXDOMAIN with the SOA lets resolvers
		// cache the absence for at most the SOA minimum (RFC 2308 §3).
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{s.negativeSOA()}
		return m
	}
	if q.Qtype != dns.TypeTXT && q.Qtype != dns.TypeANY {
		// The name exists but has no record of this type: NODATA.
		if do {
			if err := s.deny(m, q, &e.nsec, now, co, dns.TypeTXT); err != nil {
				return s.signFailed(m, err)
			}
			return m
		}
		m.Ns = []dns.RR{s.negativeSOA()}
		return m
	}
	ttl := seconds(s.cfg.TTL)
	for _, v := range e.txt {
		// The question's spelling is kept as the owner name, so that
		// resolvers using 0x20 case randomization accept the answer.
		m.Answer = append(m.Answer, &dns.TXT{
			Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: ttl},
			Txt: v,
		})
	}
	if do {
		sig, err := s.signer.Sign(&e.sig, m.Answer, now)
		if err != nil {
			return s.signFailed(m, err)
		}
		m.Answer = append(m.Answer, withOwner(sig, q.Name, ttl))
	}
	return m
}

// apex answers SOA and NS at the zone's own name, and DNSKEY when the
// zone is signed; every other type is NODATA there.
func (s *Server) apex(m *dns.Msg, q dns.Question, do, co bool, now time.Time) error {
	var signSOA bool
	switch q.Qtype {
	case dns.TypeSOA:
		soa := s.soa()
		soa.Hdr.Name, soa.Hdr.Ttl = q.Name, seconds(s.cfg.ApexTTL)
		m.Answer = []dns.RR{soa}
		signSOA = do
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
		signSOA = do
	case dns.TypeDNSKEY:
		if s.signer == nil {
			m.Ns = []dns.RR{s.negativeSOA()}
			return nil
		}
		keys, sigs, err := s.signer.DNSKEY(now)
		if err != nil {
			return err
		}
		for _, k := range keys {
			c := *k.(*dns.DNSKEY)
			c.Hdr.Name = q.Name
			m.Answer = append(m.Answer, &c)
		}
		if do {
			for _, sig := range sigs {
				m.Answer = append(m.Answer, withOwner(sig, q.Name, sig.OrigTtl))
			}
		}
		return nil
	default:
		if do {
			types := []uint16{dns.TypeNS, dns.TypeSOA, dns.TypeDNSKEY}
			return s.deny(m, q, &s.apexSigs.nsec, now, co, types...)
		}
		m.Ns = []dns.RR{s.negativeSOA()}
		return nil
	}
	if !do {
		return nil
	}
	if signSOA {
		// The signed SOA is the one of this second, served with the TTL
		// it is signed with (the negative TTL).
		soa, sig, err := s.signedSOA(now)
		if err != nil {
			return err
		}
		c := *soa
		c.Hdr.Name = q.Name
		m.Answer[0] = &c
		m.Answer = slices.Insert(m.Answer, 1, dns.RR(withOwner(sig.(*dns.RRSIG), q.Name, c.Hdr.Ttl)))
	}
	var ns []dns.RR
	for _, rr := range m.Answer {
		if rr.Header().Rrtype == dns.TypeNS {
			ns = append(ns, rr)
		}
	}
	if len(ns) > 0 {
		sigs, err := s.sigs(ns, now, func(uint16) *dnssec.Cache { return &s.apexSigs.ns })
		if err != nil {
			return err
		}
		m.Answer = append(m.Answer, sigs...)
	}
	if len(m.Extra) > 1 { // glue besides the OPT record
		var glue []dns.RR
		for _, rr := range m.Extra {
			if t := rr.Header().Rrtype; t == dns.TypeA || t == dns.TypeAAAA {
				glue = append(glue, rr)
			}
		}
		for i := 0; i < len(glue); {
			j := i + 1
			for j < len(glue) && glue[j].Header().Name == glue[i].Header().Name {
				j++
			}
			h := s.hostSigs[strings.ToLower(glue[i].Header().Name)]
			sigs, err := s.sigs(glue[i:j], now, h.cache)
			if err != nil {
				return err
			}
			m.Extra = append(m.Extra, sigs...)
			i = j
		}
	}
	return nil
}

// addressTypes are the types an in-zone nameserver has records of.
func addressTypes(ips []net.IP) []uint16 {
	var out []uint16
	for _, rr := range addressRecords("x.", ips, dns.TypeANY, 0) {
		out = append(out, rr.Header().Rrtype)
	}
	return out
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
func (s *Server) negativeSOA() *dns.SOA { return s.soaEntry(time.Now()).soa }

// soaEntry is negativeSOA's record of now's second, with its signature.
func (s *Server) soaEntry(t time.Time) *soaEntry {
	now := uint32(t.Unix())
	if e := s.soaCache.Load(); e != nil && e.soa.Serial == now {
		return e
	}
	soa := s.soa()
	soa.Serial = now
	e := &soaEntry{soa: soa}
	s.soaCache.Store(e)
	return e
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
