package resolve_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/dcvaas/dcvaas/resolve"
	"github.com/miekg/dns"
)

// caaServer answers CAA queries from a table, follows CNAMEs as a
// recursive resolver would, and fails names in fail with SERVFAIL.
func caaServer(t *testing.T, caa map[string][]string, cname map[string]string, fail map[string]bool) (string, func(string) int) {
	t.Helper()
	var mu sync.Mutex
	asked := map[string]int{}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		name := strings.ToLower(req.Question[0].Name)
		mu.Lock()
		asked[name]++
		mu.Unlock()
		if fail[name] {
			m.Rcode = dns.RcodeServerFailure
			w.WriteMsg(m)
			return
		}
		if target, ok := cname[name]; ok {
			m.Answer = append(m.Answer, &dns.CNAME{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET}, Target: target})
			name = target
		}
		for _, r := range caa[name] {
			f := strings.SplitN(r, " ", 3)
			flag := uint8(0)
			if f[0] == "128" {
				flag = 128
			}
			m.Answer = append(m.Answer, &dns.CAA{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeCAA, Class: dns.ClassINET}, Flag: flag, Tag: f[1], Value: f[2]})
		}
		w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String(), func(name string) int { mu.Lock(); defer mu.Unlock(); return asked[name] }
}

// RFC 8659 §3: the Relevant RRset is the closest one climbing towards
// the root; "*." is dropped; CNAME targets' records count.
func TestLookupCAA(t *testing.T) {
	addr, asked := caaServer(t, map[string][]string{
		"example.com.":        {"0 issue letsencrypt.org", "0 iodef mailto:sec@example.com"},
		"sub.example.com.":    {"128 issue sectigo.com"},
		"target.example.net.": {"0 issue pki.goog"},
	}, map[string]string{"alias.example.com.": "target.example.net."}, map[string]bool{"broken.test.": true})
	r, err := resolve.New([]string{addr})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct{ name, at, first string }{
		{"a.b.example.com", "example.com", `0 issue "letsencrypt.org"`},
		{"*.shop.example.com", "example.com", `0 issue "letsencrypt.org"`},
		{"x.sub.example.com", "sub.example.com", `128 issue "sectigo.com"`},
		{"alias.example.com", "alias.example.com", `0 issue "pki.goog"`},
		{"nothing.test", "", ""},
	} {
		set, err := r.LookupCAA(ctx, tc.name)
		if err != nil {
			t.Fatal(err)
		}
		first := ""
		if len(set.Records) > 0 {
			first = set.Records[0].String()
		}
		if set.Name != tc.at || first != tc.first {
			t.Errorf("%s: found %+v", tc.name, set)
		}
	}
	if asked("shop.example.com.") != 1 || asked("com.") != 0 || asked("test.") != 1 {
		t.Errorf("climbing asked shop.example.com %d, com %d, test %d times", asked("shop.example.com."), asked("com."), asked("test."))
	}
	if set, _ := r.LookupCAA(ctx, "sub.example.com"); !set.Records[0].Critical() {
		t.Error("flag 128 is not critical")
	}
	_, err = r.LookupCAA(ctx, "a.broken.test")
	var re *resolve.Error
	if !errors.As(err, &re) || re.Reason() != "SERVFAIL" {
		t.Fatalf("SERVFAIL lookup: %v", err)
	}
}
