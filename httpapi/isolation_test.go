package httpapi_test

import (
	"strings"
	"testing"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/sqlstore"
)

// TestIsolation: organization b can neither see nor touch anything of a —
// every single resource is 404, every list and the audit log leave a out —
// and nothing of a changes while b tries.
func TestIsolation(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b := setup(t, dialect)
		d := b.createDomain(b.a.admin, "shop.example.com")
		domID := d["id"].(string)
		jobID := d["latestJob"].(map[string]any)["id"].(string)
		b.addCertificate(b.a.org.ID, domID)
		failed := b.createDomain(b.a.admin, "failed.example.com")
		failedJob := failed["latestJob"].(map[string]any)["id"].(string)
		b.failJob(b.a.org.ID, failedJob)
		b.setDomainStatus(b.a.org.ID, domID, dcvaas.DomainActive)
		tok := b.do("POST", "/api/tokens", b.a.admin, map[string]any{"name": "a-only", "role": "admin"}).want(t, 201).obj(t)

		// b's own world, so that its lists are not trivially empty.
		own := b.createDomain(b.b.admin, "shop.example.com")

		before := b.dump()
		for _, req := range []struct {
			method, path string
			body         any
		}{
			{"GET", "/api/domains/" + domID, nil},
			{"GET", "/api/domains/" + domID + "/certificate", nil},
			{"POST", "/api/domains/" + domID + "/verify", nil},
			{"POST", "/api/domains/" + domID + "/issue", nil},
			{"POST", "/api/domains/" + domID + "/renew", nil},
			{"DELETE", "/api/domains/" + domID, nil},
			{"GET", "/api/jobs/" + jobID, nil},
			{"POST", "/api/jobs/" + failedJob + "/retry", nil},
			{"DELETE", "/api/tokens/" + tok["id"].(string), nil},
			{"DELETE", "/api/tokens/" + b.a.adminID, nil},
			{"PATCH", "/api/organizations/" + b.a.org.ID, map[string]any{"name": "Pwned"}},
			{"POST", "/api/tokens", map[string]any{"name": "x", "role": "admin", "organizationId": b.a.org.ID}},
		} {
			b.do(req.method, req.path, b.b.admin, req.body).wantProblem(t, 404)
		}
		if b.dump() != before {
			t.Fatal("organization b changed a's rows")
		}

		aIDs := []string{domID, jobID, failedJob, tok["id"].(string), b.a.adminID, b.a.readToken.ID, b.a.org.ID, b.a.user.ID, failed["id"].(string)}
		for _, path := range []string{
			"/api/domains", "/api/domains?status=active", "/api/jobs", "/api/jobs?domain_id=" + domID, "/api/jobs?status=failed",
			"/api/tokens", "/api/organizations", "/api/audit", "/api/audit?user_id=" + b.a.user.ID,
		} {
			r := b.do("GET", path, b.b.admin, nil).want(t, 200)
			for _, id := range aIDs {
				if strings.Contains(string(r.body), id) {
					t.Errorf("%s shows %s of organization a: %s", path, id, r.body)
				}
			}
		}
		if items := b.do("GET", "/api/domains", b.b.read, nil).items(t); len(items) != 1 || items[0]["id"] != own["id"] {
			t.Fatalf("b's domains = %v", items)
		}
		// And a still sees all of its own.
		if items := b.do("GET", "/api/domains", b.a.read, nil).items(t); len(items) != 2 {
			t.Fatalf("a's domains = %v", items)
		}
		b.do("GET", "/api/domains/"+domID+"/certificate", b.a.read, nil).want(t, 200)
	})
}
