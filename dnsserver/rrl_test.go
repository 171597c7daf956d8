package dnsserver_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas/dnsserver"
	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/dcvaas/dcvaas/sqlstore/storetest"
	"github.com/miekg/dns"
)

func startWith(t *testing.T, cfg dnsserver.Config) *dnsserver.Server {
	t.Helper()
	if cfg.Zone == "" {
		cfg.Zone = zone
	}
	if cfg.Store == nil {
		cfg.Store = storetest.NewDB(t, sqlstore.SQLite)
	}
	s, err := dnsserver.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return s
}

// Past the limit, UDP answers are dropped or (every second one) sent
// empty with TC; TCP is not limited.
func TestRateLimit(t *testing.T) {
	s := startWith(t, dnsserver.Config{RRL: 5})
	c := &dns.Client{Timeout: 150 * time.Millisecond}
	var full, truncated, lost int
	for range 30 {
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn("x."+zone), dns.TypeTXT)
		in, _, err := c.Exchange(m, s.Addr())
		switch {
		case err != nil:
			lost++
		case in.Truncated:
			if len(in.Answer)+len(in.Ns) != 0 {
				t.Fatalf("truncated answer carries records: %v", in)
			}
			truncated++
		default:
			full++
		}
	}
	// 30 queries take at most a few seconds: 5 a second answered in full.
	if full < 5 || full > 20 || truncated == 0 || lost == 0 {
		t.Fatalf("full %d, truncated %d, lost %d", full, truncated, lost)
	}
	dropped, tc := s.Limited()
	if int(dropped) != lost || int(tc) != truncated {
		t.Fatalf("Limited() = %d, %d; saw %d lost, %d truncated", dropped, tc, lost, truncated)
	}
	for range 20 {
		if m := query(t, s.Addr(), "tcp", "x."+zone, dns.TypeTXT); m.Rcode != dns.RcodeNameError || m.Truncated {
			t.Fatalf("TCP answer under the limit: %v", m)
		}
	}
}

// A UDP flood (rate-limited) does not stop TCP service.
func TestTCPUnderUDPFlood(t *testing.T) {
	s := startWith(t, dnsserver.Config{RRL: 200})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var sent atomic.Int64
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("udp", s.Addr())
			if err != nil {
				return
			}
			defer conn.Close()
			b := make([]byte, 8)
			for ctx.Err() == nil {
				rand.Read(b)
				m := new(dns.Msg)
				m.SetQuestion(dns.Fqdn(hex.EncodeToString(b)+"."+zone), dns.TypeTXT)
				p, _ := m.Pack()
				conn.Write(p)
				sent.Add(1)
			}
		}()
	}
	defer func() { cancel(); wg.Wait() }()
	time.Sleep(200 * time.Millisecond)
	c := &dns.Client{Net: "tcp", Timeout: 2 * time.Second}
	var slowest time.Duration
	for range 30 {
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn("y."+zone), dns.TypeTXT)
		in, rtt, err := c.Exchange(m, s.Addr())
		if err != nil || in.Rcode != dns.RcodeNameError {
			t.Fatalf("TCP query during UDP flood: %v %v", in, err)
		}
		slowest = max(slowest, rtt)
	}
	dropped, _ := s.Limited()
	t.Logf("UDP queries sent %d, dropped %d; slowest TCP answer %s", sent.Load(), dropped, slowest)
	if dropped == 0 {
		t.Fatal("the flood was not rate-limited")
	}
}

// 1,000 idle TCP connections neither stop UDP nor TCP service, and are
// closed after a few seconds.
func TestIdleTCPConnections(t *testing.T) {
	s := startWith(t, dnsserver.Config{})
	var idle []net.Conn
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	for range 1000 {
		c, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatalf("dial %d: %v", len(idle), err)
		}
		idle = append(idle, c)
	}
	start := time.Now()
	for _, network := range []string{"udp", "tcp", "tcp"} {
		c := &dns.Client{Net: network, Timeout: time.Second}
		m := new(dns.Msg)
		m.SetQuestion(zone+".", dns.TypeSOA)
		if in, _, err := c.Exchange(m, s.Addr()); err != nil || in.Rcode != dns.RcodeSuccess {
			t.Fatalf("%s query beside 1,000 idle connections: %v %v", network, in, err)
		}
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("queries took %s", took)
	}
	if n := s.TCPConns(); n > 256 {
		t.Fatalf("%d TCP connections open", n)
	}
	// Every idle connection is closed by the server within a few seconds.
	deadline := time.Now().Add(5 * time.Second)
	for s.TCPConns() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d idle connections still open after 5s", s.TCPConns())
		}
		time.Sleep(50 * time.Millisecond)
	}
	idle[len(idle)-1].SetReadDeadline(time.Now().Add(time.Second))
	if _, err := idle[len(idle)-1].Read(make([]byte, 1)); err == nil {
		t.Fatal("idle connection still readable")
	}
}
