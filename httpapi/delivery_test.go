package httpapi_test

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas/acme"
	"github.com/dcvaas/dcvaas/crypt"
	"github.com/dcvaas/dcvaas/sqlstore"
)

// deliverySetup is a bundle with a keyring and an active certificate (with
// a sealed key) for each of names, returning their ids.
func deliverySetup(t *testing.T, dialect sqlstore.Dialect, names ...string) (*bundle, []string) {
	t.Helper()
	return deliverySetupWith(t, dialect, options{}, names...)
}

// deliverySetupWith is deliverySetup with options (its keyring is set).
func deliverySetupWith(t *testing.T, dialect sqlstore.Dialect, o options, names ...string) (*bundle, []string) {
	t.Helper()
	key := make([]byte, crypt.KeySize)
	rand.Read(key)
	kr, err := crypt.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	o.keyring = kr
	b := setup(t, dialect, o)
	var ids []string
	for _, n := range names {
		id := b.createDomain(b.a.admin, n)["id"].(string)
		b.addCertificate(b.a.org.ID, id)
		sealed, err := kr.Encrypt([]byte(testKeyPEM), acme.CertificateKeyAD("cert-"+id))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.db.SQL().Exec(`UPDATE certificates SET private_key_enc = $1 WHERE id = $2`, sealed, "cert-"+id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return b, ids
}

func (b *bundle) deliveryToken(t *testing.T, scope map[string]any) string {
	t.Helper()
	body := map[string]any{"name": "sync", "role": "delivery"}
	if scope != nil {
		body["scope"] = scope
	}
	return b.do("POST", "/api/tokens", b.a.admin, body).want(t, 201).obj(t)["token"].(string)
}

func TestDeliveryTokenRole(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b, ids := deliverySetup(t, dialect, "shop.example.com")
		tok := b.deliveryToken(t, nil)

		// Nothing but listing domains and reading certificates and keys.
		b.do("POST", "/api/domains", tok, map[string]any{"domainName": "new.example.com"}).wantProblem(t, 403)
		for _, path := range []string{"/api/jobs", "/api/tokens", "/api/audit", "/api/organizations", "/api/connections"} {
			b.do("GET", path, tok, nil).wantProblem(t, 403)
		}
		b.do("POST", "/api/tokens", tok, map[string]any{"name": "x", "role": "admin"}).wantProblem(t, 403)
		b.do("POST", "/api/domains/"+ids[0]+"/renew", tok, nil).wantProblem(t, 403)
		if items := b.do("GET", "/api/domains", b.a.admin, nil).items(t); len(items) != 1 {
			t.Fatalf("a refused delivery request created a domain: %v", items)
		}

		if items := b.do("GET", "/api/domains", tok, nil).want(t, 200).items(t); len(items) != 1 {
			t.Fatalf("domains = %v", items)
		}
		b.do("GET", "/api/domains/"+ids[0], tok, nil).want(t, 200)
		r := b.do("GET", "/api/domains/"+ids[0]+"/certificate/key", tok, nil, "Accept", "application/x-pem-file").want(t, 200)
		if string(r.body) != testKeyPEM {
			t.Fatalf("key = %q", r.body)
		}
		// Another organization's domain stays invisible.
		other := b.createDomain(b.b.admin, "other.example.org")["id"].(string)
		b.do("GET", "/api/domains/"+other+"/certificate", tok, nil).wantProblem(t, 404)
	})
}

func TestDeliveryTokenScope(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b, ids := deliverySetup(t, dialect, "shop.example.com", "a.shop.example.com", "b.deep.shop.example.com", "other.example.net")
		before := len(b.do("GET", "/api/tokens", b.a.admin, nil).items(t))
		// Bad scopes are refused and create nothing.
		for _, body := range []map[string]any{
			{"name": "x", "role": "read", "scope": map[string]any{"names": []string{"shop.example.com"}}},
			{"name": "x", "role": "delivery", "scope": map[string]any{"names": []string{"not a name"}}},
			{"name": "x", "role": "delivery", "scope": map[string]any{"domainIds": []string{"no-such-id"}}},
			{"name": "x", "role": "delivery", "scope": map[string]any{}},
		} {
			b.do("POST", "/api/tokens", b.a.admin, body).wantProblem(t, 422)
		}
		if after := len(b.do("GET", "/api/tokens", b.a.admin, nil).items(t)); after != before {
			t.Fatalf("tokens %d → %d after refused creations", before, after)
		}

		tok := b.deliveryToken(t, map[string]any{"names": []string{"*.SHOP.example.com"}, "domainIds": []string{ids[3]}})
		listed := map[string]bool{}
		for _, d := range b.do("GET", "/api/domains", tok, nil).want(t, 200).items(t) {
			listed[d["domainName"].(string)] = true
		}
		want := map[string]bool{"a.shop.example.com": true, "b.deep.shop.example.com": true, "other.example.net": true}
		if len(listed) != len(want) || !listed["a.shop.example.com"] || !listed["b.deep.shop.example.com"] || !listed["other.example.net"] {
			t.Fatalf("scoped list = %v, want %v", listed, want)
		}
		if r := b.do("GET", "/api/domains", tok, nil).obj(t); r["total"].(float64) != 3 {
			t.Fatalf("total = %v", r["total"])
		}
		// The apex is outside "*.shop.example.com": 404 on every route.
		for _, p := range []string{"", "/certificate", "/certificate/key"} {
			b.do("GET", "/api/domains/"+ids[0]+p, tok, nil).wantProblem(t, 404)
			b.do("GET", "/api/domains/"+ids[1]+p, tok, nil).want(t, 200)
		}
		toks := b.do("GET", "/api/tokens", b.a.admin, nil).items(t)
		if scope, _ := toks[0]["scope"].(map[string]any); scope == nil || scope["names"].([]any)[0] != "*.shop.example.com" {
			t.Fatalf("listed token = %v", toks[0])
		}
	})
}

func TestCertificateJSONAndETag(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b, ids := deliverySetup(t, dialect, "shop.example.com")
		tok := b.deliveryToken(t, nil)
		path := "/api/domains/" + ids[0] + "/certificate"

		r := b.do("GET", path, tok, nil, "Accept", "application/json").want(t, 200)
		c := r.obj(t)
		if c["privateKeyPem"] != testKeyPEM || c["certificatePem"] != testChain || c["chainPem"] != "" || c["notAfter"] == nil {
			t.Fatalf("delivery JSON = %v", c)
		}
		etag := r.header.Get("ETag")
		if etag == "" || r.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("ETag %q, Cache-Control %q", etag, r.header.Get("Cache-Control"))
		}
		r = b.do("GET", path, tok, nil, "Accept", "application/json", "If-None-Match", etag).want(t, 304)
		if len(r.body) != 0 {
			t.Fatalf("304 with a body: %q", r.body)
		}
		// The PEM form has its own ETag.
		pr := b.do("GET", path, tok, nil, "Accept", "application/pem-certificate-chain", "If-None-Match", etag).want(t, 200)
		b.do("GET", path, tok, nil, "Accept", "application/pem-certificate-chain", "If-None-Match", `"x", `+pr.header.Get("ETag")).want(t, 304)

		// Admin tokens get the key only when they ask; read tokens never.
		if c := b.do("GET", path, b.a.admin, nil).want(t, 200).obj(t); c["privateKeyPem"] != nil {
			t.Fatalf("admin JSON carries the key unasked: %v", c)
		}
		if c := b.do("GET", path+"?includeKey=true", b.a.admin, nil).want(t, 200).obj(t); c["privateKeyPem"] != testKeyPEM {
			t.Fatalf("admin includeKey JSON = %v", c)
		}
		b.do("GET", path+"?includeKey=true", b.a.read, nil).wantProblem(t, 403)
		if c := b.do("GET", path+"?includeKey=false", tok, nil).want(t, 200).obj(t); c["privateKeyPem"] != nil {
			t.Fatalf("includeKey=false JSON = %v", c)
		}
	})
}

func TestDeliveryKeyReadsAuditedHourly(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b, ids := deliverySetup(t, dialect, "shop.example.com")
		tok := b.deliveryToken(t, nil)
		path := "/api/domains/" + ids[0] + "/certificate"
		for range 3 {
			b.do("GET", path, tok, nil).want(t, 200)
		}
		b.do("GET", path+"/key", tok, nil).want(t, 200)
		reads := keyReads(t, b)
		if len(reads) != 1 || reads[0].Details["reads"] != float64(4) || reads[0].Details["certificateId"] != "cert-"+ids[0] {
			t.Fatalf("audit after 4 reads = %+v", reads)
		}
		b.clock.Advance(61 * time.Minute)
		b.do("GET", path, tok, nil).want(t, 200)
		reads = keyReads(t, b)
		if len(reads) != 2 || reads[0].Details["reads"] != float64(1) || reads[1].Details["reads"] != float64(4) {
			t.Fatalf("audit after the hour = %+v", reads)
		}
		// Admin readings stay one entry each.
		b.do("GET", path+"/key", b.a.admin, nil).want(t, 200)
		b.do("GET", path+"/key", b.a.admin, nil).want(t, 200)
		if n := len(keyReads(t, b)); n != 4 {
			t.Fatalf("%d entries, want 4", n)
		}
	})
}
