package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"iter"
	"strings"
	"time"

	"github.com/dcvaas/dcvaas"
)

// Queuing the renewals of a page of the renewal check, in the page's
// transaction: which domains have one open already (OpenRenewals), the new
// jobs with their ids (PlanRenewals), the job queue's entries (the caller's,
// River's), then the jobs rows that point at them with their audit entries
// (InsertRenewalJobs). On PostgreSQL each step is one statement (arrays
// through unnest), on SQLite one multi-row statement per few hundred rows.

// RenewalRequest asks for one renewal of a domain.
type RenewalRequest struct {
	DomainID, OrgID string
	// RunAt is when the renewal should start (the check spreads them).
	RunAt time.Time
	// NotAfter is the expiry of the certificate it replaces (nil: none).
	NotAfter *time.Time
	// Reason is why it is due: "ari" (the CA's window began), "lifetime"
	// (little of its validity remains) or "no_certificate".
	Reason string
	// RunID is the renewal check that asked, if any.
	RunID string
}

// OpenRenewals returns, of the given domains, those with a renewal queued
// or running (through jobs_one_open_renewal).
func (db *DB) OpenRenewals(ctx context.Context, tx *sql.Tx, domainIDs []string) (map[string]bool, error) {
	open := map[string]bool{}
	for start, end := range db.chunks(len(domainIDs)) {
		chunk := domainIDs[start:end]
		var rows *sql.Rows
		var err error
		const q = `SELECT domain_id FROM jobs WHERE type = 'renewal' AND status IN ('queued', 'running') AND domain_id`
		if db.dialect == Postgres {
			rows, err = tx.QueryContext(ctx, q+` = ANY($1::text[])`, chunk)
		} else {
			args := make([]any, len(chunk))
			for i, id := range chunk {
				args[i] = id
			}
			rows, err = tx.QueryContext(ctx, q+` IN (`+valueRows(len(chunk), "?")+`)`, args...)
		}
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, err
			}
			open[id] = true
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
	}
	return open, nil
}

// PlanRenewals returns the queued renewal job, with its id, of each
// request; nothing is stored yet.
func (db *DB) PlanRenewals(reqs []RenewalRequest, maxAttempts int) []*dcvaas.Job {
	now := db.now().UTC()
	jobs := make([]*dcvaas.Job, len(reqs))
	for i, r := range reqs {
		jobs[i] = &dcvaas.Job{ID: newID(), OrgID: r.OrgID, DomainID: r.DomainID, Type: dcvaas.JobRenewal, Status: dcvaas.JobQueued,
			MaxAttempts: maxAttempts, RunAt: r.RunAt.UTC(), CreatedAt: now, UpdatedAt: now}
	}
	return jobs
}

// InsertRenewalJobs records the planned jobs (jobs[i] renews reqs[i] and is
// run by the queue entry queueIDs[i]), inside tx, except where the domain
// has a renewal queued or running by now: the unique index
// jobs_one_open_renewal decides, so that concurrent checks cannot both
// queue one (the loser's queue entry finds no job and does nothing). Each
// inserted job gets audit "job.queued", and its domain "cron.renewal_queued"
// with the job id and the expiry. It returns the jobs it inserted.
func (db *DB) InsertRenewalJobs(ctx context.Context, tx *sql.Tx, reqs []RenewalRequest, jobs []*dcvaas.Job, queueIDs []int64) ([]*dcvaas.Job, error) {
	if len(reqs) != len(jobs) || len(jobs) != len(queueIDs) {
		return nil, fmt.Errorf("InsertRenewalJobs: %d requests, %d jobs, %d queue entries", len(reqs), len(jobs), len(queueIDs))
	}
	if len(jobs) == 0 {
		return nil, nil
	}
	inserted := map[string]bool{}
	collect := func(rows *sql.Rows, err error) error {
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			inserted[id] = true
		}
		return rows.Close()
	}
	if db.dialect == Postgres {
		n := len(jobs)
		ids, orgs, domains, runAt, maxAttempts, created := make([]string, n), make([]string, n), make([]string, n), make([]int64, n), make([]int64, n), make([]int64, n)
		for i, j := range jobs {
			ids[i], orgs[i], domains[i], runAt[i], maxAttempts[i], created[i] = j.ID, j.OrgID, j.DomainID, micros(j.RunAt), int64(j.MaxAttempts), micros(j.CreatedAt)
		}
		if err := collect(tx.QueryContext(ctx, `INSERT INTO jobs (`+jobInsertColumns+`, queue_job_id)
			SELECT v.id, v.org_id, v.domain_id, 'renewal', 'queued', 0, v.max_attempts, NULL, '', v.run_at, v.created, v.created, v.queue_job_id
			FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[])
				AS v(id, org_id, domain_id, run_at, max_attempts, created, queue_job_id)
			ON CONFLICT DO NOTHING RETURNING id`, ids, orgs, domains, runAt, maxAttempts, created, queueIDs)); err != nil {
			return nil, err
		}
	} else {
		// SQLite: a few multi-row statements instead of one per row; on
		// modernc's SQLite each statement costs more than its rows.
		for start, end := range db.chunks(len(jobs)) {
			chunk := jobs[start:end]
			args := make([]any, 0, 8*len(chunk))
			for i, j := range chunk {
				args = append(args, j.ID, j.OrgID, j.DomainID, j.MaxAttempts, micros(j.RunAt), micros(j.CreatedAt), micros(j.CreatedAt), queueIDs[start+i])
			}
			if err := collect(tx.QueryContext(ctx, `INSERT INTO jobs (`+jobInsertColumns+`, queue_job_id) VALUES `+
				valueRows(len(chunk), "(?, ?, ?, 'renewal', 'queued', 0, ?, NULL, '', ?, ?, ?, ?)")+
				` ON CONFLICT DO NOTHING RETURNING id`, args...)); err != nil {
				return nil, err
			}
		}
	}
	out := make([]*dcvaas.Job, 0, len(inserted))
	audits := make([]auditRow, 0, 2*len(inserted))
	for i, j := range jobs {
		if !inserted[j.ID] {
			continue
		}
		out = append(out, j)
		r := reqs[i]
		details := renewalQueued{JobID: j.ID, Reason: r.Reason, RunAt: j.RunAt.Format(time.RFC3339), RunID: r.RunID}
		if r.NotAfter != nil {
			details.ExpiresAt = r.NotAfter.UTC().Format(time.RFC3339)
		}
		audits = append(audits,
			auditRow{OrgID: j.OrgID, Action: "job.queued", EntityType: "job", EntityID: j.ID,
				Details: jobQueued{Type: j.Type, DomainID: j.DomainID}},
			auditRow{OrgID: j.OrgID, Action: "cron.renewal_queued", EntityType: "domain", EntityID: j.DomainID, Details: details})
	}
	if err := db.auditMany(ctx, tx, audits); err != nil {
		return nil, err
	}
	return out, nil
}

// chunks splits n rows into the chunks of one multi-row statement each:
// on SQLite, powers of two up to 512, so that a handful of statement texts
// serve every page and stay prepared (parsing a new one per page cost a
// tenth of the check); on PostgreSQL, whose statements take arrays, one.
func (db *DB) chunks(n int) iter.Seq2[int, int] {
	return func(yield func(int, int) bool) {
		if db.dialect == Postgres {
			if n > 0 {
				yield(0, n)
			}
			return
		}
		for start := 0; start < n; {
			size := 512
			for size > n-start {
				size /= 2
			}
			if !yield(start, start+size) {
				return
			}
			start += size
		}
	}
}

// valueRows repeats row n times: a multi-row VALUES (or IN) list for
// SQLite. Its placeholders are bare "?" (bound in order): SQLite keeps
// "$n" and "?n" in a list it searches for each one, which makes a
// statement with thousands of them quadratic to parse and bind.
func valueRows(n int, row string) string {
	return strings.TrimSuffix(strings.Repeat(row+", ", n), ", ")
}

// auditRow is one audit entry written by the system (no user, token or
// IP). Details is JSON-encoded: a struct, which encodes in a fraction of a
// map's time (a check writes two entries per renewal).
type auditRow struct {
	OrgID, Action, EntityType, EntityID string
	Details                             any
}

// The details of the entries a renewal check writes, as audit's maps have them.
type (
	jobQueued struct {
		Type     dcvaas.JobType `json:"type"`
		DomainID string         `json:"domainId"`
	}
	renewalQueued struct {
		JobID     string `json:"jobId"`
		Reason    string `json:"reason"`
		RunAt     string `json:"runAt"`
		ExpiresAt string `json:"expiresAt,omitempty"`
		RunID     string `json:"runId,omitempty"`
	}
)

// auditMany writes entries inside tx, as audit does one.
func (db *DB) auditMany(ctx context.Context, tx *sql.Tx, rows []auditRow) error {
	if len(rows) == 0 {
		return nil
	}
	now := micros(db.now())
	if db.dialect != Postgres {
		for start, end := range db.chunks(len(rows)) {
			chunk := rows[start:end]
			args := make([]any, 0, 7*len(chunk))
			for _, r := range chunk {
				raw, err := json.Marshal(r.Details)
				if err != nil {
					return fmt.Errorf("audit details: %w", err)
				}
				args = append(args, newID(), r.OrgID, r.Action, r.EntityType, r.EntityID, string(raw), now)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO audit_logs
				(id, org_id, user_id, token_id, action, entity_type, entity_id, details, ip, user_agent, created_at) VALUES `+
				valueRows(len(chunk), "(?, ?, '', '', ?, ?, ?, ?, '', '', ?)"), args...); err != nil {
				return err
			}
		}
		return nil
	}
	n := len(rows)
	ids, orgs, actions, types, entities, details := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	for i, r := range rows {
		raw, err := json.Marshal(r.Details)
		if err != nil {
			return fmt.Errorf("audit details: %w", err)
		}
		ids[i], orgs[i], actions[i], types[i], entities[i], details[i] = newID(), r.OrgID, r.Action, r.EntityType, r.EntityID, string(raw)
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO audit_logs
		(id, org_id, user_id, token_id, action, entity_type, entity_id, details, ip, user_agent, created_at)
		SELECT v.id, v.org_id, '', '', v.action, v.entity_type, v.entity_id, v.details::jsonb, '', '', $1
		FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
			AS v(id, org_id, action, entity_type, entity_id, details)`,
		now, ids, orgs, actions, types, entities, details)
	return err
}
