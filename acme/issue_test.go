package acme_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"slices"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/acme"
)

func parsePEM(t *testing.T, s string) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	rest := []byte(s)
	for {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	if len(out) < 2 {
		t.Fatalf("chain has %d certificates, want leaf and intermediate", len(out))
	}
	return out
}

// The heart of the product: apex + wildcard through the customer's CNAME,
// validated by Pebble reading dcvaas's own DNS server.
func TestIssueApexAndWildcard(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ca := e.newCA("letsencrypt")
		is := e.issuer([]string{"letsencrypt"})
		d := e.domain(true, "")
		res, err := is.Obtain(e.ctx, d, false)
		if err != nil {
			t.Fatal(err)
		}
		c := e.cert(d)
		leaf := e.verifyChain(c, ca, d.Name, "www."+d.Name)
		if !slices.Equal(c.DNSNames, []string{d.Name, "*." + d.Name}) && !slices.Equal(c.DNSNames, []string{"*." + d.Name, d.Name}) {
			t.Fatalf("SANs = %v", c.DNSNames)
		}
		if res.Outcome != "issued" || res.CertificateID != c.ID || res.CAName != "letsencrypt" || c.OrderURL == "" || res.OrderURL != c.OrderURL {
			t.Fatalf("result = %+v, cert = %+v", res, c)
		}
		// Dates and serial come from the certificate itself.
		if !c.NotAfter.Equal(leaf.NotAfter.UTC()) || !c.NotBefore.Equal(leaf.NotBefore.UTC()) || c.SerialNumber != leaf.SerialNumber.Text(16) || c.Issuer == "" {
			t.Fatalf("stored %+v vs leaf %v %v %v", c, leaf.NotBefore, leaf.NotAfter, leaf.SerialNumber)
		}
		// The key is sealed, opens with the certificate id, is P-256 and
		// belongs to the leaf.
		raw, err := e.keyring.Decrypt(c.PrivateKeyEnc, acme.CertificateKeyAD(c.ID))
		if err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(raw)
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		ek, ok := k.(*ecdsa.PrivateKey)
		if !ok || ek.Curve != elliptic.P256() || !ek.PublicKey.Equal(leaf.PublicKey) {
			t.Fatalf("key %T does not match the leaf", k)
		}
		got := e.reload(d)
		if got.Status != dcvaas.DomainActive || got.LastError != "" || got.ExpiresAt == nil || !got.ExpiresAt.Equal(c.NotAfter) || got.LastIssuedAt == nil {
			t.Fatalf("domain = %+v", got)
		}
		if left := e.txtLeft(d); len(left) != 0 {
			t.Fatalf("TXT values left behind: %v", left)
		}
		if a := e.audit("certificate.issued"); len(a) != 1 || a[0].EntityID != d.ID || a[0].Details["serialNumber"] != c.SerialNumber {
			t.Fatalf("audit = %+v", a)
		}
		if _, err := e.db.FindPendingOrder(e.ctx, d.ID); dcvaas.ErrorCode(err) != dcvaas.ENOTFOUND {
			t.Fatalf("pending order kept: %v", err)
		}

		// Running the job again is success without a new order.
		before := len(ca.NewOrders())
		again, err := is.Obtain(e.ctx, got, false)
		if err != nil || again.Outcome != "already_active" || again.CertificateID != c.ID || len(ca.NewOrders()) != before {
			t.Fatalf("second run: %+v %v (%d orders)", again, err, len(ca.NewOrders()))
		}
	})
}

// One account per CA, stored sealed, reused by a restarted process.
func TestAccountReused(t *testing.T) {
	e := setup(t, "sqlite")
	e.newCA("letsencrypt")
	first := e.issuer([]string{"letsencrypt"})
	if _, err := first.Obtain(e.ctx, e.domain(true, ""), false); err != nil {
		t.Fatal(err)
	}
	acct, err := e.db.FindACMEAccount(e.ctx, "letsencrypt", e.cas["letsencrypt"].DirectoryURL)
	if err != nil || acct.AccountURL == "" || acct.KeyEnc == "" {
		t.Fatalf("account = %+v, %v", acct, err)
	}
	restarted := e.issuer([]string{"letsencrypt"})
	if _, err := restarted.Obtain(e.ctx, e.domain(false, ""), false); err != nil {
		t.Fatal(err)
	}
	again, err := e.db.FindACMEAccount(e.ctx, "letsencrypt", e.cas["letsencrypt"].DirectoryURL)
	if err != nil || again.AccountURL != acct.AccountURL || again.KeyEnc != acct.KeyEnc {
		t.Fatalf("account changed: %+v → %+v", acct, again)
	}
}

// Every key type of the API, and a domain without its wildcard.
func TestKeyTypes(t *testing.T) {
	e := setup(t, "sqlite")
	ca := e.newCA("letsencrypt")
	is := e.issuer([]string{"letsencrypt"})
	for _, tc := range []struct {
		keyType string
		check   func(any) bool
	}{
		{dcvaas.KeyEC384, func(k any) bool { p, ok := k.(*ecdsa.PublicKey); return ok && p.Curve == elliptic.P384() }},
		{dcvaas.KeyRSA2048, func(k any) bool { p, ok := k.(*rsa.PublicKey); return ok && p.N.BitLen() == 2048 }},
		{dcvaas.KeyRSA4096, func(k any) bool { p, ok := k.(*rsa.PublicKey); return ok && p.N.BitLen() == 4096 }},
	} {
		t.Run(tc.keyType, func(t *testing.T) {
			d := e.domain(false, tc.keyType)
			if _, err := is.Obtain(e.ctx, d, false); err != nil {
				t.Fatal(err)
			}
			c := e.cert(d)
			leaf := e.verifyChain(c, ca, d.Name)
			if !tc.check(leaf.PublicKey) || !slices.Equal(c.DNSNames, []string{d.Name}) {
				t.Fatalf("key %T, names %v", leaf.PublicKey, c.DNSNames)
			}
		})
	}
	// The database refuses such a domain (CHECK); the issuer refuses one
	// that reaches it anyway.
	bad := e.domain(false, "")
	bad.KeyType = "dsa1024"
	_, err := is.Obtain(e.ctx, bad, false)
	if dcvaas.ErrorCode(err) != dcvaas.EINVALID {
		t.Fatalf("unknown key type: %v", err)
	}
}

// A profile is requested as configured, and the stored dates follow the
// certificate (a 6-day one here), never an assumed 90 days.
func TestProfile(t *testing.T) {
	e := setup(t, "sqlite")
	ca := e.newCA("letsencrypt")
	is := e.issuer([]string{"letsencrypt"}, func(c *acme.Config) { c.CAs[0].Profile = "shortlived" })
	d := e.domain(true, "")
	if _, err := is.Obtain(e.ctx, d, false); err != nil {
		t.Fatal(err)
	}
	c := e.cert(d)
	if life := c.NotAfter.Sub(c.NotBefore); life > 7*24*time.Hour || life < 5*24*time.Hour {
		t.Fatalf("lifetime %s, want 6 days", life)
	}
	if o := ca.NewOrders(); len(o) != 1 || o[0].Profile != "shortlived" {
		t.Fatalf("orders = %+v", o)
	}
}

// Values whose job died for good are swept by the next issuance.
func TestPurgeStaleValues(t *testing.T) {
	e := setup(t, "sqlite")
	e.newCA("letsencrypt")
	if err := e.db.PutChallengeTXT(e.ctx, "orphan."+zone, "authz", "v"); err != nil {
		t.Fatal(err)
	}
	later := func() time.Time { return time.Now().Add(2 * time.Hour) }
	is := e.issuer([]string{"letsencrypt"}, func(c *acme.Config) { c.Clock = later })
	if _, err := is.Obtain(e.ctx, e.domain(false, ""), false); err != nil {
		t.Fatal(err)
	}
	if v, _ := e.db.ChallengeTXT(e.ctx, "orphan."+zone); len(v) != 0 {
		t.Fatalf("stale value kept: %v", v)
	}
}

// The jobs engine's hook (jobs.Issuer), restated here so this package's
// tests do not depend on the engine's.
var _ interface {
	Issue(context.Context, *dcvaas.Domain, bool) (any, error)
} = (*acme.Issuer)(nil)
