// Package dnsserver is the authoritative DNS server for dcvaas's verify zone.
// Customers point _acme-challenge.<their name> at <label>.<verify zone> once;
// a CA validating DNS-01 (RFC 8555 §8.4) follows that CNAME here and reads
// the TXT values the issuing job published.
//
// The values live in the database; every node keeps a copy in memory that
// the store keeps current (zone.go), so every node of a cluster answers the
// same within 100 ms of a write, and no query reads the database. The
// server answers only for its zone (REFUSED elsewhere),
// never recurses, and keeps TTLs and the SOA minimum short so that resolvers
// do not hold on to an answer from before a value was published.
package dnsserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/dcvaas/dcvaas/dnssec"
	"github.com/dcvaas/dcvaas/logsample"
)

// Store is where the TXT values come from; *sqlstore.DB implements it.
type Store interface {
	// FollowChallenges keeps a copy of every published value current until
	// ctx ends: set receives them all (name, lowercase without the
	// trailing dot → values) when it starts and after every change, and
	// confirm(t) says the copy last set holds every change committed
	// before t, at least every second while the database answers.
	FollowChallenges(ctx context.Context, set func(map[string][]string), confirm func(time.Time)) error
}

// Config describes the zone. Zone and Store are required; the rest has
// defaults.
type Config struct {
	// Zone is the verify zone, e.g. "dcvaas-verify.com".
	Zone  string
	Store Store
	// NS are the zone's nameserver names (default "ns.<zone>").
	NS []string
	// NSAddrs are nameservers' addresses, by name: answered for A and
	// AAAA queries and added to apex NS answers (glue). A name of NS
	// inside the zone needs some to be reachable.
	NSAddrs map[string][]net.IP
	// RRL limits UDP responses per second to each client network (/24,
	// /56); 0 turns it off (rrl.go).
	RRL int
	// SOAEmail is the zone contact, "hostmaster@example.com" or already in
	// SOA form "hostmaster.example.com" (default "hostmaster.<zone>").
	SOAEmail string
	// TTL of TXT answers (default 5s): short, because values change within
	// minutes and a CA must never see a cached old value.
	TTL time.Duration
	// ApexTTL of the SOA and NS answers (default 300s).
	ApexTTL time.Duration
	// NegativeTTL is the SOA minimum, which bounds how long resolvers cache
	// "no such record" (RFC 2308 §5); at most 30s (default 30s), so that
	// a lookup made just before a value is published is soon forgotten.
	// It is also how long the in-memory copy may go unconfirmed (database
	// unreachable) before names below the apex are answered SERVFAIL,
	// which resolvers retry, rather than a possibly false NXDOMAIN.
	NegativeTTL time.Duration
	// OnQuery, when set, is called after each answered query: the hook for
	// metrics (e.g. a Prometheus counter by rcode and a latency histogram).
	OnQuery func(q dns.Question, rcode int, took time.Duration)
	Logger  *slog.Logger
	// DNSSEC, when set, signs the zone (package dnssec): the DNSKEY RRset
	// at the apex, RRSIGs in answers to queries with the DO bit, compact
	// denial of existence (RFC 9824). DNSSECKeys, when set, reloads its
	// keys every dnssec.KeyReload, so that a rollover scheduled on any
	// node reaches this one.
	DNSSEC     *dnssec.Signer
	DNSSECKeys func(ctx context.Context) ([]*dnssec.Key, error)
}

// DefaultApexTTL is the TTL of the apex's SOA, NS and DNSKEY RRsets unless
// Config.ApexTTL says otherwise.
const DefaultApexTTL = 300 * time.Second

// maxNegativeTTL is the cap on the SOA minimum the issue asks for.
const maxNegativeTTL = 30 * time.Second

// Server answers for the zone over UDP and TCP.
type Server struct {
	cfg      Config
	zone     string // lowercase FQDN
	ns       []string
	mbox     string
	log      *slog.Logger
	counts   counters
	zoneCopy *zone
	hosts    map[string][]net.IP // in-zone nameservers' addresses
	rrl      *rrl                // nil: off
	limited  limitedCounts
	tcp      *cappedListener
	soaCache atomic.Pointer[soaEntry] // negativeSOA's record of this second

	signer   *dnssec.Signer // nil: unsigned
	denials  *dnssec.Caches // NSECs denying names that do not exist
	apexSigs struct{ ns, nsec dnssec.Cache }
	hostSigs map[string]*hostSigs

	mu         sync.Mutex
	servers    []*dns.Server
	addr       string
	stopFollow func()
}

// New checks cfg and returns a server that is not yet listening.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("dnsserver: Config.Store is required")
	}
	zone := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(cfg.Zone), "."))
	if zone == "" {
		return nil, errors.New("dnsserver: Config.Zone is required")
	}
	if _, ok := dns.IsDomainName(zone); !ok {
		return nil, fmt.Errorf("dnsserver: zone %q is not a domain name", cfg.Zone)
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 5 * time.Second
	}
	if cfg.ApexTTL <= 0 {
		cfg.ApexTTL = DefaultApexTTL
	}
	if cfg.NegativeTTL <= 0 || cfg.NegativeTTL > maxNegativeTTL {
		cfg.NegativeTTL = maxNegativeTTL
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	// Sampled: what a flood of queries or a failing zone feed makes the
	// server write is bounded (logsample).
	s := &Server{cfg: cfg, zone: dns.Fqdn(zone), log: logsample.Logger(cfg.Logger, 20), zoneCopy: newZone()}
	for _, n := range cfg.NS {
		if n = strings.TrimSpace(n); n == "" {
			continue
		}
		if _, ok := dns.IsDomainName(n); !ok {
			return nil, fmt.Errorf("dnsserver: nameserver %q is not a domain name", n)
		}
		s.ns = append(s.ns, dns.Fqdn(strings.ToLower(n)))
	}
	if len(s.ns) == 0 {
		s.ns = []string{"ns." + s.zone}
	}
	hosts, err := nameservers(s.zone, s.ns, cfg.NSAddrs)
	if err != nil {
		return nil, err
	}
	s.hosts, s.rrl = hosts, newRRL(cfg.RRL)
	if cfg.DNSSEC != nil {
		if cfg.DNSSEC.Zone() != s.zone {
			return nil, fmt.Errorf("dnsserver: DNSSEC signer is for %s, not %s", cfg.DNSSEC.Zone(), s.zone)
		}
		s.signer, s.denials = cfg.DNSSEC, dnssec.NewCaches(maxDenialCache)
		s.hostSigs = map[string]*hostSigs{}
		for name := range hosts {
			s.hostSigs[name] = &hostSigs{}
		}
	}
	s.mbox = soaMbox(cfg.SOAEmail, s.zone)
	return s, nil
}

// soaMbox turns a contact address into the SOA RNAME form (RFC 1035 §3.3.13):
// the local part becomes the first label, its own dots escaped.
func soaMbox(email, zone string) string {
	email = strings.TrimSpace(email)
	if email == "" {
		return "hostmaster." + zone
	}
	if local, domain, ok := strings.Cut(email, "@"); ok {
		return strings.ReplaceAll(local, ".", `\.`) + "." + dns.Fqdn(domain)
	}
	return dns.Fqdn(email)
}

// Start listens on addr ("host:port"; port 0 picks a free one, the same for
// UDP and TCP) and serves in the background until Shutdown. It waits up to
// firstLoadWait for the zone's records, so that a node starting beside a
// working database does not answer its first queries SERVFAIL.
func (s *Server) Start(addr string) error {
	pc, ln, err := ListenBoth(addr)
	if err != nil {
		return err
	}
	follow, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.zoneCopy.follow(follow, s.cfg.Store, s) }()
	keysDone := make(chan struct{})
	go func() { defer close(keysDone); s.reloadKeys(follow) }()
	s.mu.Lock()
	s.stopFollow = func() { cancel(); <-done; <-keysDone }
	s.mu.Unlock()
	select {
	case <-s.zoneCopy.loaded:
	case <-time.After(firstLoadWait):
		s.log.Warn("dns zone not loaded yet; answering SERVFAIL below the apex until it is", "zone", s.zone)
	}
	capped := capConns(ln, maxTCPConns)
	servers := []*dns.Server{
		{PacketConn: pc, Handler: s, MsgAcceptFunc: acceptMsg, WriteTimeout: 2 * time.Second},
		{Listener: capped, Handler: s, MsgAcceptFunc: acceptMsg, ReadTimeout: tcpReadTimeout, WriteTimeout: 2 * time.Second,
			IdleTimeout: func() time.Duration { return tcpIdleTimeout }},
	}
	s.mu.Lock()
	s.servers, s.addr, s.tcp = servers, pc.LocalAddr().String(), capped
	s.mu.Unlock()
	for _, srv := range servers {
		started, failed := make(chan struct{}), make(chan error, 1)
		srv.NotifyStartedFunc = func() { close(started) }
		go func() {
			if err := srv.ActivateAndServe(); err != nil {
				s.log.Error("dns server stopped", "addr", s.addr, "err", err)
				failed <- err
			}
		}()
		select {
		case <-started:
		case err := <-failed:
			s.Shutdown(context.Background())
			return fmt.Errorf("dnsserver: serve %s: %w", s.addr, err)
		}
	}
	s.log.Info("dns server listening", "addr", s.addr, "zone", s.zone)
	return nil
}

// firstLoadWait bounds how long Start waits for the zone's records (a
// variable for tests of a store that never answers).
var firstLoadWait = 5 * time.Second

// ListenBoth binds UDP and TCP on one port, as a DNS server needs. With
// port 0 the kernel picks the UDP port, which may be taken for TCP; a few
// tries find a free pair. The test DNS servers bind with it too.
func ListenBoth(addr string) (net.PacketConn, net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("dnsserver: address %q: %w", addr, err)
	}
	for try := 0; ; try++ {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("dnsserver: listen udp %s: %w", addr, err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		if port != "0" || try >= 10 {
			return nil, nil, fmt.Errorf("dnsserver: listen tcp %s: %w", net.JoinHostPort(host, port), err)
		}
	}
}

// Addr is the "host:port" the server listens on (UDP and TCP), once started.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Shutdown stops both listeners and waits for queries in flight.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	servers, stop := s.servers, s.stopFollow
	s.servers, s.stopFollow = nil, nil
	s.mu.Unlock()
	var errs []error
	for _, srv := range servers {
		errs = append(errs, srv.ShutdownContext(ctx))
	}
	if stop != nil {
		stop()
	}
	return errors.Join(errs...)
}

// ListenAndServe serves on addr until ctx ends, then shuts down (giving
// queries in flight up to 5s).
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	if err := s.Start(addr); err != nil {
		return err
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.Shutdown(sctx)
}
