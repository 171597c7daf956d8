package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/apitoken"
	"github.com/dcvaas/dcvaas/crypt"
	"github.com/dcvaas/dcvaas/event"
	"github.com/dcvaas/dcvaas/httpapi"
	"github.com/dcvaas/dcvaas/ratelimit"
	"github.com/dcvaas/dcvaas/secaudit"
	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/dcvaas/dcvaas/sqlstore/storetest"
	"github.com/dcvaas/dcvaas/webhook"
)

const verifyZone = "verify.test"

// clock is the time of both the API and the store; tests move it. Every
// reading advances it a millisecond so that rows created in a row are
// ordered by time, as in production.
type clock struct {
	mu  sync.Mutex
	now time.Time
	// real: Now is the time of day (benchmarks), and Advance and Set do
	// nothing.
	real bool
}

func (c *clock) Now() time.Time {
	if c.real {
		return time.Now()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Millisecond)
	return c.now
}

func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }
func (c *clock) Set(t time.Time)         { c.mu.Lock(); c.now = t; c.mu.Unlock() }

// tenant is one bootstrapped organization with an admin and a read token.
type tenant struct {
	org       *dcvaas.Organization
	user      *dcvaas.User
	admin     string // plaintext admin token
	adminID   string
	read      string // plaintext read-only token
	readToken *dcvaas.Token
}

// bundle is what every API test starts from: a fresh database of one
// dialect, the server in front of it and two organizations, a and b.
type bundle struct {
	t     *testing.T
	db    *sqlstore.DB
	srv   *httptest.Server
	clock *clock
	a, b  *tenant
	logs  *syncWriter
	// url is the database's (storetest.URL).
	url string
	// secAudit is the server's security audit (options.secAudit).
	secAudit *secaudit.Recorder
}

// options tweak the server of one test.
type options struct {
	rateLimit int
	// userRateLimit, ipRateLimit and proxies are Deps' (abuse_test.go).
	userRateLimit int
	ipRateLimit   int
	proxies       []netip.Prefix
	secAudit      bool
	limiter       dcvaas.RateLimiter
	// storeLimiter counts in the database, as clusters do, instead of
	// memory; on PostgreSQL that is the default, as in serve (which then
	// admits requests in one step, sqlstore/admit.go), unless memoryLimiter.
	storeLimiter  bool
	memoryLimiter bool
	cors          []string
	ready         func(context.Context) error
	// wrap, when set, stands between the server and the store.
	wrap func(dcvaas.Store) dcvaas.Store
	// keyring opens certificates' private keys (certkey_test.go).
	keyring *crypt.Keyring
	// heartbeat is the SSE idle interval (events_test.go).
	heartbeat time.Duration
	// webhookPolicy is the webhook URL policy (webhooks_test.go).
	webhookPolicy webhook.Policy
	// realTime runs the server and store on the time of day instead of
	// the test clock (benchmarks: the clock's lock and its millisecond
	// per call would make their timed work unlike a real server's).
	realTime bool
}

func setup(t *testing.T, dialect sqlstore.Dialect, opts ...options) *bundle {
	t.Helper()
	var o options
	if len(opts) > 0 {
		o = opts[0]
	}
	clk := &clock{now: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC), real: o.realTime}
	url := storetest.URL(t, dialect)
	db := storetest.Open(t, url, sqlstore.Options{Clock: clk.Now})
	b := &bundle{t: t, db: db, url: url, clock: clk, logs: &syncWriter{}}
	b.a = b.tenant("Acme", "owner@acme.test")
	b.b = b.tenant("Globex", "owner@globex.test")
	if o.rateLimit == 0 {
		o.rateLimit = 1 << 20
	}
	switch {
	case o.storeLimiter, o.limiter == nil && dialect == sqlstore.Postgres && !o.memoryLimiter:
		o.limiter = db
	case o.limiter == nil:
		o.limiter = ratelimit.NewMemory()
	}
	if o.ready == nil {
		o.ready = db.Ping
	}
	var store dcvaas.Store = db
	if o.wrap != nil {
		store = o.wrap(db)
	}
	if o.secAudit {
		b.secAudit = secaudit.New(db, clk.Now, nil)
	}
	hubCtx, stopHub := context.WithCancel(context.Background())
	hub := event.NewHub(db, 20*time.Millisecond, nil)
	hubDone := make(chan struct{})
	go func() { defer close(hubDone); hub.Run(hubCtx) }()
	t.Cleanup(func() { stopHub(); <-hubDone })
	b.srv = httptest.NewServer(httpapi.NewServer(httpapi.Deps{
		Events:          db,
		Hub:             hub,
		StreamHeartbeat: o.heartbeat,
		Store:           store,
		Limiter:         o.limiter,
		RateLimit:       o.rateLimit,
		UserRateLimit:   o.userRateLimit,
		IPRateLimit:     o.ipRateLimit,
		TrustedProxies:  o.proxies,
		SecurityAudit:   b.secAudit,
		Unavailable:     sqlstore.IsUnavailable,
		VerifyZone:      "Verify.Test.",
		// Tests use names under .example (RFC 6761), refused by default.
		AllowTLDs:   []string{"example"},
		CORSOrigins: o.cors,
		Clock:       clk.Now,
		Logger:      slog.New(slog.NewTextHandler(b.logs, nil)),
		Ready:       o.ready,
		Keyring:     o.keyring,
		Webhooks:    &webhook.Service{Store: db, Sealer: testKeyring(t), Policy: o.webhookPolicy, Clock: clk.Now},
	}))
	t.Cleanup(b.srv.Close)
	return b
}

// syncWriter collects the server's logs.
type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncWriter) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// forEachDialect runs fn against SQLite, and PostgreSQL when configured.
func forEachDialect(t *testing.T, fn func(t *testing.T, dialect sqlstore.Dialect)) {
	for _, d := range storetest.Dialects(t) {
		t.Run(string(d), func(t *testing.T) { fn(t, d) })
	}
}

func (b *bundle) tenant(org, email string) *tenant {
	b.t.Helper()
	admin := mustToken(b.t)
	tok := &dcvaas.Token{Name: "bootstrap", Prefix: apitoken.DisplayPrefix(admin), Hash: apitoken.Hash(admin), Role: dcvaas.TokenAdmin}
	o, u, err := b.db.Bootstrap(context.Background(), org, email, tok)
	if err != nil {
		b.t.Fatal(err)
	}
	read := mustToken(b.t)
	rt := &dcvaas.Token{OrgID: o.ID, UserID: u.ID, Name: "reader", Prefix: apitoken.DisplayPrefix(read), Hash: apitoken.Hash(read), Role: dcvaas.TokenRead}
	if err := b.db.CreateToken(context.Background(), dcvaas.Actor{OrgID: o.ID, UserID: u.ID}, rt); err != nil {
		b.t.Fatal(err)
	}
	return &tenant{org: o, user: u, admin: admin, adminID: tok.ID, read: read, readToken: rt}
}

func mustToken(t *testing.T) string {
	t.Helper()
	tok, err := apitoken.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// response is a finished request.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request. body may be nil, a string or []byte (sent as is) or
// anything else (sent as JSON); headers come in name, value pairs.
func (b *bundle) do(method, path, token string, body any, headers ...string) *response {
	b.t.Helper()
	var rd io.Reader
	switch v := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(v)
	case []byte:
		rd = bytes.NewReader(v)
	default:
		raw, err := json.Marshal(v)
		if err != nil {
			b.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, b.srv.URL+path, rd)
	if err != nil {
		b.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := b.srv.Client().Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: raw}
}

// obj decodes a JSON object body.
func (r *response) obj(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	return m
}

// items decodes a list body and checks its envelope.
func (r *response) items(t *testing.T) []map[string]any {
	t.Helper()
	var l struct {
		Items         []map[string]any
		Total         *int
		Limit, Offset *int
	}
	if err := json.Unmarshal(r.body, &l); err != nil || l.Items == nil || l.Total == nil || l.Limit == nil || l.Offset == nil {
		t.Fatalf("not a list: %s (%v)", r.body, err)
	}
	return l.Items
}

// want fails unless the response has the status.
func (r *response) want(t *testing.T, status int) *response {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	return r
}

// wantProblem checks an RFC 9457 problem with the status and returns it.
func (r *response) wantProblem(t *testing.T, status int) map[string]any {
	t.Helper()
	r.want(t, status)
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("content type %q, want application/problem+json: %s", ct, r.body)
	}
	p := r.obj(t)
	if typ, _ := p["type"].(string); !strings.HasPrefix(typ, "/problems/") || p["requestId"] == "" || p["title"] != http.StatusText(status) || p["status"] != float64(status) || p["detail"] == "" {
		t.Fatalf("problem = %v", p)
	}
	return p
}

// fieldsOf lists the locations of a problem's field errors.
func fieldsOf(p map[string]any) []string {
	var out []string
	errs, _ := p["errors"].([]any)
	for _, e := range errs {
		if m, ok := e.(map[string]any); ok {
			out = append(out, fmt.Sprint(m["location"]))
		}
	}
	return out
}

func ids(items []map[string]any) map[string]bool {
	out := map[string]bool{}
	for _, it := range items {
		out[fmt.Sprint(it["id"])] = true
	}
	return out
}

// dump renders every row the API can change, so a test can prove a refused
// request changed nothing. Tokens leave out last_used_at, which any
// authenticated request may record.
func (b *bundle) dump() string {
	b.t.Helper()
	var out strings.Builder
	for _, q := range []string{
		"SELECT * FROM organizations ORDER BY id",
		"SELECT * FROM users ORDER BY id",
		"SELECT * FROM organization_members ORDER BY org_id, user_id",
		"SELECT id, org_id, user_id, name, prefix, role, created_at, expires_at, revoked_at FROM api_tokens ORDER BY id",
		"SELECT * FROM domains ORDER BY id",
		"SELECT * FROM jobs ORDER BY id",
		"SELECT * FROM certificates ORDER BY id",
		"SELECT * FROM audit_logs ORDER BY id",
	} {
		rows, err := b.db.SQL().Query(q)
		if err != nil {
			b.t.Fatalf("%s: %v", q, err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				b.t.Fatal(err)
			}
			for i, v := range vals {
				if bs, ok := v.([]byte); ok {
					vals[i] = string(bs)
				}
			}
			fmt.Fprintln(&out, vals...)
		}
		rows.Close()
		fmt.Fprintln(&out, "--")
	}
	return out.String()
}

// createDomain adds a domain through the API and returns its JSON.
func (b *bundle) createDomain(token, name string) map[string]any {
	b.t.Helper()
	return b.do("POST", "/api/domains", token, map[string]any{"domainName": name}).want(b.t, 201).obj(b.t)
}

// setDomainStatus moves a domain as the job engine would. Raw SQL keeps
// these tests independent of the engine's own store methods.
func (b *bundle) setDomainStatus(orgID, id string, status dcvaas.DomainStatus) {
	b.t.Helper()
	if _, err := b.db.FindDomain(context.Background(), orgID, id); err != nil {
		b.t.Fatal(err)
	}
	if _, err := b.db.SQL().Exec(`UPDATE domains SET status = $1, updated_at = $2 WHERE id = $3`,
		string(status), b.clock.Now().UnixMicro(), id); err != nil {
		b.t.Fatal(err)
	}
}

// failJob ends a job as failed, as the job engine would.
func (b *bundle) failJob(orgID, id string) {
	b.t.Helper()
	j, err := b.db.FindJob(context.Background(), orgID, id)
	if err != nil {
		b.t.Fatal(err)
	}
	if _, err := b.db.SQL().Exec(`UPDATE jobs SET status = 'failed', attempts = $1, last_error = $2, updated_at = $3 WHERE id = $4`,
		j.MaxAttempts, "CNAME not found", b.clock.Now().UnixMicro(), id); err != nil {
		b.t.Fatal(err)
	}
}

const testChain = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"

// addCertificate stores a certificate for the domain, as issuance would.
func (b *bundle) addCertificate(orgID, domainID string) {
	b.t.Helper()
	now := b.clock.Now()
	_, err := b.db.SQL().Exec(`INSERT INTO certificates (id, org_id, domain_id, serial_number, issuer, ca_name, order_url,
		dns_names, not_before, not_after, chain_pem, private_key_enc, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		"cert-"+domainID, orgID, domainID, "0a1b2c", "Pebble Intermediate CA", "letsencrypt", "https://ca.test/order/1",
		`["shop.example.com","*.shop.example.com"]`, now.UnixMicro(), now.Add(90*24*time.Hour).UnixMicro(), testChain, "sealed", now.UnixMicro())
	if err != nil {
		b.t.Fatal(err)
	}
}

// pageAll reads a whole (small) audit log straight from the store.
var pageAll = dcvaas.AuditFilter{Page: dcvaas.Page{Limit: 200}}
