package main

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestDNSRateLimitMetrics floods serve's DNS server from one client
// network past DCVAAS_DNS_RRL and reads /metrics: the dropped and the
// truncated responses are counted, each exactly as the client saw them,
// and every query the server received is either an answer
// (dcvaas_dns_queries_total, truncated ones included) or a drop.
func TestDNSRateLimitMetrics(t *testing.T) {
	base, dnsAddr := startServeDNS(t, map[string]string{
		"DCVAAS_DATABASE_URL":   filepath.Join(t.TempDir(), "dcvaas.db"),
		"DCVAAS_ENCRYPTION_KEY": strings.Repeat("ab", 32),
		"DCVAAS_VERIFY_ZONE":    "verify.example",
		"DCVAAS_DNS_RRL":        "5",
	})
	if dnsAddr == "" {
		t.Fatal("serve runs no DNS server")
	}
	const answered = `dcvaas_dns_queries_total{qtype="TXT",rcode="NXDOMAIN"}`
	before := scrape(t, base+"/metrics") // cron_test.go
	for _, s := range []string{`dcvaas_dns_rate_limited_total{action="dropped"}`, `dcvaas_dns_rate_limited_total{action="truncated"}`} {
		if v, ok := before[s]; !ok || v != 0 {
			t.Fatalf("before the flood: %s = %v (present: %v)", s, v, ok)
		}
	}
	// A burst from 127.0.0.0/24, far past 5 a second, sent on one socket;
	// every reply that comes back within seconds is read, however slow
	// this machine, so that a late answer is not mistaken for a drop.
	const n = 60
	conn, err := net.Dial("udp", dnsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i := range n {
		m := new(dns.Msg)
		m.SetQuestion("nothing-here.verify.example.", dns.TypeTXT)
		m.Id = uint16(i + 1)
		buf, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	var full, truncated int
	seen := map[uint16]bool{}
	buf := make([]byte, 4096)
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	for len(seen) < n {
		k, err := conn.Read(buf)
		if err != nil {
			break // the deadline: the rest were dropped
		}
		in := new(dns.Msg)
		if err := in.Unpack(buf[:k]); err != nil || seen[in.Id] || in.Id == 0 || in.Id > n {
			t.Fatalf("reply %v: %v", in, err)
		}
		seen[in.Id] = true
		if in.Truncated {
			truncated++
		} else {
			full++
		}
	}
	lost := n - full - truncated
	if truncated == 0 || lost == 0 {
		t.Fatalf("no rate limiting seen: %d full, %d truncated, %d lost", full, truncated, lost)
	}
	after := scrape(t, base+"/metrics")
	dropped := after[`dcvaas_dns_rate_limited_total{action="dropped"}`]
	tc := after[`dcvaas_dns_rate_limited_total{action="truncated"}`]
	queries := after[answered] - before[answered]
	if int(dropped) != lost || int(tc) != truncated || int(queries) != full+truncated {
		t.Fatalf("metrics: %v dropped, %v truncated, %v answered; the client saw %d lost, %d truncated, %d full",
			dropped, tc, queries, lost, truncated, full)
	}
	t.Logf("%d queries: %d full, %d truncated, %d dropped", n, full, truncated, lost)
}
