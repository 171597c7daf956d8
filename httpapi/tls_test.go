package httpapi_test

import (
	"net/url"
	"testing"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/sqlstore"
)

func TestTLSCertificateForCaddy(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b, ids := deliverySetup(t, dialect, "shop.example.com", "bücher.example.com", "failed.example.com")
		for _, id := range ids[:2] {
			b.setDomainStatus(b.a.org.ID, id, dcvaas.DomainActive)
		}
		b.setDomainStatus(b.a.org.ID, ids[2], dcvaas.DomainFailed)
		if _, err := b.db.SQL().Exec(`UPDATE certificates SET dns_names = $1 WHERE id = $2`, `["xn--bcher-kva.example.com"]`, "cert-"+ids[1]); err != nil {
			t.Fatal(err)
		}
		tok := b.deliveryToken(t, nil)
		get := func(token, name string) *response {
			return b.do("GET", "/tls/"+token+"/certificate?server_name="+url.QueryEscape(name)+"&signature_schemes=2052&cipher_suites=4865", "", nil)
		}
		want := testChain + testKeyPEM
		for _, name := range []string{"shop.example.com", "SHOP.example.com.", "a.shop.example.com", "bücher.example.com", "xn--bcher-kva.example.com"} {
			r := get(tok, name).want(t, 200)
			if string(r.body) != want || r.header.Get("Cache-Control") != "private, max-age=60" {
				t.Fatalf("%s: %q %q", name, r.body, r.header.Get("Cache-Control"))
			}
		}
		// Not covered: two labels under the wildcard, unknown, inactive,
		// another organization's, garbage.
		other := b.createDomain(b.b.admin, "other.example.org")["id"].(string)
		b.setDomainStatus(b.b.org.ID, other, dcvaas.DomainActive)
		b.addCertificate(b.b.org.ID, other)
		for _, name := range []string{"a.b.shop.example.com", "example.com", "nothing.example.net", "failed.example.com", "other.example.org", "127.0.0.1", ""} {
			if r := get(tok, name); r.status != 204 && !(name == "" && r.status == 422) {
				t.Fatalf("%q: status %d %s", name, r.status, r.body)
			}
		}
		get(b.a.admin, "shop.example.com").wantProblem(t, 403)
		get("dcv_nonsense", "shop.example.com").wantProblem(t, 401)

		// Scope applies.
		scoped := b.deliveryToken(t, map[string]any{"domainIds": []string{ids[1]}})
		get(scoped, "shop.example.com").want(t, 204)
		get(scoped, "bücher.example.com").want(t, 200)

		// A new certificate is served at once: the cache follows the store.
		if _, err := b.db.SQL().Exec(`INSERT INTO certificates (id, org_id, domain_id, serial_number, issuer, ca_name, order_url,
			dns_names, not_before, not_after, chain_pem, private_key_enc, created_at)
			SELECT 'cert-new', org_id, domain_id, 'ffff', issuer, ca_name, order_url, dns_names, not_before, not_after,
			$1, private_key_enc, created_at + 1 FROM certificates WHERE id = $2`, "-----BEGIN CERTIFICATE-----\nMIIBnew\n-----END CERTIFICATE-----\n", "cert-"+ids[0]); err != nil {
			t.Fatal(err)
		}
		// cert-new reuses the old sealed key, whose associated data names the
		// old certificate: it must not open, and the failure is a 500.
		get(tok, "shop.example.com").wantProblem(t, 500)
		b.do("DELETE", "/api/domains/"+ids[0], b.a.admin, nil).want(t, 204)
		get(tok, "a.shop.example.com").want(t, 204)

		// Readings are audited, one entry per certificate per hour.
		var bucher *dcvaas.AuditEntry
		n := 0
		for _, e := range keyReads(t, b) {
			if e.Details["certificateId"] == "cert-"+ids[1] && e.TokenID != "" {
				n++
				bucher = e
			}
		}
		if n != 2 || bucher == nil { // one per token (tok and scoped)
			t.Fatalf("%d entries for bücher: %+v", n, keyReads(t, b))
		}
	})
}
