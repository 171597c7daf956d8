package jobs

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas"
	dcacme "github.com/dcvaas/dcvaas/acme"
	"github.com/dcvaas/dcvaas/resolve/resolvetest"
	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/dcvaas/dcvaas/sqlstore/storetest"
)

const day = 24 * time.Hour

// fakeARI plays the issuer for the renewal check: it answers ARI requests
// from a table and issues nothing.
type fakeARI struct {
	mu      sync.Mutex
	windows map[string]*dcacme.Window // by domain id
	fail    map[string]bool
	asked   map[string]int
}

func newFakeARI() *fakeARI {
	return &fakeARI{windows: map[string]*dcacme.Window{}, fail: map[string]bool{}, asked: map[string]int{}}
}

func (f *fakeARI) Issue(context.Context, *dcvaas.Domain, bool) (any, error) {
	return nil, dcvaas.Errorf(dcvaas.EUNAVAILABLE, "the test issuer issues nothing")
}

func (f *fakeARI) RenewalWindow(_ context.Context, cert *dcvaas.Certificate) (*dcacme.Window, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked[cert.DomainID]++
	if f.fail[cert.DomainID] {
		return nil, fmt.Errorf("CA unreachable")
	}
	return f.windows[cert.DomainID], nil
}

func (f *fakeARI) set(domainID string, w *dcacme.Window) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.windows[domainID] = w
}

func (f *fakeARI) count(domainID string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.asked[domainID]
}

// activeDomain creates a domain whose certificate (inserted directly, as
// an issuance would store it) is valid from notBefore to notAfter.
func (b *bundle) activeDomain(label string, notBefore, notAfter time.Time) *dcvaas.Domain {
	b.t.Helper()
	d, _ := b.domain(label)
	b.saveCert(d, notBefore, notAfter)
	return b.findDomain(d.ID)
}

func (b *bundle) saveCert(d *dcvaas.Domain, notBefore, notAfter time.Time) {
	b.t.Helper()
	c := &dcvaas.Certificate{DomainID: d.ID, SerialNumber: fmt.Sprint(notAfter.UnixNano()), Issuer: "Test CA", CAName: "letsencrypt",
		DNSNames: []string{d.Name}, NotBefore: notBefore, NotAfter: notAfter, ChainPEM: "-", PrivateKeyEnc: "-"}
	if err := b.db.SaveCertificate(b.ctx, dcvaas.SystemActor(d.OrgID), c, nil); err != nil {
		b.t.Fatal(err)
	}
}

// renewals lists the domain's renewal jobs, newest first.
func (b *bundle) renewals(domainID string) []*dcvaas.Job {
	b.t.Helper()
	list, _, err := b.db.ListJobs(b.ctx, b.org.ID, dcvaas.JobFilter{DomainID: domainID, Type: dcvaas.JobRenewal, Page: dcvaas.Page{Limit: 100}})
	if err != nil {
		b.t.Fatal(err)
	}
	return list
}

func (b *bundle) countRiver(kind string) int {
	b.t.Helper()
	var n int
	if err := b.db.SQL().QueryRowContext(b.ctx, `SELECT COUNT(*) FROM river_job WHERE kind = $1`, kind).Scan(&n); err != nil {
		b.t.Fatal(err)
	}
	return n
}

func (b *bundle) check() *dcvaas.RenewalRun {
	b.t.Helper()
	run, err := b.e.RenewalCheck(b.ctx, CauseSchedule)
	if err != nil {
		b.t.Fatal(err)
	}
	return run
}

// TestRenewalCheckScenarios decides each kind of certificate on an injected
// clock: due by its remaining lifetime, due by its CA's ARI window, not
// due, already being renewed, and renewed in vain last time.
func TestRenewalCheckScenarios(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		ari := newFakeARI()
		b := setup(t, dialect, func(c *Config) {
			c.Issuer = ari
			c.Renewal.Spread = time.Hour
		})
		b.clock.Advance(400 * day) // far from real time: the engine must use its clock
		now := b.clock.Now()

		byLifetime := b.activeDomain("lifetime", now.Add(-61*day), now.Add(29*day)) // 29 of 90 days left
		notDue := b.activeDomain("fresh", now.Add(-day), now.Add(89*day))
		shortLived := b.activeDomain("short", now.Add(-5*day), now.Add(day)) // a 6-day certificate, 1 day left
		byARI := b.activeDomain("ari", now.Add(-10*day), now.Add(80*day))
		ari.set(byARI.ID, &dcacme.Window{Start: now.Add(-time.Hour), End: now.Add(time.Hour)})
		ariLater := b.activeDomain("arilater", now.Add(-10*day), now.Add(80*day))
		ari.set(ariLater.ID, &dcacme.Window{Start: now.Add(30 * day), End: now.Add(31 * day), RetryAfter: now.Add(3 * time.Hour)})
		queued := b.activeDomain("queued", now.Add(-80*day), now.Add(10*day))
		openJob, err := b.db.EnqueueDomainJob(b.ctx, b.actor, queued.ID, dcvaas.JobRenewal, dcvaas.DomainActive)
		if err != nil {
			t.Fatal(err)
		}
		failedBefore := b.activeDomain("failed", now.Add(-80*day), now.Add(10*day))
		dead, err := b.db.EnqueueDomainJob(b.ctx, b.actor, failedBefore.ID, dcvaas.JobRenewal, dcvaas.DomainActive)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.db.SQL().ExecContext(b.ctx, `UPDATE jobs SET status = 'failed', last_error = 'CA down' WHERE id = $1`, dead.ID); err != nil {
			t.Fatal(err)
		}
		pending, _ := b.domain("pending") // not active: not looked at
		deleted := b.activeDomain("deleted", now.Add(-80*day), now.Add(day))
		if err := b.db.DeleteDomain(b.ctx, b.actor, deleted.ID, false); err != nil {
			t.Fatal(err)
		}

		// The ARI requests are made by renewal_info jobs; the check queues
		// them for the certificates whose window is unknown.
		run := b.check()
		if run.Status != dcvaas.RenewalSucceeded || run.Scanned != 7 || run.Due != 4 || run.Queued != 3 || run.Skipped != 1 || run.ARIChecks != 3 {
			t.Fatalf("first run = %+v", run)
		}
		if n := b.countRiver(kindRenewalInfo); n != 1 {
			t.Fatalf("%d renewal_info jobs, want 1 batch", n)
		}
		// What those jobs do, done here without a running engine.
		q, failed, err := b.e.checkRenewalInfo(b.ctx, []string{notDue.ID, byARI.ID, ariLater.ID}, "", false)
		if err != nil || q != 1 || failed != 0 {
			t.Fatalf("ARI checks: queued %d, failed %d, %v", q, failed, err)
		}

		want := map[string]string{byLifetime.ID: "lifetime", shortLived.ID: "lifetime", byARI.ID: "ari", failedBefore.ID: "lifetime"}
		for _, d := range []*dcvaas.Domain{byLifetime, notDue, shortLived, byARI, ariLater, queued, failedBefore, pending, deleted} {
			jobs := b.renewals(d.ID)
			var open []*dcvaas.Job
			for _, j := range jobs {
				if j.Status == dcvaas.JobQueued {
					open = append(open, j)
				}
			}
			reason, isDue := want[d.ID]
			switch {
			case d.ID == queued.ID:
				if len(jobs) != 1 || jobs[0].ID != openJob.ID {
					t.Errorf("%s: already queued, got %d jobs", d.Name, len(jobs))
				}
			case isDue:
				if len(open) != 1 {
					t.Errorf("%s: want one queued renewal, got %d of %d", d.Name, len(open), len(jobs))
					continue
				}
				j := open[0]
				if j.RunAt.Before(now.Add(-time.Millisecond)) || j.RunAt.After(now.Add(time.Hour+time.Minute)) || j.MaxAttempts != dcvaas.DefaultMaxAttempts {
					t.Errorf("%s: job %+v not spread within the hour", d.Name, j)
				}
				if b.queueID(j.ID) == 0 {
					t.Errorf("%s: job has no queue entry", d.Name)
				}
				es := b.audit(d.ID)
				last := es[len(es)-1]
				if last.Action != "cron.renewal_queued" || last.Details["jobId"] != j.ID || last.Details["reason"] != reason ||
					last.Details["expiresAt"] != d.ExpiresAt.UTC().Format(time.RFC3339) {
					t.Errorf("%s: audit %s %v", d.Name, last.Action, last.Details)
				}
				if ja := b.audit(j.ID); len(ja) != 1 || ja[0].Action != "job.queued" {
					t.Errorf("%s: job audit %v", d.Name, actions(ja))
				}
			default:
				if len(open) != 0 {
					t.Errorf("%s: not due, got %d renewals", d.Name, len(open))
				}
			}
		}
		// The dead letter cannot come back beside the new renewal.
		if _, err := b.db.RetryJob(b.ctx, b.actor, dead.ID); dcvaas.ErrorCode(err) != dcvaas.ECONFLICT {
			t.Errorf("retry of the old renewal beside the new one: %v", err)
		}
		if ari.count(ariLater.ID) != 1 || ari.count(byLifetime.ID) != 0 {
			t.Errorf("ARI asked: %v", ari.asked)
		}

		// The next check: everything due is queued already, and no CA is
		// asked again before its Retry-After.
		run = b.check()
		if run.Due != 5 || run.Queued != 0 || run.Skipped != 5 || run.ARIChecks != 0 {
			t.Fatalf("second run = %+v", run)
		}
		// Past its Retry-After (3h) the CA is asked again; one without ARI
		// only weekly. The fresh certificate is due once a third is left.
		b.clock.Advance(7 * time.Hour)
		if run = b.check(); run.ARIChecks != 1 {
			t.Fatalf("third run = %+v", run)
		}
		b.clock.Advance(60 * day)
		if run = b.check(); run.Due != 7 || run.Queued != 2 {
			t.Fatalf("run 60 days later = %+v", run)
		}
		last, err := b.db.LastRenewalRun(b.ctx, dcvaas.RenewalSucceeded)
		if err != nil || last.ID != run.ID || last.FinishedAt == nil || last.Queued != 2 {
			t.Fatalf("last run %+v %v", last, err)
		}
	})
}

// A renewed certificate's dates replace the old ones at the next check,
// and the old certificate's ARI window is forgotten.
func TestRenewalCheckSeesNewCertificate(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		ari := newFakeARI()
		b := setup(t, dialect, func(c *Config) { c.Issuer = ari; c.Renewal.PageSize = 2 })
		now := b.clock.Now()
		var ds []*dcvaas.Domain
		for i := range 5 {
			ds = append(ds, b.activeDomain(fmt.Sprintf("page%d", i), now.Add(-10*day), now.Add(80*day)))
		}
		ari.set(ds[0].ID, &dcacme.Window{Start: now.Add(-time.Minute), End: now.Add(time.Hour)})
		// The window is stored by the ARI request …
		if _, _, err := b.e.checkRenewalInfo(b.ctx, []string{ds[0].ID}, "", false); err != nil {
			t.Fatal(err)
		}
		if len(b.renewals(ds[0].ID)) != 1 {
			t.Fatal("ARI window begun: no renewal")
		}
		// … and the renewal stores a new certificate; its own window is
		// still unknown, and it is young: not due.
		if _, err := b.db.SQL().ExecContext(b.ctx, `UPDATE jobs SET status = 'succeeded' WHERE domain_id = $1`, ds[0].ID); err != nil {
			t.Fatal(err)
		}
		b.saveCert(ds[0], now, now.Add(90*day))
		run := b.check()
		if run.Scanned != 5 || run.Due != 0 || run.ARIChecks != 5 {
			t.Fatalf("run = %+v", run)
		}
		var notBefore, infoFor int64
		var ariStart *int64
		if err := b.db.SQL().QueryRowContext(b.ctx, `SELECT cert_not_before, renewal_info_for, ari_start FROM domains WHERE id = $1`, ds[0].ID).
			Scan(&notBefore, &infoFor, &ariStart); err != nil {
			t.Fatal(err)
		}
		if notBefore != now.UnixMicro() || infoFor != now.Add(90*day).UnixMicro() || ariStart != nil {
			t.Fatalf("stored %d %d %v", notBefore, infoFor, ariStart)
		}
	})
}

// TestConcurrentRenewalChecks runs two checks at the same moment — on two
// engines with their own pools, as two nodes (or the CLI beside the
// daemon) would — and finds one renewal per domain.
func TestConcurrentRenewalChecks(t *testing.T) {
	for _, dialect := range storetest.Dialects(t) {
		t.Run(string(dialect), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			url := storetest.URL(t, dialect)
			clk := &clock{}
			dns := resolvetest.New(t)
			var engines [2]*Engine
			var dbs [2]*sqlstore.DB
			for i := range engines {
				db := storetest.Open(t, url, sqlstore.Options{Clock: clk.Now})
				if err := Migrate(ctx, db); err != nil {
					t.Fatal(err)
				}
				cfg := testConfig(db, dns.Addr, clk)
				cfg.Renewal.PageSize = 7 // many small pages: many chances to interleave
				e, err := New(cfg)
				if err != nil {
					t.Fatal(err)
				}
				engines[i], dbs[i] = e, db
			}
			b := &bundle{t: t, ctx: ctx, db: dbs[0], e: engines[0], clock: clk, n: new(atomic.Int64)}
			tok := &dcvaas.Token{Name: "t", Prefix: "dcv_x", Hash: "hash-" + string(dialect), Role: dcvaas.TokenAdmin}
			org, _, err := dbs[0].Bootstrap(ctx, "Acme", "owner@acme.test", tok)
			if err != nil {
				t.Fatal(err)
			}
			b.org, b.actor = org, dcvaas.SystemActor(org.ID)
			now := clk.Now()
			const n = 60
			for i := range n {
				b.activeDomain(fmt.Sprintf("c%d", i), now.Add(-80*day), now.Add(10*day))
			}
			for round := range 3 {
				var wg sync.WaitGroup
				runs := make([]*dcvaas.RenewalRun, 2)
				errs := make([]error, 2)
				for i, e := range engines {
					wg.Go(func() { runs[i], errs[i] = e.RenewalCheck(ctx, CauseSchedule) })
				}
				wg.Wait()
				for i := range errs {
					if errs[i] != nil {
						t.Fatalf("round %d check %d: %v", round, i, errs[i])
					}
				}
				if round == 0 && (runs[0].Queued+runs[1].Queued != n || runs[0].Skipped+runs[1].Skipped != n) {
					t.Fatalf("runs %+v %+v: together %d queued, want %d", runs[0], runs[1], runs[0].Queued+runs[1].Queued, n)
				}
				if round > 0 && runs[0].Queued+runs[1].Queued != 0 {
					t.Fatalf("round %d queued again: %+v %+v", round, runs[0], runs[1])
				}
			}
			var jobs, domains, river int
			if err := dbs[0].SQL().QueryRowContext(ctx, `SELECT COUNT(*), COUNT(DISTINCT domain_id) FROM jobs WHERE type = 'renewal'`).Scan(&jobs, &domains); err != nil {
				t.Fatal(err)
			}
			if err := dbs[0].SQL().QueryRowContext(ctx, `SELECT COUNT(*) FROM river_job WHERE kind = 'renewal' AND state <> 'cancelled'`).Scan(&river); err != nil {
				t.Fatal(err)
			}
			if jobs != n || domains != n || river != n {
				t.Fatalf("%d renewal jobs for %d domains, %d queue entries; want %d each", jobs, domains, river, n)
			}

			// The race made certain: the second check's page transaction
			// starts while the first one's, holding its renewals, is open.
			var reqs []sqlstore.RenewalRequest
			for i := range 5 {
				d := b.activeDomain(fmt.Sprintf("race%d", i), now.Add(-80*day), now.Add(10*day))
				reqs = append(reqs, sqlstore.RenewalRequest{DomainID: d.ID, OrgID: d.OrgID, RunAt: now, Reason: "lifetime"})
			}
			tx1, err := dbs[0].SQL().BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if q, err := engines[0].queueRenewalsTx(ctx, tx1, reqs); err != nil || q != 5 {
				t.Fatalf("first: %d, %v", q, err)
			}
			second := make(chan error, 1)
			var q2 int
			go func() {
				tx2, err := dbs[1].SQL().BeginTx(ctx, nil)
				if err != nil {
					second <- err
					return
				}
				defer tx2.Rollback()
				if q2, err = engines[1].queueRenewalsTx(ctx, tx2, reqs); err != nil {
					second <- err
					return
				}
				second <- tx2.Commit()
			}()
			time.Sleep(200 * time.Millisecond) // the second waits on the first's rows (or lock)
			if err := tx1.Commit(); err != nil {
				t.Fatal(err)
			}
			if err := <-second; err != nil || q2 != 0 {
				t.Fatalf("second: %d, %v", q2, err)
			}
			if err := dbs[0].SQL().QueryRowContext(ctx, `SELECT COUNT(*), COUNT(DISTINCT domain_id) FROM jobs WHERE type = 'renewal'`).Scan(&jobs, &domains); err != nil {
				t.Fatal(err)
			}
			if err := dbs[0].SQL().QueryRowContext(ctx, `SELECT COUNT(*) FROM river_job WHERE kind = 'renewal' AND state <> 'cancelled'`).Scan(&river); err != nil {
				t.Fatal(err)
			}
			if jobs != n+5 || domains != n+5 || river != n+5 {
				t.Fatalf("after the race: %d renewal jobs for %d domains, %d live queue entries; want %d each", jobs, domains, river, n+5)
			}
		})
	}
}

// A node that was down when the check was due runs it at start-up; one
// that missed nothing does not.
func TestRenewalCheckCatchUp(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		yearly, err := ParseSchedule("0 0 1 1 *")
		if err != nil {
			t.Fatal(err)
		}
		b := setup(t, dialect, func(c *Config) { c.Renewal.Schedule = yearly })
		now := b.clock.Now()
		d := b.activeDomain("late", now.Add(-80*day), now.Add(10*day))
		// The last successful check: 25 hours ago.
		b.clock.Advance(-25 * time.Hour)
		old := b.check()
		b.clock.Advance(25 * time.Hour)
		if _, err := b.db.SQL().ExecContext(b.ctx, `UPDATE jobs SET status = 'succeeded' WHERE domain_id = $1 AND type = 'renewal'`, d.ID); err != nil {
			t.Fatal(err)
		}
		b.start()
		run := waitRun(t, b, old.ID)
		if run.Cause != CauseStartup || run.Status != dcvaas.RenewalSucceeded || run.Queued != 1 {
			t.Fatalf("start-up run = %+v", run)
		}

		// A second engine starting now finds a check of a minute ago.
		cfg := testConfig(b.db, b.dns.Addr, b.clock)
		cfg.Renewal.Schedule = yearly
		e2, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		startEngine(t, e2)
		time.Sleep(2 * time.Second)
		if last, _ := b.db.LastRenewalRun(b.ctx, ""); last.ID != run.ID {
			t.Fatalf("a check ran although one ran a minute ago: %+v", last)
		}
	})
}

// waitRun waits for a renewal check newer than the one with id after.
func waitRun(t *testing.T, b *bundle, after string) *dcvaas.RenewalRun {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		last, err := b.db.LastRenewalRun(b.ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if last != nil && last.ID != after && last.Status != dcvaas.RenewalRunning {
			return last
		}
		if time.Now().After(deadline) {
			t.Fatalf("no renewal check ran; last %+v", last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The schedule runs the check (on the leader), and a check that fails is
// retried by the queue and counted.
func TestRenewalCheckScheduledAndRetried(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		every2s, err := ParseSchedule("*/2 * * * * *")
		if err != nil {
			t.Fatal(err)
		}
		obs := &countingObserver{}
		b := setup(t, dialect, func(c *Config) { c.Renewal.Schedule = every2s; c.Observer = obs })
		// A check that just succeeded: no catch-up at start.
		first := b.check()
		// Break the scan's query: the scheduled check fails until repaired.
		if _, err := b.db.SQL().ExecContext(b.ctx, `ALTER TABLE domains RENAME COLUMN status TO status_x`); err != nil {
			t.Fatal(err)
		}
		b.start()
		failed := waitRun(t, b, first.ID)
		if failed.Cause != CauseSchedule || failed.Status != dcvaas.RenewalFailed || failed.Error == "" || failed.FinishedAt == nil {
			t.Fatalf("broken run = %+v", failed)
		}
		if obs.get("check:failed") == 0 {
			t.Fatal("failure not observed")
		}
		if _, err := b.db.SQL().ExecContext(b.ctx, `ALTER TABLE domains RENAME COLUMN status_x TO status`); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			last, err := b.db.LastRenewalRun(b.ctx, dcvaas.RenewalSucceeded)
			if err != nil {
				t.Fatal(err)
			}
			if last.ID != first.ID {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("no successful check after the repair")
			}
			time.Sleep(100 * time.Millisecond)
		}
		// The failed River job itself went back to the queue for a retry.
		var retried int
		if err := b.db.SQL().QueryRowContext(b.ctx, `SELECT COUNT(*) FROM river_job WHERE kind = 'renewal_check' AND attempt > 1`).Scan(&retried); err != nil {
			t.Fatal(err)
		}
		if retried == 0 && obs.get("attempt:renewal_check:error") == 0 {
			t.Fatal("failed check was not retried")
		}
	})
}

type countingObserver struct {
	mu sync.Mutex
	n  map[string]int
}

func (o *countingObserver) add(k string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.n == nil {
		o.n = map[string]int{}
	}
	o.n[k]++
}

func (o *countingObserver) get(k string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.n[k]
}

func (o *countingObserver) JobAttempt(kind string, _ time.Duration, err error) {
	if err != nil {
		o.add("attempt:" + kind + ":error")
	} else {
		o.add("attempt:" + kind + ":ok")
	}
}
func (o *countingObserver) JobOutcome(jt dcvaas.JobType, st dcvaas.JobStatus) {
	o.add("outcome:" + string(jt) + ":" + string(st))
}
func (o *countingObserver) RenewalCheck(_ *dcvaas.RenewalRun, err error) {
	if err != nil {
		o.add("check:failed")
	} else {
		o.add("check:succeeded")
	}
}
func (o *countingObserver) DelegationChecked(r string) { o.add("delegation:" + r) }

func TestParseSchedule(t *testing.T) {
	s, err := ParseSchedule("0 0 * * *")
	if err != nil {
		t.Fatal(err)
	}
	// UTC, whatever the zone of the time asked about.
	berlin := time.FixedZone("CET", 3600)
	next := s.Next(time.Date(2026, 3, 1, 23, 30, 0, 0, berlin)) // 22:30 UTC
	if want := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC); !next.Equal(want) {
		t.Fatalf("next = %s, want %s", next, want)
	}
	for _, bad := range []string{"", "0 0 * *", "61 * * * *", "every day"} {
		if _, err := ParseSchedule(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := ParseSchedule("@daily"); err != nil {
		t.Error(err)
	}
}

// With DCVAAS_RENEW_BEFORE set, the remaining time decides, whatever the
// lifetime.
func TestRenewalCheckRenewBefore(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b := setup(t, dialect, func(c *Config) { c.Renewal.RenewBefore = 30 * day })
		now := b.clock.Now()
		due := b.activeDomain("due", now.Add(-300*day), now.Add(29*day))
		notDue := b.activeDomain("notdue", now.Add(-day), now.Add(31*day))
		short := b.activeDomain("short", now.Add(-time.Hour), now.Add(6*day)) // 6-day certificates are always due
		if run := b.check(); run.Scanned != 3 || run.Due != 2 || run.Queued != 2 {
			t.Fatalf("run = %+v", run)
		}
		if len(b.renewals(due.ID)) != 1 || len(b.renewals(notDue.ID)) != 0 || len(b.renewals(short.ID)) != 1 {
			t.Fatal("wrong domains renewed")
		}
	})
}
