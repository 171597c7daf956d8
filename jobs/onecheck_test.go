package jobs

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/sqlstore"
)

// queuedChecks counts the domain's queued dns_checks, in the jobs table
// and in River's (the entries its jobs point at that would still run).
func (b *bundle) queuedChecks(domainID string) (rows, river int) {
	b.t.Helper()
	if err := b.db.SQL().QueryRowContext(b.ctx, `SELECT COUNT(*) FROM jobs WHERE domain_id = $1 AND type = 'dns_check' AND status = 'queued'`,
		domainID).Scan(&rows); err != nil {
		b.t.Fatal(err)
	}
	if err := b.db.SQL().QueryRowContext(b.ctx, `SELECT COUNT(*) FROM river_job WHERE kind = 'dns_check'
		AND state IN ('available', 'scheduled', 'pending', 'retryable') AND id IN (SELECT queue_job_id FROM jobs WHERE domain_id = $1)`,
		domainID).Scan(&river); err != nil {
		b.t.Fatal(err)
	}
	return rows, river
}

// TestOneQueuedCheckPerDomain races every path that queues a check of one
// domain — verify, one-click setup's check, the retry of a dead-letter
// check — from many goroutines (on PostgreSQL, concurrent transactions):
// afterwards exactly one check is queued, in the jobs table and in River,
// the others read as superseded, and the database itself refuses a
// second queued check.
func TestOneQueuedCheckPerDomain(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b := setup(t, dialect) // not started: nothing runs, everything stays queued
		d, first := b.domain("race")
		if _, err := b.db.SQL().ExecContext(b.ctx, `UPDATE jobs SET status = 'failed' WHERE id = $1`, first.ID); err != nil {
			t.Fatal(err)
		}
		const n = 24
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var err error
				switch i % 3 {
				case 0:
					_, err = b.db.EnqueueDomainJob(b.ctx, b.actor, d.ID, dcvaas.JobDNSCheck)
				case 1:
					_, err = b.db.RecordDNSSetup(b.ctx, b.actor, d.ID, map[string]any{"provider": "cloudflare"}, true)
				case 2:
					_, err = b.db.RetryJob(b.ctx, b.actor, first.ID)
					if dcvaas.ErrorCode(err) == dcvaas.ECONFLICT && i != 2 {
						err = nil // only one retry of the dead letter can win
					}
				}
				if err != nil {
					errs <- fmt.Errorf("path %d: %w", i%3, err)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if !strings.Contains(err.Error(), "only failed jobs can be retried") {
				t.Error(err)
			}
		}
		if rows, river := b.queuedChecks(d.ID); rows != 1 || river != 1 {
			t.Fatalf("queued checks: %d rows, %d River jobs; want 1 and 1", rows, river)
		}
		all, total, err := b.db.ListJobs(b.ctx, b.org.ID, dcvaas.JobFilter{DomainID: d.ID, Type: dcvaas.JobDNSCheck, Page: dcvaas.Page{Limit: 200}})
		if err != nil {
			t.Fatal(err)
		}
		views := map[dcvaas.JobStatus]int{}
		for _, j := range all {
			views[j.View(b.clock.Now())]++
		}
		if views[dcvaas.JobQueued] != 1 || views[dcvaas.JobSuperseded] != total-1 {
			t.Fatalf("views = %v of %d checks; want 1 queued, the rest superseded", views, total)
		}
		for st, want := range map[dcvaas.JobStatus]int{dcvaas.JobQueued: 1, dcvaas.JobSuperseded: total - 1, dcvaas.JobSucceeded: 0, dcvaas.JobScheduled: 0} {
			if _, got, err := b.db.ListJobs(b.ctx, b.org.ID, dcvaas.JobFilter{DomainID: d.ID, Status: st, Page: dcvaas.Page{Limit: 1}}); err != nil || got != want {
				t.Errorf("status=%s lists %d (%v), want %d", st, got, err, want)
			}
		}

		// The rule is the database's, whatever writes the row.
		_, err = b.db.SQL().ExecContext(b.ctx, `INSERT INTO jobs (id, org_id, domain_id, type, status, attempts, max_attempts, last_error, run_at, created_at, updated_at)
			VALUES ('dup', $1, $2, 'dns_check', 'queued', 0, 3, '', 0, 0, 0)`, b.org.ID, d.ID)
		if err == nil || !strings.Contains(strings.ToLower(err.Error()), "unique") {
			t.Fatalf("a second queued check was stored: %v", err)
		}
	})
}

// TestRunningCheckYieldsToNewerOne: a check queued while an older one runs
// (here: its DNS lookup held) stays; the older one, which would go back to
// the queue beside it, ends as superseded by it instead.
func TestRunningCheckYieldsToNewerOne(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b := setup(t, dialect, func(c *Config) {
			c.Workers = 1 // the held check keeps the newer one waiting
			c.DNSCheckIntervals = []time.Duration{time.Hour}
		})
		name := "_acme-challenge.held.example.com"
		b.dns.Hold(name)
		b.start()
		d, old := b.domain("held")
		if challengeName(d) != name {
			t.Fatalf("challenge name %s", challengeName(d))
		}
		b.wait(old.ID, 10*time.Second, "running", func(j *dcvaas.Job) bool { return j.Status == dcvaas.JobRunning })
		deadline := time.Now().Add(10 * time.Second)
		for b.dns.Queries(name) == 0 {
			if time.Now().After(deadline) {
				t.Fatal("the check never asked")
			}
			time.Sleep(10 * time.Millisecond)
		}
		newer, err := b.db.EnqueueDomainJob(b.ctx, b.actor, d.ID, dcvaas.JobDNSCheck)
		if err != nil {
			t.Fatal(err)
		}
		b.dns.Release(name)
		o := b.wait(old.ID, 15*time.Second, "superseded", func(j *dcvaas.Job) bool { return j.Status != dcvaas.JobRunning })
		if o.View(time.Now()) != dcvaas.JobSuperseded || !strings.Contains(string(o.Result), newer.ID) || o.Runs != 1 {
			t.Fatalf("old check = %+v %s; want superseded by %s after 1 run", o, o.Result, newer.ID)
		}
		nj := b.wait(newer.ID, 15*time.Second, "run", func(j *dcvaas.Job) bool { return j.Runs >= 1 && j.Status != dcvaas.JobRunning })
		if v := nj.View(b.clock.Now()); v != dcvaas.JobScheduled || nj.Attempts != 0 || nj.Runs != 1 {
			t.Fatalf("newer check = %+v (%s); want scheduled for its next look, 1 run, no attempt used", nj, v)
		}
		if rows, river := b.queuedChecks(d.ID); rows != 1 || river != 1 {
			t.Fatalf("queued checks: %d rows, %d River jobs; want 1 and 1", rows, river)
		}
	})
}
