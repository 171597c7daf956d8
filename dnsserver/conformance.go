package dnsserver

import (
	"fmt"
	"net"
	"strings"

	"github.com/miekg/dns"
)

// What a query must be to be answered, and how the zone's own
// nameservers are found.

// acceptMsg is miekg/dns's default filter (responses ignored; more than
// one question, or sections a query cannot carry, FORMERR) with one
// change: NOTIFY, which the default lets through, is NOTIMP like UPDATE
// and every other opcode but QUERY. Nothing transfers or updates this
// zone: its records live in a database.
func acceptMsg(dh dns.Header) dns.MsgAcceptAction {
	const qr = 1 << 15
	if opcode := int(dh.Bits>>11) & 0xF; dh.Bits&qr == 0 && opcode != dns.OpcodeQuery {
		return dns.MsgRejectNotImplemented
	}
	return dns.DefaultMsgAcceptFunc(dh)
}

// refusal returns the answer to a query this server will not answer
// normally, or nil. acceptMsg has already filtered what miekg/dns's server
// parses; this repeats its checks for the handler used on its own.
func refusal(req *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	opts := 0
	for _, rr := range req.Extra {
		if rr.Header().Rrtype == dns.TypeOPT {
			opts++
		}
	}
	switch {
	case req.Opcode != dns.OpcodeQuery:
		m.SetRcode(req, dns.RcodeNotImplemented)
		return m
	case len(req.Question) != 1 || opts > 1:
		// More than one OPT record is FORMERR (RFC 6891 §6.1.1), answered
		// without an OPT of ours.
		m.SetRcodeFormatError(req)
		return m
	}
	if opt := req.IsEdns0(); opt != nil && opt.Version() > 0 {
		// RFC 6891 §6.1.3: BADVERS, with an OPT of the highest version
		// implemented (0). The extended rcode travels in the OPT record.
		m.SetRcode(req, dns.RcodeBadVers)
		m.SetEdns0(ednsSize, false)
		return m
	}
	return nil
}

// ednsSize is the UDP payload size advertised: 1232 bytes avoids IP
// fragmentation (DNS flag day 2020).
const ednsSize = 1232

// nameservers returns the in-zone nameservers' addresses, keyed by
// lowercase FQDN. A name inside the zone is found only through the
// addresses this server hands out for it; `dcvaas serve` refuses to start
// with one that has none (cmd/dcvaas/dnsconfig.go), but the server itself
// serves it without, as tests and defaults do.
func nameservers(zone string, ns []string, addrs map[string][]net.IP) (map[string][]net.IP, error) {
	hosts := map[string][]net.IP{}
	given := map[string][]net.IP{}
	for name, ips := range addrs {
		given[dns.Fqdn(strings.ToLower(strings.TrimSpace(name)))] = ips
	}
	for _, n := range ns {
		ips := given[n]
		if len(ips) == 0 {
			continue
		}
		for _, ip := range ips {
			if ip.To4() == nil && ip.To16() == nil {
				return nil, fmt.Errorf("dnsserver: nameserver %s: bad address %v", n, ip)
			}
		}
		if dns.IsSubDomain(zone, n) && n != zone {
			hosts[n] = ips
		}
	}
	return hosts, nil
}

// addressRecords are the A and AAAA records of host with owner name owner;
// qtype selects (dns.TypeANY: both).
func addressRecords(owner string, ips []net.IP, qtype uint16, ttl uint32) []dns.RR {
	var out []dns.RR
	for _, ip := range ips {
		if v4 := ip.To4(); v4 != nil {
			if qtype == dns.TypeA || qtype == dns.TypeANY {
				out = append(out, &dns.A{Hdr: dns.RR_Header{Name: owner, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: ttl}, A: v4})
			}
		} else if qtype == dns.TypeAAAA || qtype == dns.TypeANY {
			out = append(out, &dns.AAAA{Hdr: dns.RR_Header{Name: owner, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: ttl}, AAAA: ip})
		}
	}
	return out
}
