package dnsserver_test

import (
	"context"
	"crypto/rand"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dcvaas/dcvaas/crypt"
	"github.com/dcvaas/dcvaas/dnssec"
	"github.com/dcvaas/dcvaas/dnsserver"
	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/dcvaas/dcvaas/sqlstore/storetest"
)

// signedServer runs a server for zone that signs with keys created in db.
func signedServer(t testing.TB, db *sqlstore.DB) (*dnsserver.Server, *dnssec.Signer, *crypt.Keyring) {
	t.Helper()
	key := make([]byte, crypt.KeySize)
	rand.Read(key)
	kr, err := crypt.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := dnssec.Ensure(context.Background(), db, kr, zone, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	signer := dnssec.NewSigner(zone, dnsserver.DefaultApexTTL, keys)
	s, err := dnsserver.New(dnsserver.Config{
		Zone: zone, Store: db,
		NS:       []string{"ns1." + zone, "ns2.dcvaas.test"},
		NSAddrs:  map[string][]net.IP{"ns1." + zone: {net.ParseIP("192.0.2.1"), net.ParseIP("2001:db8::1"), net.ParseIP("192.0.2.2")}},
		SOAEmail: "host.master@dcvaas.test",
		DNSSEC:   signer,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return s, signer, kr
}

// queryDO asks with EDNS0 and the DO bit (co: also Compact Answers OK).
func queryDO(t *testing.T, addr, network, name string, qtype uint16, co bool) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.SetEdns0(1232, true)
	if co {
		m.IsEdns0().SetCo()
	}
	c := &dns.Client{Net: network, Timeout: 2 * time.Second}
	in, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s %s %s: %v", network, name, dns.TypeToString[qtype], err)
	}
	if opt := in.IsEdns0(); opt == nil || !opt.Do() {
		t.Fatalf("%s %s: answer without the DO bit: %v", name, dns.TypeToString[qtype], in)
	}
	return in
}

// zoneKeys fetches the DNSKEY RRset and checks it is signed by a KSK
// among its keys; it returns the keys by tag.
func zoneKeys(t *testing.T, addr string) map[uint16]*dns.DNSKEY {
	t.Helper()
	m := queryDO(t, addr, "udp", zone, dns.TypeDNSKEY, false)
	keys := map[uint16]*dns.DNSKEY{}
	var rrset []dns.RR
	for _, rr := range m.Answer {
		if k, ok := rr.(*dns.DNSKEY); ok {
			keys[k.KeyTag()] = k
			rrset = append(rrset, rr)
		}
	}
	signed := false
	for _, rr := range m.Answer {
		if sig, ok := rr.(*dns.RRSIG); ok {
			k := keys[sig.KeyTag]
			if k == nil || k.Flags != dnssec.FlagsKSK {
				t.Fatalf("DNSKEY RRset signed by %d, not a KSK of the set", sig.KeyTag)
			}
			if err := sig.Verify(k, rrset); err != nil || !sig.ValidityPeriod(time.Now()) {
				t.Fatalf("DNSKEY RRSIG: %v", err)
			}
			signed = true
		}
	}
	if !signed || len(keys) < 2 {
		t.Fatalf("DNSKEY answer: %v", m)
	}
	return keys
}

// verifySection checks that every RRset of rrs has a valid RRSIG by one of
// keys, and that every RRSIG covers an RRset there; it returns the RRsets
// by "owner/TYPE" (owner lowercase).
func verifySection(t *testing.T, what string, rrs []dns.RR, keys map[uint16]*dns.DNSKEY) map[string][]dns.RR {
	t.Helper()
	sets := map[string][]dns.RR{}
	sigs := map[string][]*dns.RRSIG{}
	for _, rr := range rrs {
		h := rr.Header()
		switch r := rr.(type) {
		case *dns.OPT:
		case *dns.RRSIG:
			k := strings.ToLower(h.Name) + "/" + dns.TypeToString[r.TypeCovered]
			sigs[k] = append(sigs[k], r)
		default:
			k := strings.ToLower(h.Name) + "/" + dns.TypeToString[h.Rrtype]
			sets[k] = append(sets[k], rr)
		}
	}
	for k, set := range sets {
		if len(sigs[k]) == 0 {
			t.Fatalf("%s: %s unsigned", what, k)
		}
		for _, sig := range sigs[k] {
			key := keys[sig.KeyTag]
			if key == nil {
				t.Fatalf("%s: %s signed by unknown key %d", what, k, sig.KeyTag)
			}
			if err := sig.Verify(key, set); err != nil {
				t.Fatalf("%s: %s: %v", what, k, err)
			}
			if !sig.ValidityPeriod(time.Now()) || sig.SignerName != zone+"." || sig.Hdr.Ttl > sig.OrigTtl {
				t.Fatalf("%s: %s: RRSIG %v", what, k, sig)
			}
		}
	}
	for k := range sigs {
		if sets[k] == nil {
			t.Fatalf("%s: RRSIG for %s, which is not in the answer", what, k)
		}
	}
	return sets
}

// denial checks a compact-denial authority section: the SOA and the NSEC
// at qname, next name its immediate successor, with the given bitmap.
func denial(t *testing.T, m *dns.Msg, qname string, keys map[uint16]*dns.DNSKEY, bitmap ...uint16) {
	t.Helper()
	if len(m.Answer) != 0 || !m.Authoritative {
		t.Fatalf("%s: denial with answers: %v", qname, m)
	}
	sets := verifySection(t, qname+" authority", m.Ns, keys)
	soa := sets[zone+"./SOA"]
	nsec := sets[strings.ToLower(dns.Fqdn(qname))+"/NSEC"]
	if len(soa) != 1 || len(nsec) != 1 || len(sets) != 2 {
		t.Fatalf("%s: authority %v", qname, m.Ns)
	}
	n := nsec[0].(*dns.NSEC)
	if n.Hdr.Name != dns.Fqdn(qname) || n.NextDomain != `\000.`+strings.ToLower(dns.Fqdn(qname)) || n.Hdr.Ttl > 30 {
		t.Fatalf("%s: NSEC %v", qname, n)
	}
	if !slices.Equal(n.TypeBitMap, bitmap) {
		t.Fatalf("%s: NSEC bitmap %v, want %v", qname, typeNames(n.TypeBitMap), typeNames(bitmap))
	}
}

func typeNames(ts []uint16) []string {
	var out []string
	for _, t := range ts {
		out = append(out, dns.Type(t).String())
	}
	return out
}

func TestDNSSEC(t *testing.T) {
	for _, dialect := range storetest.Dialects(t) {
		t.Run(string(dialect), func(t *testing.T) { testDNSSEC(t, storetest.NewDB(t, dialect)) })
	}
}

func testDNSSEC(t *testing.T, db *sqlstore.DB) {
	ctx := context.Background()
	s, _, _ := signedServer(t, db)
	addr := s.Addr()
	keys := zoneKeys(t, addr)
	name := "k7x2q9w4m3z8p5r1." + zone
	if err := db.PutChallengeTXT(ctx, name, "authz-apex", "value-apex"); err != nil {
		t.Fatal(err)
	}
	if err := db.PutChallengeTXT(ctx, name, "authz-wild", "value-wild"); err != nil {
		t.Fatal(err)
	}

	for _, network := range []string{"udp", "tcp"} {
		// A hit: the TXT RRset and its RRSIG by the ZSK, for any spelling.
		for _, spelling := range []string{name, "K7X2q9w4M3Z8P5R1.Verify.DCVAAS.test"} {
			m := queryDO(t, addr, network, spelling, dns.TypeTXT, false)
			sets := verifySection(t, network+" TXT", m.Answer, keys)
			if m.Rcode != dns.RcodeSuccess || len(sets) != 1 || len(sets[name+"./TXT"]) != 2 ||
				!slices.Equal(txtValues(m), []string{"value-apex", "value-wild"}) || m.Answer[0].Header().Name != dns.Fqdn(spelling) {
				t.Fatalf("%s TXT %s: %v", network, spelling, m)
			}
			for _, rr := range m.Answer {
				if sig, ok := rr.(*dns.RRSIG); ok && keys[sig.KeyTag].Flags != dnssec.FlagsZSK {
					t.Fatalf("TXT signed by the KSK: %v", sig)
				}
			}
		}
		// Apex SOA and NS (with the in-zone nameserver's addresses).
		verifySection(t, network+" SOA", queryDO(t, addr, network, zone, dns.TypeSOA, false).Answer, keys)
		ns := queryDO(t, addr, network, zone, dns.TypeNS, false)
		if sets := verifySection(t, network+" NS", ns.Answer, keys); len(sets[zone+"./NS"]) != 2 {
			t.Fatalf("NS: %v", ns)
		}
		if sets := verifySection(t, network+" NS glue", ns.Extra, keys); len(sets["ns1."+zone+"./A"]) != 2 || len(sets["ns1."+zone+"./AAAA"]) != 1 {
			t.Fatalf("NS glue: %v", ns.Extra)
		}
		a := queryDO(t, addr, network, "ns1."+zone, dns.TypeA, false)
		if sets := verifySection(t, network+" A", a.Answer, keys); len(sets["ns1."+zone+"./A"]) != 2 {
			t.Fatalf("A: %v", a)
		}
		// ANY: both families, their records interleaved, each RRset signed.
		anyAddr := queryDO(t, addr, network, "ns1."+zone, dns.TypeANY, false)
		if sets := verifySection(t, network+" ANY", anyAddr.Answer, keys); len(sets["ns1."+zone+"./A"]) != 2 || len(sets["ns1."+zone+"./AAAA"]) != 1 {
			t.Fatalf("ANY: %v", anyAddr)
		}
	}

	// A name that does not exist: NOERROR with an NSEC whose bitmap says
	// NXNAME (RFC 9824), for every spelling; NXDOMAIN when the query
	// sets CO.
	missing := "nothing-here." + zone
	for _, spelling := range []string{missing, "NOTHING-here." + zone} {
		m := queryDO(t, addr, "udp", spelling, dns.TypeTXT, false)
		if m.Rcode != dns.RcodeSuccess {
			t.Fatalf("compact denial rcode %s", dns.RcodeToString[m.Rcode])
		}
		denial(t, m, spelling, keys, dns.TypeRRSIG, dns.TypeNSEC, dns.TypeNXNAME)
	}
	co := queryDO(t, addr, "udp", missing, dns.TypeA, true)
	if co.Rcode != dns.RcodeNameError || !co.IsEdns0().Co() {
		t.Fatalf("with CO: %v", co)
	}
	denial(t, co, missing, keys, dns.TypeRRSIG, dns.TypeNSEC, dns.TypeNXNAME)
	// NODATA lists what exists at the name.
	denial(t, queryDO(t, addr, "udp", name, dns.TypeA, false), name, keys, dns.TypeTXT, dns.TypeRRSIG, dns.TypeNSEC)
	denial(t, queryDO(t, addr, "tcp", "ns1."+zone, dns.TypeTXT, false), "ns1."+zone, keys, dns.TypeA, dns.TypeAAAA, dns.TypeRRSIG, dns.TypeNSEC)
	denial(t, queryDO(t, addr, "udp", zone, dns.TypeTXT, false), zone, keys, dns.TypeNS, dns.TypeSOA, dns.TypeRRSIG, dns.TypeNSEC, dns.TypeDNSKEY)

	// Without DO, answers are the unsigned ones of before: NXDOMAIN, no
	// RRSIG, no NSEC.
	plain := query(t, addr, "udp", missing, dns.TypeTXT)
	if plain.Rcode != dns.RcodeNameError || len(plain.Ns) != 1 {
		t.Fatalf("without DO: %v", plain)
	}
	noDO := new(dns.Msg)
	noDO.SetQuestion(dns.Fqdn(name), dns.TypeTXT)
	noDO.SetEdns0(1232, false)
	in, err := dns.Exchange(noDO, addr)
	if err != nil || len(in.Answer) != 2 || in.IsEdns0() == nil || in.IsEdns0().Do() {
		t.Fatalf("EDNS0 without DO: %v, %v", in, err)
	}

	// Signatures are cached per RRset (ECDSA signatures differ every
	// time, so an identical one is a cached one), and a changed RRset is
	// signed again.
	sigOf := func(m *dns.Msg) string {
		for _, rr := range m.Answer {
			if sig, ok := rr.(*dns.RRSIG); ok {
				return sig.Signature
			}
		}
		t.Fatalf("no RRSIG: %v", m)
		return ""
	}
	first := sigOf(queryDO(t, addr, "udp", name, dns.TypeTXT, false))
	if again := sigOf(queryDO(t, addr, "udp", name, dns.TypeTXT, false)); again != first {
		t.Fatal("the TXT RRset was signed again although it did not change")
	}
	if err := db.PutChallengeTXT(ctx, name, "authz-wild", "value-wild-2"); err != nil {
		t.Fatal(err)
	}
	changed := queryDO(t, addr, "udp", name, dns.TypeTXT, false)
	verifySection(t, "changed TXT", changed.Answer, keys)
	if sigOf(changed) == first || !slices.Equal(txtValues(changed), []string{"value-apex", "value-wild-2"}) {
		t.Fatalf("after a change: %v", changed)
	}
	// Another name's change leaves this RRset's signature cached.
	kept := sigOf(changed)
	if err := db.PutChallengeTXT(ctx, "other."+zone, "authz-x", "x"); err != nil {
		t.Fatal(err)
	}
	if got := sigOf(queryDO(t, addr, "udp", name, dns.TypeTXT, false)); got != kept {
		t.Fatal("a change at another name dropped this RRset's signature")
	}
}

// A rollover reaches a running server with its keys: the new ZSK is
// published first, signs after the publish wait, and the old one leaves
// after the removal wait; every answer validates against the DNSKEY RRset
// served at that moment.
func TestDNSSECRolloverServed(t *testing.T) {
	ctx := context.Background()
	db := storetest.NewDB(t, sqlstore.SQLite)
	s, signer, kr := signedServer(t, db)
	addr := s.Addr()
	name := "rollover." + zone
	if err := db.PutChallengeTXT(ctx, name, "authz", "v"); err != nil {
		t.Fatal(err)
	}
	before := zoneKeys(t, addr)
	signedBy := func() uint16 {
		m := queryDO(t, addr, "udp", name, dns.TypeTXT, false)
		verifySection(t, "TXT", m.Answer, zoneKeys(t, addr))
		return m.Answer[len(m.Answer)-1].(*dns.RRSIG).KeyTag
	}
	old := signedBy()
	const wait = 1500 * time.Millisecond
	sched, err := dnssec.Rollover(ctx, db, kr, zone, time.Now(), wait, wait)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := dnssec.Load(ctx, db, kr, zone)
	if err != nil {
		t.Fatal(err)
	}
	signer.SetKeys(keys) // what the key reload does every dnssec.KeyReload
	published := zoneKeys(t, addr)
	if published[sched.New] == nil || published[old] == nil {
		t.Fatalf("after the rollover started: keys %v, want %d and %d", published, old, sched.New)
	}
	if by := signedBy(); by != old {
		t.Fatalf("the new key signs before the publish wait: %d", by)
	}
	time.Sleep(time.Until(sched.SigningAt))
	if by := signedBy(); by != sched.New {
		t.Fatalf("after the publish wait signed by %d, want %d", by, sched.New)
	}
	if zoneKeys(t, addr)[old] == nil {
		t.Fatal("the old key left before the removal wait")
	}
	time.Sleep(time.Until(sched.OldRemovedAt))
	after := zoneKeys(t, addr)
	if after[old] != nil || after[sched.New] == nil {
		t.Fatalf("after the removal wait: keys %v", after)
	}
	for tag, k := range before {
		if k.Flags == dnssec.FlagsKSK && after[tag] == nil {
			t.Fatal("the KSK changed: the DS would no longer match")
		}
	}
}

// Two nodes of one database sign with the same keys: whichever node a
// resolver asks, the DNSKEY RRset is the same and every answer validates
// with it; a rollover made through either reaches the other through its
// key reload.
func TestDNSSECNodesAgree(t *testing.T) {
	dnsserver.SetKeyReload(t, 100*time.Millisecond)
	for _, dialect := range storetest.Dialects(t) {
		t.Run(string(dialect), func(t *testing.T) {
			ctx := context.Background()
			url := storetest.URL(t, dialect)
			key := make([]byte, crypt.KeySize)
			rand.Read(key)
			kr, _ := crypt.NewKeyring(key)
			var addrs []string
			var dbs []*sqlstore.DB
			for range 2 {
				db := storetest.Open(t, url)
				keys, err := dnssec.Ensure(ctx, db, kr, zone, time.Now())
				if err != nil {
					t.Fatal(err)
				}
				s, err := dnsserver.New(dnsserver.Config{Zone: zone, Store: db,
					DNSSEC:     dnssec.NewSigner(zone, dnsserver.DefaultApexTTL, keys),
					DNSSECKeys: func(ctx context.Context) ([]*dnssec.Key, error) { return dnssec.Load(ctx, db, kr, zone) }})
				if err != nil {
					t.Fatal(err)
				}
				if err := s.Start("127.0.0.1:0"); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Shutdown(context.Background()) })
				addrs, dbs = append(addrs, s.Addr()), append(dbs, db)
			}
			a, b := zoneKeys(t, addrs[0]), zoneKeys(t, addrs[1])
			if len(a) != 2 || len(b) != 2 {
				t.Fatalf("keys: %v / %v", a, b)
			}
			for tag := range a {
				if b[tag] == nil || b[tag].PublicKey != a[tag].PublicKey {
					t.Fatalf("the nodes publish different keys: %v / %v", a, b)
				}
			}
			name := "shared." + zone
			if err := dbs[0].PutChallengeTXT(ctx, name, "authz", "v"); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(2 * time.Second)
			for {
				m := queryDO(t, addrs[1], "udp", name, dns.TypeTXT, false)
				if len(m.Answer) > 0 {
					verifySection(t, "node 2's TXT with node 1's keys", m.Answer, a)
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("node 2 does not serve the value: %v", m)
				}
				time.Sleep(20 * time.Millisecond)
			}
			// A rollover through node 1's database handle reaches node 2.
			sched, err := dnssec.Rollover(ctx, dbs[0], kr, zone, time.Now(), time.Hour, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			for {
				if zoneKeys(t, addrs[1])[sched.New] != nil {
					break
				}
				if time.Now().After(deadline.Add(3 * time.Second)) {
					t.Fatal("node 2 never published the new ZSK")
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}
