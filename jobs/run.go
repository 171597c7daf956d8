package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/riverqueue/river/rivertype"
)

// run is one execution of a product job by one River job (an attempt).
type run struct {
	job    *dcvaas.Job
	domain *dcvaas.Domain
	ref    ref
	// queueID is the River job being worked. The jobs row names the one
	// River job allowed to record outcomes; any other is stale.
	queueID int64
	// attempt is the job's Attempts value this run set when it started; a
	// different value at the end means another run took over.
	attempt int
	// lease guards the writes of the outcome (nil while the run holds the
	// job's row lock instead).
	lease *sqlstore.JobLease
}

// work is every River job's body: start (record "running"), handle, record
// the outcome. Returning nil lets River mark its job completed, whatever
// the product job's outcome: River's row is one attempt, and the attempt is
// over. Returning an error hands the attempt back to River for a retry;
// that only happens when the database could not record something.
func (e *Engine) work(ctx context.Context, row *rivertype.JobRow, a ref) error {
	r := &run{ref: a, queueID: row.ID}
	ok, err := e.start(ctx, r)
	if err != nil || !ok {
		return err
	}
	out := e.handle(ctx, r)
	return e.finish(ctx, r, out)
}

// start marks the job running with one more attempt, audit "job.started",
// if this River job is the one allowed to run it. It reports false when
// there is nothing (more) to do.
func (e *Engine) start(ctx context.Context, r *run) (bool, error) {
	// The common case, queued under this River job, goes in a round with
	// other workers' starts.
	sj, err := e.starts.do(sqlstore.JobClaim{JobID: r.ref.JobID, QueueJobID: r.queueID})
	if err != nil {
		return false, err
	}
	if j, d := sj.Job, sj.Domain; j != nil {
		r.job, r.domain, r.attempt = j, d, j.Attempts
		e.log.DebugContext(ctx, "job started", "jobId", j.ID, "type", j.Type, "domainId", j.DomainID, "attempt", j.Attempts)
		return true, nil
	}
	return e.restart(ctx, r)
}

// restart looks at a job that was not queued under this River job: stale,
// finished, or — when it is still "running" — its last attempt never
// reported back: the worker died (kill -9, crash) or lost its database.
// That attempt counts; when it was the last, the job fails now.
func (e *Engine) restart(ctx context.Context, r *run) (bool, error) {
	tx, err := e.db.SQL().BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	if live, err := e.lock(ctx, tx, r); err != nil || !live {
		return false, err
	}
	j := r.job
	if j.Attempts >= j.MaxAttempts {
		msg := fmt.Sprintf("attempt %d of %d was interrupted (the worker stopped or lost the database) and no attempts remain", j.Attempts, j.MaxAttempts)
		if j.LastError != "" {
			msg += "; earlier: " + j.LastError
		}
		return false, e.recordAndCommit(ctx, tx, r, outcome{kind: kindFail, msg: msg})
	}
	j.Attempts++
	j.Runs++
	j.Status = dcvaas.JobRunning
	r.attempt = j.Attempts
	if err := e.db.SaveJob(ctx, tx, j, r.queueID, nil, "job.started", map[string]any{
		"type": j.Type, "domainId": j.DomainID, "attempt": j.Attempts, "maxAttempts": j.MaxAttempts,
		"previousAttemptInterrupted": true,
	}); err != nil {
		return false, err
	}
	if err := tx.Commit(); err != nil {
		return false, err
	}
	e.log.InfoContext(ctx, "job restarted after an interrupted attempt", "jobId", j.ID, "type", j.Type, "attempt", j.Attempts)
	return true, nil
}

// lock reads the job and its domain under row locks — domain first, the
// order every store transaction uses, so PostgreSQL never deadlocks — into
// r, and reports whether r.queueID may still act on the job.
func (e *Engine) lock(ctx context.Context, tx *sql.Tx, r *run) (bool, error) {
	d, err := e.db.JobDomain(ctx, tx, r.ref.JobID, true)
	if dcvaas.ErrorCode(err) == dcvaas.ENOTFOUND {
		return false, nil // hard-deleted with its jobs
	} else if err != nil {
		return false, err
	}
	j, queueID, err := e.db.LockJob(ctx, tx, r.ref.JobID)
	if dcvaas.ErrorCode(err) == dcvaas.ENOTFOUND {
		return false, nil
	} else if err != nil {
		return false, err
	}
	r.job, r.domain = j, d
	if queueID != r.queueID || j.Status != dcvaas.JobRunning {
		// Superseded, finished, or re-queued under a newer River job (a
		// retry of a dead letter): this River job is left over.
		e.log.DebugContext(ctx, "stale queue entry ignored", "jobId", j.ID, "riverJobId", r.queueID, "current", queueID, "status", j.Status)
		return false, nil
	}
	return true, nil
}

// handle runs the job type's handler. A panic is a failed attempt, not a
// dead process; a context ended by Stop re-queues the job, one ended by the
// job timeout is a failed attempt.
func (e *Engine) handle(ctx context.Context, r *run) (out outcome) {
	defer func() {
		if p := recover(); p != nil {
			e.log.ErrorContext(ctx, "job handler panicked", "jobId", r.job.ID, "type", r.job.Type, "panic", p, "stack", string(debug.Stack()))
			out = outcome{kind: kindRetry, msg: "internal error"}
		}
	}()
	if r.domain.DeletedAt != nil {
		return succeed(map[string]any{"outcome": "skipped", "reason": "domain deleted"})
	}
	h, ok := e.handlers[r.job.Type]
	if !ok {
		return outcome{kind: kindFail, msg: fmt.Sprintf("no handler for job type %q", r.job.Type)}
	}
	out = h(ctx, r)
	if out.kind == kindRetry && ctx.Err() != nil {
		switch {
		case e.stopping.Load() && !errors.Is(ctx.Err(), context.DeadlineExceeded):
			out = outcome{kind: kindRequeue, msg: "interrupted by shutdown"}
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			out.msg = fmt.Sprintf("timed out after %s", e.cfg.RescueAfter*3/4)
		}
	}
	return out
}

// finish records the outcome, if this run still holds the job: every write
// of it is guarded by the run's lease (River job and attempt), so a run
// that was rescued and started again elsewhere meanwhile records nothing.
func (e *Engine) finish(ctx context.Context, r *run, out outcome) error {
	// The job's context may be over (timeout, shutdown); recording what
	// happened must not be.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	r.lease = &sqlstore.JobLease{QueueJobID: r.queueID, Attempt: r.attempt}
	err := e.finishTx(ctx, r, out)
	if errors.Is(err, sqlstore.ErrLeaseLost) {
		e.log.WarnContext(ctx, "job outcome dropped: another run took over", "jobId", r.job.ID, "attempt", r.attempt)
		return nil
	}
	return err
}

func (e *Engine) finishTx(ctx context.Context, r *run, out outcome) error {
	if out.kind == kindSucceed && out.apply == nil {
		// Only the job row and its audit entry change: that goes in a
		// round with other workers' successes.
		raw, err := marshalResult(out.result)
		if err != nil {
			return err
		}
		held, err := e.successes.do(sqlstore.JobSuccess{JobID: r.job.ID, Lease: *r.lease, Result: raw})
		if err != nil {
			return err
		} else if !held {
			return sqlstore.ErrLeaseLost
		}
		r.job.Status, r.job.Result, r.job.LastError = dcvaas.JobSucceeded, raw, ""
		e.logOutcome(ctx, r, out)
		return nil
	}
	gone := false
	err := e.db.InTx(ctx, func(tx *sql.Tx) error {
		// A check that goes back to the queue must see the checks queued
		// beside it (reschedule), which the domain's lock orders.
		if out.touchesDomain() || r.job.Type == dcvaas.JobDNSCheck {
			// Locked before the job row is written: the store's lock order.
			d, err := e.db.JobDomain(ctx, tx, r.job.ID, true)
			if dcvaas.ErrorCode(err) == dcvaas.ENOTFOUND {
				gone = true // hard-deleted with its jobs: nothing to record
				return nil
			} else if err != nil {
				return err
			}
			r.domain = d
		}
		return e.record(ctx, tx, r, out)
	})
	if err == nil && !gone {
		e.logOutcome(ctx, r, out)
	}
	return err
}

func (e *Engine) recordAndCommit(ctx context.Context, tx *sql.Tx, r *run, out outcome) error {
	if err := e.record(ctx, tx, r, out); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	e.logOutcome(ctx, r, out)
	return nil
}

func (e *Engine) logOutcome(ctx context.Context, r *run, out outcome) {
	j := r.job
	e.observeOutcome(j) // observe.go
	attrs := []any{"jobId", j.ID, "type", j.Type, "domainId", j.DomainID, "attempt", j.Attempts, "status", j.Status}
	switch {
	case j.Status == dcvaas.JobSucceeded:
		e.log.InfoContext(ctx, "job succeeded", attrs...)
	case j.Status == dcvaas.JobFailed:
		e.log.WarnContext(ctx, "job failed", append(attrs, "error", out.msg)...)
	default:
		e.log.InfoContext(ctx, "job rescheduled", append(attrs, "runAt", j.RunAt, "reason", out.msg)...)
	}
}
