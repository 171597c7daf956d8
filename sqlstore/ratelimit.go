package sqlstore

import (
	"context"
	"time"

	"github.com/dcvaas/dcvaas"
)

// Take implements dcvaas.RateLimiter with one counter row per key and
// one-minute window. The upsert is atomic, so every node of a cluster that
// shares the database counts against the same budget.
func (db *DB) Take(ctx context.Context, key string, limit int, now time.Time) (dcvaas.RateDecision, error) {
	window := now.UTC().Truncate(time.Minute)
	var count int
	err := db.write.QueryRowContext(ctx, `INSERT INTO rate_limits (key, window_start, count) VALUES ($1, $2, 1)
		ON CONFLICT (key, window_start) DO UPDATE SET count = rate_limits.count + 1
		RETURNING count`, key, micros(window)).Scan(&count)
	if err != nil {
		return dcvaas.RateDecision{}, err
	}
	// The first request of a window sweeps windows that can no longer matter.
	if count == 1 {
		if _, err := db.write.ExecContext(ctx, `DELETE FROM rate_limits WHERE key = $1 AND window_start < $2`, key, micros(window)); err != nil {
			db.log.Warn("rate limit cleanup failed", "err", err)
		}
	}
	return dcvaas.RateDecision{
		Allowed:   count <= limit,
		Limit:     limit,
		Remaining: max(limit-count, 0),
		Reset:     window.Add(time.Minute),
	}, nil
}
