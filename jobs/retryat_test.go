package jobs

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/acme"
	"github.com/dcvaas/dcvaas/sqlstore"
)

func TestRetryDelay(t *testing.T) {
	e := &Engine{backoff: Backoff{Base: time.Minute, Max: time.Hour}} // no jitter
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		retryAt  time.Time
		min, max time.Duration
	}{
		{"no CA time", time.Time{}, time.Minute, time.Minute},
		{"CA time passed", now.Add(-time.Hour), time.Minute, time.Minute},
		{"CA time sooner than the backoff", now.Add(10 * time.Second), time.Minute, time.Minute},
		// Later: the CA's time, plus up to a tenth of the wait.
		{"CA time later", now.Add(5 * time.Minute), 5 * time.Minute, 5*time.Minute + 30*time.Second},
		// Jitter at most a minute.
		{"CA time hours away", now.Add(2 * time.Hour), 2 * time.Hour, 2*time.Hour + time.Minute},
		// A bogus far-away date is capped.
		{"CA time a year away", now.Add(365 * 24 * time.Hour), maxCAWait, maxCAWait + time.Minute},
	} {
		seen := map[time.Duration]bool{}
		for range 50 {
			d := e.retryDelay(1, tc.retryAt, now)
			if d < tc.min || d > tc.max {
				t.Fatalf("%s: delay %s outside [%s, %s]", tc.name, d, tc.min, tc.max)
			}
			seen[d] = true
		}
		if tc.min != tc.max && len(seen) < 10 {
			t.Errorf("%s: only %d distinct delays: no jitter?", tc.name, len(seen))
		}
	}
}

// TestRetryAtFromCA: when issuance fails with an error that says when the
// CA will take the request again (acme.RetryAt: a rate limit's
// Retry-After), the next attempt is scheduled then — in the jobs row, its
// job.retry_scheduled entry and River's queue — and not after the shorter
// backoff. When the CA's time is sooner than the backoff, the backoff wins.
func TestRetryAtFromCA(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		iss := &testIssuer{}
		b := setup(t, dialect, func(c *Config) { c.Issuer = iss; c.RetryBackoff = time.Hour })
		// What the CA says depends on the domain: the label is the wait.
		var mu sync.Mutex
		said := map[string]time.Time{}
		fail := func(d *dcvaas.Domain) (any, error) {
			wait := map[string]time.Duration{"later.example.com": 3 * time.Hour, "sooner.example.com": time.Minute}[d.Name]
			at := b.clock.Now().Add(wait)
			mu.Lock()
			said[d.Name] = at
			mu.Unlock()
			return nil, &dcvaas.Error{Code: dcvaas.EUNAVAILABLE, Message: "no certificate authority could issue right now (ca: rate limited); it will be tried again",
				Err: &acme.Error{RetryAt: at, Err: errors.New("ca: 429 urn:ietf:params:acme:error:rateLimited")}}
		}
		iss.f.Store(&fail)
		b.start()

		// failedOnce waits for the domain's start_issuance to fail its first
		// attempt and returns it with the time the CA said.
		failedOnce := func(label string) (*dcvaas.Job, time.Time) {
			d, check := b.domain(label)
			b.dns.SetCNAME(challengeName(d), d.CNAMETarget)
			b.waitStatus(check.ID, dcvaas.JobSucceeded, 10*time.Second)
			issue, err := b.db.LatestDomainJob(b.ctx, b.org.ID, d.ID)
			if err != nil || issue.Type != dcvaas.JobStartIssuance {
				t.Fatalf("latest = %+v %v", issue, err)
			}
			j := b.wait(issue.ID, 10*time.Second, "failed once", func(j *dcvaas.Job) bool { return j.Attempts == 1 && j.Status == dcvaas.JobQueued })
			mu.Lock()
			defer mu.Unlock()
			return j, said[d.Name]
		}

		t.Run("later", func(t *testing.T) {
			b := b.with(t)
			j, at := failedOnce("later")
			// The CA's time, plus at most a minute of jitter.
			if j.RunAt.Before(at) || j.RunAt.After(at.Add(time.Minute)) {
				t.Fatalf("runAt %s, the CA said %s", j.RunAt, at)
			}
			es := b.audit(j.ID)
			last := es[len(es)-1]
			if last.Action != "job.retry_scheduled" || last.Details["reason"] != "error" || last.Details["attemptUsed"] != true ||
				last.Details["retryAfter"] != at.UTC().Format(time.RFC3339) || last.Details["nextRunAt"] != j.RunAt.UTC().Format(time.RFC3339) {
				t.Fatalf("audit %s %+v", last.Action, last.Details)
			}
			// River holds the next attempt until then (River runs on real
			// time, which the test clock equals here).
			row, err := b.e.client.JobGet(b.ctx, b.queueID(j.ID))
			if err != nil {
				t.Fatal(err)
			}
			if row.State != "scheduled" || row.ScheduledAt.Before(at.Add(-time.Second)) || row.ScheduledAt.After(at.Add(time.Minute+time.Second)) {
				t.Fatalf("river job %s at %s, the CA said %s", row.State, row.ScheduledAt, at)
			}
		})

		t.Run("sooner", func(t *testing.T) {
			b := b.with(t)
			j, at := failedOnce("sooner")
			// The CA said a minute; the backoff (1h ±20%) is later and wins.
			failed := at.Add(-time.Minute)
			if d := j.RunAt.Sub(failed); d < 48*time.Minute-time.Second || d > 72*time.Minute+time.Second {
				t.Fatalf("runAt %s after the failure, want the backoff's 1h ±20%%", d)
			}
			es := b.audit(j.ID)
			if last := es[len(es)-1]; last.Action != "job.retry_scheduled" || last.Details["retryAfter"] != at.UTC().Format(time.RFC3339) {
				t.Fatalf("audit %s %+v", last.Action, last.Details)
			}
		})
	})
}
