package csr_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/dcvaas/dcvaas/csr"
)

var (
	keysOnce sync.Once
	ec256    *ecdsa.PrivateKey
	ec384    *ecdsa.PrivateKey
	ec224    *ecdsa.PrivateKey
	rsa1024  *rsa.PrivateKey
	rsa2048  *rsa.PrivateKey
	edKey    ed25519.PrivateKey
)

func keys(t testing.TB) {
	t.Helper()
	keysOnce.Do(func() {
		ec256, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		ec384, _ = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		ec224, _ = ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
		rsa1024, _ = rsa.GenerateKey(rand.Reader, 1024)
		rsa2048, _ = rsa.GenerateKey(rand.Reader, 2048)
		_, edKey, _ = ed25519.GenerateKey(rand.Reader)
	})
}

func makeCSR(t testing.TB, key crypto.Signer, tmpl *x509.CertificateRequest) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func names(ns ...string) *x509.CertificateRequest { return &x509.CertificateRequest{DNSNames: ns} }

func TestCheck(t *testing.T) {
	keys(t)
	want := csr.Names("shop.example.com", true)
	good := makeCSR(t, ec256, names("shop.example.com", "*.shop.example.com"))
	// A signature that no longer matches: flip a byte of the signature.
	der, _ := pem.Decode(good)
	bad := slices.Clone(der.Bytes)
	bad[len(bad)-3] ^= 0xff
	tampered := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: bad})
	keyPEM, _ := x509.MarshalPKCS8PrivateKey(ec256)

	for _, tc := range []struct {
		name    string
		pem     []byte
		keyType string
		want    []string
		reason  string // "" means accepted
	}{
		{"apex and wildcard", good, "ec256", want, ""},
		{"upper case and CN", makeCSR(t, ec256, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "SHOP.example.com"}, DNSNames: []string{"*.shop.example.com", "shop.example.com."}}), "ec256", want, ""},
		{"apex only", makeCSR(t, ec256, names("shop.example.com")), "ec256", csr.Names("shop.example.com", false), ""},
		{"ec384", makeCSR(t, ec384, names("shop.example.com", "*.shop.example.com")), "ec384", want, ""},
		{"rsa2048", makeCSR(t, rsa2048, names("shop.example.com", "*.shop.example.com")), "rsa2048", want, ""},
		{"missing wildcard", makeCSR(t, ec256, names("shop.example.com")), "ec256", want, "lacks *.shop.example.com"},
		{"another name", makeCSR(t, ec256, names("shop.example.com", "*.shop.example.com", "evil.example.net")), "ec256", want, `names "evil.example.net"`},
		{"another name only", makeCSR(t, ec256, names("other.example.com")), "ec256", csr.Names("shop.example.com", false), "lacks shop.example.com"},
		{"CN of another name", makeCSR(t, ec256, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "x.example.org"}, DNSNames: want}), "ec256", want, `"x.example.org"`},
		{"IP address", makeCSR(t, ec256, &x509.CertificateRequest{DNSNames: want, IPAddresses: []net.IP{net.IPv4(10, 0, 0, 1)}}), "ec256", want, "DNS names only"},
		{"rsa 1024", makeCSR(t, rsa1024, names(want...)), "rsa2048", want, "1024 bits is too weak"},
		{"rsa key for ec256 domain", makeCSR(t, rsa2048, names(want...)), "ec256", want, "keyType is ec256, which does not allow a rsa2048 key"},
		{"ec256 key for rsa4096 domain", good, "rsa4096", want, "does not allow a ec256 key"},
		{"P-224", makeCSR(t, ec224, names(want...)), "ec256", want, "curve P-224"},
		{"ed25519", makeCSR(t, edKey, names(want...)), "ec256", want, "Ed25519"},
		{"broken PEM", []byte("-----BEGIN CERTIFICATE REQUEST-----\nnot base64!\n-----END CERTIFICATE REQUEST-----\n"), "ec256", want, "no PEM block"},
		{"not PEM", []byte("hello"), "ec256", want, "no PEM block"},
		{"garbage DER", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: []byte{0x30, 0x03, 1, 2, 3}}), "ec256", want, "cannot be parsed"},
		{"bad signature", tampered, "ec256", want, "signature"},
		{"private key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyPEM}), "ec256", want, "private key"},
		{"two blocks", append(slices.Clone(good), good...), "ec256", want, "more than one"},
		{"too long", append(slices.Clone(good), strings.Repeat(" ", csr.MaxPEM)...), "ec256", want, "longer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := csr.Check(tc.pem, tc.want, tc.keyType)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if req.PublicKeySHA256 == "" || !strings.HasPrefix(req.PEM, "-----BEGIN CERTIFICATE REQUEST-----") {
					t.Fatalf("request: %+v", req)
				}
				return
			}
			var ce *csr.Error
			if !errors.As(err, &ce) {
				t.Fatalf("want a *csr.Error with %q, got %v", tc.reason, err)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("want %q in %v", tc.reason, err)
			}
		})
	}
}

func TestSameKeySameFingerprint(t *testing.T) {
	keys(t)
	want := csr.Names("a.example", false)
	a, err := csr.Check(makeCSR(t, ec256, names("a.example")), want, "ec256")
	if err != nil {
		t.Fatal(err)
	}
	b, err := csr.Check(makeCSR(t, ec256, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "a.example"}}), want, "ec256")
	if err != nil {
		t.Fatal(err)
	}
	c, err := csr.Check(makeCSR(t, ec384, names("a.example")), want, "ec384")
	if err != nil {
		t.Fatal(err)
	}
	if a.PublicKeySHA256 != b.PublicKeySHA256 || a.PublicKeySHA256 == c.PublicKeySHA256 {
		t.Fatalf("fingerprints: %s %s %s", a.PublicKeySHA256, b.PublicKeySHA256, c.PublicKeySHA256)
	}
}

// FuzzCSR feeds arbitrary PEM text to Check. It must never panic, and
// whatever it accepts must be a CSR with a valid signature, an accepted
// key, and exactly the wanted names.
func FuzzCSR(f *testing.F) {
	keys(f)
	f.Add(makeCSR(f, ec256, names("shop.example.com", "*.shop.example.com")), true, "ec256")
	f.Add(makeCSR(f, rsa2048, names("shop.example.com")), false, "rsa2048")
	f.Add(makeCSR(f, rsa1024, names("shop.example.com")), false, "rsa2048")
	f.Add([]byte("-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n"), true, "ec256")
	f.Fuzz(func(t *testing.T, p []byte, wildcard bool, keyType string) {
		want := csr.Names("shop.example.com", wildcard)
		req, err := csr.Check(p, want, keyType)
		if err != nil {
			var ce *csr.Error
			if !errors.As(err, &ce) || len(ce.Reasons) == 0 {
				t.Fatalf("error is not a *csr.Error with reasons: %v", err)
			}
			return
		}
		if err := req.CSR.CheckSignature(); err != nil {
			t.Fatalf("accepted a CSR with a bad signature: %v", err)
		}
		kt, err := csr.KeyTypeOf(req.CSR.PublicKey)
		if err != nil || !csr.Allows(keyType, kt) {
			t.Fatalf("accepted key type %s (%v) for %q", kt, err, keyType)
		}
		// The clean PEM must check the same.
		again, err := csr.Check([]byte(req.PEM), want, keyType)
		if err != nil || again.PublicKeySHA256 != req.PublicKeySHA256 {
			t.Fatalf("re-encoded CSR does not check the same: %v", err)
		}
		for _, n := range append(req.CSR.DNSNames, req.CSR.Subject.CommonName) {
			n = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(n)), ".")
			if n != "" && !slices.Contains(want, n) {
				t.Fatalf("accepted name %q", n)
			}
		}
	})
}
