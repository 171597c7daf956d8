package httpapi_test

import (
	"testing"

	"github.com/dcvaas/dcvaas/sqlstore"
)

// TestSecretResponsesNoStore: every response that carries a secret (a new
// token, an OAuth authorization URL with its state, a redirect to it) says
// Cache-Control: no-store, and so do the problems of those operations;
// reading a list of tokens (no secret) does not need to.
func TestSecretResponsesNoStore(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		p := setupProviders(t, dialect)
		for _, r := range []struct {
			name string
			res  *response
		}{
			{"token created", p.do("POST", "/api/tokens", p.a.admin, map[string]any{"name": "ci", "role": "read"}).want(t, 201)},
			{"token refused", p.do("POST", "/api/tokens", p.a.admin, map[string]any{"name": "ci", "role": "root"}).want(t, 422)},
			{"token unauthenticated", p.do("POST", "/api/tokens", "", map[string]any{"name": "ci", "role": "read"}).want(t, 401)},
			{"authorize url", p.do("GET", "/api/oauth/cloudflare/authorize", p.a.admin, nil, "Accept", "application/json").want(t, 200)},
			{"authorize redirect", p.do("GET", "/api/oauth/cloudflare/authorize", p.a.admin, nil).want(t, 302)},
			{"callback", p.do("GET", "/api/oauth/cloudflare/callback?state=x&code=y", "", nil)},
		} {
			if got := r.res.header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("%s: Cache-Control %q, want no-store", r.name, got)
			}
		}
	})
}
