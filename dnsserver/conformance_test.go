package dnsserver_test

import (
	"encoding/binary"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas/dnsserver"
	"github.com/miekg/dns"
)

// rawQuery assembles a query by hand, so that the test sends exactly the
// bytes a misbehaving client would: header (opcode, counts), one question
// for the zone's SOA, then the given additional records.
func rawQuery(opcode int, extra ...[]byte) []byte {
	b := make([]byte, 12)
	binary.BigEndian.PutUint16(b[0:], 0x4242)
	binary.BigEndian.PutUint16(b[2:], uint16(opcode)<<11)
	binary.BigEndian.PutUint16(b[4:], 1)
	binary.BigEndian.PutUint16(b[10:], uint16(len(extra)))
	name := make([]byte, 255)
	n, _ := dns.PackDomainName(zone+".", name, 0, nil, false)
	b = append(b, name[:n]...)
	b = binary.BigEndian.AppendUint16(b, dns.TypeSOA)
	b = binary.BigEndian.AppendUint16(b, dns.ClassINET)
	for _, e := range extra {
		b = append(b, e...)
	}
	return b
}

// optRecord is an EDNS OPT pseudo-record (RFC 6891 §6.1.2) of version.
func optRecord(version byte) []byte {
	b := []byte{0} // root owner
	b = binary.BigEndian.AppendUint16(b, dns.TypeOPT)
	b = binary.BigEndian.AppendUint16(b, 1232) // UDP payload size
	b = append(b, 0, version, 0, 0)            // extended rcode, version, flags
	return binary.BigEndian.AppendUint16(b, 0) // no options
}

func exchangeRaw(t *testing.T, addr string, q []byte) *dns.Msg {
	t.Helper()
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write(q); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	m := new(dns.Msg)
	if err := m.Unpack(buf[:n]); err != nil {
		t.Fatalf("answer does not parse: %v", err)
	}
	if m.Id != 0x4242 || !m.Response {
		t.Fatalf("not our answer: %v", m)
	}
	return m
}

func TestConformance(t *testing.T) {
	s := startWith(t, dnsserver.Config{})
	addr := s.Addr()

	if m := exchangeRaw(t, addr, rawQuery(dns.OpcodeQuery)); m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 {
		t.Fatalf("plain query: %v", m)
	}
	if m := exchangeRaw(t, addr, rawQuery(dns.OpcodeQuery, optRecord(0))); m.Rcode != dns.RcodeSuccess || m.IsEdns0() == nil {
		t.Fatalf("EDNS0 query: %v", m)
	}
	// RFC 6891 §6.1.3: a version we do not implement is BADVERS, with our
	// OPT (version 0) carrying the extended rcode, and no answer.
	m := exchangeRaw(t, addr, rawQuery(dns.OpcodeQuery, optRecord(1)))
	if m.Rcode != dns.RcodeBadVers || m.IsEdns0() == nil || m.IsEdns0().Version() != 0 || len(m.Answer) != 0 {
		t.Fatalf("EDNS version 1: rcode %s, %v", dns.RcodeToString[m.Rcode], m)
	}
	// Two OPT records: FORMERR (RFC 6891 §6.1.1).
	if m := exchangeRaw(t, addr, rawQuery(dns.OpcodeQuery, optRecord(0), optRecord(0))); m.Rcode != dns.RcodeFormatError || len(m.Answer) != 0 {
		t.Fatalf("two OPT records: rcode %s", dns.RcodeToString[m.Rcode])
	}
	// Nothing notifies or updates this zone.
	for _, op := range []int{dns.OpcodeNotify, dns.OpcodeUpdate, dns.OpcodeStatus, dns.OpcodeIQuery} {
		if m := exchangeRaw(t, addr, rawQuery(op)); m.Rcode != dns.RcodeNotImplemented || len(m.Answer) != 0 {
			t.Fatalf("opcode %s: rcode %s", dns.OpcodeToString[op], dns.RcodeToString[m.Rcode])
		}
	}
	if c := s.Counts(); c["NOERROR"] != 2 || c["BADVERS"] != 1 || c["FORMERR"] != 1 {
		t.Fatalf("counts %v", c)
	}
}

// The zone's in-zone nameservers have addresses: answered for A and
// AAAA, and as glue beside the apex NS records.
func TestNameserverAddresses(t *testing.T) {
	ns1 := "ns1." + zone
	s := startWith(t, dnsserver.Config{
		NS:      []string{ns1, "ns2.example.net"},
		NSAddrs: map[string][]net.IP{ns1: {net.ParseIP("192.0.2.53"), net.ParseIP("2001:db8::53")}},
	})
	m := query(t, s.Addr(), "udp", zone, dns.TypeNS)
	if len(m.Answer) != 2 || len(m.Extra) < 2 {
		t.Fatalf("apex NS: %v", m)
	}
	var glue []string
	for _, rr := range m.Extra {
		switch a := rr.(type) {
		case *dns.A:
			glue = append(glue, a.Hdr.Name+" "+a.A.String())
		case *dns.AAAA:
			glue = append(glue, a.Hdr.Name+" "+a.AAAA.String())
		}
	}
	if want := []string{ns1 + ". 192.0.2.53", ns1 + ". 2001:db8::53"}; !slices.Equal(glue, want) {
		t.Fatalf("glue %v, want %v", glue, want)
	}
	if m := query(t, s.Addr(), "udp", ns1, dns.TypeA); len(m.Answer) != 1 || m.Answer[0].(*dns.A).A.String() != "192.0.2.53" || !m.Authoritative {
		t.Fatalf("A %s: %v", ns1, m)
	}
	if m := query(t, s.Addr(), "tcp", "NS1."+zone, dns.TypeAAAA); len(m.Answer) != 1 || m.Answer[0].(*dns.AAAA).AAAA.String() != "2001:db8::53" {
		t.Fatalf("AAAA %s: %v", ns1, m)
	}
	if m := query(t, s.Addr(), "udp", ns1, dns.TypeTXT); m.Rcode != dns.RcodeSuccess || len(m.Answer) != 0 || len(m.Ns) != 1 {
		t.Fatalf("TXT %s (NODATA): %v", ns1, m)
	}

	if _, err := dnsserver.New(dnsserver.Config{Zone: zone, Store: failingStore{}, NS: []string{ns1},
		NSAddrs: map[string][]net.IP{ns1: {net.IP{1, 2}}}}); err == nil {
		t.Fatal("bad address accepted")
	}
}
