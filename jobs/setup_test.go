package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/resolve/resolvetest"
	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/dcvaas/dcvaas/sqlstore/storetest"
)

// bundle is what an engine test starts from: a fresh migrated database with
// one organization, a loopback DNS server as the only resolver, and an
// engine (not yet started) on it.
type bundle struct {
	t     *testing.T
	ctx   context.Context
	db    *sqlstore.DB
	e     *Engine
	dns   *resolvetest.Server
	clock *clock
	org   *dcvaas.Organization
	actor dcvaas.Actor
	n     *atomic.Int64
}

// clock is real time plus an offset tests can move: River runs on real
// time, while the product's clock may jump ahead (e.g. past a check window).
type clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.offset += d; c.mu.Unlock() }

// testConfig is fast: tiny backoff, sub-second recheck intervals.
func testConfig(db *sqlstore.DB, dnsAddr string, clk *clock) Config {
	return Config{
		DB: db, Clock: clk.Now, Logger: testLogger(), Resolvers: []string{dnsAddr},
		Workers: 4, RetryBackoff: 10 * time.Millisecond, DNSCheckIntervals: []time.Duration{100 * time.Millisecond},
		ShutdownTimeout: 5 * time.Second, FetchPollInterval: 100 * time.Millisecond,
	}
}

func testLogger() *slog.Logger {
	if os.Getenv("DCVAAS_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func setup(t *testing.T, dialect sqlstore.Dialect, configure ...func(*Config)) *bundle {
	t.Helper()
	clk := &clock{}
	db := storetest.NewDB(t, dialect, sqlstore.Options{Clock: clk.Now})
	ctx := context.Background()
	if err := Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	srv := resolvetest.New(t)
	cfg := testConfig(db, srv.Addr, clk)
	for _, f := range configure {
		f(&cfg)
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tok := &dcvaas.Token{Name: "t", Prefix: "dcv_x", Hash: fmt.Sprintf("hash-%p", t), Role: dcvaas.TokenAdmin}
	org, user, err := db.Bootstrap(ctx, "Acme", "owner@acme.test", tok)
	if err != nil {
		t.Fatal(err)
	}
	return &bundle{t: t, n: new(atomic.Int64), ctx: ctx, db: db, e: e, dns: srv, clock: clk, org: org,
		actor: dcvaas.Actor{OrgID: org.ID, UserID: user.ID, TokenID: tok.ID, TokenRole: dcvaas.TokenAdmin, MemberRole: dcvaas.RoleOwner}}
}

// with returns the bundle for a subtest, failing that subtest.
func (b *bundle) with(t *testing.T) *bundle {
	c := *b
	c.t = t
	return &c
}

// start runs the engine until the test ends.
func (b *bundle) start() {
	b.t.Helper()
	startEngine(b.t, b.e)
}

func startEngine(t *testing.T, e *Engine) {
	t.Helper()
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		e.Stop(ctx)
	})
}

func forEachDialect(t *testing.T, fn func(t *testing.T, d sqlstore.Dialect)) {
	t.Helper()
	for _, d := range storetest.Dialects(t) {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			fn(t, d)
		})
	}
}

// domain creates a domain (and its dns_check job) named <label>.example.com.
func (b *bundle) domain(label string) (*dcvaas.Domain, *dcvaas.Job) {
	b.t.Helper()
	n := b.n.Add(1)
	d := &dcvaas.Domain{Name: label + ".example.com", CNAMETarget: fmt.Sprintf("t%dk7x2q9w4m3z8p5.verify.example", n),
		IncludeWildcard: true, KeyType: dcvaas.KeyEC256}
	j, err := b.db.CreateDomain(b.ctx, b.actor, d)
	if err != nil {
		b.t.Fatal(err)
	}
	return d, j
}

func challengeName(d *dcvaas.Domain) string { return "_acme-challenge." + d.Name }

// wait polls the job until cond holds, failing after timeout.
func (b *bundle) wait(id string, timeout time.Duration, what string, cond func(*dcvaas.Job) bool) *dcvaas.Job {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		j, err := b.db.FindJob(b.ctx, b.org.ID, id)
		if err != nil {
			b.t.Fatal(err)
		}
		if cond(j) {
			return j
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("job %s (%s) not %s after %s: %+v", id, j.Type, what, timeout, j)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (b *bundle) waitStatus(id string, st dcvaas.JobStatus, timeout time.Duration) *dcvaas.Job {
	b.t.Helper()
	return b.wait(id, timeout, string(st), func(j *dcvaas.Job) bool { return j.Status == st })
}

func (b *bundle) findDomain(id string) *dcvaas.Domain {
	b.t.Helper()
	d, err := b.db.FindDomain(b.ctx, b.org.ID, id)
	if err != nil {
		b.t.Fatal(err)
	}
	return d
}

// audit returns the job's or domain's audit entries, oldest first.
func (b *bundle) audit(entityID string) []*dcvaas.AuditEntry {
	b.t.Helper()
	all, _, err := b.db.ListAudit(b.ctx, b.org.ID, dcvaas.AuditFilter{Page: dcvaas.Page{Limit: 1000}})
	if err != nil {
		b.t.Fatal(err)
	}
	var out []*dcvaas.AuditEntry
	for i := len(all) - 1; i >= 0; i-- {
		if all[i].EntityID == entityID {
			out = append(out, all[i])
		}
	}
	return out
}

func actions(es []*dcvaas.AuditEntry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Action
	}
	return out
}

// riverState reads a River job's state straight from River's table.
func (b *bundle) riverState(id int64) string {
	b.t.Helper()
	var st string
	if err := b.db.SQL().QueryRowContext(b.ctx, `SELECT state FROM river_job WHERE id = $1`, id).Scan(&st); err != nil {
		b.t.Fatal(err)
	}
	return st
}

// waitRiver waits for a River job to reach state.
func (b *bundle) waitRiver(id int64, state string) {
	b.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for st := b.riverState(id); st != state; st = b.riverState(id) {
		if time.Now().After(deadline) {
			b.t.Fatalf("river job %d is %s, want %s", id, st, state)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// queueID reads which River job the jobs row points at.
func (b *bundle) queueID(jobID string) int64 {
	b.t.Helper()
	var id int64
	if err := b.db.SQL().QueryRowContext(b.ctx, `SELECT COALESCE(queue_job_id, 0) FROM jobs WHERE id = $1`, jobID).Scan(&id); err != nil {
		b.t.Fatal(err)
	}
	return id
}
