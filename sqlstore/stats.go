package sqlstore

import (
	"context"
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

	// Succeeded jobs pile up for ever; only open ones and dead letters are
	// counted (jobs_open_by_type), the rest are counters of the workers.
	rows, err := db.read.QueryContext(ctx, `SELECT type, status, COUNT(*) FROM jobs
		WHERE status IN ('queued', 'running', 'failed') GROUP BY type, status`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var typ, status string
		var n int
		if err := rows.Scan(&typ, &status, &n); err != nil {
			rows.Close()
			return nil, err
		}
		jt := dcvaas.JobType(typ)
		if s.Jobs[jt] == nil {
			s.Jobs[jt] = map[dcvaas.JobStatus]int{}
		}
		s.Jobs[jt][dcvaas.JobStatus(status)] = n
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

	// The queue is River's table: absent where River was never migrated.
	rows, err = db.read.QueryContext(ctx, `SELECT state, COUNT(*) FROM river_job
		WHERE state IN ('available', 'scheduled', 'retryable', 'running') GROUP BY state`)
	if err != nil {
		db.log.DebugContext(ctx, "queue depth unknown", "err", err)
		return s, nil
	}
	defer rows.Close()
	s.Queue = map[string]int{}
	for rows.Next() {
		var state string
		var n int
		if err := rows.Scan(&state, &n); err != nil {
			return nil, err
		}
		s.Queue[state] = n
	}
	return s, rows.Err()
}
