package sqlstore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/dcvaas/dcvaas/sqlstore/storetest"
)

// bundle is what each store test starts from: a fresh database with one
// bootstrapped organization.
type bundle struct {
	db    *sqlstore.DB
	ctx   context.Context
	clock *clock
	org   *dcvaas.Organization
	actor dcvaas.Actor
	// targets numbers CNAME targets, which are unique across the store.
	targets int
}

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

func setup(t *testing.T, dialect sqlstore.Dialect) *bundle {
	t.Helper()
	clk := &clock{now: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
	db := storetest.NewDB(t, dialect, sqlstore.Options{Clock: clk.Now})
	ctx := context.Background()
	tok := &dcvaas.Token{Name: "bootstrap", Prefix: "dcv_abc", Hash: "hash-" + string(dialect), Role: dcvaas.TokenAdmin}
	org, user, err := db.Bootstrap(ctx, "Acme", "owner@acme.test", tok)
	if err != nil {
		t.Fatal(err)
	}
	return &bundle{db: db, ctx: ctx, clock: clk, org: org,
		actor: dcvaas.Actor{OrgID: org.ID, UserID: user.ID, TokenID: tok.ID, TokenRole: dcvaas.TokenAdmin, MemberRole: dcvaas.RoleOwner}}
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

func (b *bundle) newDomain(t *testing.T, name string) (*dcvaas.Domain, *dcvaas.Job) {
	t.Helper()
	b.targets++
	d := &dcvaas.Domain{Name: name, CNAMETarget: fmt.Sprintf("label%d.verify.test", b.targets), IncludeWildcard: true, KeyType: dcvaas.KeyEC256}
	j, err := b.db.CreateDomain(b.ctx, b.actor, d)
	if err != nil {
		t.Fatal(err)
	}
	return d, j
}

func TestBootstrap(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b *bundle) {
		// Organization names are not unique: a second "Acme" is another
		// organization.
		again, _, err := b.db.Bootstrap(b.ctx, "ACME", "other@acme.test", &dcvaas.Token{Name: "x", Hash: "h3", Role: dcvaas.TokenAdmin})
		if err != nil || again.ID == b.org.ID {
			t.Fatalf("second Acme: %v %v", again, err)
		}
		// A bootstrap that fails (its token's hash is taken) leaves nothing.
		_, _, err = b.db.Bootstrap(b.ctx, "Third", "third@acme.test", &dcvaas.Token{Name: "x", Hash: "h3", Role: dcvaas.TokenAdmin})
		if err == nil {
			t.Fatal("bootstrap with a taken token hash succeeded")
		}
		var n int
		if err := b.db.SQL().QueryRow(`SELECT COUNT(*) FROM users WHERE email = 'third@acme.test'`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("failed bootstrap left %d users (%v)", n, err)
		}
		orgs, total, err := b.db.ListOrganizations(b.ctx, b.actor.UserID, dcvaas.Page{Limit: 10})
		if err != nil || total != 1 || len(orgs) != 1 || orgs[0].Role != dcvaas.RoleOwner {
			t.Fatalf("orgs = %v %d %v", orgs, total, err)
		}
		// The failed bootstrap left no user behind.
		if _, err := b.db.Authenticate(b.ctx, "h2", b.clock.Now()); dcvaas.ErrorCode(err) != dcvaas.EUNAUTHORIZED {
			t.Fatalf("token of failed bootstrap exists: %v", err)
		}
	})
}

func TestTokens(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b *bundle) {
		auth, err := b.db.Authenticate(b.ctx, "hash-"+string(b.db.Dialect()), b.clock.Now())
		if err != nil || auth.Token.OrgID != b.org.ID || auth.MemberRole != dcvaas.RoleOwner {
			t.Fatalf("authenticate: %+v %v", auth, err)
		}
		exp := b.clock.Now().Add(time.Hour)
		tok := &dcvaas.Token{OrgID: b.org.ID, UserID: b.actor.UserID, Name: "ci", Prefix: "dcv_x", Hash: "h-ci", Role: dcvaas.TokenRead, ExpiresAt: &exp}
		if err := b.db.CreateToken(b.ctx, b.actor, tok); err != nil {
			t.Fatal(err)
		}
		if _, err := b.db.Authenticate(b.ctx, "h-ci", exp.Add(time.Second)); dcvaas.ErrorCode(err) != dcvaas.EUNAUTHORIZED {
			t.Fatalf("expired token accepted: %v", err)
		}
		if err := b.db.TouchToken(b.ctx, tok.ID, exp.Add(-time.Minute)); err != nil {
			t.Fatal(err)
		}
		list, total, err := b.db.ListTokens(b.ctx, b.org.ID, dcvaas.Page{Limit: 10})
		if err != nil || total != 2 || list[0].ID != tok.ID || list[0].LastUsedAt == nil || list[0].Hash != "" {
			t.Fatalf("list = %+v %d %v", list, total, err)
		}
		if err := b.db.RevokeToken(b.ctx, b.actor, tok.ID); err != nil {
			t.Fatal(err)
		}
		wantCode(t, b.db.RevokeToken(b.ctx, b.actor, tok.ID), dcvaas.ENOTFOUND)
		if _, err := b.db.Authenticate(b.ctx, "h-ci", b.clock.Now()); dcvaas.ErrorCode(err) != dcvaas.EUNAUTHORIZED {
			t.Fatalf("revoked token accepted: %v", err)
		}
	})
}

func TestDomains(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b *bundle) {
		d, job := b.newDomain(t, "shop.example.com")
		if job.Type != dcvaas.JobDNSCheck || job.Status != dcvaas.JobQueued || job.DomainID != d.ID {
			t.Fatalf("job = %+v", job)
		}
		_, err := b.db.CreateDomain(b.ctx, b.actor, &dcvaas.Domain{Name: "shop.example.com", CNAMETarget: "other.verify.test", KeyType: "ec256"})
		wantCode(t, err, dcvaas.ECONFLICT)
		b.newDomain(t, "b.example.com")
		got, err := b.db.FindDomain(b.ctx, b.org.ID, d.ID)
		if err != nil || got.Name != d.Name || !got.IncludeWildcard || got.Status != dcvaas.DomainPendingCNAME || !got.CreatedAt.Equal(d.CreatedAt) {
			t.Fatalf("find = %+v %v", got, err)
		}
		list, total, err := b.db.ListDomains(b.ctx, b.org.ID, dcvaas.DomainFilter{Page: dcvaas.Page{Limit: 1}})
		if err != nil || total != 2 || len(list) != 1 || list[0].Name != "b.example.com" {
			t.Fatalf("list = %v %d %v", list, total, err)
		}
		if _, total, _ := b.db.ListDomains(b.ctx, b.org.ID, dcvaas.DomainFilter{Status: dcvaas.DomainActive, Page: dcvaas.Page{Limit: 10}}); total != 0 {
			t.Fatalf("status filter: %d", total)
		}
		_, err = b.db.EnqueueDomainJob(b.ctx, b.actor, d.ID, dcvaas.JobStartIssuance, dcvaas.DomainIssuing)
		wantCode(t, err, dcvaas.ECONFLICT)
		vj, err := b.db.EnqueueDomainJob(b.ctx, b.actor, d.ID, dcvaas.JobDNSCheck)
		if err != nil || vj.Type != dcvaas.JobDNSCheck {
			t.Fatal(vj, err)
		}
		if latest, err := b.db.LatestDomainJob(b.ctx, b.org.ID, d.ID); err != nil || latest.ID != vj.ID {
			t.Fatalf("latest = %v %v", latest, err)
		}
		_, err = b.db.CurrentCertificate(b.ctx, b.org.ID, d.ID)
		wantCode(t, err, dcvaas.ENOTFOUND)
		if err := b.db.DeleteDomain(b.ctx, b.actor, d.ID, false); err != nil {
			t.Fatal(err)
		}
		_, err = b.db.FindDomain(b.ctx, b.org.ID, d.ID)
		wantCode(t, err, dcvaas.ENOTFOUND)
		// A deleted name can be added again.
		b.newDomain(t, "shop.example.com")
		other, _ := b.newDomain(t, "c.example.com")
		if err := b.db.DeleteDomain(b.ctx, b.actor, other.ID, true); err != nil {
			t.Fatal(err)
		}
		wantCode(t, b.db.DeleteDomain(b.ctx, b.actor, other.ID, true), dcvaas.ENOTFOUND)
	})
}

func TestJobs(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b *bundle) {
		d, job := b.newDomain(t, "jobs.example.com")
		_, err := b.db.RetryJob(b.ctx, b.actor, job.ID)
		wantCode(t, err, dcvaas.ECONFLICT)
		b.newDomain(t, "other.example.com")
		jobs, total, err := b.db.ListJobs(b.ctx, b.org.ID, dcvaas.JobFilter{DomainID: d.ID, Page: dcvaas.Page{Limit: 10}})
		if err != nil || total != 1 || jobs[0].ID != job.ID {
			t.Fatalf("jobs = %v %d %v", jobs, total, err)
		}
		if _, total, _ := b.db.ListJobs(b.ctx, b.org.ID, dcvaas.JobFilter{Status: dcvaas.JobFailed, Page: dcvaas.Page{Limit: 10}}); total != 0 {
			t.Fatalf("failed jobs = %d", total)
		}
		got, err := b.db.FindJob(b.ctx, b.org.ID, job.ID)
		if err != nil || got.MaxAttempts != dcvaas.DefaultMaxAttempts || got.Result != nil {
			t.Fatalf("job = %+v %v", got, err)
		}
	})
}

func TestIsolation(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b *bundle) {
		d, job := b.newDomain(t, "mine.example.com")
		tok := &dcvaas.Token{Name: "other", Hash: "h-other", Role: dcvaas.TokenAdmin}
		org2, user2, err := b.db.Bootstrap(b.ctx, "Other", "other@other.test", tok)
		if err != nil {
			t.Fatal(err)
		}
		other := dcvaas.Actor{OrgID: org2.ID, UserID: user2.ID, TokenID: tok.ID}
		_, err = b.db.FindDomain(b.ctx, org2.ID, d.ID)
		wantCode(t, err, dcvaas.ENOTFOUND)
		wantCode(t, b.db.DeleteDomain(b.ctx, other, d.ID, false), dcvaas.ENOTFOUND)
		_, err = b.db.EnqueueDomainJob(b.ctx, other, d.ID, dcvaas.JobDNSCheck)
		wantCode(t, err, dcvaas.ENOTFOUND)
		_, err = b.db.FindJob(b.ctx, org2.ID, job.ID)
		wantCode(t, err, dcvaas.ENOTFOUND)
		_, err = b.db.RetryJob(b.ctx, other, job.ID)
		wantCode(t, err, dcvaas.ENOTFOUND)
		wantCode(t, b.db.RevokeToken(b.ctx, other, b.actor.TokenID), dcvaas.ENOTFOUND)
		_, err = b.db.UpdateOrganization(b.ctx, other, b.org.ID, dcvaas.OrgUpdate{})
		wantCode(t, err, dcvaas.ENOTFOUND)
		// The same name may live in two organizations.
		if _, err := b.db.CreateDomain(b.ctx, other, &dcvaas.Domain{Name: "mine.example.com", CNAMETarget: "x.verify.test", KeyType: "ec256"}); err != nil {
			t.Fatal(err)
		}
		for _, org := range []string{b.org.ID, org2.ID} {
			entries, _, err := b.db.ListAudit(b.ctx, org, dcvaas.AuditFilter{Page: dcvaas.Page{Limit: 200}})
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				if e.OrgID != org {
					t.Fatalf("org %s sees audit entry of %s", org, e.OrgID)
				}
			}
		}
		if _, n, _ := b.db.ListJobs(b.ctx, org2.ID, dcvaas.JobFilter{Page: dcvaas.Page{Limit: 10}}); n != 1 {
			t.Fatalf("org2 jobs = %d", n)
		}
	})
}

func TestOrganizations(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b *bundle) {
		org, err := b.db.CreateOrganization(b.ctx, b.actor, "Second", dcvaas.OrgSettings{ContactEmail: "ops@acme.test"})
		if err != nil {
			t.Fatal(err)
		}
		// Names are not unique.
		if _, err = b.db.CreateOrganization(b.ctx, b.actor, "second", dcvaas.OrgSettings{}); err != nil {
			t.Fatal(err)
		}
		name := "Acme"
		if _, err = b.db.UpdateOrganization(b.ctx, b.actor, org.ID, dcvaas.OrgUpdate{Name: &name}); err != nil {
			t.Fatal(err)
		}
		name = "Renamed"
		no := false
		up, err := b.db.UpdateOrganization(b.ctx, b.actor, org.ID, dcvaas.OrgUpdate{Name: &name, Settings: &dcvaas.OrgSettings{DefaultIncludeWildcard: &no}})
		if err != nil || up.Name != "Renamed" || up.Settings.DefaultIncludeWildcard == nil || *up.Settings.DefaultIncludeWildcard {
			t.Fatalf("update = %+v %v", up, err)
		}
		got, err := b.db.FindMembership(b.ctx, b.actor.UserID, org.ID)
		if err != nil || got.Name != "Renamed" || got.Settings.ContactEmail != "" {
			t.Fatalf("membership = %+v %v", got, err)
		}
		entries, _, _ := b.db.ListAudit(b.ctx, org.ID, dcvaas.AuditFilter{Action: "organization.updated", Page: dcvaas.Page{Limit: 10}})
		if len(entries) != 2 || entries[0].UserID != b.actor.UserID { // "Acme", then "Renamed"
			t.Fatalf("audit = %+v", entries)
		}
	})
}

func TestAuditFilters(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b *bundle) {
		start := b.clock.Now()
		for i := range 3 {
			b.newDomain(t, fmt.Sprintf("d%d.example.com", i))
		}
		entries, total, err := b.db.ListAudit(b.ctx, b.org.ID, dcvaas.AuditFilter{Action: "domain.created", From: &start, Page: dcvaas.Page{Limit: 2}})
		if err != nil || total != 3 || len(entries) != 2 || entries[0].Details["domainName"] != "d2.example.com" {
			t.Fatalf("audit = %+v %d %v", entries, total, err)
		}
		if _, total, _ := b.db.ListAudit(b.ctx, b.org.ID, dcvaas.AuditFilter{To: &start, Page: dcvaas.Page{Limit: 50}}); total != 2 {
			t.Fatalf("bootstrap entries before start = %d, want 2", total)
		}
		if _, total, _ := b.db.ListAudit(b.ctx, b.org.ID, dcvaas.AuditFilter{UserID: "nobody", Page: dcvaas.Page{Limit: 50}}); total != 0 {
			t.Fatalf("user filter = %d", total)
		}
	})
}

func TestRateLimit(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b *bundle) {
		now := time.Date(2026, 11, 1, 12, 0, 10, 0, time.UTC)
		var wg sync.WaitGroup
		allowed := make(chan bool, 20)
		for range 20 {
			wg.Go(func() {
				d, err := b.db.Take(b.ctx, "org-a", 10, now)
				if err != nil {
					t.Error(err)
				}
				allowed <- d.Allowed
			})
		}
		wg.Wait()
		close(allowed)
		n := 0
		for a := range allowed {
			if a {
				n++
			}
		}
		if n != 10 {
			t.Fatalf("allowed %d of 20 with limit 10", n)
		}
		d, err := b.db.Take(b.ctx, "org-a", 10, now.Add(time.Minute))
		if err != nil || !d.Allowed || d.Remaining != 9 {
			t.Fatalf("next window: %+v %v", d, err)
		}
	})
}

func TestReady(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b *bundle) {
		if err := b.db.Ping(b.ctx); err != nil {
			t.Fatal(err)
		}
	})
}
