package connection_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/connection"
	"github.com/dcvaas/dcvaas/crypt"
	"github.com/dcvaas/dcvaas/provider/providertest"
	"github.com/dcvaas/dcvaas/provider/route53"
	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/dcvaas/dcvaas/sqlstore/storetest"
)

const publicURL = "https://dcvaas.example.test"

// bundle is a service wired to a fresh database and to fakes of every
// provider, with Cloudflare also reachable through the fake OAuth server.
type bundle struct {
	ctx   context.Context
	db    *sqlstore.DB
	svc   *connection.Service
	keys  *crypt.Keyring
	clock *clock
	actor dcvaas.Actor
	logs  *syncBuffer

	cf    *providertest.Cloudflare
	gd    *providertest.GoDaddy
	r53   *providertest.Route53
	oauth *providertest.OAuth

	targets int
	// bindings are the start page's binding cookies, by state.
	bindings map[string]string
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }
func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}
func (b *syncBuffer) String() string { b.mu.Lock(); defer b.mu.Unlock(); return b.buf.String() }

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func setup(t *testing.T, dialect sqlstore.Dialect) *bundle {
	t.Helper()
	// The clock starts at the real time: x/oauth2 computes token expiry
	// from the real clock, and the service compares it with this one.
	clk := &clock{now: time.Now().UTC()}
	db := storetest.NewDB(t, dialect, sqlstore.Options{Clock: clk.Now})
	ctx := context.Background()
	tok := &dcvaas.Token{Name: "bootstrap", Prefix: "dcv_x", Hash: "hash", Role: dcvaas.TokenAdmin}
	org, user, err := db.Bootstrap(ctx, "Acme", "owner@acme.test", tok)
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, crypt.KeySize)
	rand.Read(key)
	keys, _ := crypt.NewKeyring(key)

	b := &bundle{ctx: ctx, db: db, keys: keys, clock: clk, logs: &syncBuffer{},
		actor: dcvaas.Actor{OrgID: org.ID, UserID: user.ID, TokenID: tok.ID, TokenRole: dcvaas.TokenAdmin, MemberRole: dcvaas.RoleOwner, IP: "192.0.2.9"},
		cf:    providertest.NewCloudflare(t), gd: providertest.NewGoDaddy(t), r53: providertest.NewRoute53(t), oauth: providertest.NewOAuth(t)}
	b.oauth.OnToken, b.oauth.OnRevoke = b.cf.AddToken, b.cf.RevokeToken
	b.r53.AddKey("AKIADCVAAS", "dcvaas-own-secret")

	logger := slog.New(slog.NewTextHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b.svc = connection.New(connection.Config{
		Store: db, Keys: keys, PublicURL: publicURL, Clock: clk.Now, Logger: logger,
		Providers: []connection.Provider{
			connection.Cloudflare(b.cf.URL(), &connection.OAuthConfig{
				ClientID: b.oauth.ClientID, ClientSecret: b.oauth.ClientSecret,
				AuthURL: b.oauth.AuthURL(), TokenURL: b.oauth.TokenURL(), RevokeURL: b.oauth.RevokeURL(),
				Scopes: connection.CloudflareOAuth.Scopes,
			}, nil),
			connection.GoDaddy(b.gd.URL(), nil, nil),
			connection.Route53(route53.Options{
				Endpoint: b.r53.URL(), STSEndpoint: b.r53.STSURL(), PollInterval: time.Millisecond, MaxAttempts: 1,
				BaseCredentials: credentials.NewStaticCredentialsProvider("AKIADCVAAS", "dcvaas-own-secret", ""),
			}),
		},
	})
	return b
}

func forEachDialect(t *testing.T, fn func(t *testing.T, b *bundle)) {
	for _, d := range storetest.Dialects(t) {
		t.Run(string(d), func(t *testing.T) { fn(t, setup(t, d)) })
	}
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := dcvaas.ErrorCode(err); got != code {
		t.Fatalf("error code = %q (%v), want %q", got, err, code)
	}
}

func (b *bundle) newDomain(t *testing.T, name string) *dcvaas.Domain {
	t.Helper()
	b.targets++
	d := &dcvaas.Domain{Name: name, CNAMETarget: fmt.Sprintf("label%d.verify.test", b.targets), IncludeWildcard: true, KeyType: dcvaas.KeyEC256}
	if _, err := b.db.CreateDomain(b.ctx, b.actor, d); err != nil {
		t.Fatal(err)
	}
	return d
}

// noRedirects is a browser that stops at every redirect, so a test can read
// where it was sent.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// consent plays the signed-in admin's browser: it opens dcvaas's start
// page (the authorize URL; Start binds the flow to the browser and answers
// the provider's consent URL), then the provider's consent screen, and
// returns the callback query the provider redirected to. The browser's
// binding cookie is kept in b.bindings by state.
func (b *bundle) consent(t *testing.T, authorizeURL string) url.Values {
	t.Helper()
	start, err := url.Parse(authorizeURL)
	if err != nil || start.Scheme+"://"+start.Host+start.Path != publicURL+"/oauth/cloudflare/start" {
		t.Fatalf("authorize URL %s is not the start page", authorizeURL)
	}
	state := start.Query().Get("state")
	consentURL, binding, err := b.svc.Start(b.ctx, b.actor, "cloudflare", state)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	if b.bindings == nil {
		b.bindings = map[string]string{}
	}
	b.bindings[state] = binding
	resp, err := noRedirects.Get(consentURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize answered %d", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != publicURL+"/api/oauth/cloudflare/callback" {
		t.Fatalf("provider redirected to %s", got)
	}
	return loc.Query()
}

// params is the callback as it reaches dcvaas in the browser that started
// the flow (its binding cookie), signed in as b.actor.
func (b *bundle) params(q url.Values) connection.CallbackParams {
	session := b.actor
	return connection.CallbackParams{Code: q.Get("code"), State: q.Get("state"), Error: q.Get("error"),
		ErrorDescription: q.Get("error_description"), IP: "198.51.100.7", UserAgent: "test-browser",
		Binding: b.bindings[q.Get("state")], Session: &session}
}

// connectOAuth runs the whole authorization flow for Cloudflare.
func (b *bundle) connectOAuth(t *testing.T) *dcvaas.Connection {
	t.Helper()
	authURL, err := b.svc.Authorize(b.ctx, b.actor, "cloudflare")
	if err != nil {
		t.Fatal(err)
	}
	redirect, conn, err := b.svc.Callback(b.ctx, "cloudflare", b.params(b.consent(t, authURL)))
	if err != nil {
		t.Fatalf("callback: %v (redirect %s)", err, redirect)
	}
	return conn
}

// reason returns the reason of an error redirect.
func reason(t *testing.T, redirect string) string {
	t.Helper()
	u, err := url.Parse(redirect)
	if err != nil || !strings.HasPrefix(redirect, publicURL+"/settings?oauth=") {
		t.Fatalf("redirect %q", redirect)
	}
	if u.Query().Get("oauth") != "error" {
		t.Fatalf("redirect %q is not an error", redirect)
	}
	return u.Query().Get("reason")
}

// secretsSeen returns every secret value the fakes handed out or were given.
func (b *bundle) assertNoLeak(t *testing.T, secrets ...string) {
	t.Helper()
	logs := b.logs.String()
	audit, _, err := b.db.ListAudit(b.ctx, b.actor.OrgID, dcvaas.AuditFilter{Page: dcvaas.Page{Limit: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	var raw strings.Builder
	rows, err := b.db.SQL().QueryContext(b.ctx, `SELECT id, provider, kind, status, display_name, secret_enc, last_error FROM oauth_connections`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var cols [7]string
		if err := rows.Scan(&cols[0], &cols[1], &cols[2], &cols[3], &cols[4], &cols[5], &cols[6]); err != nil {
			t.Fatal(err)
		}
		raw.WriteString(strings.Join(cols[:], "|"))
	}
	rows.Close()
	for _, s := range secrets {
		if s == "" {
			continue
		}
		if strings.Contains(logs, s) {
			t.Errorf("secret %.6s… appears in the logs", s)
		}
		if strings.Contains(raw.String(), s) {
			t.Errorf("secret %.6s… appears in plaintext in the database", s)
		}
		for _, e := range audit {
			if strings.Contains(fmt.Sprint(e.Details), s) {
				t.Errorf("secret %.6s… appears in audit %s", s, e.Action)
			}
		}
	}
}
