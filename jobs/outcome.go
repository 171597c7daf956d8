package jobs

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/acme"
	"github.com/dcvaas/dcvaas/cabudget"
	"github.com/riverqueue/river"
)

type outcomeKind int

const (
	kindSucceed outcomeKind = iota
	// kindRecheck: nothing wrong, just not there yet (dns_check). Runs
	// again after `after` without using an attempt.
	kindRecheck
	// kindRetry: the attempt failed; retried with backoff while attempts
	// remain, then a dead letter.
	kindRetry
	// kindFail: failed for good, now.
	kindFail
	// kindRequeue: cut short by shutdown; runs again at the next start
	// without using an attempt.
	kindRequeue
	// kindWait: deferred until a CA's budget refills (retryAt), saying
	// what it waits for (waitFor) on the job and the domain. No attempt
	// is used: nothing failed.
	kindWait
)

// outcome is what a handler reports. msg must be safe to show customers:
// it becomes the job's (and the domain's) lastError.
type outcome struct {
	kind   outcomeKind
	result any
	msg    string
	after  time.Duration
	// free says this run used no attempt (implied for kindRecheck and
	// kindRequeue): e.g. a check window that ran out is no failed attempt.
	free bool
	// apply makes the success's own state changes (domain → issuing, the
	// next job) in the transaction that records it.
	apply func(ctx context.Context, tx *sql.Tx, r *run) error
	// retryAt, for kindRetry, is when the error said trying again makes
	// sense (a CA's Retry-After, every CA backing off): the next attempt
	// waits at least until then (retryDelay).
	retryAt time.Time
	// waitFor names the budget a kindWait waits for.
	waitFor string
}

// touchesDomain says whether recording the outcome may change the domain,
// which must then be locked first.
func (o outcome) touchesDomain() bool {
	return o.apply != nil || o.kind == kindRecheck || o.kind == kindRetry || o.kind == kindFail || o.kind == kindWait
}

func succeed(result any) outcome { return outcome{kind: kindSucceed, result: result} }

// retryErr turns a handler's error into a retry whose message is safe to
// show: a *dcvaas.Error's message, "internal error" for anything else.
// EINVALID errors cannot get better by waiting and fail at once.
func (e *Engine) retryErr(ctx context.Context, r *run, err error) outcome {
	var w *cabudget.Wait
	if errors.As(err, &w) {
		e.log.InfoContext(ctx, "job waits for a CA budget", "jobId", r.job.ID, "type", r.job.Type, "waitingFor", w.For, "until", w.Until)
		return outcome{kind: kindWait, msg: w.Error(), waitFor: w.For, retryAt: w.Until}
	}
	e.log.WarnContext(ctx, "job attempt failed", "jobId", r.job.ID, "type", r.job.Type, "err", err)
	kind := kindRetry
	if dcvaas.ErrorCode(err) == dcvaas.EINVALID {
		kind = kindFail
	}
	at, _ := acme.RetryAt(err)
	return outcome{kind: kind, msg: dcvaas.ErrorMessage(err), retryAt: at}
}

// record writes the outcome into the jobs row, its audit entry, the
// domain, and the queue (the next attempt's River job) — all in tx.
func (e *Engine) record(ctx context.Context, tx *sql.Tx, r *run, out outcome) error {
	j, d := r.job, r.domain
	now := e.now().UTC()
	base := map[string]any{"type": j.Type, "domainId": j.DomainID, "attempt": j.Attempts}
	if out.kind == kindRecheck || out.kind == kindRequeue || out.kind == kindWait {
		out.free = true
	}
	// Waiting is over whatever else happened; a new wait is set below.
	j.WaitingFor, j.WaitUntil = "", nil
	if out.kind != kindWait && out.touchesDomain() && d.WaitingFor != "" && (j.Type == dcvaas.JobStartIssuance || j.Type == dcvaas.JobRenewal) {
		d.WaitingFor, d.WaitUntil = "", nil
		if err := e.db.SaveDomainState(ctx, tx, d, "", nil); err != nil {
			return err
		}
	}
	if out.free && r.attempt > 0 {
		// Give back the attempt this run took when it started.
		j.Attempts--
	}
	if out.kind == kindRetry && j.Attempts >= j.MaxAttempts {
		out.kind = kindFail
		out.msg = fmt.Sprintf("gave up after %d attempts: %s", j.Attempts, out.msg)
	}
	switch out.kind {
	case kindSucceed:
		if out.apply != nil {
			if err := out.apply(ctx, tx, r); err != nil {
				return err
			}
		}
		raw, err := marshalResult(out.result)
		if err != nil {
			return err
		}
		j.Status, j.Result, j.LastError = dcvaas.JobSucceeded, raw, ""
		if err := e.db.SaveJob(ctx, tx, j, r.queueID, r.lease, "job.succeeded", base); err != nil {
			return err
		}

	case kindRecheck, kindRequeue:
		next := r.ref
		reason := "shutdown"
		if out.kind == kindRecheck {
			next.Checks++
			reason = "not_yet"
		}
		if err := e.reschedule(ctx, tx, r, next, out.after, out.msg, base, reason, now); err != nil {
			return err
		}
		if out.kind == kindRecheck {
			if err := e.setDomainError(ctx, tx, d, out.msg); err != nil {
				return err
			}
		}

	case kindWait:
		until := out.retryAt.UTC()
		j.WaitingFor, j.WaitUntil = out.waitFor, &until
		details := map[string]any{"waitingFor": out.waitFor, "until": until.Format(time.RFC3339)}
		for k, v := range base {
			details[k] = v
		}
		if err := e.reschedule(ctx, tx, r, r.ref, max(until.Sub(now), 0), out.msg, details, "waiting", now); err != nil {
			return err
		}
		if d.DeletedAt == nil {
			d.WaitingFor, d.WaitUntil, d.LastError = out.waitFor, &until, out.msg
			if err := e.db.SaveDomainState(ctx, tx, d, "", nil); err != nil {
				return err
			}
		}

	case kindRetry:
		if !out.retryAt.IsZero() {
			base["retryAfter"] = out.retryAt.UTC().Format(time.RFC3339)
		}
		if err := e.reschedule(ctx, tx, r, r.ref, e.retryDelay(j.Attempts, out.retryAt, now), out.msg, base, "error", now); err != nil {
			return err
		}
		if err := e.setDomainError(ctx, tx, d, out.msg); err != nil {
			return err
		}

	case kindFail:
		j.Status, j.LastError = dcvaas.JobFailed, out.msg
		base["error"] = out.msg
		base["maxAttempts"] = j.MaxAttempts
		if err := e.db.SaveJob(ctx, tx, j, r.queueID, r.lease, "job.failed", base); err != nil {
			return err
		}
		if err := e.domainFailed(ctx, tx, r, out.msg); err != nil {
			return err
		}
		if err := e.certificateFailed(ctx, tx, r, out.msg); err != nil {
			return err
		}
	}
	return nil
}

// certificateFailed writes certificate.failed when an issuance or renewal
// became a dead letter, in the transaction that records it.
func (e *Engine) certificateFailed(ctx context.Context, tx *sql.Tx, r *run, msg string) error {
	d := r.domain
	if d == nil || d.DeletedAt != nil || (r.job.Type != dcvaas.JobStartIssuance && r.job.Type != dcvaas.JobRenewal) {
		return nil
	}
	data := dcvaas.DomainData(d)
	data.Reason, data.JobID, data.JobType = msg, r.job.ID, r.job.Type
	return e.db.WriteEventTx(ctx, tx, d.OrgID, d.ID, dcvaas.EventCertificateFailed, data)
}

// reschedule queues the next River job for the same product job, at
// now+after, and makes it the one allowed to run it. Audit
// "job.retry_scheduled" says why.
func (e *Engine) reschedule(ctx context.Context, tx *sql.Tx, r *run, next ref, after time.Duration, msg string, details map[string]any, reason string, now time.Time) error {
	j := r.job
	if j.Type == dcvaas.JobDNSCheck {
		// At most one check of a domain is queued (the index
		// jobs_one_queued_dns_check). One queued while this one ran
		// (verify, one-click setup) started a newer window: this one ends
		// instead of going back to the queue beside it. (An older one
		// queued beside a newer running one goes instead.) The domain is
		// locked, so no check is queued meanwhile.
		other, err := e.db.QueuedJobOf(ctx, tx, j.DomainID, j.Type, j.ID)
		if err != nil {
			return err
		}
		if other != "" && other > j.ID { // UUIDv7: ordered by creation
			return e.supersede(ctx, tx, r, other)
		}
		if other != "" {
			stale, err := e.db.SupersedeQueuedJobs(ctx, tx, dcvaas.SystemActor(j.OrgID), j.DomainID, j.Type, j.ID)
			if err != nil {
				return err
			}
			if err := e.CancelTx(ctx, tx, stale); err != nil {
				return err
			}
		}
	}
	a, err := argsFor(j.Type, next)
	if err != nil {
		return err
	}
	opts := &river.InsertOpts{MaxAttempts: riverMaxAttempts}
	if after > 0 {
		// The queue runs on real time even when tests move the product's
		// clock; run_at below is the product's view of the same moment.
		opts.ScheduledAt = time.Now().Add(after)
	}
	res, err := e.client.InsertTx(ctx, tx, a, opts)
	if err != nil {
		return fmt.Errorf("queue next attempt of job %s: %w", j.ID, err)
	}
	j.Status, j.LastError, j.RunAt = dcvaas.JobQueued, msg, now.Add(after)
	details["reason"] = reason
	details["message"] = msg
	details["nextRunAt"] = j.RunAt.Format(time.RFC3339)
	details["attemptUsed"] = reason == "error"
	if reason == "error" {
		details["error"] = msg
	}
	return e.db.SaveJob(ctx, tx, j, res.Job.ID, r.lease, "job.retry_scheduled", details)
}

// supersede ends the run's job as superseded by the job byJobID.
func (e *Engine) supersede(ctx context.Context, tx *sql.Tx, r *run, byJobID string) error {
	j := r.job
	raw, err := marshalResult(map[string]string{"outcome": "superseded", "supersededBy": byJobID})
	if err != nil {
		return err
	}
	j.Status, j.Result, j.LastError = dcvaas.JobSucceeded, raw, ""
	return e.db.SaveJob(ctx, tx, j, r.queueID, r.lease, "job.succeeded", map[string]any{
		"type": j.Type, "domainId": j.DomainID, "attempt": j.Attempts, "outcome": "superseded", "supersededBy": byJobID,
	})
}

// setDomainError shows the latest problem on the domain, where customers
// look first. It is a detail of the job's audited change, not a change of
// the domain's state, so it writes no audit entry of its own.
func (e *Engine) setDomainError(ctx context.Context, tx *sql.Tx, d *dcvaas.Domain, msg string) error {
	if d.DeletedAt != nil || d.LastError == msg {
		return nil
	}
	d.LastError = msg
	return e.db.SaveDomainState(ctx, tx, d, "", nil)
}

// domainFailed shows a dead letter on its domain. A start_issuance that
// gives up fails the domain (the issue's state machine: failed "when
// issuance gives up"); a renewal keeps it active, since its certificate is
// still good; a dns_check leaves it pending_cname, to verify again.
func (e *Engine) domainFailed(ctx context.Context, tx *sql.Tx, r *run, msg string) error {
	d := r.domain
	if d.DeletedAt != nil {
		return nil
	}
	if r.job.Type == dcvaas.JobStartIssuance && d.Status == dcvaas.DomainIssuing {
		d.Status, d.LastError = dcvaas.DomainFailed, msg
		return e.db.SaveDomainState(ctx, tx, d, "domain.failed", map[string]any{"jobId": r.job.ID, "error": msg})
	}
	return e.setDomainError(ctx, tx, d, msg)
}

// marshalResult encodes a job's result; nil stays nil (no result).
func marshalResult(v any) (json.RawMessage, error) {
	if v == nil {
		return nil, nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("job result: %w", err)
	}
	return raw, nil
}
