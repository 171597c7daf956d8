package sandbox

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
)

// CAOptions configure one Pebble CA.
type CAOptions struct {
	// Resolver is the "host:port" DNS resolver Pebble's VA validates
	// DNS-01 through. Required.
	Resolver string
	// RequireEAB makes the CA refuse accounts without External Account
	// Binding (RFC 8555 §7.3.4), as ZeroSSL does. A key id and HMAC key
	// are generated and put in CA.EABKeyID and CA.EABHMAC.
	RequireEAB bool
	// CAAIdentities are announced in the directory's meta (RFC 8555
	// §7.1.1); default "pebble.letsencrypt.org".
	CAAIdentities []string
	// Log receives Pebble's log; nil discards it.
	Log io.Writer
	// Wrap, when set, wraps the CA's HTTP handler (tests inject faults).
	Wrap func(http.Handler) http.Handler
}

// Profiles every sandbox CA offers (draft-aaron-acme-profiles): "default"
// issues 90-day certificates, "shortlived" 6-day ones.
const (
	ProfileDefault    = "default"
	ProfileShortLived = "shortlived"
)

// CA is an in-process Pebble served over HTTPS on a loopback port.
type CA struct {
	// DirectoryURL is the ACME directory (RFC 8555 §7.1.1).
	DirectoryURL string
	// TLSRootsPEM is the certificate of the HTTPS server: what an ACME
	// client must trust to talk to this CA (DCVAAS_ACME_CA_BUNDLE).
	TLSRootsPEM []byte
	// EABKeyID and EABHMAC (base64url) are the binding credentials when
	// the CA requires EAB.
	EABKeyID, EABHMAC string

	pca   *ca.CAImpl
	store *db.MemoryStore
	srv   *httptest.Server
}

// pebbleEnv tunes Pebble through the environment variables it reads when
// its parts are created: no random sleeps before validating
// (PEBBLE_VA_NOSLEEP), no deliberately rejected nonces, and no reuse of
// valid authorizations, so every order really validates through DNS.
// Variables already set by the caller win.
var pebbleEnv sync.Once

func setPebbleEnv() {
	pebbleEnv.Do(func() {
		for k, v := range map[string]string{
			"PEBBLE_VA_NOSLEEP":      "1",
			"PEBBLE_WFE_NONCEREJECT": "0",
			"PEBBLE_AUTHZREUSE":      "0",
		} {
			if _, ok := os.LookupEnv(k); !ok {
				os.Setenv(k, v)
			}
		}
	})
}

// StartCA starts a Pebble CA; Close stops it.
func StartCA(opts CAOptions) (*CA, error) {
	if opts.Resolver == "" {
		return nil, fmt.Errorf("sandbox.StartCA: CAOptions.Resolver is required")
	}
	setPebbleEnv()
	out := opts.Log
	if out == nil {
		out = io.Discard
	}
	logger := log.New(out, "pebble ", log.Lmicroseconds)
	store := db.NewMemoryStore()
	pca := ca.New(logger, store, "", "ecdsa", 0, 1, map[string]ca.Profile{
		ProfileDefault:    {Description: "90-day certificates"},
		ProfileShortLived: {Description: "6-day certificates", ValidityPeriod: uint64(6 * 24 * time.Hour / time.Second)},
	})
	pva := va.New(logger, 0, 0, false, opts.Resolver, store)
	c := &CA{pca: pca, store: store}
	if opts.RequireEAB {
		key := make([]byte, 32)
		rand.Read(key)
		c.EABKeyID, c.EABHMAC = "kid-"+base64.RawURLEncoding.EncodeToString(key[:6]), base64.RawURLEncoding.EncodeToString(key)
		if err := store.AddExternalAccountKeyByID(c.EABKeyID, c.EABHMAC); err != nil {
			return nil, err
		}
	}
	ids := opts.CAAIdentities
	if len(ids) == 0 {
		ids = []string{"pebble.letsencrypt.org"}
	}
	w := wfe.New(logger, store, pva, pca, ids, false, opts.RequireEAB, 0, 0)
	var h http.Handler = &deadlockGuard{next: w.Handler()}
	if opts.Wrap != nil {
		h = opts.Wrap(h)
	}
	c.srv = httptest.NewTLSServer(h)
	c.DirectoryURL = c.srv.URL + wfe.DirectoryPath
	c.TLSRootsPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.srv.Certificate().Raw})
	return c, nil
}

// Close stops the CA's HTTPS server.
func (c *CA) Close() { c.srv.Close() }

// RootsPEM returns the CA's root certificate(s), the trust anchors issued
// chains verify to.
func (c *CA) RootsPEM() []byte {
	var out []byte
	for i := range c.pca.GetNumberOfRootCerts() {
		out = append(out, c.pca.GetRootCert(i).PEM()...)
	}
	return out
}

// Roots returns RootsPEM as a pool for x509.VerifyOptions.
func (c *CA) Roots() *x509.CertPool {
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(c.RootsPEM())
	return p
}

// SetRenewalWindow makes the CA's ARI (RFC 9773 §4.2) suggest renewing the
// certificate (leaf PEM) between start and end.
func (c *CA) SetRenewalWindow(leafPEM []byte, start, end time.Time) error {
	block, _ := pem.Decode(leafPEM)
	if block == nil {
		return fmt.Errorf("no PEM certificate")
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(map[string]any{"suggestedWindow": map[string]time.Time{"start": start, "end": end}})
	if err != nil {
		return err
	}
	return c.store.SetARIResponse(leaf.SerialNumber, string(raw))
}

// Pebble's newOrder endpoint and prefix of authorization URLs
// (wfe.newOrderPath and wfe.authzPath, unexported).
const (
	NewOrderPath = "/order-plz"
	authzPath    = "/authZ/"
)

// deadlockGuard works around a Pebble (v2.10.1) deadlock under concurrent
// load: newOrder holds its store's read lock while it waits for an
// authorization's lock (FindValidAuthorization), and a GET of that
// authorization holds the authorization's lock while it waits for the
// store's read lock, which a writer queued in between (AddChallenge of a
// third order) keeps it from getting. Never letting the two run at once
// breaks the cycle.
type deadlockGuard struct {
	next http.Handler
	mu   sync.RWMutex
}

func (g *deadlockGuard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodPost && r.URL.Path == NewOrderPath:
		g.mu.Lock()
		defer g.mu.Unlock()
	case strings.HasPrefix(r.URL.Path, authzPath):
		g.mu.RLock()
		defer g.mu.RUnlock()
	}
	g.next.ServeHTTP(w, r)
}
