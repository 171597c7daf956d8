package main

import (
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/oauth2-proxy/mockoidc"
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
	// The provider sends the browser back to the public URL: serve must
	// listen on a port known before it starts.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
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
