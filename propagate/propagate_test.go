package propagate_test

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dcvaas/dcvaas/propagate"
)

// serve answers DNS on a free loopback UDP port with h.
func serve(t *testing.T, h dns.HandlerFunc) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: h}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}

// The zone's servers are found through its NS records, and the wait ends
// once every one of them serves the value.
func TestWaitTXTDiscoversNameservers(t *testing.T) {
	var mu sync.Mutex
	served := map[string]bool{} // by server, once the value is "propagated" there
	auth := func(id string) dns.HandlerFunc {
		return func(w dns.ResponseWriter, r *dns.Msg) {
			m := new(dns.Msg)
			m.SetReply(r)
			m.Authoritative = true
			mu.Lock()
			ok := served[id]
			mu.Unlock()
			if r.RecursionDesired {
				m.Rcode = dns.RcodeRefused // an authoritative server is asked without recursion
			} else if ok && r.Question[0].Qtype == dns.TypeTXT {
				m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}, Txt: []string{"val", "ue"}})
			}
			w.WriteMsg(m)
		}
	}
	// The zone's one nameserver; the resolver knows it by name.
	authAddr := serve(t, auth("a"))
	_, port, _ := net.SplitHostPort(authAddr)
	resolver := serve(t, func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		q := r.Question[0]
		switch {
		case q.Qtype == dns.TypeNS && strings.EqualFold(q.Name, "verify.example.net."):
			m.Answer = append(m.Answer, &dns.NS{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: 60}, Ns: "ns1.example.net."})
		case q.Qtype == dns.TypeA && q.Name == "ns1.example.net.":
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.ParseIP("127.0.0.1")})
		}
		w.WriteMsg(m)
	})
	c := &propagate.Checker{Zone: "verify.example.net", Resolvers: []string{resolver}, Port: port, Interval: 20 * time.Millisecond, Timeout: 5 * time.Second}
	go func() {
		time.Sleep(150 * time.Millisecond)
		mu.Lock()
		served["a"] = true
		mu.Unlock()
	}()
	start := time.Now()
	if err := c.WaitTXT(context.Background(), "abc.verify.example.net", "value"); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 150*time.Millisecond {
		t.Fatalf("returned after %s, before the value was served", took)
	}

	c.Timeout = 100 * time.Millisecond
	err := c.WaitTXT(context.Background(), "abc.verify.example.net", "other")
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:"+port) {
		t.Fatalf("value never served: %v", err)
	}
	bad := &propagate.Checker{Zone: "nowhere.example.net", Resolvers: []string{resolver}, Timeout: time.Second}
	if err := bad.WaitTXT(context.Background(), "x.nowhere.example.net", "v"); err == nil || !strings.Contains(err.Error(), "no address") {
		t.Fatalf("zone without nameservers: %v", err)
	}
}
