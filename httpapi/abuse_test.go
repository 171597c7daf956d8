package httpapi_test

import (
	"context"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/apitoken"
	"github.com/dcvaas/dcvaas/sqlstore"
)

// TestRateLimitPerUser: creating organizations does not multiply a user's
// budget: every token of one user, in every organization, spends one
// budget; another user's organization keeps its own.
func TestRateLimitPerUser(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		for _, inStore := range []bool{false, true} {
			t.Run(map[bool]string{false: "memory", true: "store"}[inStore], func(t *testing.T) {
				b := setup(t, dialect, options{rateLimit: 3, storeLimiter: inStore, memoryLimiter: !inStore})
				ctx := context.Background()
				actor := dcvaas.Actor{OrgID: b.a.org.ID, UserID: b.a.user.ID, MemberRole: dcvaas.RoleOwner}
				second, err := b.db.CreateOrganization(ctx, actor, "Acme Two", dcvaas.OrgSettings{})
				if err != nil {
					t.Fatal(err)
				}
				plain := mustToken(t)
				tok := &dcvaas.Token{OrgID: second.ID, UserID: b.a.user.ID, Name: "second", Prefix: apitoken.DisplayPrefix(plain), Hash: apitoken.Hash(plain), Role: dcvaas.TokenAdmin}
				if err := b.db.CreateToken(ctx, dcvaas.Actor{OrgID: second.ID, UserID: b.a.user.ID}, tok); err != nil {
					t.Fatal(err)
				}
				for range 3 {
					b.do("GET", "/api/domains", b.a.read, nil).want(t, 200)
				}
				r := b.do("GET", "/api/domains", plain, nil)
				r.wantProblem(t, 429)
				if retry, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || retry < 1 || retry > 20 {
					t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
				}
				b.do("GET", "/api/domains", b.b.admin, nil).want(t, 200)
				// One request comes back every 20 s (3 a minute), not all
				// three at the next minute.
				b.clock.Advance(20 * time.Second)
				b.do("GET", "/api/domains", plain, nil).want(t, 200)
				b.do("GET", "/api/domains", b.a.admin, nil).wantProblem(t, 429)
			})
		}
	})
}

// TestRateLimitBoundary: a fixed window let the whole budget through again
// right after a minute boundary.
func TestRateLimitBoundary(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b := setup(t, dialect, options{rateLimit: 3})
		b.clock.Set(time.Date(2026, 11, 1, 12, 0, 59, 0, time.UTC))
		for range 3 {
			b.do("GET", "/api/domains", b.a.read, nil).want(t, 200)
		}
		b.clock.Set(time.Date(2026, 11, 1, 12, 1, 1, 0, time.UTC))
		b.do("GET", "/api/domains", b.a.read, nil).wantProblem(t, 429)
	})
}

// TestRateLimitUnauthenticated: failed authentications and OAuth callbacks
// count against the client address; X-Forwarded-For names the client only
// when a trusted proxy sent it; valid tokens never spend that budget.
func TestRateLimitUnauthenticated(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
		t.Run("proxied", func(t *testing.T) {
			b := setup(t, dialect, options{ipRateLimit: 2, proxies: loopback})
			bad := "dcv_" + "nope"
			xff := func(ip string) []string { return []string{"X-Forwarded-For", "6.6.6.6, " + ip} }
			b.do("GET", "/api/domains", bad, nil, xff("192.0.2.1")...).wantProblem(t, 401)
			b.do("GET", "/api/domains", "", nil, xff("192.0.2.1")...).wantProblem(t, 401)
			r := b.do("GET", "/api/domains", bad, nil, xff("192.0.2.1")...)
			r.wantProblem(t, 429)
			if r.header.Get("Retry-After") != "30" {
				t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
			}
			// The token is not even looked at any more... but a valid
			// one still gets in from the same address.
			b.do("GET", "/api/domains", b.a.read, nil, xff("192.0.2.1")...).want(t, 200)
			// Another client behind the same proxy has its own budget.
			b.do("GET", "/api/domains", bad, nil, xff("192.0.2.2")...).wantProblem(t, 401)
			// The OAuth callback: every request counts.
			b.do("GET", "/api/oauth/cloudflare/callback?state=x&code=y", "", nil, xff("192.0.2.3")...)
			b.do("GET", "/api/oauth/cloudflare/callback?state=x&code=y", "", nil, xff("192.0.2.3")...)
			r = b.do("GET", "/api/oauth/cloudflare/callback?state=x&code=y", "", nil, xff("192.0.2.3")...)
			r.wantProblem(t, 429)
			if r.header.Get("Retry-After") == "" {
				t.Fatal("no Retry-After")
			}
		})
		t.Run("direct", func(t *testing.T) {
			// Without trusted proxies the header is the client's own
			// writing: ignored, the peer (127.0.0.1) is limited.
			b := setup(t, dialect, options{ipRateLimit: 2})
			for i, ip := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"} {
				r := b.do("GET", "/api/domains", "dcv_nope", nil, "X-Forwarded-For", ip)
				if i < 2 {
					r.wantProblem(t, 401)
				} else {
					r.wantProblem(t, 429)
				}
			}
		})
	})
}

// TestSecurityAudit: failed authentications and denied private-key reads
// are audited in aggregate, one entry per source and minute with a count,
// and a flood of them writes a bounded number of log lines.
func TestSecurityAudit(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b := setup(t, dialect, options{secAudit: true, proxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
		ctx := context.Background()
		b.clock.Set(time.Date(2026, 11, 1, 12, 0, 5, 0, time.UTC))
		for range 200 {
			b.do("GET", "/api/domains", "dcv_nope", nil, "X-Forwarded-For", "192.0.2.7").wantProblem(t, 401)
		}
		b.do("GET", "/api/domains", "", nil, "X-Forwarded-For", "192.0.2.8").wantProblem(t, 401)
		for range 3 {
			b.do("GET", "/api/domains/dom_x/certificate/key", b.a.read, nil, "X-Forwarded-For", "192.0.2.9").wantProblem(t, 403)
		}
		if lines := strings.Count(b.logs.String(), "status=401"); lines > 25 {
			t.Fatalf("%d log lines for 201 refused requests", lines)
		}
		if err := b.secAudit.Flush(ctx, false); err != nil {
			t.Fatal(err)
		}
		if cs, _ := b.db.ListSecurityCounts(ctx, b.clock.Now().Add(-time.Hour), 10); len(cs) != 0 {
			t.Fatalf("written before the minute ended: %+v", cs)
		}
		b.clock.Advance(time.Minute)
		if err := b.secAudit.Flush(ctx, false); err != nil {
			t.Fatal(err)
		}
		cs, err := b.db.ListSecurityCounts(ctx, b.clock.Now().Add(-time.Hour), 10)
		if err != nil {
			t.Fatal(err)
		}
		minute := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
		want := []dcvaas.SecurityCount{
			{Action: dcvaas.SecurityAuthFailed, Source: "192.0.2.7", Minute: minute, Count: 200},
			{Action: dcvaas.SecurityAuthFailed, Source: "192.0.2.8", Minute: minute, Count: 1},
			{Action: dcvaas.SecurityKeyReadDenied, OrgID: b.a.org.ID, Source: "192.0.2.9", Minute: minute, Count: 3},
		}
		if len(cs) != 3 || cs[0] != want[0] || cs[1] != want[1] || cs[2] != want[2] {
			t.Fatalf("entries %+v\nwant %+v", cs, want)
		}
	})
}
