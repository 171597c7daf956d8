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

func TestOrganizationSettings(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d sqlstore.Dialect) {
		b := setup(t, d, "")
		ctx := context.Background()
		admin := b.browser()
		admin.signIn(b.admin, "/")
		csrf := admin.csrf()
		save := func(br *browser, name, contact, key, wildcard string) resp {
			return br.send("POST", "/settings/organization", url.Values{"name": {name}, "contactEmail": {contact},
				"defaultKeyType": {key}, "defaultIncludeWildcard": {wildcard}, "csrf": {csrf}})
		}
		for _, bad := range []struct{ name, contact, key, field string }{
			{" ", "", "", "name-error"},
			{"Acme", "Ops <ops@acme.example>", "", "contactEmail-error"},
			{"Acme", "", "dsa", "Check the organization"},
		} {
			r := save(admin, bad.name, bad.contact, bad.key, "")
			if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, bad.field) {
				t.Fatalf("%+v: %d", bad, r.status)
			}
		}
		if r := save(admin, "  Acme Corp ", "ops@acme.example", "rsa2048", "false"); r.status != http.StatusSeeOther {
			t.Fatalf("save: %d %s", r.status, r.body)
		}
		_, orgs, _ := b.db.MembershipsByEmail(ctx, "ops@acme.example")
		o := orgs[0]
		if o.Name != "Acme Corp" || o.Settings.ContactEmail != "ops@acme.example" || o.Settings.DefaultKeyType != "rsa2048" ||
			o.Settings.DefaultIncludeWildcard == nil || *o.Settings.DefaultIncludeWildcard {
			t.Fatalf("saved %+v", o)
		}
		if page := admin.send("GET", "/settings", nil).body; !strings.Contains(page, `<option value="false" selected>`) || !strings.Contains(page, `<option selected>rsa2048</option>`) {
			t.Fatal("the form does not show the saved defaults")
		}
		audit, _, _ := b.db.ListAudit(ctx, b.orgA.ID, dcvaas.AuditFilter{Action: "organization.updated", Page: dcvaas.Page{Limit: 10}})
		if len(audit) != 1 {
			t.Fatalf("organization.updated entries: %d", len(audit))
		}
		// Read-only: the values, no form; a forged POST is refused.
		reader := b.browser()
		reader.signIn(b.reader, "/")
		if page := reader.send("GET", "/settings", nil).body; strings.Contains(page, `action="/settings/organization"`) || !strings.Contains(page, "Acme Corp") {
			t.Fatal("read-only settings page")
		}
		if r := reader.send("POST", "/settings/organization", url.Values{"name": {"Hacked"}, "csrf": {reader.csrf()}}); r.status != http.StatusForbidden {
			t.Fatalf("read-only save: %d", r.status)
		}
	})
}
