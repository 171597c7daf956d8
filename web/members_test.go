package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/sqlstore"
)

func TestMembersPage(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d sqlstore.Dialect) {
		b := setup(t, d, "")
		admin := b.browser()
		admin.signIn(b.admin, "/")
		csrf := admin.csrf()
		page := admin.send("GET", "/members", nil)
		if page.status != 200 || !strings.Contains(page.body, "ops@acme.example (you)") || !strings.Contains(page.body, "Save member") {
			t.Fatalf("members page: %d", page.status)
		}
		// Validation messages are the store's, nothing stored.
		r := admin.send("POST", "/members", url.Values{"email": {"nobody"}, "role": {"admin"}, "csrf": {csrf}})
		if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `id="email-error"`) {
			t.Fatalf("bad e-mail: %d", r.status)
		}
		if r := admin.send("POST", "/members", url.Values{"email": {"jane@acme.example"}, "role": {"emperor"}, "csrf": {csrf}}); r.status != http.StatusUnprocessableEntity {
			t.Fatalf("bad role: %d", r.status)
		}
		r = admin.send("POST", "/members", url.Values{"email": {"jane@acme.example"}, "role": {"viewer"}, "csrf": {csrf}})
		if r.status != http.StatusSeeOther {
			t.Fatalf("add: %d %s", r.status, r.body)
		}
		ctx := context.Background()
		jane, orgs, err := b.db.MembershipsByEmail(ctx, "jane@acme.example")
		if err != nil || len(orgs) != 1 || orgs[0].ID != b.orgA.ID || orgs[0].Role != dcvaas.RoleViewer {
			t.Fatalf("jane's memberships %v %v", orgs, err)
		}
		added, _, _ := b.db.ListAudit(ctx, b.orgA.ID, dcvaas.AuditFilter{Action: "member.added", Page: dcvaas.Page{Limit: 10}})
		if len(added) != 1 || added[0].TokenID == "" || added[0].EntityID != jane.ID {
			t.Fatalf("member.added: %+v", added)
		}
		// The last owner cannot be removed; the page says why.
		owner := mustUser(t, b, "ops@acme.example")
		r = admin.send("POST", "/members/"+owner+"/remove", url.Values{"csrf": {csrf}})
		if r.status != http.StatusSeeOther || !strings.Contains(r.header.Get("Location"), "last+owner") {
			t.Fatalf("removing the last owner: %d %s", r.status, r.header.Get("Location"))
		}

		// Read-only sign-ins see the members and no write button; their
		// forged POSTs are refused and change nothing.
		reader := b.browser()
		reader.signIn(b.reader, "/")
		body := reader.send("GET", "/members", nil).body
		if !strings.Contains(body, "jane@acme.example") || strings.Contains(body, "Save member") || strings.Contains(body, "/remove") {
			t.Fatal("read-only members page offers writes, or lacks jane")
		}
		if r := reader.send("POST", "/members/"+jane.ID+"/remove", url.Values{"csrf": {reader.csrf()}}); r.status != http.StatusForbidden {
			t.Fatalf("read-only remove: %d", r.status)
		}
		if r := admin.send("POST", "/members/"+jane.ID+"/remove", nil); r.status != http.StatusForbidden {
			t.Fatalf("remove without CSRF token: %d", r.status)
		}
		// Another organization's admin cannot reach Acme's members.
		other := b.browser()
		other.signIn(b.other, "/")
		if r := other.send("POST", "/members/"+jane.ID+"/remove", url.Values{"csrf": {other.csrf()}}); r.status != http.StatusNotFound {
			t.Fatalf("other org's remove: %d", r.status)
		}
		if strings.Contains(other.send("GET", "/members", nil).body, "jane@acme.example") {
			t.Fatal("other org sees Acme's members")
		}
		if _, orgs, _ := b.db.MembershipsByEmail(ctx, "jane@acme.example"); len(orgs) != 1 {
			t.Fatal("a refused remove removed")
		}
		if r := admin.send("POST", "/members/"+jane.ID+"/remove", url.Values{"csrf": {csrf}}); r.status != http.StatusSeeOther {
			t.Fatalf("remove: %d", r.status)
		}
		if _, orgs, _ := b.db.MembershipsByEmail(ctx, "jane@acme.example"); len(orgs) != 0 {
			t.Fatal("jane still a member")
		}
	})
}

// A viewer's token signs in read-only, whatever the token's role.
func TestViewerTokenSessionIsReadOnly(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d sqlstore.Dialect) {
		b := setup(t, d, "")
		if _, err := b.db.SQL().Exec(`UPDATE organization_members SET role = 'viewer' WHERE org_id = $1`, b.orgA.ID); err != nil {
			t.Fatal(err)
		}
		br := b.browser()
		br.signIn(b.admin, "/")
		page := br.send("GET", "/domains", nil)
		if page.status != http.StatusOK || strings.Contains(page.body, `id="domainName"`) || !strings.Contains(page.body, `<span class="role">read</span>`) {
			t.Fatalf("viewer's admin token: %d", page.status)
		}
		if r := br.send("POST", "/domains", url.Values{"domainName": {"x.example.com"}, "csrf": {br.csrf()}}); r.status != http.StatusForbidden {
			t.Fatalf("viewer's POST: %d", r.status)
		}
	})
}
