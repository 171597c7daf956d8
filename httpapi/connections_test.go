package httpapi_test

import (
	"crypto/rand"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas/connection"
	"github.com/dcvaas/dcvaas/crypt"
	"github.com/dcvaas/dcvaas/httpapi"
	"github.com/dcvaas/dcvaas/provider/providertest"
	"github.com/dcvaas/dcvaas/ratelimit"
	"github.com/dcvaas/dcvaas/session"
	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/dcvaas/dcvaas/sqlstore/storetest"
	"github.com/dcvaas/dcvaas/web"
)

const publicURL = "https://app.dcvaas.test"

// providers is a bundle whose server has the connection service, wired to
// fakes of Cloudflare (also through OAuth) and GoDaddy.
type providers struct {
	*bundle
	cf    *providertest.Cloudflare
	gd    *providertest.GoDaddy
	oauth *providertest.OAuth
}

func setupProviders(t *testing.T, dialect sqlstore.Dialect) *providers {
	t.Helper()
	// Real time: x/oauth2 stamps token expiry with the real clock.
	clk := &clock{now: time.Now().UTC()}
	db := storetest.NewDB(t, dialect, sqlstore.Options{Clock: clk.Now})
	b := &bundle{t: t, db: db, clock: clk, logs: &syncWriter{}}
	b.a = b.tenant("Acme", "owner@acme.test")
	b.b = b.tenant("Globex", "owner@globex.test")
	p := &providers{bundle: b, cf: providertest.NewCloudflare(t), gd: providertest.NewGoDaddy(t), oauth: providertest.NewOAuth(t)}
	p.oauth.OnToken, p.oauth.OnRevoke = p.cf.AddToken, p.cf.RevokeToken

	key := make([]byte, crypt.KeySize)
	rand.Read(key)
	keys, _ := crypt.NewKeyring(key)
	logger := slog.New(slog.NewTextHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	svc := connection.New(connection.Config{
		Store: db, Keys: keys, PublicURL: publicURL, Clock: clk.Now, Logger: logger,
		Providers: []connection.Provider{
			connection.Cloudflare(p.cf.URL(), &connection.OAuthConfig{ClientID: p.oauth.ClientID, ClientSecret: p.oauth.ClientSecret,
				AuthURL: p.oauth.AuthURL(), TokenURL: p.oauth.TokenURL(), RevokeURL: p.oauth.RevokeURL(),
				Scopes: connection.CloudflareOAuth.Scopes}, nil),
			connection.GoDaddy(p.gd.URL(), nil, nil),
		},
	})
	// The dashboard serves the start page and the sign-in the flow needs.
	sessions := session.NewManager(db, publicURL, clk.Now)
	ui := web.New(web.Deps{Store: db, Sessions: sessions, Connections: svc, VerifyZone: verifyZone,
		PublicURL: publicURL, Clock: clk.Now, Logger: logger})
	b.srv = httptest.NewServer(httpapi.NewServer(httpapi.Deps{
		Store: db, Limiter: ratelimit.NewMemory(), RateLimit: 1 << 20, VerifyZone: verifyZone,
		Clock: clk.Now, Logger: logger, Ready: db.Ping, Connections: svc, Sessions: sessions, UI: ui,
	}))
	t.Cleanup(b.srv.Close)
	// Redirects are what these tests look at; following them would also
	// leave loopback for publicURL.
	b.srv.Client().CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return p
}

// redirected follows nothing: it returns where a response sends the browser.
func redirected(t *testing.T, r *response) *url.URL {
	t.Helper()
	r.want(t, http.StatusFound)
	u, err := url.Parse(r.header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// consent plays the browser at the provider's consent screen and returns
// the callback path with its query, relative to our server.
func (p *providers) consent(t *testing.T, authorizeURL string) string {
	t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(authorizeURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	back, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(back.String(), publicURL+"/api/oauth/cloudflare/callback?") {
		t.Fatalf("provider redirected to %q", resp.Header.Get("Location"))
	}
	return back.Path + "?" + back.RawQuery
}

func TestOAuthToDNSSetupOverHTTP(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		p := setupProviders(t, dialect)
		p.cf.AddZone("example.co.uk")
		d := p.createDomain(p.a.admin, "a.b.example.co.uk")

		// A browser UI asks for the URL as JSON; a script follows the 302.
		// Both lead to dcvaas's start page, not to the provider.
		js := p.do("GET", "/api/oauth/cloudflare/authorize", p.a.admin, nil, "Accept", "application/json").want(t, 200).obj(t)
		if !strings.HasPrefix(js["authorizeUrl"].(string), publicURL+"/oauth/cloudflare/start?state=") {
			t.Fatalf("authorizeUrl %v", js)
		}
		auth := redirected(t, p.do("GET", "/api/oauth/cloudflare/authorize", p.a.admin, nil))
		if auth.Scheme+"://"+auth.Host+auth.Path != publicURL+"/oauth/cloudflare/start" || auth.Query().Get("state") == "" {
			t.Fatalf("authorize URL %s", auth)
		}

		// The admin's signed-in browser opens it and is sent to the provider.
		admin := p.browser(t)
		admin.signIn(p.a.admin)
		consentURL := admin.start(auth.String())
		if q := consentURL.Query(); q.Get("code_challenge_method") != "S256" || q.Get("client_id") != p.oauth.ClientID ||
			q.Get("state") != auth.Query().Get("state") || !strings.HasPrefix(consentURL.String(), p.oauth.AuthURL()+"?") {
			t.Fatalf("consent URL %s", consentURL)
		}

		// The browser comes back without a bearer token.
		back := admin.callback(p.consent(t, consentURL.String()))
		if back.Scheme+"://"+back.Host+back.Path != publicURL+"/settings" || back.Query().Get("oauth") != "success" {
			t.Fatalf("callback redirected to %s", back)
		}
		if _, ok := admin.cookies[session.BindingCookie]; ok {
			t.Fatal("the binding cookie outlived the callback")
		}
		connID := back.Query().Get("connectionId")

		conns := p.do("GET", "/api/connections", p.a.admin, nil).want(t, 200).items(t)
		if len(conns) != 1 || conns[0]["id"] != connID || conns[0]["kind"] != "oauth" || conns[0]["status"] != "active" {
			t.Fatalf("connections %v", conns)
		}
		p.do("GET", "/api/connections", p.b.admin, nil).want(t, 200) // the other org sees none
		if other := p.do("GET", "/api/connections", p.b.admin, nil).items(t); len(other) != 0 {
			t.Fatalf("other org sees %v", other)
		}

		setup := p.do("POST", "/api/domains/"+d["id"].(string)+"/dns-setup", p.a.admin, map[string]any{"connectionId": connID}).want(t, 200).obj(t)
		if setup["zone"] != "example.co.uk" || setup["outcome"] != "created" || setup["jobId"] == nil {
			t.Fatalf("setup %v", setup)
		}
		job := p.do("GET", "/api/jobs/"+setup["jobId"].(string), p.a.admin, nil).want(t, 200).obj(t)
		if job["type"] != "dns_check" || job["domainId"] != d["id"] {
			t.Fatalf("job %v", job)
		}
		recs := p.cf.Records("_acme-challenge.a.b.example.co.uk")
		if len(recs) != 1 || recs[0].Content != d["cnameTarget"] || recs[0].Proxied {
			t.Fatalf("records %+v", recs)
		}
		again := p.do("POST", "/api/domains/"+d["id"].(string)+"/dns-setup", p.a.admin, map[string]any{"connectionId": connID}).want(t, 200).obj(t)
		if again["outcome"] != "unchanged" {
			t.Fatalf("rerun %v", again)
		}

		// No secret anywhere a client or an operator looks.
		seen := p.do("GET", "/api/connections/"+connID, p.a.admin, nil).want(t, 200).body
		seen = append(seen, p.do("GET", "/api/audit?limit=200", p.a.admin, nil).want(t, 200).body...)
		for _, s := range append(p.oauth.Issued(), p.oauth.ClientSecret) {
			if strings.Contains(string(seen), s) || strings.Contains(p.logs.String(), s) {
				t.Fatalf("secret %.6s… leaked into a response or the logs", s)
			}
		}
		if strings.Contains(string(seen), "v1.") {
			t.Fatal("a sealed envelope reached a response")
		}

		p.do("DELETE", "/api/connections/"+connID, p.a.admin, nil).want(t, 204)
		if len(p.oauth.Revoked()) == 0 {
			t.Fatal("tokens not revoked at the provider")
		}
		p.do("GET", "/api/connections/"+connID, p.a.admin, nil).wantProblem(t, 404)
	})
}

func TestOAuthCallbackErrorsOverHTTP(t *testing.T) {
	p := setupProviders(t, sqlstore.SQLite)
	admin := p.browser(t)
	admin.signIn(p.a.admin)
	authorize := func() string {
		return redirected(t, p.do("GET", "/api/oauth/cloudflare/authorize", p.a.admin, nil)).String()
	}
	cb := p.consent(t, admin.start(authorize()).String())
	// Extra provider parameters are fine; the binding cookie is single-use.
	binding := admin.cookies[session.BindingCookie]
	if ok := admin.callback(cb + "&iss=https%3A%2F%2Fdash.cloudflare.com"); ok.Query().Get("oauth") != "success" {
		t.Fatalf("callback redirected to %s", ok)
	}
	admin.cookies[session.BindingCookie] = binding
	replay := admin.callback(cb)
	if replay.Query().Get("oauth") != "error" || replay.Query().Get("reason") != "state_already_used" {
		t.Fatalf("replay redirected to %s", replay)
	}
	p.oauth.SetDeny(true)
	denied := admin.callback(p.consent(t, admin.start(authorize()).String()))
	if denied.Query().Get("reason") != "access_denied" {
		t.Fatalf("denied redirected to %s", denied)
	}
	bogus := redirected(t, p.do("GET", "/api/oauth/cloudflare/callback?code=x&state=forged", "", nil))
	if bogus.Query().Get("reason") != "invalid_state" {
		t.Fatalf("forged state redirected to %s", bogus)
	}

	// Authorizing needs a token that may change things, and a provider with OAuth.
	p.do("GET", "/api/oauth/cloudflare/authorize", "", nil).wantProblem(t, 401)
	p.do("GET", "/api/oauth/cloudflare/authorize", p.a.read, nil).wantProblem(t, 403)
	p.do("GET", "/api/oauth/godaddy/authorize", p.a.admin, nil).wantProblem(t, 422)
	p.do("GET", "/api/oauth/bind9/authorize", p.a.admin, nil).wantProblem(t, 422)
}

func TestCredentialConnectionsOverHTTP(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		p := setupProviders(t, dialect)
		p.gd.AddKey("gd-key", "gd-secret-value")
		p.gd.AddDomain("example.com")

		bad := p.do("POST", "/api/connections", p.a.admin, map[string]any{"provider": "godaddy",
			"credential": map[string]any{"apiKey": "gd-key", "apiSecret": "wrong"}}).wantProblem(t, 422)
		if !strings.Contains(bad["detail"].(string), "Unable to authenticate") {
			t.Fatalf("problem %v", bad)
		}
		missing := p.do("POST", "/api/connections", p.a.admin, map[string]any{"provider": "godaddy", "credential": map[string]any{}}).wantProblem(t, 422)
		if f := fieldsOf(missing); len(f) != 2 || f[0] != "body.credential.apiKey" {
			t.Fatalf("fields %v", f)
		}
		p.do("POST", "/api/connections", p.a.read, map[string]any{"provider": "godaddy",
			"credential": map[string]any{"apiKey": "gd-key", "apiSecret": "gd-secret-value"}}).wantProblem(t, 403)

		created := p.do("POST", "/api/connections", p.a.admin, map[string]any{"provider": "godaddy", "displayName": "Registrar",
			"credential": map[string]any{"apiKey": "gd-key", "apiSecret": "gd-secret-value"}}).want(t, 201)
		conn := created.obj(t)
		if created.header.Get("Location") != "/api/connections/"+conn["id"].(string) || conn["displayName"] != "Registrar" || conn["kind"] != "credential" {
			t.Fatalf("created %v", conn)
		}
		test := p.do("POST", "/api/connections/"+conn["id"].(string)+"/test", p.a.admin, nil).want(t, 200).obj(t)
		if test["ok"] != true || len(test["zones"].([]any)) != 1 {
			t.Fatalf("test %v", test)
		}
		p.do("GET", "/api/connections/"+conn["id"].(string), p.b.admin, nil).wantProblem(t, 404)

		d := p.createDomain(p.a.admin, "shop.example.com")
		path := "/api/domains/" + d["id"].(string) + "/dns-setup"
		p.gd.AddRecord("example.com", providertest.Record{Type: "TXT", Name: "_acme-challenge.shop.example.com", Content: "old", TTL: 600})
		conflict := p.do("POST", path, p.a.admin, map[string]any{"connectionId": conn["id"]}).wantProblem(t, 409)
		if !strings.Contains(conflict["detail"].(string), "TXT old") {
			t.Fatalf("problem %v", conflict)
		}
		// The provider down: 202, the setup queued as a dns_setup job (run
		// by the job engine, which this server has not).
		p.gd.FailNext(http.StatusInternalServerError)
		queued := p.do("POST", path, p.a.admin, map[string]any{"connectionId": conn["id"], "replace": true}).want(t, 202).obj(t)
		if queued["outcome"] != "queued" || queued["jobId"] == nil || !strings.Contains(queued["reason"].(string), "GoDaddy is unavailable (HTTP 500)") ||
			queued["record"].(map[string]any)["values"].([]any)[0] != d["cnameTarget"] {
			t.Fatalf("setup during an outage %v", queued)
		}
		job := p.do("GET", "/api/jobs/"+queued["jobId"].(string), p.a.admin, nil).want(t, 200).obj(t)
		if job["type"] != "dns_setup" || job["status"] != "queued" || job["domainId"] != d["id"] {
			t.Fatalf("job %v", job)
		}
		if listed := p.do("GET", "/api/jobs?type=dns_setup", p.a.admin, nil).want(t, 200).items(t); len(listed) != 1 {
			t.Fatalf("dns_setup jobs %v", listed)
		}
		done := p.do("POST", path, p.a.admin, map[string]any{"connectionId": conn["id"], "replace": true}).want(t, 200).obj(t)
		if done["outcome"] != "replaced" || len(done["replaced"].([]any)) != 1 {
			t.Fatalf("setup %v", done)
		}
		elsewhere := p.createDomain(p.a.admin, "shop.example.net")
		noZone := p.do("POST", "/api/domains/"+elsewhere["id"].(string)+"/dns-setup", p.a.admin, map[string]any{"connectionId": conn["id"]}).wantProblem(t, 422)
		if !strings.Contains(noZone["detail"].(string), "zones seen: example.com") {
			t.Fatalf("problem %v", noZone)
		}

		all := string(p.do("GET", "/api/connections", p.a.admin, nil).body) + string(p.do("GET", "/api/audit?limit=200", p.a.admin, nil).body) + p.logs.String()
		if strings.Contains(all, "gd-secret-value") {
			t.Fatal("the GoDaddy secret leaked")
		}
		p.do("DELETE", "/api/connections/"+conn["id"].(string), p.a.read, nil).wantProblem(t, 403)
		p.do("DELETE", "/api/connections/"+conn["id"].(string), p.a.admin, nil).want(t, 204)
	})
}

func TestConnectionsNotConfigured(t *testing.T) {
	b := setup(t, sqlstore.SQLite)
	b.do("GET", "/api/connections", b.a.admin, nil).wantProblem(t, 501)
	b.do("GET", "/api/oauth/cloudflare/callback?state=x", "", nil).wantProblem(t, 501)
}
