package httpapi_test

import (
	"net/http"
	"testing"

	"github.com/dcvaas/dcvaas/sqlstore"
)

func TestMembers(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b := setup(t, dialect)
		org := "/api/organizations/" + b.a.org.ID + "/members"
		items := b.do("GET", org, b.a.read, nil).want(t, http.StatusOK).items(t)
		if len(items) != 1 || items[0]["role"] != "owner" || items[0]["email"] == "" {
			t.Fatalf("members = %v", items)
		}
		owner := items[0]["userId"].(string)

		// Read tokens and bad input change nothing.
		b.do("POST", org, b.a.read, map[string]any{"email": "jane@acme.test", "role": "admin"}).wantProblem(t, http.StatusForbidden)
		b.do("POST", org, b.a.admin, map[string]any{"email": "not an address", "role": "admin"}).wantProblem(t, http.StatusUnprocessableEntity)
		b.do("POST", org, b.a.admin, map[string]any{"email": "jane@acme.test", "role": "emperor"}).wantProblem(t, http.StatusUnprocessableEntity)
		// Another organization's members are not found.
		b.do("GET", org, b.b.admin, nil).wantProblem(t, http.StatusNotFound)
		b.do("POST", org, b.b.admin, map[string]any{"email": "jane@acme.test", "role": "admin"}).wantProblem(t, http.StatusNotFound)

		jane := b.do("POST", org, b.a.admin, map[string]any{"email": "jane@acme.test", "role": "viewer"}).want(t, http.StatusOK).obj(t)
		if jane["email"] != "jane@acme.test" || jane["role"] != "viewer" {
			t.Fatalf("added = %v", jane)
		}
		b.do("POST", org, b.a.admin, map[string]any{"email": "JANE@acme.test", "role": "admin"}).want(t, http.StatusOK)
		r := b.do("GET", org, b.a.admin, nil).want(t, http.StatusOK)
		if items := r.items(t); len(items) != 2 || items[1]["role"] != "admin" || items[1]["userId"] != jane["userId"] {
			t.Fatalf("members = %s", r.body)
		}
		// The last owner stays owner.
		b.do("DELETE", org+"/"+owner, b.a.admin, nil).wantProblem(t, http.StatusConflict)
		b.do("POST", org, b.a.admin, map[string]any{"email": items[0]["email"], "role": "member"}).wantProblem(t, http.StatusConflict)
		b.do("DELETE", org+"/nobody", b.a.admin, nil).wantProblem(t, http.StatusNotFound)
		b.do("DELETE", org+"/"+jane["userId"].(string), b.a.admin, nil).want(t, http.StatusNoContent)
		if items := b.do("GET", org, b.a.admin, nil).want(t, http.StatusOK).items(t); len(items) != 1 {
			t.Fatalf("after removal: %v", items)
		}
		for _, action := range []string{"member.added", "member.updated", "member.removed"} {
			if n := len(b.do("GET", "/api/audit?action="+action, b.a.admin, nil).want(t, http.StatusOK).items(t)); n != 1 {
				t.Errorf("%s entries: %d", action, n)
			}
		}
	})
}

// A viewer's admin token acts as a read token.
func TestViewerTokensOnlyRead(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b := setup(t, dialect)
		if _, err := b.db.SQL().Exec(`UPDATE organization_members SET role = 'viewer' WHERE org_id = $1`, b.a.org.ID); err != nil {
			t.Fatal(err)
		}
		b.do("GET", "/api/domains", b.a.admin, nil).want(t, http.StatusOK)
		b.do("POST", "/api/domains", b.a.admin, map[string]any{"domainName": "shop.example.com"}).wantProblem(t, http.StatusForbidden)
	})
}
