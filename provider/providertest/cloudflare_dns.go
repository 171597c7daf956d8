package providertest

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dcvaas/dcvaas/dnsserver"
)

// StartDNS serves the fake's TXT records over UDP and TCP on loopback as
// Cloudflare's authoritative servers would, and returns "127.0.0.1:port".
// A record is served only once it has existed for delay: Cloudflare's edge
// takes a moment to apply a change, which is what a publisher's
// propagation wait is for. Names outside every zone are REFUSED.
func (f *Cloudflare) StartDNS(t testing.TB, delay time.Duration) string {
	t.Helper()
	h := &cloudflareDNS{f: f, delay: delay, firstSeen: map[string]time.Time{}}
	pc, ln, err := dnsserver.ListenBoth("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}} {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		go s.ActivateAndServe()
		<-started
		t.Cleanup(func() { s.Shutdown() })
	}
	return pc.LocalAddr().String()
}

type cloudflareDNS struct {
	f     *Cloudflare
	delay time.Duration

	mu        sync.Mutex
	firstSeen map[string]time.Time // record id+content → when first asked about
}

func (h *cloudflareDNS) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	if len(req.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	name := canonical(q.Name)
	h.f.mu.Lock()
	inZone := false
	var recs []cfRecord
	for _, z := range h.f.zones {
		if name == canonical(z.Name) || strings.HasSuffix(name, "."+canonical(z.Name)) {
			inZone = true
			for _, r := range h.f.records[z.ID] {
				if canonical(r.Name) == name {
					recs = append(recs, *r)
				}
			}
		}
	}
	h.f.mu.Unlock()
	if !inZone {
		m.Rcode = dns.RcodeRefused
		w.WriteMsg(m)
		return
	}
	now := time.Now()
	h.mu.Lock()
	for _, r := range recs {
		k := r.ID + "\x00" + r.Content
		seen, ok := h.firstSeen[k]
		if !ok {
			h.firstSeen[k], seen = now, now
		}
		if now.Sub(seen) < h.delay || r.Type != "TXT" || q.Qtype != dns.TypeTXT {
			continue
		}
		content := r.Content
		if len(content) >= 2 && content[0] == '"' && content[len(content)-1] == '"' {
			content = content[1 : len(content)-1]
		}
		m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: uint32(max(r.TTL, 1))}, Txt: []string{content}})
	}
	h.mu.Unlock()
	if len(recs) == 0 {
		m.Rcode = dns.RcodeNameError
	}
	w.WriteMsg(m)
}
