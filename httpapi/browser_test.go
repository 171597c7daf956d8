package httpapi_test

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/dcvaas/dcvaas/connection"
	"github.com/dcvaas/dcvaas/sqlstore"
)

// browser is one browser's cookies against the test server. Cookies are
// kept by hand: the server marks them Secure (the public URL is https),
// which a cookie jar would withhold from the plain-http test server.
type browser struct {
	t       *testing.T
	p       *providers
	cookies map[string]string
}

func (p *providers) browser(t *testing.T) *browser {
	return &browser{t: t, p: p, cookies: map[string]string{}}
}

// send makes one request, follows nothing, and keeps the cookies set.
func (br *browser) send(method, path string, form url.Values) *http.Response {
	br.t.Helper()
	var body *strings.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	} else {
		body = strings.NewReader("")
	}
	req, err := http.NewRequest(method, br.p.srv.URL+path, body)
	if err != nil {
		br.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", publicURL)
	}
	for k, v := range br.cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	resp, err := br.p.srv.Client().Do(req)
	if err != nil {
		br.t.Fatal(err)
	}
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.MaxAge < 0 || c.Value == "" {
			delete(br.cookies, c.Name)
		} else {
			br.cookies[c.Name] = c.Value
		}
	}
	return resp
}

// signIn pastes token into the sign-in form.
func (br *browser) signIn(token string) {
	br.t.Helper()
	resp := br.send("POST", "/signin", url.Values{"token": {token}, "next": {"/"}})
	if resp.StatusCode != http.StatusSeeOther {
		br.t.Fatalf("sign-in answered %d", resp.StatusCode)
	}
}

// local turns a public URL of ours into a path on the test server.
func local(t *testing.T, public string) string {
	t.Helper()
	if !strings.HasPrefix(public, publicURL+"/") {
		t.Fatalf("%s is not ours", public)
	}
	return strings.TrimPrefix(public, publicURL)
}

// start opens the authorize URL (our start page) and returns where it sent
// the browser: the provider's consent screen.
func (br *browser) start(authorizeURL string) *url.URL {
	br.t.Helper()
	resp := br.send("GET", local(br.t, authorizeURL), nil)
	if resp.StatusCode != http.StatusFound {
		br.t.Fatalf("start page answered %d", resp.StatusCode)
	}
	u, _ := url.Parse(resp.Header.Get("Location"))
	return u
}

// callback returns to our callback and reports where it ends.
func (br *browser) callback(path string) *url.URL {
	br.t.Helper()
	resp := br.send("GET", path, nil)
	if resp.StatusCode != http.StatusFound {
		br.t.Fatalf("callback answered %d", resp.StatusCode)
	}
	u, _ := url.Parse(resp.Header.Get("Location"))
	return u
}

// Issue 13: a browser signed in to another organization, or not signed in,
// can never complete someone else's flow, and nothing is stored.
func TestOAuthFlowBoundToSignedInAdminOverHTTP(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		p := setupProviders(t, dialect)
		p.cf.AddZone("example.com")
		authorize := func() string {
			return redirected(t, p.do("GET", "/api/oauth/cloudflare/authorize", p.a.admin, nil)).String()
		}
		wantError := func(u *url.URL, reason string) {
			t.Helper()
			if u.Scheme+"://"+u.Host+u.Path != publicURL+"/settings" || u.Query().Get("oauth") != "error" || u.Query().Get("reason") != reason {
				t.Fatalf("callback ended at %s, want reason %s", u, reason)
			}
		}

		// Not signed in: the start page sends to the sign-in page and back.
		anon := p.browser(t)
		authURL := authorize()
		resp := anon.send("GET", local(t, authURL), nil)
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusSeeOther || loc.Path != "/signin" || loc.Query().Get("next") != local(t, authURL) {
			t.Fatalf("start without a session: %d %s", resp.StatusCode, loc)
		}
		// Signing in with the other organization's admin token and coming
		// back: that flow is not theirs (404, and nothing learned).
		victim := p.browser(t)
		resp = victim.send("POST", "/signin", url.Values{"token": {p.b.admin}, "next": {loc.Query().Get("next")}})
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != local(t, authURL) {
			t.Fatalf("sign-in answered %d to %s", resp.StatusCode, resp.Header.Get("Location"))
		}
		if got := victim.send("GET", local(t, authURL), nil); got.StatusCode != http.StatusNotFound {
			t.Fatalf("other org's start page answered %d", got.StatusCode)
		}
		// A read-only sign-in of the right organization may not either.
		reader := p.browser(t)
		reader.signIn(p.a.read)
		if got := reader.send("GET", local(t, authURL), nil); got.StatusCode != http.StatusForbidden {
			t.Fatalf("read-only start page answered %d", got.StatusCode)
		}

		// The attacker starts a flow in their own browser and has the
		// victim consent: the callback in the victim's browser, signed in
		// elsewhere or not at all, completes nothing.
		attacker := p.browser(t)
		attacker.signIn(p.a.admin)
		wantError(victim.callback(p.consent(t, attacker.start(authorize()).String())), connection.ReasonOtherBrowser)
		wantError(anon.callback(p.consent(t, attacker.start(authorize()).String())), connection.ReasonOtherBrowser)
		// The browser that started it, no longer signed in, neither.
		cb := p.consent(t, attacker.start(authorize()).String())
		if resp := attacker.send("POST", "/signout", url.Values{"csrf": {"missing"}}); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("sign-out without CSRF token answered %d", resp.StatusCode)
		}
		delete(attacker.cookies, "dcvaas_session")
		wantError(attacker.callback(cb), connection.ReasonNotSignedIn)

		for _, tok := range []string{p.a.admin, p.b.admin} {
			if conns := p.do("GET", "/api/connections", tok, nil).want(t, 200).items(t); len(conns) != 0 {
				t.Fatalf("connections stored: %v", conns)
			}
		}
	})
}

// The dashboard's Connect button runs the same flow: settings → start page
// → provider → callback → settings showing the outcome.
func TestConnectFromSettingsPage(t *testing.T) {
	p := setupProviders(t, sqlstore.SQLite)
	p.cf.AddZone("example.com")
	admin := p.browser(t)
	admin.signIn(p.a.admin)
	page := admin.page("/settings")
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page)
	if m == nil || !strings.Contains(page, `action="/settings/connect/cloudflare"`) {
		t.Fatal("no Connect Cloudflare form on the settings page")
	}
	resp := admin.send("POST", "/settings/connect/cloudflare", url.Values{"csrf": {m[1]}})
	start := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(start, "/oauth/cloudflare/start?state=") {
		t.Fatalf("connect: %d to %s", resp.StatusCode, start)
	}
	back := admin.callback(p.consent(t, admin.start(publicURL+start).String()))
	if back.Query().Get("oauth") != "success" {
		t.Fatalf("callback ended at %s", back)
	}
	if page := admin.page(local(t, back.String())); !strings.Contains(page, "The DNS provider is connected.") || !strings.Contains(page, "Cloudflare (1 zones)") {
		t.Fatalf("settings page after success:\n%s", page)
	}
	// Without the CSRF token the button does nothing.
	if resp := admin.send("POST", "/settings/connect/cloudflare", url.Values{}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("connect without CSRF token: %d", resp.StatusCode)
	}
}

// page reads a page's HTML.
func (br *browser) page(path string) string {
	br.t.Helper()
	req, _ := http.NewRequest("GET", br.p.srv.URL+path, nil)
	for k, v := range br.cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	resp, err := br.p.srv.Client().Do(req)
	if err != nil {
		br.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		br.t.Fatalf("GET %s: %d", path, resp.StatusCode)
	}
	return string(raw)
}
