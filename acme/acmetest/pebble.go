package acmetest

import (
	"net/http"
	"testing"

	"github.com/dcvaas/dcvaas/sandbox"
)

// Options configure one Pebble CA.
type Options struct {
	// Resolver is the "host:port" DNS resolver Pebble's VA validates
	// DNS-01 through (normally DNS.ResolverAddr). Required.
	Resolver string
	// RequireEAB makes the CA refuse accounts without External Account
	// Binding (RFC 8555 §7.3.4), as ZeroSSL does. A key id and HMAC key
	// are generated and put in CA.EABKeyID and CA.EABHMAC.
	RequireEAB bool
	// CAAIdentities are announced in the directory's meta (RFC 8555
	// §7.1.1); default "pebble.letsencrypt.org".
	CAAIdentities []string
	// Verbose sends Pebble's log to the test log.
	Verbose bool
}

// Profiles every test CA offers (draft-aaron-acme-profiles): "default"
// issues 90-day certificates, "shortlived" 6-day ones.
const (
	ProfileDefault    = sandbox.ProfileDefault
	ProfileShortLived = sandbox.ProfileShortLived
)

// CA is an in-process Pebble (sandbox.CA: DirectoryURL, TLSRootsPEM,
// EABKeyID, EABHMAC, RootsPEM, Roots, SetRenewalWindow) with faults a test
// can switch on.
type CA struct {
	*sandbox.CA
	front *front
}

// NewCA starts a Pebble CA that stops when the test ends.
func NewCA(t testing.TB, opts Options) *CA {
	t.Helper()
	if opts.Resolver == "" {
		t.Fatal("acmetest.NewCA: Options.Resolver is required")
	}
	c := &CA{}
	so := sandbox.CAOptions{
		Resolver:      opts.Resolver,
		RequireEAB:    opts.RequireEAB,
		CAAIdentities: opts.CAAIdentities,
		Wrap: func(h http.Handler) http.Handler {
			c.front = &front{next: h}
			return c.front
		},
	}
	if opts.Verbose {
		so.Log = logWriter{t}
	}
	var err error
	if c.CA, err = sandbox.StartCA(so); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

type logWriter struct{ t testing.TB }

func (w logWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// SetFault makes the CA misbehave from now on (FaultNone to heal).
func (c *CA) SetFault(f Fault) { c.front.set(f) }

// Requests returns how many HTTP requests reached the CA, faulty or not.
func (c *CA) Requests() int { return c.front.requests() }

// NewOrders returns the newOrder requests the CA received (accepted or
// not), oldest first.
func (c *CA) NewOrders() []NewOrder { return c.front.orders() }
