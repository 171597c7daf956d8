package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/dcvaas/dcvaas"
)

// jobInsertColumns are the columns a new job's row is written with; the
// rest have defaults. jobColumns are the ones read back.
const (
	jobInsertColumns = `id, org_id, domain_id, type, status, attempts, max_attempts, result, last_error, run_at, created_at, updated_at`
	jobColumns       = jobInsertColumns + `, waiting_for, wait_until, runs`
)

func scanJob(row interface{ Scan(...any) error }) (*dcvaas.Job, error) {
	var j dcvaas.Job
	var typ, status string
	var result sql.NullString
	var runAt, created, updated int64
	var waitUntil sql.NullInt64
	if err := row.Scan(&j.ID, &j.OrgID, &j.DomainID, &typ, &status, &j.Attempts, &j.MaxAttempts, &result, &j.LastError,
		&runAt, &created, &updated, &j.WaitingFor, &waitUntil, &j.Runs); err != nil {
		return nil, err
	}
	j.WaitUntil = fromNullMicros(waitUntil)
	j.Type, j.Status = dcvaas.JobType(typ), dcvaas.JobStatus(status)
	if result.Valid {
		j.Result = []byte(result.String)
	}
	j.RunAt, j.CreatedAt, j.UpdatedAt = fromMicros(runAt), fromMicros(created), fromMicros(updated)
	return &j, nil
}

// insertJob records a queued job, audits it and hands it to the queue, all
// inside tx.
//
// The queue entry comes first, so that the row is written once with its
// queue id; inside one transaction the order changes nothing anyone sees.
// The caller's own change, if any, comes in w and is written with the
// job's row and audit entry (writes.go: one round trip on PostgreSQL).
func (db *DB) insertJob(ctx context.Context, tx *sql.Tx, actor dcvaas.Actor, domainID string, jt dcvaas.JobType, opts EnqueueOpts, w *writes) (*dcvaas.Job, error) {
	if w == nil {
		w = &writes{}
	}
	now := db.now().UTC()
	j := &dcvaas.Job{ID: newID(), OrgID: actor.OrgID, DomainID: domainID, Type: jt, Status: dcvaas.JobQueued,
		MaxAttempts: dcvaas.DefaultMaxAttempts, RunAt: now, CreatedAt: now, UpdatedAt: now}
	if jt == dcvaas.JobDNSCheck && !opts.NewDomain {
		if err := db.supersedeChecks(ctx, tx, j); err != nil {
			return nil, err
		}
	}
	var queueID int64
	if db.enqueuer != nil {
		var err error
		if queueID, err = db.enqueuer.EnqueueTx(ctx, tx, j, opts); err != nil {
			return nil, err
		}
	}
	w.add(`INSERT INTO jobs (`+jobInsertColumns+`, queue_job_id)
		VALUES ($1, $2, $3, $4, $5, 0, $6, NULL, '', $7, $7, $7, $8)`,
		j.ID, j.OrgID, j.DomainID, string(j.Type), string(j.Status), j.MaxAttempts, micros(now), nullQueueID(queueID))
	w.audit(auditEntry{actor, "job.queued", "job", j.ID, map[string]any{"type": j.Type, "domainId": domainID}})
	if err := db.exec(ctx, tx, w); err != nil {
		return nil, openJobConflict(err, jt)
	}
	return j, nil
}

// openJob returns the domain's newest job of type jt that is queued or
// running, or nil when there is none.
func (db *DB) openJob(ctx context.Context, tx *sql.Tx, domainID string, jt dcvaas.JobType) (*dcvaas.Job, error) {
	j, err := scanJob(tx.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM jobs
		WHERE domain_id = $1 AND type = $2 AND status IN ('queued', 'running')
		ORDER BY created_at DESC, id DESC LIMIT 1`, domainID, string(jt)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return j, err
}

// FindJob implements dcvaas.JobStore.
func (db *DB) FindJob(ctx context.Context, orgID, id string) (*dcvaas.Job, error) {
	return db.findJob(ctx, db.read, orgID, id, false)
}

func (db *DB) findJob(ctx context.Context, q querier, orgID, id string, lock bool) (*dcvaas.Job, error) {
	query := `SELECT ` + jobColumns + ` FROM jobs WHERE id = $1 AND org_id = $2`
	if lock {
		query += db.dialect.forUpdate()
	}
	j, err := scanJob(q.QueryRowContext(ctx, query, id, orgID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, dcvaas.Errorf(dcvaas.ENOTFOUND, "job not found")
	}
	return j, err
}

// ListJobs implements dcvaas.JobStore.
func (db *DB) ListJobs(ctx context.Context, orgID string, f dcvaas.JobFilter) ([]*dcvaas.Job, int, error) {
	var w where
	w.add("org_id = ?", orgID)
	if f.DomainID != "" {
		w.add("domain_id = ?", f.DomainID)
	}
	if f.Type != "" {
		w.add("type = ?", string(f.Type))
	}
	// scheduled and superseded are views of queued and succeeded
	// (dcvaas.Job.View), which then exclude them.
	now := micros(db.now())
	switch f.Status {
	case "":
	case dcvaas.JobQueued:
		w.add("status = 'queued' AND run_at <= ?", now)
	case dcvaas.JobScheduled:
		w.add("status = 'queued' AND run_at > ?", now)
	case dcvaas.JobSucceeded:
		w.add("status = 'succeeded' AND (result IS NULL OR " + db.dialect.jsonText("result", "outcome") + " IS NULL OR " + db.dialect.jsonText("result", "outcome") + " <> 'superseded')")
	case dcvaas.JobSuperseded:
		w.add("status = 'succeeded' AND " + db.dialect.jsonText("result", "outcome") + " = 'superseded'")
	default:
		w.add("status = ?", string(f.Status))
	}
	var total int
	if err := db.read.QueryRowContext(ctx, "SELECT COUNT(*) FROM jobs"+w.String(), w.args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	limit, args := w.page(f.Limit, f.Offset)
	rows, err := db.read.QueryContext(ctx, "SELECT "+jobColumns+" FROM jobs"+w.String()+" ORDER BY created_at DESC, id DESC"+limit, args...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []*dcvaas.Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, j)
	}
	return out, total, rows.Err()
}

// LatestDomainJob implements dcvaas.JobStore.
func (db *DB) LatestDomainJob(ctx context.Context, orgID, domainID string) (*dcvaas.Job, error) {
	j, err := scanJob(db.read.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM jobs WHERE domain_id = $1 AND org_id = $2
		ORDER BY created_at DESC, id DESC LIMIT 1`, domainID, orgID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return j, err
}

// RetryJob implements dcvaas.JobStore.
func (db *DB) RetryJob(ctx context.Context, actor dcvaas.Actor, id string) (*dcvaas.Job, error) {
	var job *dcvaas.Job
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		// The domain is locked before the job, the order every store
		// transaction uses; its lock also orders this retry with any
		// other path that queues a check of the domain.
		j, err := db.findJob(ctx, tx, actor.OrgID, id, false)
		if err != nil {
			return err
		}
		if _, err := db.findDomain(ctx, tx, actor.OrgID, j.DomainID, true); err != nil {
			return err
		}
		if j, err = db.findJob(ctx, tx, actor.OrgID, id, true); err != nil {
			return err
		}
		if j.Status != dcvaas.JobFailed {
			return dcvaas.Errorf(dcvaas.ECONFLICT, "only failed jobs can be retried; this one is %s", j.Status)
		}
		now := db.now().UTC()
		j.Status, j.Attempts, j.RunAt, j.UpdatedAt = dcvaas.JobQueued, 0, now, now
		if j.Type == dcvaas.JobDNSCheck {
			if err := db.supersedeChecks(ctx, tx, j); err != nil {
				return err
			}
		}
		var queueID int64
		if db.enqueuer != nil {
			if queueID, err = db.enqueuer.EnqueueTx(ctx, tx, j, EnqueueOpts{}); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE jobs SET status = $1, attempts = 0, run_at = $2, updated_at = $2,
			queue_job_id = COALESCE($3, queue_job_id), max_attempts = $4 WHERE id = $5`,
			string(j.Status), micros(now), nullQueueID(queueID), j.MaxAttempts, j.ID); err != nil {
			return openJobConflict(err, j.Type)
		}
		if err := db.audit(ctx, tx, actor, "job.retried", "job", j.ID, map[string]any{"type": j.Type, "domainId": j.DomainID}); err != nil {
			return err
		}
		job = j
		return nil
	})
	return job, err
}

// openJobConflict turns the violation of jobs_one_open_renewal (a domain
// has at most one renewal queued or running; a renewal check may have
// queued one a moment ago) into ECONFLICT.
func openJobConflict(err error, jt dcvaas.JobType) error {
	// The jobs table's, not a violation by a caller's statement written
	// with the job (writes.go).
	if isUniqueViolation(err) && strings.Contains(err.Error(), "jobs") {
		return &dcvaas.Error{Code: dcvaas.ECONFLICT, Message: fmt.Sprintf("a %s of this domain is already queued or running", jt), Err: err}
	}
	return err
}

// QueueCanceler is implemented by an Enqueuer that must drop the queue
// entries of jobs the store ended without running them (superseded).
type QueueCanceler interface {
	CancelTx(ctx context.Context, tx *sql.Tx, queueJobIDs []int64) error
}

// supersedeChecks ends the domain's queued dns_checks other than j, which
// is about to be queued: a new check starts a new window, so older ones
// waiting for their next turn are pointless, and at most one check of a
// domain is queued at once (the index jobs_one_queued_dns_check). Running
// ones finish; checks are idempotent. The caller holds the domain's row
// lock.
func (db *DB) supersedeChecks(ctx context.Context, tx *sql.Tx, j *dcvaas.Job) error {
	stale, err := db.SupersedeQueuedJobs(ctx, tx, dcvaas.SystemActor(j.OrgID), j.DomainID, dcvaas.JobDNSCheck, j.ID)
	if err != nil {
		return err
	}
	if c, ok := db.enqueuer.(QueueCanceler); ok && len(stale) > 0 {
		return c.CancelTx(ctx, tx, stale)
	}
	return nil
}
