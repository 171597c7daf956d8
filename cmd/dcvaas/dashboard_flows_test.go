package main

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/dcvaas/dcvaas/provider/providertest"
	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/dcvaas/dcvaas/sqlstore/storetest"
)

// Single sign-on in a real browser against a real serve and a local OIDC
// provider (issue 17): a member signs in with the SSO button, an unknown
// e-mail is refused with a page that says why.
func TestSSOInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("drives Chromium against a serve")
	}
	chromiumPath(t)
	idp, err := mockoidc.Run()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idp.Shutdown() })
	addr := freeLoopbackAddr(t)
	vars := map[string]string{
		"DCVAAS_DATABASE_URL":       filepath.Join(t.TempDir(), "sso.db"),
		"DCVAAS_VERIFY_ZONE":        "verify.example",
		"DCVAAS_HTTP_ADDR":          addr,
		"DCVAAS_PUBLIC_URL":         "http://" + addr,
		"DCVAAS_OIDC_ISSUER":        idp.Issuer(),
		"DCVAAS_OIDC_CLIENT_ID":     idp.ClientID,
		"DCVAAS_OIDC_CLIENT_SECRET": idp.ClientSecret,
	}
	bootstrapOrg(t, vars) // owner ops@acme.test
	base := startServe(t, vars)

	p := newPage(t)
	idp.QueueUser(&mockoidc.MockUser{Subject: "owner", Email: "ops@acme.test", EmailVerified: true})
	p.do(chromedp.Navigate(base+"/domains"), chromedp.WaitVisible(chromedp.CSS("#sso")))
	p.a11y("/signin")
	p.screenshot("signin-sso")
	p.do(chromedp.Click(chromedp.CSS("#sso")), chromedp.WaitVisible(chromedp.CSS("#domainName")))
	if h1, path := p.text("h1"), eval[string](p, `location.pathname`); h1 != "Domains" || path != "/domains" {
		t.Fatalf("after SSO the page is %q at %s", h1, path)
	}
	if role := strings.TrimSpace(p.text(".signout .role")); role != "owner" {
		t.Fatalf("signed in as %q", role)
	}
	// The owner adds a member by e-mail on the Members page.
	p.do(chromedp.Navigate(base+"/members"), chromedp.WaitVisible(chromedp.CSS("#email")),
		chromedp.SendKeys(chromedp.CSS("#email"), "jane@acme.test"),
		chromedp.SetValue(chromedp.CSS("#role"), "admin"),
		chromedp.Submit(chromedp.CSS("#email")),
		chromedp.WaitVisible(chromedp.CSS(".flash")))
	if rows := eval[string](p, `Array.from(document.querySelectorAll(".member-email, .member-role")).map(e => e.textContent).join(" ")`); rows != "ops@acme.test (you) owner jane@acme.test admin" {
		t.Fatalf("members: %q", rows)
	}
	p.a11y("/members")
	p.screenshot("members")
	if errs := p.consoleErrors(); len(errs) > 0 {
		t.Fatalf("console errors: %v", errs)
	}

	// Sign out; an e-mail no organization knows is refused, and says so.
	p.do(chromedp.Click(chromedp.CSS(".signout button")), chromedp.WaitVisible(chromedp.CSS("#sso")))
	idp.QueueUser(&mockoidc.MockUser{Subject: "stranger", Email: "stranger@else.test", EmailVerified: true})
	p.do(chromedp.Click(chromedp.CSS("#sso")), chromedp.WaitVisible(chromedp.CSS(".error")))
	if msg := p.text(".error"); !strings.Contains(msg, "stranger@else.test is not a member of any organization") {
		t.Fatalf("unknown e-mail page says %q", msg)
	}
	if n := eval[float64](p, `document.querySelectorAll("#domainName").length`); n != 0 || p.text("h1") != "Sign in" {
		t.Fatal("the unknown e-mail got in")
	}
}

// freeLoopbackAddr is a loopback address with a port free now: for a serve
// whose public URL (where a provider sends browsers back) must be known
// before it starts.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Connect the fake Cloudflare through OAuth in a real browser, then
// "Create it for me" on a new domain's page: the CNAME is created at the
// provider, the check finds it, Pebble issues, and the page turns active
// by itself (issue 17).
func TestCreateItForMeInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("issues a real certificate from an in-process Pebble")
	}
	chromiumPath(t)
	w := newIssuanceWorld(t, storetest.URL(t, sqlstore.SQLite))
	cf, oauth := providertest.NewCloudflare(t), providertest.NewOAuth(t)
	oauth.OnToken, oauth.OnRevoke = cf.AddToken, cf.RevokeToken
	cf.AddZone("example.com")
	cf.OnCNAME = func(name, target string) { w.dns.Delegate(strings.TrimPrefix(name, "_acme-challenge."), target) }
	addr := freeLoopbackAddr(t)
	for k, v := range map[string]string{
		"DCVAAS_HTTP_ADDR":                      addr,
		"DCVAAS_PUBLIC_URL":                     "http://" + addr,
		"DCVAAS_CLOUDFLARE_API_URL":             cf.URL(),
		"DCVAAS_OAUTH_CLOUDFLARE_CLIENT_ID":     oauth.ClientID,
		"DCVAAS_OAUTH_CLOUDFLARE_CLIENT_SECRET": oauth.ClientSecret,
		"DCVAAS_OAUTH_CLOUDFLARE_AUTH_URL":      oauth.AuthURL(),
		"DCVAAS_OAUTH_CLOUDFLARE_TOKEN_URL":     oauth.TokenURL(),
	} {
		w.vars[k] = v
	}
	admin, _ := bootstrapOrg(t, w.vars)
	base := w.serve(t)

	p := newPage(t)
	p.signIn(base, admin)
	p.do(chromedp.Navigate(base+"/settings"),
		chromedp.Click(chromedp.CSS(`form[action="/settings/connect/cloudflare"] button`)),
		chromedp.WaitVisible(chromedp.CSS("#oauth-result")))
	if msg := p.text("#oauth-result"); !strings.Contains(msg, "connected") {
		t.Fatalf("OAuth outcome: %q", msg)
	}
	p.a11y("/settings")
	p.screenshot("settings")

	name := "shop-" + randLabel(5) + ".example.com"
	p.do(chromedp.Navigate(base+"/domains"),
		chromedp.SendKeys(chromedp.CSS("#domainName"), name),
		chromedp.Submit(chromedp.CSS("#domainName")),
		chromedp.WaitVisible(chromedp.CSS(".create-for-me")))
	p.do(chromedp.Click(chromedp.CSS(".create-for-me")), chromedp.WaitVisible(chromedp.CSS(".flash")))
	if msg := p.text(".flash"); !strings.Contains(msg, "Created the CNAME in example.com") {
		t.Fatalf("Create it for me: %q", msg)
	}
	if recs := cf.Records("_acme-challenge." + name); len(recs) != 1 || recs[0].Content != strings.TrimSpace(p.text("#cname-value")) {
		t.Fatalf("records at the provider %+v, page shows %q", recs, p.text("#cname-value"))
	}
	eval[bool](p, `window.notReloaded = true`)
	p.waitText("#domain-status", "active", 90*time.Second)
	if !eval[bool](p, `window.notReloaded === true`) {
		t.Fatal("the page was reloaded")
	}
	if errs := p.consoleErrors(); len(errs) > 0 {
		t.Fatalf("console errors: %v", errs)
	}
}
