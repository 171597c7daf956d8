package httpapi_test

import (
	"context"
	"testing"

	"github.com/dcvaas/dcvaas/sqlstore"
)

func TestOrganizations(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b := setup(t, dialect)
		items := b.do("GET", "/api/organizations", b.a.read, nil).want(t, 200).items(t)
		if len(items) != 1 || items[0]["id"] != b.a.org.ID || items[0]["name"] != "Acme" || items[0]["role"] != "owner" ||
			items[0]["createdAt"] == nil || items[0]["updatedAt"] == nil {
			t.Fatalf("orgs = %v", items)
		}
		if s, ok := items[0]["settings"].(map[string]any); !ok || len(s) != 0 {
			t.Fatalf("settings = %v", items[0]["settings"])
		}

		// Create: trimmed name, settings kept, the caller becomes owner.
		created := b.do("POST", "/api/organizations", b.a.admin, map[string]any{
			"name": "  Initech  ", "settings": map[string]any{"contactEmail": "ops@initech.test", "defaultKeyType": "rsa4096"},
		}).want(t, 201).obj(t)
		settings := created["settings"].(map[string]any)
		if created["name"] != "Initech" || created["role"] != "owner" || settings["contactEmail"] != "ops@initech.test" || settings["defaultKeyType"] != "rsa4096" {
			t.Fatalf("created = %v", created)
		}
		b.do("POST", "/api/organizations", b.a.admin, map[string]any{"name": "Minimal"}).want(t, 201)
		r := b.do("GET", "/api/organizations?limit=2", b.a.read, nil).want(t, 200)
		if items := r.items(t); len(items) != 2 || r.obj(t)["total"] != 3.0 || items[1]["id"] != created["id"] {
			t.Fatalf("orgs = %s", r.body)
		}
		// The new organization's audit entry is in that organization.
		newID := created["id"].(string)
		entries, _, err := b.db.ListAudit(context.Background(), newID, pageAll)
		if err != nil || len(entries) != 1 || entries[0].Action != "organization.created" || entries[0].TokenID != b.a.adminID {
			t.Fatalf("audit of new org = %v %v", entries, err)
		}

		// Patch: name alone, settings replaced as a whole.
		patched := b.do("PATCH", "/api/organizations/"+newID, b.a.admin, map[string]any{"name": "Initrode"}).want(t, 200).obj(t)
		if patched["name"] != "Initrode" || patched["settings"].(map[string]any)["contactEmail"] != "ops@initech.test" {
			t.Fatalf("patched = %v", patched)
		}
		patched = b.do("PATCH", "/api/organizations/"+newID, b.a.admin, map[string]any{
			"settings": map[string]any{"defaultIncludeWildcard": false}}).want(t, 200).obj(t)
		settings = patched["settings"].(map[string]any)
		if patched["name"] != "Initrode" || settings["defaultIncludeWildcard"] != false || len(settings) != 1 {
			t.Fatalf("patched settings = %v", patched)
		}
		// Renaming to its own name (any case) is no conflict.
		b.do("PATCH", "/api/organizations/"+newID, b.a.admin, map[string]any{"name": "INITRODE"}).want(t, 200)

		// A plain member may read but not change the organization.
		if _, err := b.db.SQL().Exec(`INSERT INTO organization_members (org_id, user_id, role, created_at) VALUES ($1, $2, 'member', 0)`,
			newID, b.b.user.ID); err != nil {
			t.Fatal(err)
		}
		before := b.dump()
		b.do("PATCH", "/api/organizations/"+newID, b.b.admin, map[string]any{"name": "Hijacked"}).wantProblem(t, 403)
		if b.dump() != before {
			t.Fatal("forbidden patch changed the database")
		}
		items = b.do("GET", "/api/organizations", b.b.read, nil).want(t, 200).items(t)
		if len(items) != 2 || !ids(items)[newID] {
			t.Fatalf("member's orgs = %v", items)
		}
		for _, it := range items {
			if it["id"] == newID && it["role"] != "member" {
				t.Errorf("role = %v", it["role"])
			}
		}
	})
}

// TestOrganizationNamesNotUnique: a name another tenant uses is no
// conflict (nobody squats a name, nobody learns which exist), and names
// are kept in their PRECIS form: widths folded, spaces mapped.
func TestOrganizationNamesNotUnique(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b := setup(t, dialect)
		created := b.do("POST", "/api/organizations", b.a.admin, map[string]any{"name": "GLOBEX"}).want(t, 201).obj(t)
		if created["id"] == b.b.org.ID || created["name"] != "GLOBEX" {
			t.Fatalf("created = %v", created)
		}
		created = b.do("POST", "/api/organizations", b.a.admin, map[string]any{"name": "Ｉｎｉｔｅｃｈ\u00a0 Corp"}).want(t, 201).obj(t)
		if created["name"] != "Initech Corp" {
			t.Fatalf("name kept as %q", created["name"])
		}
		renamed := b.do("PATCH", "/api/organizations/"+b.a.org.ID, b.a.admin, map[string]any{"name": "Globex"}).want(t, 200).obj(t)
		if renamed["name"] != "Globex" {
			t.Fatalf("renamed = %v", renamed)
		}
	})
}
