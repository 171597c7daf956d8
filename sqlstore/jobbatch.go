package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"

	"github.com/dcvaas/dcvaas"
)

// The start and the success of a job are the job engine's hot path: every
// job passes both. The engine hands them over in rounds from its concurrent
// workers, and each round is one transaction — on PostgreSQL one statement,
// since there every statement is a network round trip and every commit a
// WAL flush: a data-modifying WITH updates the jobs and writes their audit
// entries together. SQLite cannot modify data inside WITH, but its
// statements are function calls; there a round is one transaction of
// per-job statements.

// JobClaim asks to start a job on behalf of the queue entry that runs it.
type JobClaim struct {
	JobID      string
	QueueJobID int64
}

// StartedJob is a claimed job, now running, with its domain (also when
// soft-deleted: a job must notice the deletion and stop).
type StartedJob struct {
	Job    *dcvaas.Job
	Domain *dcvaas.Domain
}

// StartJobs moves each claimed job that is queued under the claiming queue
// entry to running, with one more attempt and audit "job.started". It
// returns one StartedJob per claim, with a nil Job where the job was not
// claimable (finished, superseded, re-queued under another entry, or
// interrupted while running); the engine then looks closer under LockJob.
func (db *DB) StartJobs(ctx context.Context, claims []JobClaim) ([]StartedJob, error) {
	now := micros(db.now())
	started := map[string]StartedJob{}
	if db.dialect == Postgres {
		ids, queueIDs, auditIDs := make([]string, len(claims)), make([]int64, len(claims)), make([]string, len(claims))
		for i, c := range claims {
			ids[i], queueIDs[i], auditIDs[i] = c.JobID, c.QueueJobID, newID()
		}
		rows, err := db.write.QueryContext(ctx, `WITH v AS (
			SELECT * FROM unnest($2::text[], $3::bigint[], $4::text[]) AS v(id, queue_job_id, audit_id)
		), j AS (
			UPDATE jobs SET status = 'running', attempts = jobs.attempts + 1, runs = jobs.runs + 1, updated_at = $1, waiting_for = '', wait_until = NULL FROM v
			WHERE jobs.id = v.id AND jobs.queue_job_id = v.queue_job_id AND jobs.status = 'queued'
			RETURNING `+qualify("jobs", jobColumns)+`
		), a AS (
			INSERT INTO audit_logs (id, org_id, user_id, token_id, action, entity_type, entity_id, details, ip, user_agent, created_at)
			SELECT v.audit_id, j.org_id, '', '', 'job.started', 'job', j.id, jsonb_build_object('type', j.type,
				'domainId', j.domain_id, 'attempt', j.attempts, 'maxAttempts', j.max_attempts), '', '', $1
			FROM j JOIN v ON v.id = j.id
		)
		SELECT `+qualify("j", jobColumns)+`, `+qualify("d", domainColumns)+` FROM j JOIN domains d ON d.id = j.domain_id`,
			now, ids, queueIDs, auditIDs)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		for rows.Next() {
			j, d, err := scanJobDomain(rows)
			if err != nil {
				return nil, err
			}
			started[j.ID] = StartedJob{j, d}
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
	} else if err := db.inTx(ctx, func(tx *sql.Tx) error {
		for _, c := range claims {
			j, err := scanJob(tx.QueryRowContext(ctx, `UPDATE jobs SET status = 'running', attempts = attempts + 1, runs = runs + 1, updated_at = $1, waiting_for = '', wait_until = NULL
				WHERE id = $2 AND queue_job_id = $3 AND status = 'queued' RETURNING `+jobColumns, now, c.JobID, c.QueueJobID))
			if errors.Is(err, sql.ErrNoRows) {
				continue
			} else if err != nil {
				return err
			}
			d, err := db.JobDomain(ctx, tx, c.JobID, false)
			if err != nil {
				return err
			}
			if err := db.AuditJob(ctx, tx, j, "job.started", map[string]any{
				"type": j.Type, "domainId": j.DomainID, "attempt": j.Attempts, "maxAttempts": j.MaxAttempts,
			}); err != nil {
				return err
			}
			started[j.ID] = StartedJob{j, d}
		}
		return nil
	}); err != nil {
		return nil, err
	}
	out := make([]StartedJob, len(claims))
	for i, c := range claims {
		out[i] = started[c.JobID]
	}
	return out, nil
}

// JobSuccess is the success of a running job, recorded under its lease.
type JobSuccess struct {
	JobID  string
	Lease  JobLease
	Result json.RawMessage // nil: no result
}

// SucceedJobs records successes: status succeeded, the result, lastError
// cleared, audit "job.succeeded". It reports, per success, whether the
// lease still held; where it did not, nothing was written.
func (db *DB) SucceedJobs(ctx context.Context, ss []JobSuccess) ([]bool, error) {
	now := micros(db.now())
	held := map[string]bool{}
	if db.dialect == Postgres {
		n := len(ss)
		ids, queueIDs, attempts, results, auditIDs := make([]string, n), make([]int64, n), make([]int64, n), make([]string, n), make([]string, n)
		for i, s := range ss {
			ids[i], queueIDs[i], attempts[i], results[i], auditIDs[i] = s.JobID, s.Lease.QueueJobID, int64(s.Lease.Attempt), string(s.Result), newID()
		}
		rows, err := db.write.QueryContext(ctx, `WITH v AS (
			SELECT * FROM unnest($2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::text[]) AS v(id, queue_job_id, attempt, result, audit_id)
		), j AS (
			UPDATE jobs SET status = 'succeeded', result = NULLIF(v.result, '')::jsonb, last_error = '', updated_at = $1 FROM v
			WHERE jobs.id = v.id AND jobs.status = 'running' AND jobs.queue_job_id = v.queue_job_id AND jobs.attempts = v.attempt
			RETURNING jobs.id, jobs.org_id, jobs.type, jobs.domain_id, jobs.attempts
		), a AS (
			INSERT INTO audit_logs (id, org_id, user_id, token_id, action, entity_type, entity_id, details, ip, user_agent, created_at)
			SELECT v.audit_id, j.org_id, '', '', 'job.succeeded', 'job', j.id, jsonb_build_object('type', j.type,
				'domainId', j.domain_id, 'attempt', j.attempts), '', '', $1
			FROM j JOIN v ON v.id = j.id
		)
		SELECT id FROM j`, now, ids, queueIDs, attempts, results, auditIDs)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				return nil, err
			}
			held[id] = true
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
	} else if err := db.inTx(ctx, func(tx *sql.Tx) error {
		for _, s := range ss {
			var result sql.NullString
			if s.Result != nil {
				result = sql.NullString{String: string(s.Result), Valid: true}
			}
			var orgID, typ, domainID string
			err := tx.QueryRowContext(ctx, `UPDATE jobs SET status = 'succeeded', result = $1, last_error = '', updated_at = $2
				WHERE id = $3 AND status = 'running' AND queue_job_id = $4 AND attempts = $5 RETURNING org_id, type, domain_id`,
				result, now, s.JobID, s.Lease.QueueJobID, s.Lease.Attempt).Scan(&orgID, &typ, &domainID)
			if errors.Is(err, sql.ErrNoRows) {
				continue
			} else if err != nil {
				return err
			}
			if err := db.audit(ctx, tx, dcvaas.SystemActor(orgID), "job.succeeded", "job", s.JobID, map[string]any{
				"type": typ, "domainId": domainID, "attempt": s.Lease.Attempt,
			}); err != nil {
				return err
			}
			held[s.JobID] = true
		}
		return nil
	}); err != nil {
		return nil, err
	}
	out := make([]bool, len(ss))
	for i, s := range ss {
		out[i] = held[s.JobID]
	}
	return out, nil
}

// scanJobDomain reads a row of job columns followed by domain columns.
// scanJob and scanDomain each convert their own fields; the row is scanned
// once, when scanDomain's destinations reach scanJob's.
func scanJobDomain(row interface{ Scan(...any) error }) (*dcvaas.Job, *dcvaas.Domain, error) {
	var j *dcvaas.Job
	d, err := scanDomain(scanFunc(func(domainDest ...any) error {
		var err error
		j, err = scanJob(scanFunc(func(jobDest ...any) error {
			return row.Scan(append(jobDest, domainDest...)...)
		}))
		return err
	}))
	return j, d, err
}

// qualify prefixes each column of a column list with a table alias.
func qualify(alias, columns string) string {
	cols := strings.Split(columns, ",")
	for i, c := range cols {
		cols[i] = alias + "." + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}
