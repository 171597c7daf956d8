package httpapi_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"testing"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/acme"
	"github.com/dcvaas/dcvaas/crypt"
	"github.com/dcvaas/dcvaas/sqlstore"
)

const testKeyPEM = "-----BEGIN PRIVATE KEY-----\nMIGHfake\n-----END PRIVATE KEY-----\n"

func TestCertificateKey(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		key := make([]byte, crypt.KeySize)
		rand.Read(key)
		kr, err := crypt.NewKeyring(key)
		if err != nil {
			t.Fatal(err)
		}
		b := setup(t, dialect, options{keyring: kr})
		id := b.createDomain(b.a.admin, "shop.example.com")["id"].(string)
		path := "/api/domains/" + id + "/certificate/key"
		b.do("GET", path, b.a.admin, nil).wantProblem(t, 404)
		b.do("GET", path, b.a.read, nil).wantProblem(t, 403)

		b.addCertificate(b.a.org.ID, id)
		certID := "cert-" + id
		sealed, err := kr.Encrypt([]byte(testKeyPEM), acme.CertificateKeyAD(certID))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.db.SQL().Exec(`UPDATE certificates SET private_key_enc = $1 WHERE id = $2`, sealed, certID); err != nil {
			t.Fatal(err)
		}

		// Read-only tokens never get it; other organizations do not see it.
		b.do("GET", path, b.a.read, nil).wantProblem(t, 403)
		b.do("GET", path, b.b.admin, nil).wantProblem(t, 404)
		if n := len(keyReads(t, b)); n != 0 {
			t.Fatalf("%d key reads audited before any key was handed out", n)
		}

		r := b.do("GET", path, b.a.admin, nil).want(t, 200)
		var got struct{ CertificateID, SerialNumber, PrivateKeyPEM string }
		if err := json.Unmarshal(r.body, &got); err != nil || r.header.Get("Content-Type") != "application/json" ||
			got.PrivateKeyPEM != testKeyPEM || got.CertificateID != certID || got.SerialNumber != "0a1b2c" {
			t.Fatalf("key = %s %s (%v)", r.header.Get("Content-Type"), r.body, err)
		}
		if r.header.Get("Cache-Control") != "no-store" {
			t.Errorf("Cache-Control = %q", r.header.Get("Cache-Control"))
		}
		r = b.do("GET", path, b.a.admin, nil, "Accept", "application/x-pem-file").want(t, 200)
		if r.header.Get("Content-Type") != "application/x-pem-file" || string(r.body) != testKeyPEM {
			t.Fatalf("PEM key = %s %q", r.header.Get("Content-Type"), r.body)
		}
		reads := keyReads(t, b)
		if len(reads) != 2 || reads[0].EntityID != id || reads[0].TokenID != b.a.adminID ||
			reads[0].Details["certificateId"] != certID || reads[0].Details["domainName"] != "shop.example.com" {
			t.Fatalf("audit = %+v", reads)
		}

		// A key that does not open is a 500 and is not recorded as read.
		if _, err := b.db.SQL().Exec(`UPDATE certificates SET private_key_enc = $1 WHERE id = $2`, "v1.x.garbage", certID); err != nil {
			t.Fatal(err)
		}
		b.do("GET", path, b.a.admin, nil).wantProblem(t, 500)
		if n := len(keyReads(t, b)); n != 2 {
			t.Fatalf("%d key reads audited, want 2", n)
		}

		b.do("DELETE", "/api/domains/"+id, b.a.admin, nil).want(t, 204)
		b.do("GET", path, b.a.admin, nil).wantProblem(t, 404)
	})
}

func TestCertificateKeyWithoutKeyring(t *testing.T) {
	b := setup(t, sqlstore.SQLite)
	id := b.createDomain(b.a.admin, "shop.example.com")["id"].(string)
	b.addCertificate(b.a.org.ID, id)
	b.do("GET", "/api/domains/"+id+"/certificate/key", b.a.admin, nil).wantProblem(t, 501)
}

func keyReads(t *testing.T, b *bundle) []*dcvaas.AuditEntry {
	t.Helper()
	list, _, err := b.db.ListAudit(context.Background(), b.a.org.ID, dcvaas.AuditFilter{Action: "certificate.key_read", Page: dcvaas.Page{Limit: 100}})
	if err != nil {
		t.Fatal(err)
	}
	return list
}
