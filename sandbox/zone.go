package sandbox

import (
	"strings"
	"sync"

	"github.com/miekg/dns"

	"github.com/dcvaas/dcvaas/dnsserver"
)

// Zone is a pretend customer's authoritative DNS server: it holds the
// CNAME records the customer creates (their `_acme-challenge` delegation)
// and answers everything else with an empty NOERROR, so CAA lookups find
// no restriction. It answers over UDP and TCP on a loopback port.
type Zone struct {
	// Addr is "127.0.0.1:port", the same for UDP and TCP.
	Addr string

	mu       sync.RWMutex
	cnames   map[string]string // owner FQDN → target FQDN, lowercase
	udp, tcp *dns.Server
}

// StartZone serves an empty zone on a free loopback port.
func StartZone() (*Zone, error) {
	z := &Zone{cnames: map[string]string{}}
	pc, ln, err := dnsserver.ListenBoth("127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	z.Addr = pc.LocalAddr().String()
	z.udp = &dns.Server{PacketConn: pc, Handler: z}
	z.tcp = &dns.Server{Listener: ln, Handler: z}
	for _, s := range []*dns.Server{z.udp, z.tcp} {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		go s.ActivateAndServe()
		<-started
	}
	return z, nil
}

// Close stops the server.
func (z *Zone) Close() {
	z.udp.Shutdown()
	z.tcp.Shutdown()
}

// SetCNAME creates (or replaces) name CNAME target.
func (z *Zone) SetCNAME(name, target string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.cnames[dns.Fqdn(strings.ToLower(name))] = dns.Fqdn(strings.ToLower(target))
}

// ServeDNS implements dns.Handler. A name with a CNAME answers with it
// whatever the type asked (RFC 1034 §3.6.2); the resolver follows it.
func (z *Zone) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	if len(req.Question) != 1 {
		m.SetRcodeFormatError(req)
		w.WriteMsg(m)
		return
	}
	m.SetReply(req)
	m.Authoritative = true
	q := req.Question[0]
	z.mu.RLock()
	target, ok := z.cnames[strings.ToLower(q.Name)]
	z.mu.RUnlock()
	if ok {
		m.Answer = append(m.Answer, &dns.CNAME{
			Hdr:    dns.RR_Header{Name: q.Name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: 60},
			Target: target,
		})
	}
	w.WriteMsg(m)
}
