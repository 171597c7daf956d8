package dcvaas

import (
	"context"
	"time"
)

// RateDecision is the outcome of one request against a rate limit.
type RateDecision struct {
	Allowed   bool
	Limit     int
	Remaining int
	// Reset is when the current window ends and the budget refills.
	Reset time.Time
}

// RateLimiter counts requests per key (an organization) in fixed one-minute
// windows. The PostgreSQL implementation counts in the database so that the
// limit holds for the whole cluster.
type RateLimiter interface {
	Take(ctx context.Context, key string, limit int, now time.Time) (RateDecision, error)
}
