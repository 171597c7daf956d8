package web_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/oauth2-proxy/mockoidc"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/session"
	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/dcvaas/dcvaas/web"
)

// withSSO serves the dashboard with single sign-on at a local OIDC
// provider, and returns the provider.
func (b *bundle) withSSO(autoJoin string, role dcvaas.MemberRole) *mockoidc.MockOIDC {
	b.t.Helper()
	m, err := mockoidc.Run()
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(func() { m.Shutdown() })
	b.srv.Close()
	b.srv = httptest.NewServer(web.New(web.Deps{Store: b.db, Sessions: session.NewManager(b.db, "", b.clock.Now),
		VerifyZone: "verify.example.net", Clock: b.clock.Now,
		SSO: &web.SSO{Issuer: m.Issuer(), ClientID: m.ClientID, ClientSecret: m.ClientSecret, AutoJoinOrg: autoJoin, AutoJoinRole: role}}))
	b.t.Cleanup(b.srv.Close)
	return m
}

// ssoSignIn runs the flow: our start page, the provider (tamper may change
// its URL, as an attacker in the middle could), then our callback (whose
// URL tamperBack may change). It returns the callback's answer.
func (br *browser) ssoSignIn(next string, tamper, tamperBack func(*url.URL)) resp {
	t := br.b.t
	t.Helper()
	start := br.send("GET", "/signin/sso?"+url.Values{"next": {next}}.Encode(), nil)
	if start.status != http.StatusFound {
		t.Fatalf("SSO start: %d %s", start.status, start.body)
	}
	if br.cookies["dcvaas_sso"] == nil || !br.cookies["dcvaas_sso"].HttpOnly || br.cookies["dcvaas_sso"].Path != "/signin/sso" {
		t.Fatalf("flow cookie %+v", br.cookies["dcvaas_sso"])
	}
	auth, err := url.Parse(start.header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	q := auth.Query()
	if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("nonce") == "" || q.Get("state") == "" ||
		q.Get("redirect_uri") != br.b.srv.URL+"/signin/sso/callback" || !strings.Contains(q.Get("scope"), "email") {
		t.Fatalf("authorization request %s", auth)
	}
	if tamper != nil {
		tamper(auth)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Get(auth.String())
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	back, err := url.Parse(res.Header.Get("Location"))
	if res.StatusCode != http.StatusFound || err != nil || back.Path != "/signin/sso/callback" {
		t.Fatalf("provider answered %d to %s", res.StatusCode, res.Header.Get("Location"))
	}
	if tamperBack != nil {
		tamperBack(back)
	}
	return br.send("GET", back.RequestURI(), nil)
}

func TestSSO(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d sqlstore.Dialect) {
		b := setup(t, d, "")
		// Without configuration there is no SSO button and no SSO route.
		if r := b.browser().send("GET", "/signin", nil); strings.Contains(r.body, "Sign in with SSO") {
			t.Fatal("SSO offered without configuration")
		}
		if r := b.browser().send("GET", "/signin/sso", nil); r.status != http.StatusNotFound {
			t.Fatalf("SSO start without configuration: %d", r.status)
		}
		m := b.withSSO("", "")
		if r := b.browser().send("GET", "/signin?next=/jobs", nil); !strings.Contains(r.body, `href="/signin/sso?next=%2Fjobs"`) ||
			!strings.Contains(r.body, "Sign in with SSO") {
			t.Fatal("sign-in page lacks the SSO button")
		}

		// Happy path: the owner's verified e-mail signs in to their
		// organization with the owner's rights, audited.
		m.QueueUser(&mockoidc.MockUser{Subject: "u1", Email: "OPS@acme.example", EmailVerified: true})
		br := b.browser()
		r := br.ssoSignIn("/domains", nil, nil)
		if r.status != http.StatusSeeOther || r.header.Get("Location") != "/domains" || br.cookies[session.CookieName] == nil {
			t.Fatalf("SSO sign-in: %d %s %s", r.status, r.header.Get("Location"), r.body)
		}
		if _, ok := br.cookies["dcvaas_sso"]; ok {
			t.Fatal("the flow cookie outlives the sign-in")
		}
		page := br.send("GET", "/domains", nil)
		if page.status != 200 || !strings.Contains(page.body, `id="domainName"`) || !strings.Contains(page.body, "owner") {
			t.Fatalf("signed-in page: %d", page.status)
		}
		if r := br.send("POST", "/domains", url.Values{"domainName": {"sso.example.com"}, "csrf": {br.csrf()}}); r.status != http.StatusSeeOther {
			t.Fatalf("owner adds a domain: %d", r.status)
		}
		ctx := context.Background()
		audit, _, _ := b.db.ListAudit(ctx, b.orgA.ID, dcvaas.AuditFilter{Action: "session.created", Page: dcvaas.Page{Limit: 10}})
		if len(audit) == 0 || audit[0].Details["method"] != "sso" || audit[0].UserID == "" || audit[0].TokenID != "" {
			t.Fatalf("SSO sign-in audit: %+v", audit)
		}
		created, _, _ := b.db.ListAudit(ctx, b.orgA.ID, dcvaas.AuditFilter{Action: "domain.created", Page: dcvaas.Page{Limit: 10}})
		if len(created) != 1 || created[0].UserID != audit[0].UserID {
			t.Fatalf("domain added through SSO audited as %+v", created)
		}
		// The replayed callback (same code, state) finds no flow cookie.
		if r := br.send("GET", "/signin/sso/callback?state=x&code=y", nil); r.status != http.StatusBadRequest {
			t.Fatalf("callback without a flow: %d", r.status)
		}

		// Wrong state: refused, no session.
		m.QueueUser(&mockoidc.MockUser{Subject: "u1", Email: "ops@acme.example", EmailVerified: true})
		anon := b.browser()
		r = anon.ssoSignIn("/", nil, func(u *url.URL) {
			q := u.Query()
			q.Set("state", "forged")
			u.RawQuery = q.Encode()
		})
		if r.status != http.StatusBadRequest || anon.cookies[session.CookieName] != nil || !strings.Contains(r.body, "state does not match") {
			t.Fatalf("wrong state: %d %v", r.status, anon.cookies)
		}
		// Wrong nonce: the ID token is for another sign-in.
		m.QueueUser(&mockoidc.MockUser{Subject: "u1", Email: "ops@acme.example", EmailVerified: true})
		anon = b.browser()
		r = anon.ssoSignIn("/", func(u *url.URL) {
			q := u.Query()
			q.Set("nonce", "someone-elses")
			u.RawQuery = q.Encode()
		}, nil)
		if r.status != http.StatusBadRequest || anon.cookies[session.CookieName] != nil || !strings.Contains(r.body, "nonce") {
			t.Fatalf("wrong nonce: %d %v", r.status, anon.cookies)
		}
		// A wrong PKCE challenge: the provider refuses the code exchange.
		m.QueueUser(&mockoidc.MockUser{Subject: "u1", Email: "ops@acme.example", EmailVerified: true})
		anon = b.browser()
		r = anon.ssoSignIn("/", func(u *url.URL) {
			q := u.Query()
			q.Set("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
			u.RawQuery = q.Encode()
		}, nil)
		if r.status != http.StatusBadGateway || anon.cookies[session.CookieName] != nil {
			t.Fatalf("wrong PKCE challenge: %d", r.status)
		}
		// An unverified e-mail is refused, even a member's.
		m.QueueUser(&mockoidc.MockUser{Subject: "u1", Email: "ops@acme.example", EmailVerified: false})
		anon = b.browser()
		r = anon.ssoSignIn("/", nil, nil)
		if r.status != http.StatusForbidden || anon.cookies[session.CookieName] != nil || !strings.Contains(r.body, "has not verified ops@acme.example") {
			t.Fatalf("unverified e-mail: %d %s", r.status, r.body)
		}
		// An unknown e-mail is refused with a page that says why.
		m.QueueUser(&mockoidc.MockUser{Subject: "u2", Email: "stranger@else.example", EmailVerified: true})
		anon = b.browser()
		r = anon.ssoSignIn("/", nil, nil)
		if r.status != http.StatusForbidden || anon.cookies[session.CookieName] != nil ||
			!strings.Contains(r.body, "stranger@else.example is not a member of any organization") {
			t.Fatalf("unknown e-mail: %d %s", r.status, r.body)
		}
		if _, _, err := b.db.MembershipsByEmail(ctx, "stranger@else.example"); dcvaas.ErrorCode(err) != dcvaas.ENOTFOUND {
			t.Fatalf("a refused e-mail became a user: %v", err)
		}

		// Ending the membership ends the SSO session at its next request.
		owner, _, _ := b.db.MembershipsByEmail(ctx, "ops@acme.example")
		admin := dcvaas.Actor{OrgID: b.orgA.ID, UserID: owner.ID}
		if _, err := b.db.AddMember(ctx, admin, b.orgA.ID, "second@acme.example", dcvaas.RoleOwner); err != nil {
			t.Fatal(err)
		}
		if err := b.db.RemoveMember(ctx, dcvaas.Actor{OrgID: b.orgA.ID, UserID: mustUser(t, b, "second@acme.example")}, b.orgA.ID, owner.ID); err != nil {
			t.Fatal(err)
		}
		if r := br.send("GET", "/domains", nil); r.status != http.StatusSeeOther {
			t.Fatalf("session after its membership ended: %d", r.status)
		}
	})
}

func mustUser(t *testing.T, b *bundle, email string) string {
	t.Helper()
	u, _, err := b.db.MembershipsByEmail(context.Background(), email)
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
}

// An unknown verified e-mail joins the configured organization with the
// configured role: here viewer, which is read-only.
func TestSSOAutoJoin(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d sqlstore.Dialect) {
		b := setup(t, d, "")
		m := b.withSSO(b.orgA.ID, dcvaas.RoleViewer)
		m.QueueUser(&mockoidc.MockUser{Subject: "u3", Email: "new@acme.example", EmailVerified: true})
		br := b.browser()
		if r := br.ssoSignIn("/", nil, nil); r.status != http.StatusSeeOther {
			t.Fatalf("auto-join sign-in: %d %s", r.status, r.body)
		}
		ctx := context.Background()
		_, orgs, err := b.db.MembershipsByEmail(ctx, "new@acme.example")
		if err != nil || len(orgs) != 1 || orgs[0].ID != b.orgA.ID || orgs[0].Role != dcvaas.RoleViewer {
			t.Fatalf("memberships after auto-join: %v %v", orgs, err)
		}
		joined, _, _ := b.db.ListAudit(ctx, b.orgA.ID, dcvaas.AuditFilter{Action: "member.joined", Page: dcvaas.Page{Limit: 10}})
		if len(joined) != 1 || joined[0].Details["email"] != "new@acme.example" || joined[0].Details["role"] != "viewer" {
			t.Fatalf("member.joined: %+v", joined)
		}
		page := br.send("GET", "/domains", nil)
		if page.status != 200 || strings.Contains(page.body, `id="domainName"`) {
			t.Fatalf("viewer's page: %d, add form shown: %v", page.status, strings.Contains(page.body, `id="domainName"`))
		}
		if r := br.send("POST", "/domains", url.Values{"domainName": {"x.example.com"}, "csrf": {br.csrf()}}); r.status != http.StatusForbidden {
			t.Fatalf("viewer's POST: %d", r.status)
		}
		// A second sign-in does not join again.
		m.QueueUser(&mockoidc.MockUser{Subject: "u3", Email: "new@acme.example", EmailVerified: true})
		if r := b.browser().ssoSignIn("/", nil, nil); r.status != http.StatusSeeOther {
			t.Fatalf("second sign-in: %d", r.status)
		}
		if joined, _, _ := b.db.ListAudit(ctx, b.orgA.ID, dcvaas.AuditFilter{Action: "member.joined", Page: dcvaas.Page{Limit: 10}}); len(joined) != 1 {
			t.Fatalf("joined again: %d", len(joined))
		}
	})
}

// A single sign-on belonging to two organizations switches between them,
// with each membership's role; a token's session cannot switch.
func TestSSOSwitchOrganization(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d sqlstore.Dialect) {
		b := setup(t, d, "")
		ctx := context.Background()
		globexOwner, globex, err := b.db.MembershipsByEmail(ctx, "ops@globex.example")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.db.AddMember(ctx, dcvaas.Actor{OrgID: globex[0].ID, UserID: globexOwner.ID}, globex[0].ID, "ops@acme.example", dcvaas.RoleViewer); err != nil {
			t.Fatal(err)
		}
		m := b.withSSO("", "")
		m.QueueUser(&mockoidc.MockUser{Subject: "u1", Email: "ops@acme.example", EmailVerified: true})
		br := b.browser()
		if r := br.ssoSignIn("/", nil, nil); r.status != http.StatusSeeOther {
			t.Fatalf("sign-in: %d", r.status)
		}
		page := br.send("GET", "/domains", nil).body
		if !strings.Contains(page, `id="org-switch"`) || !strings.Contains(page, "Globex (viewer)") || !strings.Contains(page, `id="domainName"`) {
			t.Fatal("no switcher, or not signed in to Acme as owner")
		}
		csrf := br.csrf()
		if r := br.send("POST", "/switch", url.Values{"org": {"nonexistent"}, "csrf": {csrf}}); r.status != http.StatusNotFound {
			t.Fatalf("switch to a foreign organization: %d", r.status)
		}
		if r := br.send("POST", "/switch", url.Values{"org": {globex[0].ID}, "csrf": {csrf}}); r.status != http.StatusSeeOther {
			t.Fatalf("switch: %d", r.status)
		}
		page = br.send("GET", "/domains", nil).body
		if strings.Contains(page, `id="domainName"`) || !strings.Contains(page, `<span class="role">viewer</span>`) {
			t.Fatal("after switching: not Globex's viewer")
		}
		if r := br.send("POST", "/domains", url.Values{"domainName": {"x.example.com"}, "csrf": {br.csrf()}}); r.status != http.StatusForbidden {
			t.Fatalf("viewer's POST after switching: %d", r.status)
		}
		// A token's session stays in its token's organization.
		tok := b.browser()
		tok.signIn(b.admin, "/")
		if r := tok.send("POST", "/switch", url.Values{"org": {globex[0].ID}, "csrf": {tok.csrf()}}); r.status != http.StatusNotFound {
			t.Fatalf("token session switch: %d", r.status)
		}
		if strings.Contains(tok.send("GET", "/domains", nil).body, "org-switch") {
			t.Fatal("token session shows the switcher")
		}
	})
}
