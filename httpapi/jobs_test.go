package httpapi_test

import (
	"testing"

	"github.com/dcvaas/dcvaas/sqlstore"
)

func TestJobs(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b := setup(t, dialect)
		one := b.createDomain(b.a.admin, "one.example.com")
		two := b.createDomain(b.a.admin, "two.example.com")
		oneJob := one["latestJob"].(map[string]any)["id"].(string)
		twoJob := two["latestJob"].(map[string]any)["id"].(string)
		b.failJob(b.a.org.ID, oneJob)

		r := b.do("GET", "/api/jobs", b.a.read, nil).want(t, 200)
		items := r.items(t)
		if len(items) != 2 || items[0]["id"] != twoJob || items[1]["id"] != oneJob || r.obj(t)["total"] != 2.0 {
			t.Fatalf("not newest first: %s", r.body)
		}
		for q, want := range map[string]string{
			"domain_id=" + one["id"].(string): oneJob,
			"status=failed":                   oneJob,
			"status=queued&type=dns_check":    twoJob,
			"type=dns_check&limit=1":          twoJob,
			"type=dns_check&limit=1&offset=1": oneJob,
		} {
			items := b.do("GET", "/api/jobs?"+q, b.a.read, nil).want(t, 200).items(t)
			if len(items) != 1 || items[0]["id"] != want {
				t.Errorf("%s: %v, want %s", q, items, want)
			}
		}
		if items := b.do("GET", "/api/jobs?type=renewal", b.a.read, nil).want(t, 200).items(t); len(items) != 0 {
			t.Errorf("type=renewal: %v", items)
		}

		j := b.do("GET", "/api/jobs/"+oneJob, b.a.read, nil).want(t, 200).obj(t)
		if j["status"] != "failed" || j["lastError"] != "CNAME not found" || j["attemptsUsed"] != 3.0 || j["maxAttempts"] != 3.0 ||
			j["domainId"] != one["id"] || j["type"] != "dns_check" || j["runAt"] == nil || j["createdAt"] == nil || j["updatedAt"] == nil {
			t.Fatalf("job = %v", j)
		}
		if _, ok := j["result"]; ok {
			t.Errorf("null result present: %v", j)
		}

		// Only a failed job can be retried; it comes back queued, the
		// attempts it used reset.
		b.do("POST", "/api/jobs/"+twoJob+"/retry", b.a.admin, nil).wantProblem(t, 409)
		r = b.do("POST", "/api/jobs/"+oneJob+"/retry", b.a.admin, nil).want(t, 202)
		if r.obj(t)["jobId"] != oneJob || r.header.Get("Location") != "/api/jobs/"+oneJob {
			t.Fatalf("retry = %s %v", r.body, r.header)
		}
		j = b.do("GET", "/api/jobs/"+oneJob, b.a.read, nil).want(t, 200).obj(t)
		if j["status"] != "queued" || j["attemptsUsed"] != 0.0 {
			t.Fatalf("retried job = %v", j)
		}
		b.do("POST", "/api/jobs/"+oneJob+"/retry", b.a.admin, nil).wantProblem(t, 409)
		audit := b.do("GET", "/api/audit?action=job.retried", b.a.read, nil).want(t, 200).items(t)
		if len(audit) != 1 || audit[0]["entityId"] != oneJob {
			t.Fatalf("audit = %v", audit)
		}
	})
}
