package connection_test

import (
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/connection"
)

// The whole flow: authorize → consent → callback → connection stored →
// one-click setup creates the CNAME → dns_check queued.
func TestOAuthFlowToDNSSetup(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b *bundle) {
		b.cf.AddZone("example.co.uk")
		d := b.newDomain(t, "a.b.example.co.uk")

		authURL, err := b.svc.Authorize(b.ctx, b.actor, "cloudflare")
		if err != nil {
			t.Fatal(err)
		}
		// What the start page sent the browser to the provider with.
		cb := b.consent(t, authURL)
		auths := b.oauth.Authorizations()
		q := auths[len(auths)-1]
		if q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43 || len(q.Get("state")) < 43 ||
			q.Get("redirect_uri") != publicURL+"/api/oauth/cloudflare/callback" ||
			q.Get("scope") != "zone:read dns_records:edit offline_access" || q.Get("response_type") != "code" {
			t.Fatalf("consent URL query %v", q)
		}
		if q.Get("state") != must(url.Parse(authURL)).Query().Get("state") {
			t.Fatalf("start page changed the state: %v", q)
		}
		redirect, conn, err := b.svc.Callback(b.ctx, "cloudflare", b.params(cb))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(redirect, publicURL+"/settings?oauth=success") || !strings.Contains(redirect, "connectionId="+conn.ID) {
			t.Fatalf("redirect %s", redirect)
		}
		if conn.Kind != dcvaas.ConnectionOAuth || conn.Status != dcvaas.ConnectionActive || conn.SecretEnc != "" ||
			conn.TokenExpiresAt == nil || conn.CreatedBy != b.actor.UserID {
			t.Fatalf("connection %+v", conn)
		}
		created, _, _ := b.db.ListAudit(b.ctx, b.actor.OrgID, dcvaas.AuditFilter{Action: "connection.created", Page: dcvaas.Page{Limit: 5}})
		if len(created) != 1 || created[0].IP != "198.51.100.7" || created[0].UserID != b.actor.UserID {
			t.Fatalf("audit %+v", created)
		}

		res, err := b.svc.SetupDNS(b.ctx, b.actor, d.ID, connection.SetupInput{ConnectionID: conn.ID})
		if err != nil {
			t.Fatal(err)
		}
		if res.Zone != "example.co.uk" || res.Outcome != connection.OutcomeCreated || res.Job == nil || res.Job.Type != dcvaas.JobDNSCheck {
			t.Fatalf("setup %+v", res)
		}
		recs := b.cf.Records("_acme-challenge.a.b.example.co.uk")
		if len(recs) != 1 || recs[0].Type != "CNAME" || recs[0].Content != d.CNAMETarget || recs[0].TTL != 300 || recs[0].Proxied {
			t.Fatalf("records %+v", recs)
		}
		jobs, _, _ := b.db.ListJobs(b.ctx, b.actor.OrgID, dcvaas.JobFilter{DomainID: d.ID, Type: dcvaas.JobDNSCheck, Page: dcvaas.Page{Limit: 10}})
		if len(jobs) != 2 { // one from creating the domain, one from the setup
			t.Fatalf("dns_check jobs = %d", len(jobs))
		}
		setups, _, _ := b.db.ListAudit(b.ctx, b.actor.OrgID, dcvaas.AuditFilter{Action: "domain.dns_setup", Page: dcvaas.Page{Limit: 5}})
		if len(setups) != 1 || setups[0].Details["outcome"] != "created" || setups[0].Details["zone"] != "example.co.uk" {
			t.Fatalf("audit %+v", setups)
		}

		b.assertNoLeak(t, append(b.oauth.Issued(), cb.Get("code"), cb.Get("state"), b.oauth.ClientSecret)...)
	})
}

func TestCallbackRefusals(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b *bundle) {
		b.cf.AddZone("example.com")
		callback := func(p connection.CallbackParams) string {
			t.Helper()
			redirect, conn, err := b.svc.Callback(b.ctx, "cloudflare", p)
			if err == nil || conn != nil {
				t.Fatalf("callback succeeded: %s", redirect)
			}
			return reason(t, redirect)
		}
		authorize := func() string {
			t.Helper()
			u, err := b.svc.Authorize(b.ctx, b.actor, "cloudflare")
			if err != nil {
				t.Fatal(err)
			}
			return u
		}

		t.Run("denied consent", func(t *testing.T) {
			b.oauth.SetDeny(true)
			defer b.oauth.SetDeny(false)
			cb := b.consent(t, authorize())
			if got := callback(b.params(cb)); got != connection.ReasonAccessDenied {
				t.Fatalf("reason %s", got)
			}
			// The state died with the refusal.
			cb.Del("error")
			cb.Set("code", "forged")
			if got := callback(b.params(cb)); got != connection.ReasonReplayedState {
				t.Fatalf("reason after denial %s", got)
			}
		})
		t.Run("wrong state", func(t *testing.T) {
			cb := b.consent(t, authorize())
			cb.Set("state", "x"+cb.Get("state"))
			if got := callback(b.params(cb)); got != connection.ReasonInvalidState {
				t.Fatalf("reason %s", got)
			}
			cb.Del("state")
			if got := callback(b.params(cb)); got != connection.ReasonInvalidState {
				t.Fatalf("reason without state %s", got)
			}
		})
		t.Run("expired state", func(t *testing.T) {
			cb := b.consent(t, authorize())
			b.clock.Advance(connection.StateTTL + time.Second)
			if got := callback(b.params(cb)); got != connection.ReasonExpiredState {
				t.Fatalf("reason %s", got)
			}
		})
		t.Run("replayed state", func(t *testing.T) {
			cb := b.consent(t, authorize())
			if _, _, err := b.svc.Callback(b.ctx, "cloudflare", b.params(cb)); err != nil {
				t.Fatal(err)
			}
			if got := callback(b.params(cb)); got != connection.ReasonReplayedState {
				t.Fatalf("reason %s", got)
			}
		})
		t.Run("PKCE verifier mismatch", func(t *testing.T) {
			// The code of one authorization with the state (and so the
			// verifier) of another: the server's S256 check must fail.
			first := b.consent(t, authorize())
			second := b.consent(t, authorize())
			first.Set("state", second.Get("state"))
			if got := callback(b.params(first)); got != connection.ReasonExchangeFailed {
				t.Fatalf("reason %s", got)
			}
		})
		t.Run("state of another provider", func(t *testing.T) {
			cb := b.consent(t, authorize())
			redirect, _, err := b.svc.Callback(b.ctx, "godaddy", b.params(cb))
			if err == nil || reason(t, redirect) != connection.ReasonUnknownProvider {
				t.Fatalf("godaddy callback: %s", redirect)
			}
		})

		list, total, _ := b.svc.List(b.ctx, b.actor.OrgID, dcvaas.Page{Limit: 10})
		if total != 1 || len(list) != 1 { // only the replay test's first callback
			t.Fatalf("connections %d", total)
		}
	})
}

func TestAuthorizeRefusals(t *testing.T) {
	b := setup(t, "sqlite")
	_, err := b.svc.Authorize(b.ctx, b.actor, "godaddy") // no OAuth configured
	wantCode(t, err, dcvaas.EINVALID)
	_, err = b.svc.Authorize(b.ctx, b.actor, "nope")
	wantCode(t, err, dcvaas.EINVALID)
	reader := b.actor
	reader.TokenRole = dcvaas.TokenRead
	_, err = b.svc.Authorize(b.ctx, reader, "cloudflare")
	wantCode(t, err, dcvaas.EFORBIDDEN)
}

func TestTokenRefresh(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b *bundle) {
		b.cf.AddZone("example.com")
		conn := b.connectOAuth(t)
		before, _ := b.db.FindConnection(b.ctx, b.actor.OrgID, conn.ID)

		// Within its lifetime the token is used as it is.
		if _, err := b.svc.Test(b.ctx, b.actor, conn.ID); err != nil {
			t.Fatal(err)
		}
		if n := b.oauth.Refreshes(); n != 0 {
			t.Fatalf("refreshed %d times too early", n)
		}

		// Close to expiry it is refreshed before use.
		b.clock.Advance(time.Hour - time.Minute)
		if _, err := b.svc.Test(b.ctx, b.actor, conn.ID); err != nil {
			t.Fatal(err)
		}
		after, _ := b.db.FindConnection(b.ctx, b.actor.OrgID, conn.ID)
		if b.oauth.Refreshes() != 1 || after.SecretEnc == before.SecretEnc || !after.TokenExpiresAt.After(*before.TokenExpiresAt) {
			t.Fatalf("refreshes %d, secret changed %v", b.oauth.Refreshes(), after.SecretEnc != before.SecretEnc)
		}

		// A token the provider stops accepting early gets one refresh.
		for _, tok := range b.oauth.Issued() {
			b.cf.RevokeToken(tok)
		}
		if _, err := b.svc.Test(b.ctx, b.actor, conn.ID); err != nil {
			t.Fatal(err)
		}
		if b.oauth.Refreshes() != 2 {
			t.Fatalf("refreshes %d after a 401", b.oauth.Refreshes())
		}
		refreshed, _, _ := b.db.ListAudit(b.ctx, b.actor.OrgID, dcvaas.AuditFilter{Action: "connection.token_refreshed", Page: dcvaas.Page{Limit: 10}})
		if len(refreshed) != 2 {
			t.Fatalf("token_refreshed audits %d", len(refreshed))
		}
		b.assertNoLeak(t, b.oauth.Issued()...)
	})
}

func TestRevokedRefreshTokenNeedsReauth(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b *bundle) {
		b.cf.AddZone("example.com")
		d := b.newDomain(t, "shop.example.com")
		conn := b.connectOAuth(t)
		b.oauth.RevokeRefreshTokens()
		b.clock.Advance(2 * time.Hour)

		_, err := b.svc.Test(b.ctx, b.actor, conn.ID)
		wantCode(t, err, dcvaas.EINVALID)
		got, _ := b.svc.Get(b.ctx, b.actor.OrgID, conn.ID)
		if got.Status != dcvaas.ConnectionNeedsReauth || got.LastError == "" {
			t.Fatalf("connection %+v", got)
		}
		audits, _, _ := b.db.ListAudit(b.ctx, b.actor.OrgID, dcvaas.AuditFilter{Action: "connection.needs_reauth", Page: dcvaas.Page{Limit: 10}})
		if len(audits) != 1 {
			t.Fatalf("needs_reauth audits %d", len(audits))
		}
		// Setup through it fails plainly, without calling the provider again.
		_, err = b.svc.SetupDNS(b.ctx, b.actor, d.ID, connection.SetupInput{ConnectionID: conn.ID})
		wantCode(t, err, dcvaas.EINVALID)
		if !strings.Contains(dcvaas.ErrorMessage(err), "authorized again") {
			t.Fatalf("message %q", dcvaas.ErrorMessage(err))
		}
		// A new authorization is a new, working connection.
		fresh := b.connectOAuth(t)
		if _, err := b.svc.SetupDNS(b.ctx, b.actor, d.ID, connection.SetupInput{ConnectionID: fresh.ID}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestDeleteRevokesAtProvider(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b *bundle) {
		b.cf.AddZone("example.com")
		conn := b.connectOAuth(t)
		issued := b.oauth.Issued() // access, refresh
		if err := b.svc.Delete(b.ctx, b.actor, conn.ID); err != nil {
			t.Fatal(err)
		}
		if rev := b.oauth.Revoked(); !slices.Contains(rev, issued[1]) || !slices.Contains(rev, issued[0]) {
			t.Fatalf("revoked %d tokens", len(rev))
		}
		_, err := b.svc.Get(b.ctx, b.actor.OrgID, conn.ID)
		wantCode(t, err, dcvaas.ENOTFOUND)
		var n int
		b.db.SQL().QueryRowContext(b.ctx, `SELECT COUNT(*) FROM oauth_connections`).Scan(&n)
		if n != 0 {
			t.Fatalf("%d rows left", n)
		}
		audits, _, _ := b.db.ListAudit(b.ctx, b.actor.OrgID, dcvaas.AuditFilter{Action: "connection.deleted", Page: dcvaas.Page{Limit: 10}})
		if len(audits) != 1 || audits[0].Details["revokedAtProvider"] != true {
			t.Fatalf("audit %+v", audits)
		}
		b.assertNoLeak(t, issued...)
	})
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
