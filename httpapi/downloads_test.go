package httpapi_test

import (
	"net/http"
	"testing"

	"github.com/dcvaas/dcvaas/sqlstore"
)

// TestCertificateParts: ?part= hands out the leaf, the intermediates or the
// full chain as PEM; an Accept that allows nothing offered is 406.
func TestCertificateParts(t *testing.T) {
	b := setup(t, sqlstore.SQLite)
	d := b.createDomain(b.a.admin, "shop.example.com")
	id := d["id"].(string)
	b.addCertificate(b.a.org.ID, id)
	const leaf = "-----BEGIN CERTIFICATE-----\nTEVBRg==\n-----END CERTIFICATE-----\n"
	const inter = "-----BEGIN CERTIFICATE-----\nSU5URVI=\n-----END CERTIFICATE-----\n"
	if _, err := b.db.SQL().Exec(`UPDATE certificates SET chain_pem = $1 WHERE domain_id = $2`, leaf+inter, id); err != nil {
		t.Fatal(err)
	}
	path := "/api/domains/" + id + "/certificate"
	for part, want := range map[string]string{"leaf": leaf, "chain": inter, "fullchain": leaf + inter} {
		r := b.do(http.MethodGet, path+"?part="+part, b.a.read, nil).want(t, http.StatusOK)
		if string(r.body) != want || r.header.Get("Content-Type") != "application/pem-certificate-chain" {
			t.Errorf("part %s: %s %q", part, r.header.Get("Content-Type"), r.body)
		}
	}
	b.do(http.MethodGet, path+"?part=key", b.a.read, nil).wantProblem(t, http.StatusUnprocessableEntity)

	for _, accept := range []string{"text/html", "application/xml, image/png"} {
		p := b.do(http.MethodGet, path, b.a.read, nil, "Accept", accept).wantProblem(t, http.StatusNotAcceptable)
		if p["type"] != "/problems/not-acceptable" {
			t.Errorf("Accept %q: %v", accept, p)
		}
	}
	b.do(http.MethodGet, path+"?part=leaf", b.a.read, nil, "Accept", "application/json").wantProblem(t, http.StatusNotAcceptable)
	for _, accept := range []string{"*/*", "application/*", "text/html, */*;q=0.1"} {
		b.do(http.MethodGet, path, b.a.read, nil, "Accept", accept).want(t, http.StatusOK)
	}
}
