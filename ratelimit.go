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
	// Reset is when the whole budget is available again (the key's
	// theoretical arrival time).
	Reset time.Time
	// RetryAt is, for a refused request, the earliest time the same
	// request would be allowed; zero when allowed.
	RetryAt time.Time
}

// RateLimiter limits requests per key with the generic cell rate algorithm
// (GCRA, ITU-T I.371; the "virtual scheduling" form): a key allows limit
// requests per minute, at most limit of them at once, and earns one back
// every minute/limit. Unlike a fixed window it never lets 2×limit through
// around a minute boundary: in any interval of length w at most
// limit + w·limit/minute requests pass. The state of a key is one number,
// its theoretical arrival time (TAT). The PostgreSQL implementation keeps
// it in the database (one atomic statement per request) so that the limit
// holds for the whole cluster; the in-process one is for single nodes.
type RateLimiter interface {
	Take(ctx context.Context, key string, limit int, now time.Time) (RateDecision, error)
}

// Rate-limit keys. A request of a token counts against its organization
// and, separately, against its user (every token of one user, in every
// organization, together): creating organizations does not multiply a
// user's budget. Unauthenticated traffic counts against its client IP.
func OrgRateKey(orgID string) string   { return "org:" + orgID }
func UserRateKey(userID string) string { return "user:" + userID }
func IPRateKey(ip string) string       { return "ip:" + ip }

// GCRA is the algorithm's arithmetic in integer microseconds, shared by
// every implementation (the SQL statement computes the same; see
// sqlstore/ratelimit.go). The emission interval of limit per minute is
// T = ceil(minute/limit) and the burst tolerance limit·T, so that exactly
// limit requests pass at once.
type GCRA struct {
	Limit    int
	Interval int64 // T, microseconds
}

// NewGCRA returns the parameters of limit requests per minute (limit ≥ 1).
func NewGCRA(limit int) GCRA {
	limit = max(limit, 1)
	minute := time.Minute.Microseconds()
	return GCRA{Limit: limit, Interval: max((minute+int64(limit)-1)/int64(limit), 1)}
}

// Period is the burst tolerance: a key whose TAT is more than Period ahead
// of now refuses.
func (g GCRA) Period() int64 { return int64(g.Limit) * g.Interval }

// Apply counts n requests that arrive together at now against a key whose
// TAT is tat (0 for a new key) and returns the new TAT and how many of the
// n were allowed: the first ones, in order, as if each came alone.
func (g GCRA) Apply(tat, now int64, n int) (newTAT int64, granted int) {
	base := max(tat, now)
	free := (now + g.Period() - base) / g.Interval
	granted = int(min(max(free, 0), int64(n)))
	return base + int64(granted)*g.Interval, granted
}

// Decisions returns the decisions of the n requests of one Apply, given its
// result, in order.
func (g GCRA) Decisions(newTAT, now int64, n, granted int) []RateDecision {
	out := make([]RateDecision, n)
	for i := range n {
		if i < granted {
			// Request i left the TAT at newTAT - (granted-1-i)·T.
			t := newTAT - int64(granted-1-i)*g.Interval
			out[i] = RateDecision{Allowed: true, Limit: g.Limit,
				Remaining: int(min(max((now+g.Period()-t)/g.Interval, 0), int64(g.Limit))),
				Reset:     time.UnixMicro(t).UTC()}
			continue
		}
		out[i] = RateDecision{Limit: g.Limit, Reset: time.UnixMicro(newTAT).UTC(),
			RetryAt: time.UnixMicro(max(newTAT+g.Interval-g.Period(), now)).UTC()}
	}
	return out
}

// TakeRequest counts one request of a token of userID in orgID: first
// against the user's budget (userLimit), then, only if that allowed it,
// against the organization's (orgLimit), so that a user refused by their
// own limit does not drain their organization's budget for its other
// members. The decision returned is the refusing one, or the one with less
// remaining. A limit ≤ 0 or an empty id skips that key.
func TakeRequest(ctx context.Context, l RateLimiter, userID string, userLimit int, orgID string, orgLimit int, now time.Time) (RateDecision, error) {
	var ud RateDecision
	haveUser := userID != "" && userLimit > 0
	if haveUser {
		var err error
		if ud, err = l.Take(ctx, UserRateKey(userID), userLimit, now); err != nil || !ud.Allowed {
			return ud, err
		}
	}
	if orgID == "" || orgLimit <= 0 {
		return ud, nil
	}
	od, err := l.Take(ctx, OrgRateKey(orgID), orgLimit, now)
	if err != nil {
		return od, err
	}
	return Tighter(ud, od, haveUser), nil
}

// Tighter combines the decisions of the user's and the organization's
// budget: the refusing one, else the one with less remaining.
func Tighter(user, org RateDecision, haveUser bool) RateDecision {
	if !haveUser || !org.Allowed || org.Remaining <= user.Remaining {
		return org
	}
	return user
}
