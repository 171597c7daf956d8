package web_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/domainname"
	"github.com/dcvaas/dcvaas/sqlstore"
)

func (b *bundle) addDomain(name string) *dcvaas.Domain {
	b.t.Helper()
	d, err := domainname.NewDomain(name, nil, "", "verify.example.net", nil, dcvaas.OrgSettings{})
	if err != nil {
		b.t.Fatal(err)
	}
	if _, err := b.db.CreateDomain(context.Background(), dcvaas.Actor{OrgID: b.orgA.ID}, d); err != nil {
		b.t.Fatal(err)
	}
	return d
}

// The overview shows what needs attention: certificates expiring within
// 14 days, CNAMEs gone missing, failed jobs, CA failovers of the last week.
func TestOverviewNeedsAttention(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d sqlstore.Dialect) {
		b := setup(t, d, "")
		ctx := context.Background()
		now := b.clock.Now()
		set := func(q string, args ...any) {
			t.Helper()
			if _, err := b.db.SQL().Exec(q, args...); err != nil {
				t.Fatal(err)
			}
		}
		soon, later, gone := b.addDomain("soon.example.com"), b.addDomain("later.example.com"), b.addDomain("gone.example.com")
		b.addDomain("waiting.example.com")
		set(`UPDATE domains SET status = 'active', expires_at = $1 WHERE id = $2`, now.Add(5*24*time.Hour).UnixMicro(), soon.ID)
		set(`UPDATE domains SET status = 'active', expires_at = $1 WHERE id = $2`, now.Add(60*24*time.Hour).UnixMicro(), later.ID)
		set(`UPDATE domains SET status = 'active', expires_at = $1, cname_status = 'missing' WHERE id = $2`, now.Add(60*24*time.Hour).UnixMicro(), gone.ID)
		set(`UPDATE jobs SET status = 'failed', last_error = 'boom at the CA' WHERE domain_id = $1`, later.ID)
		if err := b.db.AuditCAEvent(ctx, dcvaas.SystemActor(b.orgA.ID), "ca.failover", "letsencrypt",
			map[string]any{"domainName": "soon.example.com", "to": "zerossl", "reason": "budget"}); err != nil {
			t.Fatal(err)
		}
		br := b.browser()
		br.signIn(b.reader, "/")
		page := br.send("GET", "/", nil).body
		section := func(id string) string {
			m := regexp.MustCompile(`(?s)<section class="card" id="` + id + `">(.*?)</section>`).FindStringSubmatch(page)
			if m == nil {
				t.Fatalf("no %s section", id)
			}
			return m[1]
		}
		if s := section("expiring"); !strings.Contains(s, "soon.example.com") || strings.Contains(s, "later.example.com") || !strings.Contains(s, "(1)") {
			t.Fatalf("expiring: %s", s)
		}
		if s := section("missing"); !strings.Contains(s, "_acme-challenge.gone.example.com") || strings.Contains(s, "waiting.example.com") {
			t.Fatalf("missing: %s", s)
		}
		if s := section("failed"); !strings.Contains(s, "boom at the CA") || !strings.Contains(s, "(1)") {
			t.Fatalf("failed: %s", s)
		}
		if s := section("failovers"); !strings.Contains(s, "letsencrypt") || !strings.Contains(s, "to=zerossl") {
			t.Fatalf("failovers: %s", s)
		}
		// A failover older than a week is not shown; another organization
		// sees none of it.
		b.clock.Advance(8 * 24 * time.Hour)
		br = b.browser()
		br.signIn(b.reader, "/")
		if page = br.send("GET", "/", nil).body; !strings.Contains(section("failovers"), "(0)") {
			t.Fatal("old failover shown")
		}
		other := b.browser()
		other.signIn(b.other, "/")
		if page := other.send("GET", "/", nil).body; strings.Contains(page, "example.com") || strings.Contains(page, "letsencrypt") {
			t.Fatal("another organization's overview shows Acme's")
		}
	})
}

// The domain page says when the CNAME was looked for, what was found, and
// when the next look is.
func TestDomainPageLiveDNSCheck(t *testing.T) {
	b := setup(t, sqlstore.SQLite, "")
	d := b.addDomain("shop.example.com")
	now := b.clock.Now()
	if _, err := b.db.SQL().Exec(`UPDATE jobs SET attempts = 1, updated_at = $1, run_at = $2, last_error = $3 WHERE domain_id = $4`,
		now.UnixMicro(), now.Add(2*time.Minute).UnixMicro(),
		"no CNAME at _acme-challenge.shop.example.com (the name exists without one); create a CNAME to x", d.ID); err != nil {
		t.Fatal(err)
	}
	br := b.browser()
	br.signIn(b.reader, "/")
	page := br.send("GET", "/domains/"+d.ID, nil).body
	want := "looked at 2026-11-01 12:00 UTC, next look 2026-11-01 12:02 UTC — no CNAME at _acme-challenge.shop.example.com (the name exists without one)"
	if !strings.Contains(page, want) {
		t.Fatalf("domain page lacks %q", want)
	}
}
