package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"

	"github.com/dcvaas/dcvaas"
)

// The methods in this file serve the job engine (package jobs). It records
// each outcome of a job in one transaction together with the queue's own
// update (the insert of the next attempt), so most take the caller's
// *sql.Tx. They are not scoped to an organization: the engine acts as the
// system on whichever org the job belongs to, and writes audit entries as
// dcvaas.SystemActor. The hot path of every job, its start and its
// success, is in jobbatch.go.

// LockJob reads a job under a row lock, with the id of the queue entry that
// is currently allowed to run it (0 when none was recorded). ENOTFOUND when
// the job is gone, e.g. with its hard-deleted domain.
func (db *DB) LockJob(ctx context.Context, tx *sql.Tx, id string) (*dcvaas.Job, int64, error) {
	row := tx.QueryRowContext(ctx, `SELECT `+jobColumns+`, COALESCE(queue_job_id, 0) FROM jobs WHERE id = $1`+db.dialect.forUpdate(), id)
	var queueID int64
	j, err := scanJob(scanFunc(func(dest ...any) error { return row.Scan(append(dest, &queueID)...) }))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, 0, dcvaas.Errorf(dcvaas.ENOTFOUND, "job not found")
	}
	return j, queueID, err
}

// scanFunc adapts a function to the Scan method scanJob and scanDomain take.
type scanFunc func(dest ...any) error

func (f scanFunc) Scan(dest ...any) error { return f(dest...) }

// JobDomain reads the domain of a job, also when it is soft-deleted
// (DeletedAt set): a job must notice the deletion and stop. With lock it
// takes a row lock; the engine locks the domain before the job, the order
// every store transaction uses. ENOTFOUND when the job or domain is gone.
func (db *DB) JobDomain(ctx context.Context, tx *sql.Tx, jobID string, lock bool) (*dcvaas.Domain, error) {
	query := `SELECT ` + domainColumns + ` FROM domains WHERE id = (SELECT domain_id FROM jobs WHERE id = $1)`
	if lock {
		query += db.dialect.forUpdate()
	}
	d, err := scanDomain(tx.QueryRowContext(ctx, query, jobID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, dcvaas.Errorf(dcvaas.ENOTFOUND, "domain not found")
	}
	return d, err
}

// JobLease names the run that holds a running job: the queue entry that
// runs it and the attempt it started.
type JobLease struct {
	QueueJobID int64
	Attempt    int
}

// ErrLeaseLost is SaveJob's answer when the job is no longer held by the
// lease: another run took it over, and this run's outcome must not count.
var ErrLeaseLost = errors.New("job is no longer held by this run")

// SaveJob writes the engine-owned fields of j (status, attempts,
// max_attempts, runs, result, last_error, run_at) and the queue entry now allowed
// to run it, sets j.UpdatedAt, and writes the audit entry action (none when
// action is empty) — all inside tx. With a lease, the write happens only if
// the job is still running under it, else ErrLeaseLost.
func (db *DB) SaveJob(ctx context.Context, tx *sql.Tx, j *dcvaas.Job, queueJobID int64, lease *JobLease, action string, details map[string]any) error {
	j.UpdatedAt = db.now().UTC()
	var result sql.NullString
	if j.Result != nil {
		result = sql.NullString{String: string(j.Result), Valid: true}
	}
	query := `UPDATE jobs SET status = $1, attempts = $2, max_attempts = $3, result = $4,
		last_error = $5, run_at = $6, updated_at = $7, queue_job_id = $8, waiting_for = $10, wait_until = $11, runs = $12 WHERE id = $9`
	args := []any{string(j.Status), j.Attempts, j.MaxAttempts, result, j.LastError, micros(j.RunAt), micros(j.UpdatedAt),
		nullQueueID(queueJobID), j.ID, j.WaitingFor, nullMicros(j.WaitUntil), j.Runs}
	if lease != nil {
		query += ` AND status = 'running' AND queue_job_id = $13 AND attempts = $14`
		args = append(args, lease.QueueJobID, lease.Attempt)
	}
	res, err := tx.ExecContext(ctx, query, args...)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return ErrLeaseLost
	}
	return db.AuditJob(ctx, tx, j, action, details)
}

// AuditJob writes an audit entry about j as the system (none when action
// is empty).
func (db *DB) AuditJob(ctx context.Context, tx *sql.Tx, j *dcvaas.Job, action string, details map[string]any) error {
	if action == "" {
		return nil
	}
	return db.audit(ctx, tx, dcvaas.SystemActor(j.OrgID), action, "job", j.ID, details)
}

func nullQueueID(id int64) sql.NullInt64 { return sql.NullInt64{Int64: id, Valid: id != 0} }

// SaveDomainState writes d's status, last error and wait, sets d.UpdatedAt, and
// writes the audit entry action (none when empty), inside tx.
func (db *DB) SaveDomainState(ctx context.Context, tx *sql.Tx, d *dcvaas.Domain, action string, details map[string]any) error {
	d.UpdatedAt = db.now().UTC()
	if _, err := tx.ExecContext(ctx, `UPDATE domains SET status = $1, last_error = $2, updated_at = $3, waiting_for = $5, wait_until = $6 WHERE id = $4`,
		string(d.Status), d.LastError, micros(d.UpdatedAt), d.ID, d.WaitingFor, nullMicros(d.WaitUntil)); err != nil {
		return err
	}
	if action == "" {
		return nil
	}
	return db.audit(ctx, tx, dcvaas.SystemActor(d.OrgID), action, "domain", d.ID, details)
}

// InsertJobTx queues a job inside tx the same way the API does: jobs row,
// audit "job.queued", and the Enqueuer's queue entry.
func (db *DB) InsertJobTx(ctx context.Context, tx *sql.Tx, actor dcvaas.Actor, domainID string, jt dcvaas.JobType) (*dcvaas.Job, error) {
	return db.insertJob(ctx, tx, actor, domainID, jt, EnqueueOpts{}, nil)
}

// SupersedeQueuedJobs ends the domain's other queued jobs of type jt as
// succeeded, their result naming the job that replaces them (the job
// listing shows them as superseded), with audit "job.succeeded" each. It
// returns their queue entry ids so the queue can cancel them in the same
// transaction. Running jobs are left to finish.
func (db *DB) SupersedeQueuedJobs(ctx context.Context, tx *sql.Tx, actor dcvaas.Actor, domainID string, jt dcvaas.JobType, byJobID string) ([]int64, error) {
	now := micros(db.now())
	result, err := json.Marshal(map[string]string{"outcome": "superseded", "supersededBy": byJobID})
	if err != nil {
		return nil, err
	}
	rows, err := tx.QueryContext(ctx, `UPDATE jobs SET status = 'succeeded', result = $1, updated_at = $2
		WHERE domain_id = $3 AND type = $4 AND status = 'queued' AND id <> $5
		RETURNING id, COALESCE(queue_job_id, 0)`,
		string(result), now, domainID, string(jt), byJobID)
	if err != nil {
		return nil, err
	}
	var ids []string
	var queueIDs []int64
	for rows.Next() {
		var id string
		var q int64
		if err := rows.Scan(&id, &q); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
		if q != 0 {
			queueIDs = append(queueIDs, q)
		}
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	for _, id := range ids {
		if err := db.audit(ctx, tx, actor, "job.succeeded", "job", id, map[string]any{
			"type": jt, "domainId": domainID, "outcome": "superseded", "supersededBy": byJobID,
		}); err != nil {
			return nil, err
		}
	}
	return queueIDs, nil
}

// QueuedJobOf returns the id of the domain's queued job of type jt other
// than exceptID, "" when there is none.
func (db *DB) QueuedJobOf(ctx context.Context, tx *sql.Tx, domainID string, jt dcvaas.JobType, exceptID string) (string, error) {
	var id string
	err := tx.QueryRowContext(ctx, `SELECT id FROM jobs WHERE domain_id = $1 AND type = $2 AND status = 'queued' AND id <> $3
		ORDER BY created_at DESC, id DESC LIMIT 1`, domainID, string(jt), exceptID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return id, err
}
