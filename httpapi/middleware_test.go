package httpapi_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/sqlstore"
)

func TestRateLimit(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		for _, inStore := range []bool{false, true} {
			t.Run(map[bool]string{false: "memory", true: "store"}[inStore], func(t *testing.T) {
				testRateLimit(t, setup(t, dialect, options{rateLimit: 3, storeLimiter: inStore, memoryLimiter: !inStore}))
			})
		}
	})
}

// testRateLimit spends organization a's budget of 3.
func testRateLimit(t *testing.T, b *bundle) {
	for i, remaining := range []string{"2", "1", "0"} {
		r := b.do("GET", "/api/domains", b.a.read, nil).want(t, 200)
		reset, err := strconv.Atoi(r.header.Get("RateLimit-Reset"))
		if r.header.Get("RateLimit-Limit") != "3" || r.header.Get("RateLimit-Remaining") != remaining || err != nil || reset < 1 || reset > 60 {
			t.Fatalf("request %d: headers %v", i, r.header)
		}
	}
	// The budget is the organization's, whichever token spends it; the
	// refused request changes nothing.
	before := b.dump()
	r := b.do("POST", "/api/domains", b.a.admin, map[string]any{"domainName": "x.example.com"})
	r.wantProblem(t, 429)
	retry, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil || retry < 1 || retry > 60 || r.header.Get("RateLimit-Remaining") != "0" {
		t.Fatalf("429 headers: %v", r.header)
	}
	if b.dump() != before {
		t.Fatal("rate-limited request changed the database")
	}
	// Another organization has its own budget; health checks have none.
	b.do("GET", "/api/domains", b.b.admin, nil).want(t, 200)
	if r := b.do("GET", "/healthz", "", nil).want(t, 200); r.header.Get("RateLimit-Limit") != "" {
		t.Errorf("healthz is rate limited: %v", r.header)
	}
	// The next window refills the budget.
	b.clock.Advance(time.Duration(retry) * time.Second)
	b.do("GET", "/api/domains", b.a.read, nil).want(t, 200)
}

type brokenLimiter struct{}

func (brokenLimiter) Take(context.Context, string, int, time.Time) (dcvaas.RateDecision, error) {
	return dcvaas.RateDecision{}, errors.New("counter table is locked")
}

// TestRateLimiterFailsOpen: a broken limiter is logged, not an outage.
func TestRateLimiterFailsOpen(t *testing.T) {
	b := setup(t, sqlstore.SQLite, options{rateLimit: 1, limiter: brokenLimiter{}})
	for range 3 {
		if r := b.do("GET", "/api/domains", b.a.read, nil).want(t, 200); r.header.Get("RateLimit-Limit") != "" {
			t.Errorf("headers without a decision: %v", r.header)
		}
	}
	if !strings.Contains(b.logs.String(), "counter table is locked") {
		t.Errorf("limiter failure not logged: %s", b.logs.String())
	}
}

func TestCORS(t *testing.T) {
	b := setup(t, sqlstore.SQLite, options{cors: []string{"https://app.example.com"}})
	r := b.do("GET", "/api/domains", b.a.read, nil, "Origin", "https://app.example.com").want(t, 200)
	h := r.header
	if h.Get("Access-Control-Allow-Origin") != "https://app.example.com" || !strings.Contains(strings.Join(h.Values("Vary"), ","), "Origin") ||
		!strings.Contains(h.Get("Access-Control-Expose-Headers"), "RateLimit-Remaining") || !strings.Contains(h.Get("Access-Control-Expose-Headers"), "Retry-After") {
		t.Fatalf("allowed origin: %v", h)
	}
	if h.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("credentials allowed: %v", h)
	}
	// Errors carry CORS headers too, or the browser hides the problem.
	r = b.do("GET", "/api/domains", "", nil, "Origin", "https://app.example.com")
	if r.wantProblem(t, 401); r.header.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Errorf("problem without CORS headers: %v", r.header)
	}

	for _, origin := range []string{"https://evil.example.com", "https://app.example.com.evil.test", "http://app.example.com", "null"} {
		r := b.do("GET", "/api/domains", b.a.read, nil, "Origin", origin).want(t, 200)
		for k := range r.header {
			if strings.HasPrefix(k, "Access-Control-") {
				t.Errorf("origin %s got %s", origin, k)
			}
		}
		if !strings.Contains(strings.Join(r.header.Values("Vary"), ","), "Origin") {
			t.Errorf("origin %s: no Vary: Origin", origin)
		}
	}

	preflight := func(origin string) *response {
		return b.do("OPTIONS", "/api/domains", "", nil, "Origin", origin,
			"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization,content-type")
	}
	h = preflight("https://app.example.com").want(t, 204).header
	if h.Get("Access-Control-Allow-Origin") != "https://app.example.com" || h.Get("Access-Control-Max-Age") != "600" ||
		h.Get("Access-Control-Allow-Methods") != "GET, POST, PATCH, DELETE, OPTIONS" || h.Get("Access-Control-Allow-Headers") != "Authorization, Content-Type, Accept" {
		t.Fatalf("preflight: %v", h)
	}
	r = preflight("https://evil.example.com")
	if r.status == 204 || r.header.Get("Access-Control-Allow-Origin") != "" || r.header.Get("Access-Control-Allow-Methods") != "" {
		t.Fatalf("preflight of other origin: %d %v", r.status, r.header)
	}
}

func TestBodyLimits(t *testing.T) {
	b := setup(t, sqlstore.SQLite)
	before := b.dump()
	b.do("POST", "/api/domains", b.a.admin, `{"domainName":"`+strings.Repeat("a", 1<<20)+`"}`).wantProblem(t, 413)
	b.do("POST", "/api/organizations", b.a.admin, strings.Repeat(" ", 1<<20+1)).wantProblem(t, 413)
	b.do("POST", "/api/domains", b.a.admin, `{"domainName": "a.example.com",}`).wantProblem(t, 400)
	b.do("POST", "/api/domains", b.a.admin, ``).wantProblem(t, 400)
	p := b.do("POST", "/api/domains", b.a.admin, `{"domainName":"a.example.com","admin":true}`).wantProblem(t, 422)
	if fields := fieldsOf(p); len(fields) != 1 || fields[0] != "body.admin" {
		t.Errorf("unknown field problem: %v", p)
	}
	if b.dump() != before {
		t.Fatal("refused bodies changed the database")
	}
	// A body of exactly 1 MiB is still read (and then judged on its content).
	body := `{"name":"Big"}`
	b.do("POST", "/api/organizations", b.a.admin, body+strings.Repeat(" ", 1<<20-len(body))).want(t, 201)
}

func TestHealth(t *testing.T) {
	b := setup(t, sqlstore.SQLite)
	if r := b.do("GET", "/healthz", "", nil).want(t, 200); string(r.body) != "{\"status\":\"ok\"}\n" || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("healthz = %q %v", r.body, r.header)
	}
	b.do("GET", "/readyz", "", nil).want(t, 200)

	b = setup(t, sqlstore.SQLite, options{ready: func(context.Context) error {
		return &dcvaas.Error{Code: dcvaas.EUNAVAILABLE, Message: "database unreachable", Err: errors.New("dial tcp 10.0.0.5:5432: refused")}
	}})
	p := b.do("GET", "/readyz", "", nil).wantProblem(t, 503)
	if strings.Contains(p["detail"].(string), "10.0.0.5") {
		t.Fatalf("cause leaked: %v", p)
	}
}

func TestRouting(t *testing.T) {
	b := setup(t, sqlstore.SQLite)
	b.do("GET", "/nope", "", nil).wantProblem(t, 404)
	b.do("GET", "/api/domains/x/nope", b.a.read, nil).wantProblem(t, 404)
	r := b.do("PUT", "/api/domains/x", b.a.admin, nil)
	r.wantProblem(t, 405)
	if allow := r.header.Get("Allow"); !strings.Contains(allow, "GET") || !strings.Contains(allow, "DELETE") || strings.Contains(allow, "PUT") {
		t.Errorf("Allow = %q", allow)
	}
	b.do("POST", "/healthz", "", nil).wantProblem(t, 405)
}
