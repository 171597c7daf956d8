package httpapi_test

import (
	"strings"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas/apitoken"
	"github.com/dcvaas/dcvaas/sqlstore"
)

func TestTokens(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b := setup(t, dialect)
		exp := time.Date(2027, 1, 1, 0, 0, 0, 123456789, time.FixedZone("CET", 3600))
		created := b.do("POST", "/api/tokens", b.a.admin, map[string]any{"name": " deploy ", "role": "read", "expiresAt": exp}).want(t, 201).obj(t)
		secret, _ := created["token"].(string)
		if !apitoken.Valid(secret) || created["prefix"] != apitoken.DisplayPrefix(secret) || created["name"] != "deploy" ||
			created["role"] != "read" || created["organizationId"] != b.a.org.ID || created["expiresAt"] != "2026-12-31T23:00:00.123456Z" {
			t.Fatalf("created = %v", created)
		}
		// The new token works at once, and is read-only.
		b.do("GET", "/api/domains", secret, nil).want(t, 200)
		b.do("POST", "/api/domains", secret, map[string]any{"domainName": "x.example.com"}).wantProblem(t, 403)

		r := b.do("GET", "/api/tokens", b.a.read, nil).want(t, 200)
		items := r.items(t)
		if len(items) != 3 || items[0]["id"] != created["id"] || r.obj(t)["total"] != 3.0 {
			t.Fatalf("tokens = %s", r.body)
		}
		if strings.Contains(string(r.body), secret) || strings.Contains(string(r.body), apitoken.Hash(secret)) {
			t.Fatal("list shows a secret or hash")
		}
		for _, it := range items {
			if _, ok := it["token"]; ok {
				t.Errorf("token in list: %v", it)
			}
			if _, ok := it["hash"]; ok {
				t.Errorf("hash in list: %v", it)
			}
		}
		if items[0]["expiresAt"] != created["expiresAt"] || items[0]["lastUsedAt"] == nil {
			t.Errorf("listed = %v", items[0])
		}
		if items := b.do("GET", "/api/tokens?limit=1&offset=2", b.a.read, nil).want(t, 200).items(t); len(items) != 1 || items[0]["name"] != "bootstrap" {
			t.Errorf("page = %v", items)
		}

		// Admin token without expiry, for another org the user administers.
		other := b.do("POST", "/api/organizations", b.a.admin, map[string]any{"name": "Second"}).want(t, 201).obj(t)
		created = b.do("POST", "/api/tokens", b.a.admin, map[string]any{"name": "second", "role": "admin", "organizationId": other["id"]}).want(t, 201).obj(t)
		if created["organizationId"] != other["id"] || created["expiresAt"] != nil {
			t.Fatalf("created = %v", created)
		}
		d := b.createDomain(created["token"].(string), "second.example.com")
		if b.do("GET", "/api/domains/"+d["id"].(string), b.a.admin, nil).status != 404 {
			t.Fatal("token of the second org wrote into the first")
		}
		// Naming the caller's own organization is the same as leaving it out.
		b.do("POST", "/api/tokens", b.a.admin, map[string]any{"name": "own", "role": "read", "organizationId": b.a.org.ID}).want(t, 201)

		// Revocation is effective on the next request.
		b.do("DELETE", "/api/tokens/"+created["id"].(string), b.a.admin, nil).wantProblem(t, 404) // another org's token
		victim := b.do("POST", "/api/tokens", b.a.admin, map[string]any{"name": "victim", "role": "admin"}).want(t, 201).obj(t)
		b.do("GET", "/api/domains", victim["token"].(string), nil).want(t, 200)
		b.do("DELETE", "/api/tokens/"+victim["id"].(string), b.a.admin, nil).want(t, 204)
		b.do("GET", "/api/domains", victim["token"].(string), nil).wantProblem(t, 401)
		b.do("DELETE", "/api/tokens/"+victim["id"].(string), b.a.admin, nil).wantProblem(t, 404)
		if ids(b.do("GET", "/api/tokens", b.a.admin, nil).items(t))[victim["id"].(string)] {
			t.Fatal("revoked token still listed")
		}
		audit := b.do("GET", "/api/audit?action=token.revoked", b.a.admin, nil).want(t, 200).items(t)
		if len(audit) != 1 || audit[0]["entityId"] != victim["id"] {
			t.Fatalf("audit = %v", audit)
		}
		// A token may revoke itself.
		b.do("DELETE", "/api/tokens/"+b.a.adminID, b.a.admin, nil).want(t, 204)
		b.do("GET", "/api/tokens", b.a.admin, nil).wantProblem(t, 401)
	})
}

// TestTokenForeignOrganization: minting a token into another organization
// takes an owner or admin there.
func TestTokenForeignOrganization(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b := setup(t, dialect)
		// a's owner becomes a plain member of b's organization.
		if _, err := b.db.SQL().Exec(`INSERT INTO organization_members (org_id, user_id, role, created_at) VALUES ($1, $2, 'member', 0)`,
			b.b.org.ID, b.a.user.ID); err != nil {
			t.Fatal(err)
		}
		before := b.dump()
		b.do("POST", "/api/tokens", b.a.admin, map[string]any{"name": "x", "role": "read", "organizationId": b.b.org.ID}).wantProblem(t, 403)
		if b.dump() != before {
			t.Fatal("refused token creation changed the database")
		}
		if _, err := b.db.SQL().Exec(`UPDATE organization_members SET role = 'admin' WHERE org_id = $1 AND user_id = $2`, b.b.org.ID, b.a.user.ID); err != nil {
			t.Fatal(err)
		}
		tok := b.do("POST", "/api/tokens", b.a.admin, map[string]any{"name": "x", "role": "read", "organizationId": b.b.org.ID}).want(t, 201).obj(t)
		items := b.do("GET", "/api/domains", tok["token"].(string), nil).want(t, 200).items(t)
		if len(items) != 0 {
			t.Fatalf("items = %v", items)
		}
	})
}
