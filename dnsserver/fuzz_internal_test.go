package dnsserver

import (
	"context"
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// fuzzStore serves a fixed set of published values.
type fuzzStore struct{}

func (fuzzStore) FollowChallenges(ctx context.Context, set func(map[string][]string), confirm func(time.Time)) error {
	<-ctx.Done()
	return nil
}

// fuzzWriter is a dns.ResponseWriter that keeps what the handler writes.
type fuzzWriter struct {
	remote net.Addr
	msgs   []*dns.Msg
}

func (w *fuzzWriter) LocalAddr() net.Addr         { return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53} }
func (w *fuzzWriter) RemoteAddr() net.Addr        { return w.remote }
func (w *fuzzWriter) WriteMsg(m *dns.Msg) error   { w.msgs = append(w.msgs, m); return nil }
func (w *fuzzWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *fuzzWriter) Close() error                { return nil }
func (w *fuzzWriter) TsigStatus() error           { return nil }
func (w *fuzzWriter) TsigTimersOnly(bool)         {}
func (w *fuzzWriter) Hijack()                     {}
func (w *fuzzWriter) Network() string             { return w.remote.Network() }

// FuzzServeDNS feeds the server raw packets as the network delivers them:
// what miekg/dns parses and its accept filter lets through reaches
// ServeDNS, over UDP and over TCP. Whatever arrives, the server answers
// once, with the query's id, as a response, in a message that packs, and
// over UDP within the requester's buffer (512 bytes, or its EDNS size).
func FuzzServeDNS(f *testing.F) {
	const zone = "verify.example.com."
	seed := func(name string, qtype uint16, edns bool, opcode int) []byte {
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		m.Opcode = opcode
		if edns {
			m.SetEdns0(1232, true)
		}
		b, _ := m.Pack()
		return b
	}
	for _, s := range [][]byte{
		seed("abc."+zone, dns.TypeTXT, false, dns.OpcodeQuery),
		seed("ABC."+zone, dns.TypeTXT, true, dns.OpcodeQuery),
		seed("big."+zone, dns.TypeTXT, false, dns.OpcodeQuery),
		seed(zone, dns.TypeSOA, true, dns.OpcodeQuery),
		seed(zone, dns.TypeNS, false, dns.OpcodeQuery),
		seed(zone, dns.TypeANY, false, dns.OpcodeQuery),
		seed("ns1."+zone, dns.TypeA, true, dns.OpcodeQuery),
		seed("ns1."+zone, dns.TypeAAAA, false, dns.OpcodeQuery),
		seed("missing."+zone, dns.TypeTXT, false, dns.OpcodeQuery),
		seed("example.org.", dns.TypeA, false, dns.OpcodeQuery),
		seed(zone, dns.TypeSOA, false, dns.OpcodeNotify),
		seed(zone, dns.TypeSOA, false, dns.OpcodeUpdate),
		{0x42, 0x42, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0},
	} {
		f.Add(s, true)
		f.Add(s, false)
	}
	// EDNS version 1, and two OPT records.
	v1 := new(dns.Msg)
	v1.SetQuestion(zone, dns.TypeSOA)
	v1.SetEdns0(1232, false)
	v1.IsEdns0().SetVersion(1)
	b, _ := v1.Pack()
	f.Add(b, true)
	v1.Extra = append(v1.Extra, v1.Extra[0])
	b, _ = v1.Pack()
	f.Add(b, true)

	s, err := New(Config{Zone: zone, Store: fuzzStore{}, NS: []string{"ns1." + zone, "ns.example.net"},
		NSAddrs: map[string][]net.IP{"ns1." + zone: {net.IPv4(192, 0, 2, 1), net.ParseIP("2001:db8::1")}}})
	if err != nil {
		f.Fatal(err)
	}
	big := make([]string, 40)
	for i := range big {
		big[i] = "v" + string(rune('a'+i%26)) + "-0123456789012345678901234567890123456789"
	}
	s.zoneCopy.set(map[string][]string{"abc.verify.example.com": {"token-value"}, "big.verify.example.com": big})
	f.Fuzz(func(t *testing.T, raw []byte, udp bool) {
		// What miekg/dns's server does before the handler: the header
		// through the accept filter, then the whole message.
		if len(raw) < 12 {
			return
		}
		dh := dns.Header{Id: binary.BigEndian.Uint16(raw), Bits: binary.BigEndian.Uint16(raw[2:]),
			Qdcount: binary.BigEndian.Uint16(raw[4:]), Ancount: binary.BigEndian.Uint16(raw[6:]),
			Nscount: binary.BigEndian.Uint16(raw[8:]), Arcount: binary.BigEndian.Uint16(raw[10:])}
		if acceptMsg(dh) != dns.MsgAccept {
			return
		}
		req := new(dns.Msg)
		if err := req.Unpack(raw); err != nil {
			return
		}
		s.zoneCopy.confirm(time.Now())
		w := &fuzzWriter{remote: &net.TCPAddr{IP: net.IPv4(198, 51, 100, 7), Port: 5353}}
		if udp {
			w.remote = &net.UDPAddr{IP: net.IPv4(198, 51, 100, 7), Port: 5353}
		}
		s.ServeDNS(w, req)
		if len(w.msgs) != 1 {
			t.Fatalf("%d answers", len(w.msgs))
		}
		m := w.msgs[0]
		if m.Id != req.Id || !m.Response {
			t.Fatalf("answer id %d response %v to query %d", m.Id, m.Response, req.Id)
		}
		packed, err := m.Pack()
		if err != nil {
			t.Fatalf("answer does not pack: %v\n%v", err, m)
		}
		if udp {
			limit := dns.MinMsgSize
			if opt := req.IsEdns0(); opt != nil {
				limit = max(int(opt.UDPSize()), dns.MinMsgSize)
			}
			if len(packed) > limit {
				t.Fatalf("UDP answer of %d bytes, limit %d", len(packed), limit)
			}
		}
	})
}
