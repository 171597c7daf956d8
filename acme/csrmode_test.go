package acme_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"testing"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/acme"
	"github.com/dcvaas/dcvaas/cabudget"
	"github.com/dcvaas/dcvaas/csr"
)

// csrDomain is a csr-mode domain in state issuing, delegated.
func (e *env) csrDomain() *dcvaas.Domain {
	e.t.Helper()
	d := e.domain(true, "ec256")
	if _, err := e.db.SQL().Exec(`UPDATE domains SET key_mode = 'csr' WHERE id = $1`, d.ID); err != nil {
		e.t.Fatal(err)
	}
	return e.reload(d)
}

// submit stores a CSR for key as the API does (checked by csr.Check).
func (e *env) submit(d *dcvaas.Domain, key crypto.Signer) {
	e.t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: csr.Names(d.Name, d.IncludeWildcard)}, key)
	if err != nil {
		e.t.Fatal(err)
	}
	req, err := csr.Check(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), csr.Names(d.Name, d.IncludeWildcard), d.KeyType)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.db.SubmitCSR(e.ctx, e.actor, &dcvaas.DomainCSR{DomainID: d.ID, PEM: req.PEM, KeyType: req.KeyType, PublicKeySHA256: req.PublicKeySHA256}); err != nil {
		e.t.Fatal(err)
	}
}

// A csr-mode issuance waits (no attempt used) for a CSR; an order
// interrupted mid-way is resumed and finalized with the newest CSR (the
// key was rotated meanwhile); no key is sealed anywhere; the certificate
// carries the CSR's key.
func TestCSRModeResumeWithRotatedKey(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ca := e.newCA("letsencrypt")
		d := e.csrDomain()
		_, err := e.issuer([]string{"letsencrypt"}).Obtain(e.ctx, d, false)
		if w, ok := err.(*cabudget.Wait); !ok || len(ca.NewOrders()) != 0 {
			t.Fatalf("without a CSR: %v (%T), %d orders", err, err, len(ca.NewOrders()))
		} else if _, ok := acme.RetryAt(w); !ok {
			t.Fatal("the wait names no time")
		}

		k1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		e.submit(d, k1)
		ctx, cancel := context.WithCancel(e.ctx)
		defer cancel()
		pub := &hookPublisher{DBPublisher: acme.DBPublisher{Store: e.db}}
		pub.onPublish = func(_, _, v string) string { cancel(); return v }
		if _, err := e.issuer([]string{"letsencrypt"}, func(c *acme.Config) { c.Publisher = pub }).Obtain(ctx, d, false); err == nil {
			t.Fatal("interrupted issuance succeeded")
		}
		po, err := e.db.FindPendingOrder(e.ctx, d.ID)
		if err != nil || po.KeyEnc != "" || po.CSRPEM == "" {
			t.Fatalf("pending order of a csr-mode domain: %+v, %v", po, err)
		}

		k2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		e.submit(d, k2)
		res, err := e.issuer([]string{"letsencrypt"}).Obtain(e.ctx, e.reload(d), false)
		if err != nil || !res.ResumedOrder || len(ca.NewOrders()) != 1 {
			t.Fatalf("resume: %+v %v, %d orders", res, err, len(ca.NewOrders()))
		}
		c := e.cert(d)
		leaf := e.verifyChain(c, ca, d.Name, "a."+d.Name)
		if c.PrivateKeyEnc != "" {
			t.Fatal("a private key was stored for a csr-mode domain")
		}
		if !k2.PublicKey.Equal(leaf.PublicKey) {
			t.Fatal("the certificate does not carry the newest CSR's key")
		}
		// A renewal right away is not deduplicated away when the key
		// changed since: rotate, and the renewal orders with the new key.
		k3, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		e.submit(e.reload(d), k3)
		res, err = e.issuer([]string{"letsencrypt"}).Obtain(e.ctx, e.reload(d), true)
		if err != nil || res.Outcome != "renewed" {
			t.Fatalf("renewal after rotation: %+v %v", res, err)
		}
		if leaf := e.verifyChain(e.cert(d), ca, d.Name); !k3.PublicKey.Equal(leaf.PublicKey) {
			t.Fatal("the renewal does not carry the rotated key")
		}
	})
}
