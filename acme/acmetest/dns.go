// Package acmetest runs the world an ACME issuance talks to, in-process and
// on loopback only: Pebble (Let's Encrypt's test CA) as one or more CAs,
// challtestsrv as the customers' DNS, and a small recursive resolver that
// joins the customers' zones to dcvaas's verify zone the way the internet's
// delegation does.
//
// The topology of DNS in a test:
//
//	Pebble VA, dcvaas resolvers ──► Resolver (acmetest, recursive)
//	      _acme-challenge.shop.test CNAME k7….verify.test   ◄── challtestsrv (customers' zones)
//	      k7….verify.test TXT "…"                          ◄── dcvaas's dnsserver (verify zone)
//
// The resolver asks challtestsrv about customer names; when an answer ends
// in a CNAME into the verify zone it asks the verify zone's server there,
// and returns the whole chain in one response, as a recursive resolver
// does. So a validation really reads the TXT values from dcvaas's own
// authoritative server, through the customer's CNAME.
//
// An end-to-end test wires it up like this (see acme's env_test.go):
//
//	verify, _ := dnsserver.New(dnsserver.Config{Zone: zone, Store: db})
//	verify.Start("127.0.0.1:0")
//	world := acmetest.NewDNS(t, zone, verify.Addr())
//	le := acmetest.NewCA(t, acmetest.Options{Resolver: world.ResolverAddr})
//	zs := acmetest.NewCA(t, acmetest.Options{Resolver: world.ResolverAddr, RequireEAB: true})
//	world.Delegate("shop.test", d.CNAMETarget)  // the customer's CNAME
//	// DCVAAS_RESOLVERS = world.ResolverAddr,
//	// DCVAAS_ACME_<NAME>_DIRECTORY = le.DirectoryURL (zs: also EAB_KID/EAB_HMAC),
//	// DCVAAS_ACME_CA_BUNDLE = le.TLSRootsPEM + zs.TLSRootsPEM.
//	le.SetFault(acmetest.Fault{Mode: acmetest.FaultRateLimited, RetryAfter: time.Hour})
package acmetest

import (
	"fmt"
	"io"
	"log"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/letsencrypt/challtestsrv"
	"github.com/miekg/dns"

	"github.com/dcvaas/dcvaas/sandbox"
)

// challtestsrv registers its handler on miekg/dns's process-wide ServeMux,
// so a second instance in one process would steal the first one's queries:
// there is one, shared by every test, and tests keep apart by using names
// of their own.
var customer struct {
	once sync.Once
	srv  *challtestsrv.ChallSrv
	addr string
	err  error
}

// CustomerDNS returns the process's challtestsrv (started on first use) and
// its "127.0.0.1:port" address.
func CustomerDNS(t testing.TB) (*challtestsrv.ChallSrv, string) {
	t.Helper()
	customer.once.Do(func() {
		customer.addr, customer.err = freeUDPTCPPort()
		if customer.err != nil {
			return
		}
		customer.srv, customer.err = challtestsrv.New(challtestsrv.Config{
			DNSAddrs: []string{customer.addr},
			Log:      log.New(io.Discard, "", 0),
		})
		if customer.err != nil {
			return
		}
		customer.srv.Run()
		customer.err = waitForDNS(customer.addr)
	})
	if customer.err != nil {
		t.Fatalf("customers' DNS (challtestsrv): %v", customer.err)
	}
	return customer.srv, customer.addr
}

// freeUDPTCPPort finds a loopback port free for both UDP and TCP, for
// servers that only take an address to listen on.
func freeUDPTCPPort() (string, error) {
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		addr := pc.LocalAddr().String()
		ln, err := net.Listen("tcp", addr)
		pc.Close()
		if err == nil {
			ln.Close()
			return addr, nil
		}
	}
	return "", fmt.Errorf("no loopback port free for both UDP and TCP")
}

// waitForDNS waits until a DNS server answers on addr over UDP and TCP.
func waitForDNS(addr string) error {
	deadline := time.Now().Add(5 * time.Second)
	for _, network := range []string{"udp", "tcp"} {
		for {
			m := new(dns.Msg)
			m.SetQuestion("ready.invalid.", dns.TypeA)
			c := &dns.Client{Net: network, Timeout: 200 * time.Millisecond}
			if _, _, err := c.Exchange(m, addr); err == nil {
				break
			} else if time.Now().After(deadline) {
				return fmt.Errorf("%s %s does not answer: %w", network, addr, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

// DNS is the DNS world of one test: the customers' zones (challtestsrv),
// the verify zone (a server the test started, normally dcvaas's dnsserver)
// and the recursive resolver in front of both.
type DNS struct {
	// Customer is the shared challtestsrv; use names unique to the test.
	Customer *challtestsrv.ChallSrv
	// ResolverAddr is the recursive resolver's "127.0.0.1:port" (UDP and
	// TCP): what Pebble's VA and dcvaas's resolvers ask.
	ResolverAddr string
	resolver     *sandbox.Resolver
	verifyZone   string
}

// NewDNS starts the resolver for a test: names in verifyZone are asked of
// verifyAddr, everything else of the customers' challtestsrv.
func NewDNS(t testing.TB, verifyZone, verifyAddr string) *DNS {
	t.Helper()
	srv, addr := CustomerDNS(t)
	r, err := sandbox.StartResolver(map[string]string{verifyZone: verifyAddr}, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return &DNS{Customer: srv, ResolverAddr: r.Addr, resolver: r, verifyZone: verifyZone}
}

// SetVerifyAddr sends the verify zone's questions to addr from now on: the
// DNS server of a dcvaas that chose its port when it started.
func (d *DNS) SetVerifyAddr(addr string) { d.resolver.SetServer(d.verifyZone, addr) }

// Delegate creates the customer's one record: _acme-challenge.<domain>
// CNAME <target>.
func (d *DNS) Delegate(domain, target string) {
	d.Customer.AddDNSCNAMERecord("_acme-challenge."+dns.Fqdn(domain), dns.Fqdn(target))
}

// Undelegate removes the customer's CNAME.
func (d *DNS) Undelegate(domain string) {
	d.Customer.DeleteDNSCNAMERecord("_acme-challenge." + dns.Fqdn(domain))
}

// SetCAA replaces the CAA records at name, each "tag value" such as
// `issue letsencrypt.org` (flags 0; challtestsrv has no flags).
func (d *DNS) SetCAA(name string, records ...string) {
	d.Customer.DeleteDNSCAARecord(dns.Fqdn(name))
	var ps []challtestsrv.CAAPolicy
	for _, r := range records {
		tag, value, _ := strings.Cut(r, " ")
		ps = append(ps, challtestsrv.CAAPolicy{Tag: tag, Value: value})
	}
	d.Customer.AddDNSCAARecord(dns.Fqdn(name), ps)
}

// ClearCAA removes the CAA records at name.
func (d *DNS) ClearCAA(name string) { d.Customer.DeleteDNSCAARecord(dns.Fqdn(name)) }
