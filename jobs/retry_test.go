package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/riverqueue/river/rivertype"
)

func TestBackoff(t *testing.T) {
	b := Backoff{Base: time.Minute, Max: time.Hour, Jitter: 0.2}
	for attempt, want := range map[int]time.Duration{1: time.Minute, 2: 2 * time.Minute, 3: 4 * time.Minute, 7: time.Hour, 50: time.Hour} {
		lo, hi := time.Duration(float64(want)*0.8), time.Duration(float64(want)*1.2)
		seen := map[time.Duration]bool{}
		for range 200 {
			d := b.Delay(attempt)
			if d < lo || d > hi {
				t.Fatalf("attempt %d: %s outside [%s, %s]", attempt, d, lo, hi)
			}
			seen[d] = true
		}
		if len(seen) < 100 {
			t.Fatalf("attempt %d: only %d distinct delays: no jitter?", attempt, len(seen))
		}
	}
	var got []time.Duration
	for n := range 8 {
		got = append(got, checkInterval(defaultCheckIntervals, n))
	}
	want := []time.Duration{time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 30 * time.Minute, time.Hour, time.Hour, time.Hour}
	if !slices.Equal(got, want) {
		t.Fatalf("intervals = %v", got)
	}
}

// testIssuer fails as "not implemented" until a function is set.
type testIssuer struct {
	f atomic.Pointer[func(*dcvaas.Domain) (any, error)]
}

func (i *testIssuer) Issue(_ context.Context, d *dcvaas.Domain, _ bool) (any, error) {
	if f := i.f.Load(); f != nil {
		return (*f)(d)
	}
	return nil, errNoIssuer
}

// TestDeadLetter: issuance fails three times with backoff, the job becomes
// a dead letter and fails its domain; a retry re-queues it under a fresh
// River job with its attempts reset, and it succeeds.
func TestDeadLetter(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		iss := &testIssuer{}
		b := setup(t, dialect, func(c *Config) { c.Issuer = iss })
		b.start()
		d, check := b.domain("dead")
		b.dns.SetCNAME(challengeName(d), d.CNAMETarget)
		b.waitStatus(check.ID, dcvaas.JobSucceeded, 10*time.Second)
		issue, err := b.db.LatestDomainJob(b.ctx, b.org.ID, d.ID)
		if err != nil || issue.Type != dcvaas.JobStartIssuance {
			t.Fatalf("latest = %+v %v", issue, err)
		}
		j := b.waitStatus(issue.ID, dcvaas.JobFailed, 20*time.Second)
		want := "gave up after 3 attempts: certificate issuance is not implemented yet"
		if j.Attempts != 3 || j.MaxAttempts != 3 || j.LastError != want {
			t.Fatalf("job = %+v", j)
		}
		if got := b.findDomain(d.ID); got.Status != dcvaas.DomainFailed || got.LastError != want {
			t.Fatalf("domain = %+v", got)
		}
		es := b.audit(issue.ID)
		if a := actions(es); !slices.Equal(a, []string{"job.queued", "job.started", "job.retry_scheduled", "job.started",
			"job.retry_scheduled", "job.started", "job.failed"}) {
			t.Fatalf("audit = %v", a)
		}
		if det := es[len(es)-1].Details; det["error"] != want || det["domainId"] != d.ID {
			t.Fatalf("job.failed details = %+v", det)
		}
		if a := actions(b.audit(d.ID)); a[len(a)-1] != "domain.failed" {
			t.Fatalf("domain audit = %v", a)
		}
		evs := b.eventsOf(d.ID)
		if got := typesOf(evs); !slices.Equal(got, []dcvaas.EventType{dcvaas.EventDomainCreated, dcvaas.EventDomainVerified, dcvaas.EventCertificateFailed}) {
			t.Fatalf("events = %v", got)
		}
		var failedData dcvaas.EventData
		if err := json.Unmarshal(evs[2].Data, &failedData); err != nil || failedData.Reason != want || failedData.JobID != issue.ID ||
			failedData.Domain.Status != dcvaas.DomainFailed {
			t.Fatalf("certificate.failed data = %s", evs[2].Data)
		}
		failed, total, err := b.db.ListJobs(b.ctx, b.org.ID, dcvaas.JobFilter{Status: dcvaas.JobFailed, Page: dcvaas.Page{Limit: 10}})
		if err != nil || total != 1 || failed[0].ID != issue.ID {
			t.Fatalf("failed jobs = %v %d %v", failed, total, err)
		}
		// River's row of the last attempt is done too (River completes it
		// right after the outcome is recorded).
		deadQueue := b.queueID(issue.ID)
		b.waitRiver(deadQueue, "completed")

		ok := func(*dcvaas.Domain) (any, error) { return map[string]string{"serial": "01"}, nil }
		iss.f.Store(&ok)
		retried, err := b.db.RetryJob(b.ctx, b.actor, issue.ID)
		if err != nil || retried.Attempts != 0 || retried.Status != dcvaas.JobQueued {
			t.Fatalf("retry = %+v %v", retried, err)
		}
		j = b.waitStatus(issue.ID, dcvaas.JobSucceeded, 10*time.Second)
		var res map[string]string
		if err := json.Unmarshal(j.Result, &res); err != nil || j.Attempts != 1 || res["serial"] != "01" || j.LastError != "" {
			t.Fatalf("job = %+v %s", j, j.Result)
		}
		if q := b.queueID(issue.ID); q == deadQueue {
			t.Fatalf("retry ran as River job %d, the dead letter's", q)
		}
		if a := actions(b.audit(issue.ID)); !slices.Equal(a[len(a)-3:], []string{"job.retried", "job.started", "job.succeeded"}) {
			t.Fatalf("audit = %v", a)
		}
	})
}

// TestInterrupted plays the start of a run after a worker died mid-job (the
// row still says running): the lost attempt counts, and when it was the
// last one the job fails instead of running again.
func TestInterrupted(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b := setup(t, dialect) // not started: the test plays River's part
		for _, tc := range []struct {
			attempts int
			status   dcvaas.JobStatus
			wantErr  string
		}{
			{1, dcvaas.JobQueued, "no CNAME at"},
			{3, dcvaas.JobFailed, "attempt 3 of 3 was interrupted"},
		} {
			d, job := b.domain("crash" + string(rune('0'+tc.attempts)))
			if _, err := b.db.SQL().ExecContext(b.ctx, `UPDATE jobs SET status = 'running', attempts = $1, max_attempts = 3 WHERE id = $2`, tc.attempts, job.ID); err != nil {
				t.Fatal(err)
			}
			row := &rivertype.JobRow{ID: b.queueID(job.ID)}
			if err := b.e.work(b.ctx, row, ref{JobID: job.ID, Since: time.Now()}); err != nil {
				t.Fatal(err)
			}
			j, _ := b.db.FindJob(b.ctx, b.org.ID, job.ID)
			if j.Status != tc.status || j.Attempts != tc.attempts || !strings.HasPrefix(j.LastError, tc.wantErr) {
				t.Fatalf("job = %+v", j)
			}
			if tc.status == dcvaas.JobQueued {
				started := b.audit(job.ID)[1]
				if started.Action != "job.started" || started.Details["previousAttemptInterrupted"] != true {
					t.Fatalf("audit = %+v", started)
				}
			}
			_ = d
		}
	})
}

// blockingCheck replaces dns_check with a handler that waits for release or
// for its context to end.
func blockingCheck(e *Engine, started chan<- string, release <-chan struct{}) {
	e.handlers[dcvaas.JobDNSCheck] = func(ctx context.Context, r *run) outcome {
		started <- r.job.ID
		select {
		case <-release:
			return succeed(map[string]any{"outcome": "released"})
		case <-ctx.Done():
			return outcome{kind: kindRetry, msg: ctx.Err().Error()}
		}
	}
}

// TestGracefulStop: Stop lets a running job finish within the deadline; one
// that does not is cancelled and re-queued without using an attempt, and the
// next engine runs it.
func TestGracefulStop(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b := setup(t, dialect, func(c *Config) { c.ShutdownTimeout = 300 * time.Millisecond })
		started, release := make(chan string, 1), make(chan struct{})
		blockingCheck(b.e, started, release)
		if err := b.e.Start(b.ctx); err != nil {
			t.Fatal(err)
		}
		_, finishing := b.domain("finishing")
		<-started
		go func() { time.Sleep(100 * time.Millisecond); close(release) }()
		if err := b.e.Stop(b.ctx); err != nil {
			t.Fatal(err)
		}
		if j := b.waitStatus(finishing.ID, dcvaas.JobSucceeded, time.Second); j.Attempts != 1 {
			t.Fatalf("job = %+v", j)
		}

		e2, err := New(testConfig(b.db, b.dns.Addr, b.clock))
		if err != nil {
			t.Fatal(err)
		}
		e2.cfg.ShutdownTimeout = 300 * time.Millisecond
		blockingCheck(e2, started, make(chan struct{}))
		if err := e2.Start(b.ctx); err != nil {
			t.Fatal(err)
		}
		_, cut := b.domain("cut")
		<-started
		if err := e2.Stop(b.ctx); err != nil {
			t.Fatal(err)
		}
		j := b.waitStatus(cut.ID, dcvaas.JobQueued, time.Second)
		if j.Attempts != 0 || j.LastError != "interrupted by shutdown" {
			t.Fatalf("job = %+v", j)
		}
		es := b.audit(cut.ID)
		if last := es[len(es)-1]; last.Action != "job.retry_scheduled" || last.Details["reason"] != "shutdown" {
			t.Fatalf("audit = %v", actions(es))
		}
		if st := b.riverState(b.queueID(cut.ID)); st != "available" {
			t.Fatalf("river state %s", st)
		}

		e3, err := New(testConfig(b.db, b.dns.Addr, b.clock))
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		close(done)
		blockingCheck(e3, started, done)
		startEngine(t, e3)
		if j := b.waitStatus(cut.ID, dcvaas.JobSucceeded, 10*time.Second); j.Attempts != 1 {
			t.Fatalf("job = %+v", j)
		}
	})
}

// TestTimeout: a job that outlives its timeout (3/4 of RescueAfter) is a
// failed attempt with a plain message, retried like any other.
func TestTimeout(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b := setup(t, dialect, func(c *Config) { c.RescueAfter = 4 * time.Second })
		started := make(chan string, 8)
		blockingCheck(b.e, started, nil)
		b.start()
		_, job := b.domain("slow")
		j := b.wait(job.ID, 10*time.Second, "timed out", func(j *dcvaas.Job) bool { return j.LastError != "" })
		if j.LastError != "timed out after 3s" || j.Attempts != 1 || j.Status != dcvaas.JobQueued {
			t.Fatalf("job = %+v", j)
		}
	})
}

// TestPanic: a panicking handler is a failed attempt, not a dead process.
func TestPanic(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b := setup(t, dialect)
		b.e.handlers[dcvaas.JobDNSCheck] = func(context.Context, *run) outcome { panic(errors.New("boom")) }
		b.start()
		_, job := b.domain("panic")
		j := b.wait(job.ID, 10*time.Second, "failed once", func(j *dcvaas.Job) bool { return j.LastError != "" })
		if j.LastError != "internal error" || j.Attempts != 1 {
			t.Fatalf("job = %+v", j)
		}
	})
}
