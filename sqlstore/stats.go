package sqlstore

import (
	"context"
	"slices"
	"time"

	"github.com/dcvaas/dcvaas"
)

// FleetStats reads the numbers behind the service's metrics, cluster-wide.
// Each is one indexed or small query; callers cache the result (a scrape
// every few seconds must not become a load of its own). Certificates are
// counted as expiring for each of horizons (e.g. 7 and 14 days).
func (db *DB) FleetStats(ctx context.Context, now time.Time, horizons ...time.Duration) (*dcvaas.FleetStats, error) {
	s := &dcvaas.FleetStats{At: now, Jobs: map[dcvaas.JobType]map[dcvaas.JobStatus]int{},
		Domains: map[dcvaas.DomainStatus]int{}, Expiring: map[time.Duration]int{}}

	// Dead letters by type (jobs_failed); queued and running jobs are
	// counted in the queue below. Succeeded ones pile up for ever and are
	// the workers' counters.
	rows, err := db.read.QueryContext(ctx, `SELECT type, COUNT(*) FROM jobs WHERE status = 'failed' GROUP BY type`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var typ string
		var n int
		if err := rows.Scan(&typ, &n); err != nil {
			rows.Close()
			return nil, err
		}
		addJobs(s, dcvaas.JobType(typ), dcvaas.JobFailed, n)
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}

	rows, err = db.read.QueryContext(ctx, `SELECT status, cname_status, COUNT(*) FROM domains WHERE deleted_at IS NULL
		GROUP BY status, cname_status`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var status, cname string
		var n int
		if err := rows.Scan(&status, &cname, &n); err != nil {
			rows.Close()
			return nil, err
		}
		s.Domains[dcvaas.DomainStatus(status)] += n
		if status == string(dcvaas.DomainActive) && cname == string(dcvaas.CNAMEMissing) {
			s.CNAMEMissing += n
		}
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}

	for _, h := range horizons {
		var n int
		if err := db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM domains
			WHERE status = 'active' AND deleted_at IS NULL AND expires_at < $1`, micros(now.Add(h))).Scan(&n); err != nil {
			return nil, err
		}
		s.Expiring[h] = n
	}

	if s.LastRenewal, err = db.LastRenewalRun(ctx, dcvaas.RenewalSucceeded); err != nil {
		return nil, err
	}
	if s.CABackoffs, err = db.CABackoffs(ctx, now); err != nil {
		return nil, err
	}

	// The queue is River's table (absent where River was never migrated),
	// read through its index on state. A job queued or running has one
	// live queue entry, whose kind is the job's type.
	rows, err = db.read.QueryContext(ctx, `SELECT kind, state, COUNT(*) FROM river_job
		WHERE state IN ('available', 'scheduled', 'retryable', 'running') GROUP BY kind, state`)
	if err != nil {
		db.log.DebugContext(ctx, "queue depth unknown", "err", err)
		return s, nil
	}
	defer rows.Close()
	s.Queue = map[string]int{}
	for rows.Next() {
		var kind, state string
		var n int
		if err := rows.Scan(&kind, &state, &n); err != nil {
			return nil, err
		}
		s.Queue[state] += n
		status := dcvaas.JobQueued
		if state == "running" {
			status = dcvaas.JobRunning
		}
		if slices.Contains(dcvaas.JobTypes, dcvaas.JobType(kind)) {
			addJobs(s, dcvaas.JobType(kind), status, n)
		}
	}
	return s, rows.Err()
}

// addJobs is s.Jobs[jt][st] += n.
func addJobs(s *dcvaas.FleetStats, jt dcvaas.JobType, st dcvaas.JobStatus, n int) {
	if s.Jobs[jt] == nil {
		s.Jobs[jt] = map[dcvaas.JobStatus]int{}
	}
	s.Jobs[jt][st] += n
}
