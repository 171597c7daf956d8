package sandbox

import (
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/dcvaas/dcvaas/dnsserver"
)

// Resolver is a minimal recursive resolver for tests and the demo: zone cuts are given
// (zone → authoritative server) instead of discovered from the root, and
// CNAME chains are followed across them. It answers over UDP and TCP
// (Pebble's VA asks over TCP).
type Resolver struct {
	// Addr is "127.0.0.1:port", the same for UDP and TCP.
	Addr     string
	zones    []string // lowercase FQDNs, longest first
	mu       sync.RWMutex
	servers  map[string]string // guarded by mu (SetServer)
	fallback string
	udp, tcp *dns.Server
}

// maxChain bounds the CNAME chains the resolver follows (RFC 1034 §3.6.2
// asks resolvers to stop loops; 8 is common practice).
const maxChain = 8

// StartResolver serves on a free loopback port: names under a key of zones
// are asked of its server, all others of fallback.
func StartResolver(zones map[string]string, fallback string) (*Resolver, error) {
	r := &Resolver{servers: map[string]string{}, fallback: fallback}
	for z, addr := range zones {
		z = dns.Fqdn(strings.ToLower(z))
		r.zones = append(r.zones, z)
		r.servers[z] = addr
	}
	sort.Slice(r.zones, func(i, j int) bool { return len(r.zones[i]) > len(r.zones[j]) })
	pc, ln, err := dnsserver.ListenBoth("127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r.Addr = pc.LocalAddr().String()
	r.udp = &dns.Server{PacketConn: pc, Handler: r}
	r.tcp = &dns.Server{Listener: ln, Handler: r}
	for _, s := range []*dns.Server{r.udp, r.tcp} {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		go s.ActivateAndServe()
		<-started
	}
	return r, nil
}

// Close stops the resolver.
func (r *Resolver) Close() {
	r.udp.Shutdown()
	r.tcp.Shutdown()
}

// SetServer moves zone, one of StartResolver's, to the server at addr: a
// dcvaas started after the resolver, on a port it chose itself.
func (r *Resolver) SetServer(zone, addr string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.servers[dns.Fqdn(strings.ToLower(zone))] = addr
}

// route returns the server authoritative for name.
func (r *Resolver) route(name string) string {
	name = strings.ToLower(name)
	for _, z := range r.zones {
		if dns.IsSubDomain(z, name) {
			r.mu.RLock()
			defer r.mu.RUnlock()
			return r.servers[z]
		}
	}
	return r.fallback
}

// ServeDNS implements dns.Handler.
func (r *Resolver) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	if len(req.Question) != 1 {
		m.SetRcodeFormatError(req)
		w.WriteMsg(m)
		return
	}
	m.SetReply(req)
	m.RecursionAvailable = true
	q := req.Question[0]
	name := q.Name
	for hop := 0; ; hop++ {
		if hop > maxChain {
			m.Rcode = dns.RcodeServerFailure
			break
		}
		server := r.route(name)
		in, err := ask(server, name, q.Qtype)
		if err != nil || (in.Rcode != dns.RcodeSuccess && in.Rcode != dns.RcodeNameError) {
			m.Answer = nil
			m.Rcode = dns.RcodeServerFailure
			break
		}
		m.Answer = append(m.Answer, in.Answer...)
		m.Rcode = in.Rcode
		if q.Qtype == dns.TypeCNAME {
			break
		}
		end := chainEnd(in.Answer, name)
		// Done when there is no alias, when the server already answered
		// at the alias's end, or when the end lies in the same server's
		// zone (it answered all it knows).
		if end == "" || hasType(in.Answer, end, q.Qtype) || r.route(end) == server {
			break
		}
		name = end
	}
	w.WriteMsg(m)
}

// ask sends one non-recursive query, over TCP when UDP comes back truncated.
func ask(server, name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.SetEdns0(4096, false)
	c := &dns.Client{Timeout: 2 * time.Second}
	in, _, err := c.Exchange(m, server)
	if err == nil && in.Truncated {
		c.Net = "tcp"
		in, _, err = c.Exchange(m, server)
	}
	return in, err
}

// chainEnd follows the CNAMEs in rrs from name and returns the last target,
// or "" when name has no CNAME there.
func chainEnd(rrs []dns.RR, name string) string {
	end := ""
	cur := strings.ToLower(name)
	for range maxChain {
		next := ""
		for _, rr := range rrs {
			if c, ok := rr.(*dns.CNAME); ok && strings.ToLower(c.Hdr.Name) == cur {
				next = strings.ToLower(c.Target)
			}
		}
		if next == "" {
			break
		}
		end, cur = next, next
	}
	return end
}

func hasType(rrs []dns.RR, name string, qtype uint16) bool {
	for _, rr := range rrs {
		if rr.Header().Rrtype == qtype && strings.EqualFold(rr.Header().Name, name) {
			return true
		}
	}
	return false
}
