package dnsserver_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas/dnsserver"
	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/dcvaas/dcvaas/sqlstore/storetest"
	"github.com/miekg/dns"
)

const zone = "verify.dcvaas.test"

// start runs a server for zone on a free loopback port, stopped with the test.
func start(t *testing.T, store dnsserver.Store) *dnsserver.Server {
	t.Helper()
	s, err := dnsserver.New(dnsserver.Config{
		Zone: zone, Store: store,
		NS:       []string{"ns1.dcvaas.test", "ns2.dcvaas.test"},
		SOAEmail: "host.master@dcvaas.test",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return s
}

func query(t *testing.T, addr, network, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = true
	c := &dns.Client{Net: network, Timeout: 2 * time.Second}
	in, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s %s %s: %v", network, name, dns.TypeToString[qtype], err)
	}
	return in
}

func txtValues(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		if t, ok := rr.(*dns.TXT); ok {
			out = append(out, strings.Join(t.Txt, ""))
		}
	}
	slices.Sort(out)
	return out
}

func TestServer(t *testing.T) {
	for _, dialect := range storetest.Dialects(t) {
		t.Run(string(dialect), func(t *testing.T) { testServer(t, storetest.NewDB(t, dialect)) })
	}
}

func testServer(t *testing.T, db *sqlstore.DB) {
	ctx := context.Background()
	s := start(t, db)
	addr := s.Addr()
	name := "k7x2q9w4m3z8p5r1." + zone

	for _, network := range []string{"udp", "tcp"} {
		soa := query(t, addr, network, zone, dns.TypeSOA)
		if soa.Rcode != dns.RcodeSuccess || !soa.Authoritative || soa.RecursionAvailable || len(soa.Answer) != 1 {
			t.Fatalf("%s SOA: %v", network, soa)
		}
		rr := soa.Answer[0].(*dns.SOA)
		if rr.Minttl > 30 || rr.Ns != "ns1.dcvaas.test." || rr.Mbox != `host\.master.dcvaas.test.` {
			t.Fatalf("SOA record: %v", rr)
		}
		ns := query(t, addr, network, zone, dns.TypeNS)
		if len(ns.Answer) != 2 || ns.Answer[1].(*dns.NS).Ns != "ns2.dcvaas.test." || !ns.Authoritative {
			t.Fatalf("%s NS: %v", network, ns)
		}
	}

	// Unknown name: NXDOMAIN with the SOA, for negative caching.
	nx := query(t, addr, "udp", name, dns.TypeTXT)
	if nx.Rcode != dns.RcodeNameError || !nx.Authoritative || len(nx.Ns) != 1 || nx.Ns[0].Header().Ttl > 30 {
		t.Fatalf("unknown name: %v", nx)
	}

	// Apex and wildcard authorizations put two values at one name at once;
	// a value written is served at once (the issue allows 100 ms).
	if err := db.PutChallengeTXT(ctx, name, "authz-apex", "value-apex"); err != nil {
		t.Fatal(err)
	}
	if err := db.PutChallengeTXT(ctx, name, "authz-wild", "value-wild"); err != nil {
		t.Fatal(err)
	}
	written := time.Now()
	got := query(t, addr, "udp", name, dns.TypeTXT)
	if took := time.Since(written); took > 100*time.Millisecond {
		t.Errorf("first answer after the write took %s", took)
	}
	if got.Rcode != dns.RcodeSuccess || !got.Authoritative || got.RecursionAvailable ||
		!slices.Equal(txtValues(got), []string{"value-apex", "value-wild"}) || got.Answer[0].Header().Ttl > 10 {
		t.Fatalf("TXT: %v", got)
	}
	// Names compare case-insensitively; the question's spelling is kept.
	mixed := query(t, addr, "tcp", "K7X2Q9W4M3Z8P5R1.Verify.DCVAAS.test", dns.TypeTXT)
	if len(mixed.Answer) != 2 || mixed.Answer[0].Header().Name != "K7X2Q9W4M3Z8P5R1.Verify.DCVAAS.test." {
		t.Fatalf("mixed case: %v", mixed)
	}
	// The name exists, other types are NODATA.
	nodata := query(t, addr, "udp", name, dns.TypeA)
	if nodata.Rcode != dns.RcodeSuccess || len(nodata.Answer) != 0 || len(nodata.Ns) != 1 {
		t.Fatalf("NODATA: %v", nodata)
	}
	// Apex types other than SOA/NS: NODATA.
	if m := query(t, addr, "udp", zone, dns.TypeTXT); m.Rcode != dns.RcodeSuccess || len(m.Answer) != 0 || len(m.Ns) != 1 {
		t.Fatalf("apex TXT: %v", m)
	}

	// Replacing one value, removing the other.
	if err := db.PutChallengeTXT(ctx, name, "authz-apex", "value-apex-2"); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteChallengeTXT(ctx, name, "authz-wild"); err != nil {
		t.Fatal(err)
	}
	if got := txtValues(query(t, addr, "udp", name, dns.TypeTXT)); !slices.Equal(got, []string{"value-apex-2"}) {
		t.Fatalf("after update: %v", got)
	}
	if err := db.ClearChallengeTXT(ctx, name); err != nil {
		t.Fatal(err)
	}
	if m := query(t, addr, "udp", name, dns.TypeTXT); m.Rcode != dns.RcodeNameError {
		t.Fatalf("after clear: %v", m)
	}

	// Outside the zone: REFUSED, not authoritative, no recursion.
	for _, out := range []string{"example.com", "dcvaas.test", "xverify.dcvaas.test"} {
		m := query(t, addr, "udp", out, dns.TypeTXT)
		if m.Rcode != dns.RcodeRefused || m.Authoritative || len(m.Answer) != 0 {
			t.Fatalf("%s: %v", out, m)
		}
	}
	if m := query(t, addr, "tcp", zone, dns.TypeAXFR); m.Rcode != dns.RcodeRefused {
		t.Fatalf("AXFR: %v", m)
	}

	counts := s.Counts()
	if counts["NOERROR"] < 8 || counts["NXDOMAIN"] != 2 || counts["REFUSED"] != 4 {
		t.Fatalf("counts = %v", counts)
	}
}

// Many values over UDP without EDNS0 do not fit 512 bytes: TC is set and
// the full answer comes over TCP.
func TestTruncation(t *testing.T) {
	db := storetest.NewDB(t, sqlstore.SQLite)
	s := start(t, db)
	name := "many." + zone
	for i := range 20 {
		if err := db.PutChallengeTXT(context.Background(), name, fmt.Sprint("k", i), strings.Repeat("x", 43)); err != nil {
			t.Fatal(err)
		}
	}
	if m := query(t, s.Addr(), "udp", name, dns.TypeTXT); !m.Truncated {
		t.Fatalf("UDP answer not truncated: %d records", len(m.Answer))
	}
	if m := query(t, s.Addr(), "tcp", name, dns.TypeTXT); m.Truncated || len(m.Answer) != 20 {
		t.Fatalf("TCP answer: truncated=%v, %d records", m.Truncated, len(m.Answer))
	}
}

// failingStore never reaches its database: it never loads nor confirms.
type failingStore struct{}

func (failingStore) FollowChallenges(ctx context.Context, _ func(map[string][]string), _ func(time.Time)) error {
	<-ctx.Done()
	return errors.New("database is down")
}

// A zone that could not be read is SERVFAIL (resolvers retry), never a
// false NXDOMAIN.
func TestStoreFailure(t *testing.T) {
	dnsserver.SetFirstLoadWait(t, 50*time.Millisecond)
	var mu sync.Mutex
	var seen []int
	s, err := dnsserver.New(dnsserver.Config{Zone: zone, Store: failingStore{},
		OnQuery: func(_ dns.Question, rcode int, _ time.Duration) { mu.Lock(); seen = append(seen, rcode); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	if m := query(t, s.Addr(), "udp", "x."+zone, dns.TypeTXT); m.Rcode != dns.RcodeServerFailure {
		t.Fatalf("rcode = %s", dns.RcodeToString[m.Rcode])
	}
	if m := query(t, s.Addr(), "udp", zone, dns.TypeSOA); m.Rcode != dns.RcodeSuccess {
		t.Fatalf("apex needs no database: %v", m)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(seen, []int{dns.RcodeServerFailure, dns.RcodeSuccess}) {
		t.Fatalf("OnQuery saw %v", seen)
	}
}

func TestConfig(t *testing.T) {
	if _, err := dnsserver.New(dnsserver.Config{Store: failingStore{}}); err == nil {
		t.Fatal("no zone accepted")
	}
	if _, err := dnsserver.New(dnsserver.Config{Zone: zone}); err == nil {
		t.Fatal("no store accepted")
	}
	if _, err := dnsserver.New(dnsserver.Config{Zone: zone, Store: failingStore{}, NS: []string{"bad name..x"}}); err == nil {
		t.Fatal("bad NS accepted")
	}
}

func TestListenAndServe(t *testing.T) {
	dnsserver.SetFirstLoadWait(t, 50*time.Millisecond)
	s, err := dnsserver.New(dnsserver.Config{Zone: zone, Store: failingStore{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.ListenAndServe(ctx, "127.0.0.1:0") }()
	deadline := time.Now().Add(2 * time.Second)
	for s.Addr() == "" && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if m := query(t, s.Addr(), "tcp", zone, dns.TypeNS); len(m.Answer) != 1 || m.Answer[0].(*dns.NS).Ns != "ns."+zone+"." {
		t.Fatalf("default NS: %v", m)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
