package httpapi_test

import (
	"bytes"
	"testing"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/sqlstore"
)

// A domain list page is sent from the cache only while nothing changed:
// a change made under the API (as the job engine makes them) shows in the
// next request, the page is per organization and query, and a cached page
// is byte for byte the page as first sent.
func TestListCacheFollowsChanges(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b := setup(t, dialect)
		d := b.createDomain(b.a.admin, "shop.example.com")
		b.createDomain(b.b.admin, "other.example.com")

		first := b.do("GET", "/api/domains?limit=10", b.a.admin, nil).want(t, 200)
		again := b.do("GET", "/api/domains?limit=10", b.a.admin, nil).want(t, 200)
		if !bytes.Equal(first.body, again.body) {
			t.Fatalf("a repeated page differs:\n%s\n%s", first.body, again.body)
		}
		if items := first.items(t); len(items) != 1 || items[0]["status"] != "pending_cname" {
			t.Fatalf("items %v", items)
		}
		// Another organization, another query: their own pages.
		if items := b.do("GET", "/api/domains?limit=10", b.b.admin, nil).want(t, 200).items(t); len(items) != 1 || items[0]["domainName"] != "other.example.com" {
			t.Fatalf("b's items %v", items)
		}
		if items := b.do("GET", "/api/domains?limit=10&status=active", b.a.admin, nil).want(t, 200).items(t); len(items) != 0 {
			t.Fatalf("active items %v", items)
		}

		b.setDomainStatus(b.a.org.ID, d["id"].(string), dcvaas.DomainActive)
		if items := b.do("GET", "/api/domains?limit=10", b.a.admin, nil).want(t, 200).items(t); len(items) != 1 || items[0]["status"] != "active" {
			t.Fatalf("after the change: %v", items)
		}
		if items := b.do("GET", "/api/domains?limit=10&status=active", b.a.admin, nil).want(t, 200).items(t); len(items) != 1 {
			t.Fatalf("active items after the change: %v", items)
		}
		b.do("DELETE", "/api/domains/"+d["id"].(string), b.a.admin, nil).want(t, 204)
		if items := b.do("GET", "/api/domains?limit=10", b.a.admin, nil).want(t, 200).items(t); len(items) != 0 {
			t.Fatalf("after delete: %v", items)
		}
	})
}
