package acme_test

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base32"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/acme"
	"github.com/dcvaas/dcvaas/acme/acmetest"
	"github.com/dcvaas/dcvaas/crypt"
	"github.com/dcvaas/dcvaas/dnsserver"
	"github.com/dcvaas/dcvaas/resolve"
	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/dcvaas/dcvaas/sqlstore/storetest"
)

const zone = "verify.dcvaas.test"

// env is one test's world: a fresh database, dcvaas's DNS server for the
// verify zone reading it, the customers' DNS, the resolver in front of
// both, and a keyring.
type env struct {
	t        *testing.T
	ctx      context.Context
	db       *sqlstore.DB
	dns      *acmetest.DNS
	verify   *dnsserver.Server
	keyring  *crypt.Keyring
	resolver *resolve.Resolver
	actor    dcvaas.Actor
	cas      map[string]*acmetest.CA
}

func forEachDialect(t *testing.T, fn func(t *testing.T, e *env)) {
	for _, d := range storetest.Dialects(t) {
		t.Run(string(d), func(t *testing.T) { fn(t, setup(t, d)) })
	}
}

func setup(t *testing.T, dialect sqlstore.Dialect) *env {
	t.Helper()
	ctx := context.Background()
	db := storetest.NewDB(t, dialect)
	verify, err := dnsserver.New(dnsserver.Config{Zone: zone, Store: db})
	if err != nil {
		t.Fatal(err)
	}
	if err := verify.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { verify.Shutdown(context.Background()) })
	world := acmetest.NewDNS(t, zone, verify.Addr())
	res, err := resolve.New([]string{world.ResolverAddr})
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, crypt.KeySize)
	rand.Read(key)
	kr, err := crypt.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	org, _, err := db.Bootstrap(ctx, "Acme "+label(4), "owner@acme.test", &dcvaas.Token{Name: "t", Prefix: "dcv_t", Hash: "h-" + label(8), Role: dcvaas.TokenAdmin})
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, ctx: ctx, db: db, dns: world, verify: verify, keyring: kr, resolver: res,
		actor: dcvaas.SystemActor(org.ID), cas: map[string]*acmetest.CA{}}
}

func label(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// newCA starts a Pebble known by name; "zerossl" requires EAB, as ZeroSSL
// does. Its CAA identity is "<name>.test".
func (e *env) newCA(name string) *acmetest.CA {
	ca := acmetest.NewCA(e.t, acmetest.Options{Resolver: e.dns.ResolverAddr, RequireEAB: name == "zerossl"})
	e.cas[name] = ca
	return ca
}

// caConfig is the acme.CA for a started Pebble.
func (e *env) caConfig(name string) acme.CA {
	ca := e.cas[name]
	return acme.CA{Name: name, Directory: ca.DirectoryURL, EABKeyID: ca.EABKeyID, EABHMAC: ca.EABHMAC,
		CAAIdentities: []string{name + ".test"}}
}

// issuer builds an Issuer over the named CAs, in order.
func (e *env) issuer(names []string, tune ...func(*acme.Config)) *acme.Issuer {
	e.t.Helper()
	cfg := acme.Config{Email: "ops@dcvaas.test", Store: e.db, Keyring: e.keyring,
		Publisher: acme.DBPublisher{Store: e.db}, Resolver: e.resolver, HTTPTimeout: 5 * time.Second, PollTimeout: 30 * time.Second}
	for _, n := range names {
		cfg.CAs = append(cfg.CAs, e.caConfig(n))
		cfg.CABundlePEM = append(cfg.CABundlePEM, e.cas[n].TLSRootsPEM...)
	}
	for _, f := range tune {
		f(&cfg)
	}
	is, err := acme.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return is
}

// domain creates a domain in state issuing whose customer has delegated
// _acme-challenge to its target.
func (e *env) domain(wildcard bool, keyType string) *dcvaas.Domain {
	e.t.Helper()
	return e.domainUnder("shop.test", wildcard, keyType)
}

// domainUnder is domain with a name below parent.
func (e *env) domainUnder(parent string, wildcard bool, keyType string) *dcvaas.Domain {
	e.t.Helper()
	if keyType == "" {
		// As the API stores it: the database refuses a domain without one.
		keyType = "ec256"
	}
	d := &dcvaas.Domain{Name: "d" + label(5) + "." + parent, CNAMETarget: label(10) + "." + zone, IncludeWildcard: wildcard, KeyType: keyType}
	if _, err := e.db.CreateDomain(e.ctx, e.actor, d); err != nil {
		e.t.Fatal(err)
	}
	tx, err := e.db.SQL().BeginTx(e.ctx, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	d.Status = dcvaas.DomainIssuing
	if err := e.db.SaveDomainState(e.ctx, tx, d, "", nil); err != nil {
		e.t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		e.t.Fatal(err)
	}
	e.dns.Delegate(d.Name, d.CNAMETarget)
	return d
}

// reload reads the domain as the jobs engine would hand it over.
func (e *env) reload(d *dcvaas.Domain) *dcvaas.Domain {
	e.t.Helper()
	got, err := e.db.FindDomain(e.ctx, d.OrgID, d.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	return got
}

func (e *env) cert(d *dcvaas.Domain) *dcvaas.Certificate {
	e.t.Helper()
	c, err := e.db.CurrentCertificate(e.ctx, d.OrgID, d.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// verifyChain checks the stored chain against the CA's roots for names.
func (e *env) verifyChain(c *dcvaas.Certificate, ca *acmetest.CA, names ...string) *x509.Certificate {
	e.t.Helper()
	certs := parsePEM(e.t, c.ChainPEM)
	inter := x509.NewCertPool()
	for _, ic := range certs[1:] {
		inter.AddCert(ic)
	}
	leaf := certs[0]
	for _, n := range names {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: n, Roots: ca.Roots(), Intermediates: inter}); err != nil {
			e.t.Fatalf("chain does not verify for %s: %v", n, err)
		}
	}
	return leaf
}

// txtLeft returns the TXT values still published for d.
func (e *env) txtLeft(d *dcvaas.Domain) []string {
	e.t.Helper()
	v, err := e.db.ChallengeTXT(e.ctx, d.CNAMETarget)
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

func (e *env) audit(action string) []*dcvaas.AuditEntry {
	e.t.Helper()
	list, _, err := e.db.ListAudit(e.ctx, e.actor.OrgID, dcvaas.AuditFilter{Action: action, Page: dcvaas.Page{Limit: 100}})
	if err != nil {
		e.t.Fatal(err)
	}
	return list
}

// hookPublisher lets a test act when a value is published.
type hookPublisher struct {
	acme.DBPublisher
	mu        sync.Mutex
	onPublish func(name, key, value string) string // returns the value to publish
}

func (p *hookPublisher) PublishTXT(ctx context.Context, name, key, value string) error {
	p.mu.Lock()
	f := p.onPublish
	p.mu.Unlock()
	if f != nil {
		value = f(name, key, value)
	}
	return p.DBPublisher.PublishTXT(ctx, name, key, value)
}
