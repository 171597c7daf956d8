package web_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/apitoken"
	"github.com/dcvaas/dcvaas/ratelimit"
	"github.com/dcvaas/dcvaas/session"
	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/dcvaas/dcvaas/sqlstore/storetest"
	"github.com/dcvaas/dcvaas/web"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Millisecond)
	return c.now
}
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

type bundle struct {
	t      *testing.T
	db     *sqlstore.DB
	clock  *clock
	srv    *httptest.Server
	admin  string // plaintext admin token of org A
	reader string // read-only token of org A
	other  string // admin token of org B
	orgA   *dcvaas.Organization
}

func setup(t *testing.T, dialect sqlstore.Dialect, publicURL string) *bundle {
	clk := &clock{now: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
	db := storetest.NewDB(t, dialect, sqlstore.Options{Clock: clk.Now})
	b := &bundle{t: t, db: db, clock: clk}
	newTok := func() string {
		s, err := apitoken.Generate()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	b.admin, b.other, b.reader = newTok(), newTok(), newTok()
	org, user, err := db.Bootstrap(context.Background(), "Acme", "ops@acme.example",
		&dcvaas.Token{Name: "boot", Prefix: apitoken.DisplayPrefix(b.admin), Hash: apitoken.Hash(b.admin), Role: dcvaas.TokenAdmin})
	if err != nil {
		t.Fatal(err)
	}
	b.orgA = org
	if err := db.CreateToken(context.Background(), dcvaas.Actor{OrgID: org.ID, UserID: user.ID},
		&dcvaas.Token{OrgID: org.ID, UserID: user.ID, Name: "viewer", Prefix: apitoken.DisplayPrefix(b.reader), Hash: apitoken.Hash(b.reader), Role: dcvaas.TokenRead}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.Bootstrap(context.Background(), "Globex", "ops@globex.example",
		&dcvaas.Token{Name: "boot", Prefix: apitoken.DisplayPrefix(b.other), Hash: apitoken.Hash(b.other), Role: dcvaas.TokenAdmin}); err != nil {
		t.Fatal(err)
	}
	b.srv = httptest.NewServer(web.New(web.Deps{Store: db, Sessions: session.NewManager(db, publicURL, clk.Now),
		VerifyZone: "verify.example.net", PublicURL: publicURL, Clock: clk.Now}))
	t.Cleanup(b.srv.Close)
	return b
}

func forEachDialect(t *testing.T, fn func(t *testing.T, d sqlstore.Dialect)) {
	for _, d := range storetest.Dialects(t) {
		t.Run(string(d), func(t *testing.T) { fn(t, d) })
	}
}

// browser keeps cookies by hand (they may be Secure on plain http here).
type browser struct {
	b       *bundle
	cookies map[string]*http.Cookie
	origin  string
}

func (b *bundle) browser() *browser {
	return &browser{b: b, cookies: map[string]*http.Cookie{}, origin: b.srv.URL}
}

type resp struct {
	status int
	header http.Header
	body   string
}

func (br *browser) send(method, path string, form url.Values) resp {
	br.b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, br.b.srv.URL+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if br.origin != "" {
			req.Header.Set("Origin", br.origin)
		}
	}
	for _, c := range br.cookies {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(req)
	if err != nil {
		br.b.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	for _, c := range res.Cookies() {
		if c.MaxAge < 0 {
			delete(br.cookies, c.Name)
		} else {
			br.cookies[c.Name] = c
		}
	}
	return resp{res.StatusCode, res.Header, string(raw)}
}

func (br *browser) signIn(token, next string) resp {
	return br.send("POST", "/signin", url.Values{"token": {token}, "next": {next}})
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (br *browser) csrf() string {
	br.b.t.Helper()
	m := csrfField.FindStringSubmatch(br.send("GET", "/domains", nil).body)
	if m == nil {
		br.b.t.Fatal("no CSRF token on the page")
	}
	return m[1]
}

func TestSignIn(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d sqlstore.Dialect) {
		b := setup(t, d, "https://dcvaas.example.net")
		br := b.browser()
		br.origin = "https://dcvaas.example.net"

		// Only relative paths of this site are followed after sign-in.
		for next, want := range map[string]string{
			"/domains?status=active": "/domains?status=active",
			"https://evil.example":   "/",
			"//evil.example/x":       "/",
			"/\\evil.example":        "/",
			"javascript:alert(1)":    "/",
			"":                       "/",
		} {
			r := br.signIn(b.admin, next)
			if r.status != http.StatusSeeOther || r.header.Get("Location") != want {
				t.Fatalf("next %q: %d to %q, want %q", next, r.status, r.header.Get("Location"), want)
			}
		}
		c := br.cookies[session.CookieName]
		if c == nil || !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.MaxAge != int(session.Absolute/time.Second) {
			t.Fatalf("session cookie %+v", c)
		}
		// Only the hash is stored.
		var stored int
		b.db.SQL().QueryRow(`SELECT COUNT(*) FROM web_sessions WHERE id_hash = $1`, c.Value).Scan(&stored)
		if stored != 0 {
			t.Fatal("the session id itself is stored")
		}
		audit, _, _ := b.db.ListAudit(context.Background(), b.orgA.ID, dcvaas.AuditFilter{Action: "session.created", Page: dcvaas.Page{Limit: 10}})
		if len(audit) == 0 {
			t.Fatal("sign-in not audited")
		}

		// Security headers on every page.
		r := br.send("GET", "/domains", nil)
		if r.status != 200 || !strings.Contains(r.header.Get("Content-Security-Policy"), "script-src 'self'") ||
			strings.Contains(r.header.Get("Content-Security-Policy"), "unsafe-inline") ||
			r.header.Get("X-Frame-Options") != "DENY" || r.header.Get("Referrer-Policy") != "same-origin" {
			t.Fatalf("headers %v", r.header)
		}
		if strings.Contains(r.body, "<script>") || strings.Contains(r.body, " on") && regexp.MustCompile(` on[a-z]+=`).MatchString(r.body) {
			t.Fatal("inline script on the page")
		}

		// Bad tokens and foreign origins are refused, and set no cookie.
		anon := b.browser()
		anon.origin = "https://dcvaas.example.net"
		if r := anon.signIn("dcv_nonsense", "/"); r.status != http.StatusUnauthorized || len(anon.cookies) != 0 {
			t.Fatalf("bad token: %d %v", r.status, anon.cookies)
		}
		anon.origin = "https://evil.example"
		if r := anon.signIn(b.admin, "/"); r.status != http.StatusForbidden || len(anon.cookies) != 0 {
			t.Fatalf("foreign origin: %d", r.status)
		}
	})
}

func TestSessionLifetime(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d sqlstore.Dialect) {
		b := setup(t, d, "")
		signedIn := func(br *browser) bool {
			r := br.send("GET", "/domains", nil)
			return r.status == http.StatusOK
		}

		// Idle expiry: 12 h without a request ends it; activity keeps it.
		br := b.browser()
		br.signIn(b.admin, "/")
		b.clock.Advance(session.Idle - time.Hour)
		if !signedIn(br) {
			t.Fatal("signed out before the idle limit")
		}
		b.clock.Advance(session.Idle - time.Hour)
		if !signedIn(br) {
			t.Fatal("activity did not keep the session")
		}
		b.clock.Advance(session.Idle + time.Minute)
		if signedIn(br) {
			t.Fatal("still signed in after 12 h idle")
		}
		// Absolute expiry: 7 days whatever the activity.
		br = b.browser()
		br.signIn(b.admin, "/")
		for elapsed := time.Duration(0); elapsed < session.Absolute-10*time.Hour; elapsed += 10 * time.Hour {
			b.clock.Advance(10 * time.Hour)
			if !signedIn(br) {
				t.Fatalf("signed out after %s", elapsed)
			}
		}
		b.clock.Advance(11 * time.Hour)
		if signedIn(br) {
			t.Fatal("still signed in after 7 days")
		}

		// Sign-out deletes the session: the old cookie is worthless.
		br = b.browser()
		br.signIn(b.admin, "/")
		old := *br.cookies[session.CookieName]
		if r := br.send("POST", "/signout", url.Values{"csrf": {br.csrf()}}); r.status != http.StatusSeeOther {
			t.Fatalf("sign-out: %d", r.status)
		}
		br.cookies[session.CookieName] = &old
		if signedIn(br) {
			t.Fatal("the cookie still works after sign-out")
		}

		// Revoking the token ends its sessions.
		br = b.browser()
		br.signIn(b.admin, "/")
		second := b.browser()
		second.signIn(b.reader, "/")
		toks, _, _ := b.db.ListTokens(context.Background(), b.orgA.ID, dcvaas.Page{Limit: 10})
		for _, tk := range toks {
			if tk.Name == "viewer" {
				if err := b.db.RevokeToken(context.Background(), dcvaas.Actor{OrgID: b.orgA.ID}, tk.ID); err != nil {
					t.Fatal(err)
				}
			}
		}
		if signedIn(second) || !signedIn(br) {
			t.Fatal("revoking the read token did not end exactly its session")
		}
	})
}

func TestFormsNeedCSRFAndRole(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d sqlstore.Dialect) {
		b := setup(t, d, "")
		admin := b.browser()
		admin.signIn(b.admin, "/")
		csrf := admin.csrf()

		// Without the token, with another session's, or from another
		// origin: refused, nothing created.
		reader := b.browser()
		reader.signIn(b.reader, "/")
		for name, try := range map[string]func() resp{
			"no token": func() resp { return admin.send("POST", "/domains", url.Values{"domainName": {"a.example.com"}}) },
			"other session": func() resp {
				return admin.send("POST", "/domains", url.Values{"domainName": {"a.example.com"}, "csrf": {reader.csrf()}})
			},
			"foreign origin": func() resp {
				admin.origin = "https://evil.example"
				defer func() { admin.origin = b.srv.URL }()
				return admin.send("POST", "/domains", url.Values{"domainName": {"a.example.com"}, "csrf": {csrf}})
			},
			"no origin": func() resp {
				admin.origin = ""
				defer func() { admin.origin = b.srv.URL }()
				return admin.send("POST", "/domains", url.Values{"domainName": {"a.example.com"}, "csrf": {csrf}})
			},
			"read-only": func() resp {
				return reader.send("POST", "/domains", url.Values{"domainName": {"a.example.com"}, "csrf": {reader.csrf()}})
			},
		} {
			if r := try(); r.status != http.StatusForbidden {
				t.Fatalf("%s: %d", name, r.status)
			}
		}
		if _, n, _ := b.db.ListDomains(context.Background(), b.orgA.ID, dcvaas.DomainFilter{Page: dcvaas.Page{Limit: 10}}); n != 0 {
			t.Fatalf("%d domains created by refused forms", n)
		}

		// Validation messages are the API's, and nothing is stored.
		r := admin.send("POST", "/domains", url.Values{"domainName": {"not a name"}, "csrf": {csrf}})
		if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `id="domainName-error"`) {
			t.Fatalf("invalid name: %d", r.status)
		}
		r = admin.send("POST", "/domains", url.Values{"domainName": {"shop.example.com"}, "keyType": {"dsa"}, "csrf": {csrf}})
		if r.status != http.StatusUnprocessableEntity {
			t.Fatalf("invalid key type: %d", r.status)
		}
		// A good one is created, audited as the API's, with its CNAME shown.
		r = admin.send("POST", "/domains", url.Values{"domainName": {"Shop.Example.com"}, "csrf": {csrf}})
		if r.status != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "/domains/") {
			t.Fatalf("add: %d %s", r.status, r.header.Get("Location"))
		}
		path := strings.SplitN(r.header.Get("Location"), "?", 2)[0]
		page := admin.send("GET", path, nil)
		ds, _, _ := b.db.ListDomains(context.Background(), b.orgA.ID, dcvaas.DomainFilter{Page: dcvaas.Page{Limit: 10}})
		if len(ds) != 1 || ds[0].Name != "shop.example.com" || !strings.Contains(page.body, ds[0].CNAMETarget) ||
			!strings.Contains(page.body, "_acme-challenge.shop.example.com") {
			t.Fatalf("domains %v", ds)
		}
		audit, _, _ := b.db.ListAudit(context.Background(), b.orgA.ID, dcvaas.AuditFilter{Action: "domain.created", Page: dcvaas.Page{Limit: 10}})
		if len(audit) != 1 || audit[0].TokenID == "" {
			t.Fatalf("audit %+v", audit)
		}
		// Read-only sees it without a single write form; another
		// organization gets a 404 page; search and filter find it.
		if body := reader.send("GET", path, nil).body; strings.Contains(body, `action="`+path+`/`) || strings.Contains(body, "Delete") {
			t.Fatal("read-only page offers writes")
		}
		other := b.browser()
		other.signIn(b.other, "/")
		if r := other.send("GET", path, nil); r.status != http.StatusNotFound || strings.Contains(r.body, "shop.example.com") {
			t.Fatalf("other org: %d", r.status)
		}
		if r := other.send("POST", path+"/verify", url.Values{"csrf": {other.csrf()}}); r.status != http.StatusNotFound {
			t.Fatalf("other org's POST: %d", r.status)
		}
		if !strings.Contains(admin.send("GET", "/domains?q=shop&status=pending_cname", nil).body, ">shop.example.com</a>") ||
			strings.Contains(admin.send("GET", "/domains?q=nomatch", nil).body, ">shop.example.com</a>") ||
			strings.Contains(admin.send("GET", "/domains?q=shop&status=active", nil).body, ">shop.example.com</a>") {
			t.Fatal("search or filter")
		}
		if r := admin.send("GET", "/domains?status=bogus", nil); r.status != http.StatusUnprocessableEntity {
			t.Fatalf("bad filter: %d", r.status)
		}
	})
}

// Pages count against the organization's per-minute budget as API
// requests do; over it, a 429 page with Retry-After.
func TestPagesCountAgainstRateLimit(t *testing.T) {
	b := setup(t, sqlstore.SQLite, "")
	limited := httptest.NewServer(web.New(web.Deps{Store: b.db, Sessions: session.NewManager(b.db, "", b.clock.Now),
		VerifyZone: "verify.example.net", Clock: b.clock.Now, Limiter: ratelimit.NewMemory(), RateLimit: 3}))
	t.Cleanup(limited.Close)
	b.srv = limited
	br := b.browser()
	br.signIn(b.admin, "/")
	for i := range 3 {
		if r := br.send("GET", "/domains", nil); r.status != http.StatusOK {
			t.Fatalf("request %d: %d", i, r.status)
		}
	}
	r := br.send("GET", "/domains", nil)
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Fatalf("over the limit: %d %v", r.status, r.header)
	}
	// Another organization has its own budget.
	other := b.browser()
	other.signIn(b.other, "/")
	if r := other.send("GET", "/domains", nil); r.status != http.StatusOK {
		t.Fatalf("other org: %d", r.status)
	}
}

func TestTokensPage(t *testing.T) {
	b := setup(t, sqlstore.SQLite, "")
	admin := b.browser()
	admin.signIn(b.admin, "/")
	csrf := admin.csrf()
	if r := admin.send("POST", "/tokens", url.Values{"name": {" "}, "role": {"read"}, "csrf": {csrf}}); r.status != http.StatusUnprocessableEntity ||
		!strings.Contains(r.body, `id="name-error"`) {
		t.Fatalf("empty name: %d", r.status)
	}
	if r := admin.send("POST", "/tokens", url.Values{"name": {"x"}, "role": {"owner"}, "csrf": {csrf}}); r.status != http.StatusUnprocessableEntity {
		t.Fatalf("bad role: %d", r.status)
	}
	r := admin.send("POST", "/tokens", url.Values{"name": {"ci deploy"}, "role": {"read"}, "csrf": {csrf}})
	m := regexp.MustCompile(`id="new-token">(dcv_[A-Za-z0-9]+)<`).FindStringSubmatch(r.body)
	if r.status != http.StatusCreated || m == nil || !apitoken.Valid(m[1]) {
		t.Fatalf("create: %d", r.status)
	}
	// The token works, with its role, and is shown only that once.
	fresh := b.browser()
	if r := fresh.signIn(m[1], "/"); r.status != http.StatusSeeOther {
		t.Fatalf("new token sign-in: %d", r.status)
	}
	if strings.Contains(fresh.send("GET", "/tokens", nil).body, m[1]) || strings.Contains(admin.send("GET", "/tokens", nil).body, m[1]) {
		t.Fatal("the token is shown again")
	}
	if r := fresh.send("POST", "/tokens", url.Values{"name": {"escalate"}, "role": {"admin"}, "csrf": {fresh.csrf()}}); r.status != http.StatusForbidden {
		t.Fatalf("read token creates tokens: %d", r.status)
	}
	audit, _, _ := b.db.ListAudit(context.Background(), b.orgA.ID, dcvaas.AuditFilter{Action: "token.created", Page: dcvaas.Page{Limit: 10}})
	if len(audit) == 0 || audit[0].Details["name"] != "ci deploy" || audit[0].TokenID == "" {
		t.Fatalf("token.created entries: %+v", audit)
	}
}
