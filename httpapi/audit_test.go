package httpapi_test

import (
	"net/url"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas/sqlstore"
)

func TestAudit(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b := setup(t, dialect)
		start := b.clock.Now()
		d := b.createDomain(b.a.admin, "shop.example.com")
		b.clock.Advance(time.Hour)
		mid := b.clock.Now()
		b.do("PATCH", "/api/organizations/"+b.a.org.ID, b.a.admin, map[string]any{"name": "Acme Corp"}).want(t, 200)

		r := b.do("GET", "/api/audit", b.a.read, nil).want(t, 200)
		items := r.items(t)
		// Bootstrap wrote organization.created and two token.created.
		if len(items) != 6 || r.obj(t)["total"] != 6.0 || items[0]["action"] != "organization.updated" {
			t.Fatalf("audit = %s", r.body)
		}
		e := items[0]
		details, _ := e["details"].(map[string]any)
		if e["entityType"] != "organization" || e["entityId"] != b.a.org.ID || e["userId"] != b.a.user.ID || e["tokenId"] != b.a.adminID ||
			details["name"].(map[string]any)["to"] != "Acme Corp" || e["id"] == nil || e["createdAt"] == nil {
			t.Fatalf("entry = %v", e)
		}
		for i := 1; i < len(items); i++ {
			if items[i-1]["createdAt"].(string) < items[i]["createdAt"].(string) {
				t.Fatalf("not newest first: %v", items)
			}
		}

		at := func(t time.Time) string { return url.QueryEscape(t.Format(time.RFC3339Nano)) }
		for q, want := range map[string][]string{
			"action=domain.created":                        {"domain.created"},
			"action=job.queued":                            {"job.queued"},
			"from=" + at(mid):                              {"organization.updated"},
			"from=" + at(start) + "&to=" + at(mid):         {"job.queued", "domain.created"},
			"to=" + at(start) + "&action=domain.created":   nil,
			"user_id=" + b.a.user.ID + "&limit=1":          {"organization.updated"},
			"user_id=" + b.a.user.ID + "&limit=1&offset=1": {"job.queued"},
			"user_id=nobody":                               nil,
		} {
			items := b.do("GET", "/api/audit?"+q, b.a.read, nil).want(t, 200).items(t)
			var got []string
			for _, it := range items {
				got = append(got, it["action"].(string))
			}
			if len(got) != len(want) {
				t.Errorf("%s: %v, want %v", q, got, want)
				continue
			}
			for i := range got {
				if got[i] != want[i] {
					t.Errorf("%s: %v, want %v", q, got, want)
				}
			}
		}
		created := b.do("GET", "/api/audit?action=domain.created", b.a.read, nil).items(t)[0]
		if created["entityId"] != d["id"] || created["details"].(map[string]any)["domainName"] != "shop.example.com" {
			t.Fatalf("domain.created = %v", created)
		}
	})
}
