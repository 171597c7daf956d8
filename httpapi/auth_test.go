package httpapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/sqlstore"
)

func TestUnauthenticated(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b := setup(t, dialect)
		valid := b.a.admin
		for name, header := range map[string]string{
			"missing":          "",
			"scheme only":      "Bearer",
			"basic":            "Basic " + valid,
			"garbage":          "Bearer hunter2",
			"bad checksum":     "Bearer " + valid[:len(valid)-1] + flip(valid[len(valid)-1]),
			"unknown token":    "Bearer " + mustToken(t),
			"token and more":   "Bearer " + valid + " x",
			"wrong scheme aka": "Token " + valid,
		} {
			for _, route := range [][2]string{{"GET", "/api/domains"}, {"POST", "/api/domains"}, {"GET", "/api/audit"}, {"DELETE", "/api/tokens/" + b.a.adminID}} {
				before := b.dump()
				r := b.do(route[0], route[1], "", map[string]any{"domainName": "x.example.com"}, "Authorization", header)
				r.wantProblem(t, 401)
				if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("%s %v: WWW-Authenticate = %q", name, route, r.header.Get("WWW-Authenticate"))
				}
				if r.header.Get("RateLimit-Limit") != "" {
					t.Errorf("%s: unauthenticated request counted against a budget", name)
				}
				if b.dump() != before {
					t.Fatalf("%s %v changed the database", name, route)
				}
			}
		}
		// The scheme name is case-insensitive.
		b.do("GET", "/api/domains", "", nil, "Authorization", "bearer "+valid).want(t, 200)
		// Health, readiness and the document need no token.
		b.do("GET", "/healthz", "", nil).want(t, 200)
		b.do("GET", "/readyz", "", nil).want(t, 200)
		b.do("GET", "/openapi.json", "", nil).want(t, 200)
	})
}

func flip(c byte) string {
	if c == 'a' {
		return "b"
	}
	return "a"
}

func TestTokenExpiry(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b := setup(t, dialect)
		exp := b.clock.Now().Add(time.Hour)
		tok := b.do("POST", "/api/tokens", b.a.admin, map[string]any{"name": "short", "role": "admin", "expiresAt": exp}).want(t, 201).obj(t)
		secret := tok["token"].(string)
		b.do("GET", "/api/domains", secret, nil).want(t, 200)
		b.clock.Advance(59 * time.Minute)
		b.do("GET", "/api/domains", secret, nil).want(t, 200)
		b.clock.Advance(2 * time.Minute)
		b.do("GET", "/api/domains", secret, nil).wantProblem(t, 401)
		b.do("GET", "/api/domains", b.a.admin, nil).want(t, 200) // tokens without expiry live on
	})
}

// TestReadOnlyToken: a read token is refused every mutation with 403, and
// nothing changes; reads work.
func TestReadOnlyToken(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b := setup(t, dialect)
		d := b.createDomain(b.a.admin, "shop.example.com")
		id := d["id"].(string)
		jobID := d["latestJob"].(map[string]any)["id"].(string)
		b.setDomainStatus(b.a.org.ID, id, dcvaas.DomainActive)
		b.failJob(b.a.org.ID, jobID)
		mutations := []struct {
			method, path string
			body         any
		}{
			{"POST", "/api/domains", map[string]any{"domainName": "new.example.com"}},
			{"POST", "/api/domains/" + id + "/verify", nil},
			{"POST", "/api/domains/" + id + "/issue", nil},
			{"POST", "/api/domains/" + id + "/renew", nil},
			{"DELETE", "/api/domains/" + id, nil},
			{"POST", "/api/jobs/" + jobID + "/retry", nil},
			{"POST", "/api/organizations", map[string]any{"name": "Mine"}},
			{"PATCH", "/api/organizations/" + b.a.org.ID, map[string]any{"name": "Mine"}},
			{"POST", "/api/tokens", map[string]any{"name": "escalate", "role": "admin"}},
			{"DELETE", "/api/tokens/" + b.a.adminID, nil},
			{"DELETE", "/api/tokens/" + b.a.readToken.ID, nil},
		}
		before := b.dump()
		for _, m := range mutations {
			b.do(m.method, m.path, b.a.read, m.body).wantProblem(t, 403)
		}
		if b.dump() != before {
			t.Fatal("a read token changed the database")
		}
		for _, path := range []string{"/api/domains", "/api/domains/" + id, "/api/jobs", "/api/jobs/" + jobID, "/api/organizations", "/api/tokens", "/api/audit"} {
			b.do("GET", path, b.a.read, nil).want(t, 200)
		}
	})
}

// TestLastUsed: a token's use is recorded, but at most once a minute.
func TestLastUsed(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b := setup(t, dialect)
		lastUsed := func() time.Time {
			t.Helper()
			toks, _, err := b.db.ListTokens(context.Background(), b.a.org.ID, dcvaas.Page{Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			for _, tok := range toks {
				if tok.ID == b.a.readToken.ID {
					if tok.LastUsedAt == nil {
						return time.Time{}
					}
					return *tok.LastUsedAt
				}
			}
			t.Fatal("read token not listed")
			return time.Time{}
		}
		if !lastUsed().IsZero() {
			t.Fatal("unused token has lastUsedAt")
		}
		b.do("GET", "/api/domains", b.a.read, nil).want(t, 200)
		first := lastUsed()
		if first.IsZero() {
			t.Fatal("use not recorded")
		}
		b.clock.Advance(30 * time.Second)
		b.do("GET", "/api/domains", b.a.read, nil).want(t, 200)
		if !lastUsed().Equal(first) {
			t.Fatal("use recorded twice within a minute")
		}
		b.clock.Advance(31 * time.Second)
		b.do("GET", "/api/domains", b.a.read, nil).want(t, 200)
		if !lastUsed().After(first) {
			t.Fatal("use after a minute not recorded")
		}
	})
}

// TestAuditActor: entries record the token, the user, the peer address (not
// X-Forwarded-For, which anyone can send) and the user agent.
func TestAuditActor(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b := setup(t, dialect)
		b.do("POST", "/api/domains", b.a.admin, map[string]any{"domainName": "shop.example.com"},
			"User-Agent", "dcvaas-test/1", "X-Forwarded-For", "203.0.113.9").want(t, 201)
		items := b.do("GET", "/api/audit?action=domain.created", b.a.read, nil).want(t, 200).items(t)
		if len(items) != 1 {
			t.Fatalf("audit = %v", items)
		}
		e := items[0]
		if e["ip"] != "127.0.0.1" || e["userAgent"] != "dcvaas-test/1" || e["tokenId"] != b.a.adminID || e["userId"] != b.a.user.ID {
			t.Fatalf("entry = %v", e)
		}
		if r := b.do("GET", "/api/domains", b.a.read, nil, "Authorization", ""); r.status != http.StatusUnauthorized {
			t.Fatalf("empty Authorization: %d", r.status)
		}
	})
}
