package httpapi_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas"
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

		// Not even for another organization the user owns: a token creates
		// tokens only in its own (that one's token is made another way).
		other := b.do("POST", "/api/organizations", b.a.admin, map[string]any{"name": "Second"}).want(t, 201).obj(t)
		b.do("POST", "/api/tokens", b.a.admin, map[string]any{"name": "second", "role": "admin", "organizationId": other["id"]}).wantProblem(t, 403)
		second := mustToken(t)
		if err := b.db.CreateToken(context.Background(), dcvaas.Actor{OrgID: other["id"].(string), UserID: b.a.user.ID},
			&dcvaas.Token{OrgID: other["id"].(string), UserID: b.a.user.ID, Name: "second", Prefix: apitoken.DisplayPrefix(second),
				Hash: apitoken.Hash(second), Role: dcvaas.TokenAdmin}); err != nil {
			t.Fatal(err)
		}
		created = b.do("GET", "/api/tokens", second, nil).want(t, 200).items(t)[0]
		d := b.createDomain(second, "second.example.com")
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

// TestTokenForeignOrganization: a token never mints into another
// organization, whatever the user's role there (403), and one the user is
// not a member of is not found (404).
func TestTokenForeignOrganization(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b := setup(t, dialect)
		before := b.dump()
		b.do("POST", "/api/tokens", b.a.admin, map[string]any{"name": "x", "role": "read", "organizationId": b.b.org.ID}).wantProblem(t, 404)
		for _, role := range []string{"member", "admin", "owner"} {
			if _, err := b.db.SQL().Exec(`DELETE FROM organization_members WHERE org_id = $1 AND user_id = $2`, b.b.org.ID, b.a.user.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := b.db.SQL().Exec(`INSERT INTO organization_members (org_id, user_id, role, created_at) VALUES ($1, $2, $3, 0)`,
				b.b.org.ID, b.a.user.ID, role); err != nil {
				t.Fatal(err)
			}
			before = b.dump()
			b.do("POST", "/api/tokens", b.a.admin, map[string]any{"name": "x", "role": "read", "organizationId": b.b.org.ID}).wantProblem(t, 403)
			if b.dump() != before {
				t.Fatalf("%s: refused token creation changed the database", role)
			}
		}
	})
}

// TestTokenContainment: a token creates no token with more than it has,
// records itself as the parent, and revoking it revokes what it created,
// transitively, and nothing else.
func TestTokenContainment(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b := setup(t, dialect)
		now := b.clock.Now()
		parentExp := now.Add(48 * time.Hour).UTC().Truncate(time.Second)
		mint := func(tok string, body map[string]any) map[string]any {
			t.Helper()
			return b.do("POST", "/api/tokens", tok, body).want(t, 201).obj(t)
		}
		// A token that expires cannot create one that never does, nor one
		// that outlives it; the problem names expiresAt, nothing changes.
		expiring := mint(b.a.admin, map[string]any{"name": "expiring", "role": "admin", "expiresAt": parentExp})
		if expiring["parentId"] != b.a.adminID {
			t.Fatalf("parentId %v, want %s", expiring["parentId"], b.a.adminID)
		}
		exp := expiring["token"].(string)
		for _, body := range []map[string]any{
			{"name": "forever", "role": "read"},
			{"name": "later", "role": "read", "expiresAt": parentExp.Add(time.Second)},
		} {
			before := b.dump()
			p := b.do("POST", "/api/tokens", exp, body).wantProblem(t, 422)
			if !slices.Contains(fieldsOf(p), "body.expiresAt") {
				t.Errorf("%v: problem does not name body.expiresAt: %v", body, p)
			}
			if b.dump() != before {
				t.Errorf("%v: refused token changed the database", body)
			}
		}
		child := mint(exp, map[string]any{"name": "child", "role": "admin", "expiresAt": parentExp})
		grandchild := mint(child["token"].(string), map[string]any{"name": "grandchild", "role": "read", "expiresAt": parentExp.Add(-time.Hour)})
		if child["parentId"] != expiring["id"] || grandchild["parentId"] != child["id"] {
			t.Fatalf("parents: %v, %v", child, grandchild)
		}
		sibling := mint(b.a.admin, map[string]any{"name": "sibling", "role": "admin"})
		// A read token's descendants: read-only tokens create nothing.
		b.do("POST", "/api/tokens", grandchild["token"].(string), map[string]any{"name": "x", "role": "read", "expiresAt": parentExp.Add(-2 * time.Hour)}).wantProblem(t, 403)

		// Revoking "expiring" revokes its child and grandchild at once.
		b.do("DELETE", "/api/tokens/"+expiring["id"].(string), sibling["token"].(string), nil).want(t, 204)
		for _, gone := range []map[string]any{expiring, child, grandchild} {
			b.do("GET", "/api/domains", gone["token"].(string), nil).wantProblem(t, 401)
		}
		b.do("GET", "/api/domains", sibling["token"].(string), nil).want(t, 200)
		b.do("GET", "/api/domains", b.a.admin, nil).want(t, 200)
		audit := b.do("GET", "/api/audit?action=token.revoked", b.a.admin, nil).want(t, 200).items(t)
		got := map[string]bool{}
		for _, e := range audit {
			got[e["entityId"].(string)] = true
		}
		if len(audit) != 3 || !got[expiring["id"].(string)] || !got[child["id"].(string)] || !got[grandchild["id"].(string)] {
			t.Fatalf("audit = %v", audit)
		}
		// Revoking the bootstrap token ends the sibling it created too.
		b.do("DELETE", "/api/tokens/"+b.a.adminID, b.a.admin, nil).want(t, 204)
		b.do("GET", "/api/domains", sibling["token"].(string), nil).wantProblem(t, 401)
		b.do("GET", "/api/domains", b.a.read, nil).want(t, 200) // made by the store, no parent
	})
}
