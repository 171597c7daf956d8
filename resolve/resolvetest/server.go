// Package resolvetest runs a real DNS server on loopback that plays the
// recursive resolver a CA (and dcvaas) would ask: tests put CNAME and TXT
// records into it, make names fail with SERVFAIL, or hold answers back to
// catch a job in the middle of a lookup.
package resolvetest

import (
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// Server is an in-process DNS server on 127.0.0.1 (UDP).
type Server struct {
	// Addr is "127.0.0.1:port", what a resolver list takes.
	Addr string

	srv *dns.Server

	mu      sync.Mutex
	cname   map[string]string
	txt     map[string][]string
	rcode   map[string]int
	held    map[string]chan struct{}
	queries map[string]int
	// seen is signalled (without blocking) on every query, for tests that
	// wait for a lookup to be in flight.
	seen chan string
}

// New starts a server that stops when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{
		Addr:  pc.LocalAddr().String(),
		cname: map[string]string{}, txt: map[string][]string{}, rcode: map[string]int{},
		held: map[string]chan struct{}{}, queries: map[string]int{}, seen: make(chan string, 64),
	}
	started := make(chan struct{})
	s.srv = &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(s.serve), NotifyStartedFunc: func() { close(started) }}
	go s.srv.ActivateAndServe()
	<-started
	t.Cleanup(func() {
		s.ReleaseAll()
		s.srv.Shutdown()
	})
	return s
}

func key(name string) string { return strings.ToLower(dns.Fqdn(name)) }

// SetCNAME makes name an alias of target (replacing what name had).
func (s *Server) SetCNAME(name, target string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cname[key(name)] = dns.Fqdn(target)
	delete(s.txt, key(name))
}

// SetTXT puts TXT records at name (replacing what name had).
func (s *Server) SetTXT(name string, values ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.txt[key(name)] = values
	delete(s.cname, key(name))
}

// Remove deletes every record at name and any failure set for it.
func (s *Server) Remove(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.cname, key(name))
	delete(s.txt, key(name))
	delete(s.rcode, key(name))
}

// Fail answers every query for name with rcode (e.g. dns.RcodeServerFailure).
func (s *Server) Fail(name string, rcode int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rcode[key(name)] = rcode
}

// Hold makes queries for name wait without an answer until Release.
func (s *Server) Hold(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.held[key(name)]; !ok {
		s.held[key(name)] = make(chan struct{})
	}
}

// Release answers the held queries for name, and answers later ones at once.
func (s *Server) Release(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch, ok := s.held[key(name)]; ok {
		close(ch)
		delete(s.held, key(name))
	}
}

// ReleaseAll releases every held name.
func (s *Server) ReleaseAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, ch := range s.held {
		close(ch)
		delete(s.held, k)
	}
}

// Queries returns how many queries for name arrived.
func (s *Server) Queries(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries[key(name)]
}

// Seen delivers the name of each query as it arrives (dropped when nobody reads).
func (s *Server) Seen() <-chan string { return s.seen }

func (s *Server) serve(w dns.ResponseWriter, req *dns.Msg) {
	if len(req.Question) != 1 {
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeFormatError)
		w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	name := key(q.Name)
	s.mu.Lock()
	s.queries[name]++
	held := s.held[name]
	s.mu.Unlock()
	select {
	case s.seen <- name:
	default:
	}
	if held != nil {
		<-held
	}
	w.WriteMsg(s.answer(req, q))
}

// answer resolves like a recursive resolver: it follows CNAMEs for other
// types, answers a CNAME query with the alias only, and tells NXDOMAIN
// (no records at or below the name) from NODATA.
func (s *Server) answer(req *dns.Msg, q dns.Question) *dns.Msg {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := new(dns.Msg)
	m.SetReply(req)
	m.RecursionAvailable = true
	name := key(q.Name)
	for hops := 0; hops < 16; hops++ {
		if rc, ok := s.rcode[name]; ok {
			m.Answer = nil
			m.Rcode = rc
			return m
		}
		if target, ok := s.cname[name]; ok {
			m.Answer = append(m.Answer, &dns.CNAME{Hdr: hdr(name, dns.TypeCNAME), Target: target})
			if q.Qtype == dns.TypeCNAME {
				return m
			}
			name = key(target)
			continue
		}
		if vals, ok := s.txt[name]; ok && q.Qtype == dns.TypeTXT {
			for _, v := range vals {
				m.Answer = append(m.Answer, &dns.TXT{Hdr: hdr(name, dns.TypeTXT), Txt: []string{v}})
			}
			return m
		}
		if !s.exists(name) {
			m.Rcode = dns.RcodeNameError
		}
		return m
	}
	m.Rcode = dns.RcodeServerFailure
	return m
}

// exists reports whether name or a name below it has records.
func (s *Server) exists(name string) bool {
	for k := range s.cname {
		if k == name || strings.HasSuffix(k, "."+name) {
			return true
		}
	}
	for k := range s.txt {
		if k == name || strings.HasSuffix(k, "."+name) {
			return true
		}
	}
	return false
}

func hdr(name string, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: 60}
}
