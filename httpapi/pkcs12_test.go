package httpapi_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas/acme"
	"github.com/dcvaas/dcvaas/crypt"
	"github.com/dcvaas/dcvaas/sqlstore"
	"software.sslmate.com/src/go-pkcs12"
)

// testPKI is a root, an intermediate it signed and a leaf for
// shop.example.com the intermediate signed, with the leaf's key.
type testPKI struct {
	leaf, inter *x509.Certificate
	key         *ecdsa.PrivateKey
	chainPEM    string // leaf then intermediate
	keyPEM      []byte // PKCS #8
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	now := time.Now()
	issue := func(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, signer *ecdsa.PrivateKey) *x509.Certificate {
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	rootKey, interKey, leafKey := newKey(), newKey(), newKey()
	ca := func(serial int64, name string) *x509.Certificate {
		return &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name}, NotBefore: now.Add(-time.Hour),
			NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	}
	root := issue(ca(1, "Test Root"), ca(1, "Test Root"), &rootKey.PublicKey, rootKey)
	inter := issue(ca(2, "Test Intermediate"), root, &interKey.PublicKey, rootKey)
	leaf := issue(&x509.Certificate{SerialNumber: big.NewInt(0x0a1b2c), Subject: pkix.Name{CommonName: "shop.example.com"},
		DNSNames: []string{"shop.example.com", "*.shop.example.com"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, inter, &leafKey.PublicKey, interKey)
	der, err := x509.MarshalPKCS8PrivateKey(leafKey)
	if err != nil {
		t.Fatal(err)
	}
	chain := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw})) +
		string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: inter.Raw}))
	return &testPKI{leaf: leaf, inter: inter, key: leafKey, chainPEM: chain,
		keyPEM: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})}
}

// TestCertificatePKCS12: the PKCS #12 download decodes, with the password
// sent, into the stored leaf, its key and its intermediate; it follows the
// key endpoint's rules (who may read, audit) and never repeats the
// password.
func TestCertificatePKCS12(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		key := make([]byte, crypt.KeySize)
		rand.Read(key)
		kr, err := crypt.NewKeyring(key)
		if err != nil {
			t.Fatal(err)
		}
		b := setup(t, dialect, options{keyring: kr})
		id := b.createDomain(b.a.admin, "shop.example.com")["id"].(string)
		path := "/api/domains/" + id + "/certificate/pkcs12"
		const password = "correct horse"
		body := map[string]any{"password": password}
		b.do("POST", path, b.a.admin, body).wantProblem(t, 404)

		pki := newTestPKI(t)
		b.addCertificate(b.a.org.ID, id)
		certID := "cert-" + id
		sealed, err := kr.Encrypt(pki.keyPEM, acme.CertificateKeyAD(certID))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.db.SQL().Exec(`UPDATE certificates SET chain_pem = $1, private_key_enc = $2 WHERE id = $3`, pki.chainPEM, sealed, certID); err != nil {
			t.Fatal(err)
		}

		// Who may not: read-only tokens, other organizations; a short
		// password, never echoed; an Accept that excludes the file.
		b.do("POST", path, b.a.read, body).wantProblem(t, 403)
		b.do("POST", path, b.b.admin, body).wantProblem(t, 404)
		short := b.do("POST", path, b.a.admin, map[string]any{"password": "s3cr!"})
		short.wantProblem(t, 422)
		if strings.Contains(string(short.body), "s3cr!") {
			t.Fatalf("the refusal repeats the password: %s", short.body)
		}
		b.do("POST", path, b.a.admin, body, "Accept", "application/json").wantProblem(t, 406)
		b.do("POST", path, b.a.admin, map[string]any{"password": password, "encryption": "rc4"}).wantProblem(t, 422)
		if n := len(keyReads(t, b)); n != 0 {
			t.Fatalf("%d key reads audited before any key was handed out", n)
		}

		for _, enc := range []string{"", "modern", "legacy"} {
			req := map[string]any{"password": password}
			if enc != "" {
				req["encryption"] = enc
			}
			r := b.do("POST", path, b.a.admin, req)
			if r.status != 200 {
				t.Log(b.logs.String())
			}
			r.want(t, 200)
			if ct, cc, cd := r.header.Get("Content-Type"), r.header.Get("Cache-Control"), r.header.Get("Content-Disposition"); ct != "application/x-pkcs12" ||
				cc != "no-store" || cd != `attachment; filename="shop.example.com.p12"` {
				t.Fatalf("%s: headers %q %q %q", enc, ct, cc, cd)
			}
			k, leaf, cas, err := pkcs12.DecodeChain(r.body, password)
			if err != nil {
				t.Fatalf("%s: decode: %v", enc, err)
			}
			if ek, ok := k.(*ecdsa.PrivateKey); !ok || !ek.Equal(pki.key) {
				t.Fatalf("%s: key %T is not the certificate's", enc, k)
			}
			if !leaf.Equal(pki.leaf) || len(cas) != 1 || !cas[0].Equal(pki.inter) {
				t.Fatalf("%s: leaf %v, chain %d certificates", enc, leaf.Subject, len(cas))
			}
			if _, _, _, err := pkcs12.DecodeChain(r.body, "wrong password"); err == nil {
				t.Fatalf("%s: decoded with a wrong password", enc)
			}
		}
		reads := keyReads(t, b)
		if len(reads) != 3 || reads[0].EntityID != id || reads[0].Details["certificateId"] != certID {
			t.Fatalf("audit = %+v", reads)
		}

		// Delivery tokens carry keys to servers, IIS's included.
		tok := b.deliveryToken(t, nil)
		r := b.do("POST", path, tok, body).want(t, 200)
		if _, leaf, _, err := pkcs12.DecodeChain(r.body, password); err != nil || !leaf.Equal(pki.leaf) {
			t.Fatalf("delivery token's file: %v", err)
		}
	})
}
