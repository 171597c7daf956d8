package httpapi_test

import (
	"net/url"
	"regexp"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/sqlstore"
)

var cnameTarget = regexp.MustCompile(`^[a-z2-7]{26}\.verify\.test$`)

func TestCreateDomain(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b := setup(t, dialect)
		r := b.do("POST", "/api/domains", b.a.admin, map[string]any{"domainName": " Shop.Example.COM. ", "includeWildcard": false, "keyType": "rsa2048"})
		d := r.want(t, 201).obj(t)
		if r.header.Get("Location") != "/api/domains/"+d["id"].(string) {
			t.Errorf("Location = %q", r.header.Get("Location"))
		}
		target, _ := d["cnameTarget"].(string)
		if d["domainName"] != "shop.example.com" || d["status"] != "pending_cname" || !cnameTarget.MatchString(target) ||
			d["includeWildcard"] != false || d["keyType"] != "rsa2048" {
			t.Fatalf("domain = %v", d)
		}
		rec := d["cnameRecord"].(map[string]any)
		if rec["name"] != "_acme-challenge.shop.example.com" || rec["type"] != "CNAME" || rec["value"] != target {
			t.Fatalf("cnameRecord = %v", rec)
		}
		for _, k := range []string{"createdAt", "updatedAt"} {
			if ts, err := time.Parse(time.RFC3339, d[k].(string)); err != nil || ts.Location() != time.UTC {
				t.Errorf("%s = %v (%v), want RFC 3339 UTC", k, d[k], err)
			}
		}
		for _, k := range []string{"lastError", "lastIssuedAt", "expiresAt"} {
			if _, ok := d[k]; ok {
				t.Errorf("%s present while empty: %v", k, d[k])
			}
		}
		job := d["latestJob"].(map[string]any)
		if job["type"] != "dns_check" || job["status"] != "queued" || job["domainId"] != d["id"] || job["maxAttempts"] != 3.0 {
			t.Fatalf("latestJob = %v", job)
		}

		// Defaults: true and ec256, unless the organization says otherwise.
		d = b.createDomain(b.a.admin, "Bücher.example")
		if d["domainName"] != "xn--bcher-kva.example" || d["includeWildcard"] != true || d["keyType"] != "ec256" {
			t.Fatalf("defaults = %v", d)
		}
		b.do("PATCH", "/api/organizations/"+b.a.org.ID, b.a.admin, map[string]any{
			"settings": map[string]any{"defaultIncludeWildcard": false, "defaultKeyType": "ec384"}}).want(t, 200)
		d = b.createDomain(b.a.admin, "org-defaults.example.com")
		if d["includeWildcard"] != false || d["keyType"] != "ec384" {
			t.Fatalf("org defaults not applied: %v", d)
		}
		d = b.do("POST", "/api/domains", b.a.admin, map[string]any{"domainName": "explicit.example.com", "includeWildcard": true, "keyType": "ec256"}).want(t, 201).obj(t)
		if d["includeWildcard"] != true || d["keyType"] != "ec256" {
			t.Fatalf("explicit values lost to org defaults: %v", d)
		}

		// The same name twice in one organization conflicts; in another it does not.
		b.do("POST", "/api/domains", b.a.admin, map[string]any{"domainName": "SHOP.example.com"}).wantProblem(t, 409)
		b.createDomain(b.b.admin, "shop.example.com")
	})
}

func TestListAndGetDomains(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b := setup(t, dialect)
		first := b.createDomain(b.a.admin, "one.example.com")
		second := b.createDomain(b.a.admin, "two.example.com")
		third := b.createDomain(b.a.admin, "three.example.com")
		b.setDomainStatus(b.a.org.ID, second["id"].(string), dcvaas.DomainActive)

		r := b.do("GET", "/api/domains", b.a.read, nil).want(t, 200)
		items := r.items(t)
		if len(items) != 3 || items[0]["id"] != third["id"] || items[2]["id"] != first["id"] {
			t.Fatalf("not newest first: %s", r.body)
		}
		if l := r.obj(t); l["total"] != 3.0 || l["limit"] != 50.0 || l["offset"] != 0.0 {
			t.Fatalf("envelope = %v", l)
		}
		if _, ok := items[0]["latestJob"]; ok {
			t.Errorf("list items carry latestJob")
		}
		r = b.do("GET", "/api/domains?limit=1&offset=1", b.a.read, nil).want(t, 200)
		if items := r.items(t); len(items) != 1 || items[0]["id"] != second["id"] || r.obj(t)["total"] != 3.0 || r.obj(t)["limit"] != 1.0 {
			t.Fatalf("page = %s", r.body)
		}
		items = b.do("GET", "/api/domains?status=active", b.a.read, nil).want(t, 200).items(t)
		if len(items) != 1 || items[0]["id"] != second["id"] || items[0]["status"] != "active" {
			t.Fatalf("status filter = %v", items)
		}
		// Every status the store knows is accepted by the filter.
		for _, s := range dcvaas.DomainStatuses {
			b.do("GET", "/api/domains?status="+string(s), b.a.read, nil).want(t, 200)
		}

		d := b.do("GET", "/api/domains/"+first["id"].(string), b.a.read, nil).want(t, 200).obj(t)
		if d["domainName"] != "one.example.com" || d["latestJob"].(map[string]any)["type"] != "dns_check" {
			t.Fatalf("get = %v", d)
		}
		b.do("GET", "/api/domains/nope", b.a.read, nil).wantProblem(t, 404)
	})
}

func TestDomainActions(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b := setup(t, dialect)
		d := b.createDomain(b.a.admin, "shop.example.com")
		id := d["id"].(string)
		path := "/api/domains/" + id

		jobOf := func(r *response, typ string) string {
			t.Helper()
			jobID, _ := r.want(t, 202).obj(t)["jobId"].(string)
			if r.header.Get("Location") != "/api/jobs/"+jobID {
				t.Errorf("Location = %q", r.header.Get("Location"))
			}
			j := b.do("GET", "/api/jobs/"+jobID, b.a.read, nil).want(t, 200).obj(t)
			if j["type"] != typ || j["domainId"] != id || j["status"] != "queued" {
				t.Fatalf("job = %v", j)
			}
			return jobID
		}
		verify := jobOf(b.do("POST", path+"/verify", b.a.admin, nil), "dns_check")
		if latest := b.do("GET", path, b.a.read, nil).obj(t)["latestJob"].(map[string]any); latest["id"] != verify {
			t.Fatalf("latestJob = %v, want %s", latest, verify)
		}
		// Issuance needs the CNAME found (issuing), renewal an active domain.
		b.do("POST", path+"/issue", b.a.admin, nil).wantProblem(t, 409)
		b.do("POST", path+"/renew", b.a.admin, nil).wantProblem(t, 409)
		b.setDomainStatus(b.a.org.ID, id, dcvaas.DomainIssuing)
		jobOf(b.do("POST", path+"/issue", b.a.admin, nil), "start_issuance")
		b.do("POST", path+"/renew", b.a.admin, nil).wantProblem(t, 409)
		b.setDomainStatus(b.a.org.ID, id, dcvaas.DomainActive)
		jobOf(b.do("POST", path+"/renew", b.a.admin, nil), "renewal")
		b.do("POST", path+"/issue", b.a.admin, nil).wantProblem(t, 409)
		for _, s := range []dcvaas.DomainStatus{dcvaas.DomainFailed, dcvaas.DomainActive, dcvaas.DomainIssuing, dcvaas.DomainPendingCNAME} {
			b.setDomainStatus(b.a.org.ID, id, s)
			jobOf(b.do("POST", path+"/verify", b.a.admin, nil), "dns_check")
		}

		b.do("DELETE", path, b.a.admin, nil).want(t, 204)
		b.do("GET", path, b.a.admin, nil).wantProblem(t, 404)
		b.do("DELETE", path, b.a.admin, nil).wantProblem(t, 404)
		b.do("POST", path+"/verify", b.a.admin, nil).wantProblem(t, 404)
		if items := b.do("GET", "/api/domains", b.a.admin, nil).items(t); len(items) != 0 {
			t.Fatalf("deleted domain listed: %v", items)
		}
		audit := b.do("GET", "/api/audit?action=domain.deleted", b.a.admin, nil).want(t, 200).items(t)
		if len(audit) != 1 || audit[0]["entityId"] != id || audit[0]["tokenId"] != b.a.adminID {
			t.Fatalf("audit = %v", audit)
		}
	})
}

func TestCertificate(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b := setup(t, dialect)
		id := b.createDomain(b.a.admin, "shop.example.com")["id"].(string)
		path := "/api/domains/" + id + "/certificate"
		b.do("GET", path, b.a.read, nil).wantProblem(t, 404)
		b.do("GET", path, b.a.read, nil, "Accept", "application/pem-certificate-chain").wantProblem(t, 404)

		b.addCertificate(b.a.org.ID, id)
		r := b.do("GET", path, b.a.read, nil).want(t, 200)
		c := r.obj(t)
		names, _ := c["dnsNames"].([]any)
		if r.header.Get("Content-Type") != "application/json" || c["serialNumber"] != "0a1b2c" || c["certificatePem"] != testChain ||
			c["caName"] != "letsencrypt" || c["issuer"] != "Pebble Intermediate CA" || len(names) != 2 || c["notAfter"] == nil || c["notBefore"] == nil {
			t.Fatalf("certificate = %s %v", r.header.Get("Content-Type"), c)
		}
		if _, ok := c["privateKeyEnc"]; ok {
			t.Fatal("private key exposed")
		}
		for accept, pem := range map[string]bool{
			"application/pem-certificate-chain":                         true,
			"application/json;q=0.5, application/pem-certificate-chain": true,
			"application/pem-certificate-chain;q=0.5, application/json": false,
			"*/*": false,
			"application/json, application/pem-certificate-chain": false,
		} {
			r := b.do("GET", path, b.a.read, nil, "Accept", accept).want(t, 200)
			if got := r.header.Get("Content-Type") == "application/pem-certificate-chain"; got != pem {
				t.Errorf("Accept %q: content type %q", accept, r.header.Get("Content-Type"))
			} else if pem && string(r.body) != testChain {
				t.Errorf("PEM body = %q", r.body)
			}
		}
		// A deleted domain has no certificate to hand out.
		b.do("DELETE", "/api/domains/"+id, b.a.admin, nil).want(t, 204)
		b.do("GET", path, b.a.read, nil).wantProblem(t, 404)
	})
}

func TestListDomainsQuery(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b := setup(t, dialect)
		for _, q := range []string{"status=bogus", "limit=0", "limit=201", "limit=x", "offset=-1", "colour=blue"} {
			p := b.do("GET", "/api/domains?"+q, b.a.read, nil).wantProblem(t, 422)
			if len(fieldsOf(p)) == 0 {
				t.Errorf("%s: no field named: %v", q, p)
			}
		}
		b.do("GET", "/api/domains?limit=200&offset=0&status="+url.QueryEscape("pending_cname"), b.a.read, nil).want(t, 200)
	})
}
