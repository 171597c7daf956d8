package sqlstore

import (
	"context"
	"database/sql"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dcvaas/dcvaas"
)

// Take implements dcvaas.RateLimiter (GCRA) with one row per key holding
// its theoretical arrival time. The update is one atomic statement, so
// every node of a cluster that shares the database counts against the same
// budget, exactly.
//
// All requests of an organization update the same row, so one statement
// per request would serialize them on that row's lock, each held through
// its commit. Take therefore combines concurrent calls for a key within
// this process: while one statement for the key is in flight, later callers
// join a pending batch, and when the in-flight statement finishes, the
// batch goes to the database as ONE statement applying its size n: the
// statement grants the first k of the n (k computed from the row's TAT as
// n single requests in arrival order would have found it) and returns the
// new TAT and k. The i-th member of the batch is allowed iff i ≤ k, exactly
// as with a statement of its own in that order; nothing is approximated.
// At most one statement per key is in flight per process; keys do not wait
// on each other.
//
// A caller whose ctx ends while it waits returns ctx.Err(). If its batch had
// not been sent yet it is not counted; if it had, it was counted (as if its
// own statement had committed before it gave up). The statement of a sent
// batch runs until all of its members have given up, and is canceled then.
func (db *DB) Take(ctx context.Context, key string, limit int, now time.Time) (dcvaas.RateDecision, error) {
	d, _, err := db.take(ctx, key, limit, now)
	return d, err
}

// take is Take that also returns, for an organization's key on PostgreSQL,
// the identity version of that organization read by the count's own
// statement (admit.go); -1 on SQLite, for other keys, or when the key names
// no organization.
func (db *DB) take(ctx context.Context, key string, limit int, now time.Time) (dcvaas.RateDecision, int64, error) {
	g := dcvaas.NewGCRA(limit)
	c := &db.takes
	c.mu.Lock()
	if c.keys == nil {
		c.keys = map[string]*takeQueue{}
	}
	q, busy := c.keys[key]
	if !busy {
		// Nothing in flight for key: this call is a batch of one, sent now
		// under its own ctx, exactly as without combining.
		c.keys[key] = &takeQueue{}
		c.mu.Unlock()
		us := now.UnixMicro()
		tat, granted, version, err := db.applyTake(ctx, key, g, us, 1)
		db.takeSent(key)
		if err != nil {
			return dcvaas.RateDecision{}, -1, err
		}
		db.sweepTakes(ctx, now)
		return g.Decisions(tat, us, 1, granted)[0], version, nil
	}
	w := &takeWaiter{done: make(chan struct{})}
	b := q.batch(ctx, g)
	b.members = append(b.members, w)
	b.now = max(b.now, now.UnixMicro())
	c.mu.Unlock()

	select {
	case <-w.done:
	case <-ctx.Done():
		c.mu.Lock()
		select {
		case <-w.done:
			// The result came in at the same time; use it.
		default:
			if !b.sent {
				w.gone = true // left out of the batch: not counted
			} else if b.waiting--; b.waiting == 0 {
				b.cancel() // nobody waits for the statement any more
			}
			c.mu.Unlock()
			return dcvaas.RateDecision{}, -1, ctx.Err()
		}
		c.mu.Unlock()
	}
	if w.err != nil {
		return dcvaas.RateDecision{}, -1, w.err
	}
	return w.decision, w.version, nil
}

// sweepTakes deletes, at most once a minute per process, the rows whose
// TAT has passed: a key without a row has its full budget, the same.
func (db *DB) sweepTakes(ctx context.Context, now time.Time) {
	last := db.takes.swept.Load()
	if now.UnixMicro()-last < time.Minute.Microseconds() || !db.takes.swept.CompareAndSwap(last, now.UnixMicro()) {
		return
	}
	if _, err := db.write.ExecContext(ctx, `DELETE FROM rate_limit_tats WHERE tat < $1`, now.UnixMicro()); err != nil {
		db.log.Warn("rate limit cleanup failed", "err", err)
	}
}

// applyTake applies n requests at now to key's TAT in one atomic statement
// and returns the new TAT, how many of the n it granted, and on PostgreSQL
// for an organization's key the identity version of that organization as
// of this statement (-1 when there is none, and otherwise).
func (db *DB) applyTake(ctx context.Context, key string, g dcvaas.GCRA, now int64, n int) (int64, int, int64, error) {
	var tat int64
	var granted int
	version := sql.NullInt64{Int64: -1}
	dest := []any{&tat, &granted}
	args := []any{key, now, n, g.Interval, g.Limit}
	q := takeSQL(db.dialect)
	if orgID, ok := strings.CutPrefix(key, "org:"); ok && db.dialect == Postgres {
		q += `, (SELECT identity_version FROM organizations WHERE id = $6)`
		dest = append(dest, &version)
		args = append(args, orgID)
	}
	if err := db.write.QueryRowContext(ctx, q, args...).Scan(dest...); err != nil {
		return 0, 0, -1, err
	}
	if !version.Valid {
		version.Int64 = -1
	}
	return tat, granted, version.Int64, nil
}

// takeSQL is dcvaas.GCRA.Apply as one statement: $1 key, $2 now (µs),
// $3 n, $4 the emission interval T (µs), $5 the limit. The SET
// expressions see the row as it was, so tat and granted agree.
func takeSQL(d Dialect) string {
	greatest, least := "GREATEST", "LEAST"
	if d == SQLite {
		greatest, least = "max", "min"
	}
	base := greatest + `(rate_limit_tats.tat, CAST($2 AS BIGINT))`
	granted := least + `(CAST($3 AS BIGINT), ` + greatest + `(0, (CAST($2 AS BIGINT) + CAST($5 AS BIGINT) * CAST($4 AS BIGINT) - ` + base + `) / CAST($4 AS BIGINT)))`
	return `INSERT INTO rate_limit_tats (key, tat, granted)
	VALUES ($1, CAST($2 AS BIGINT) + ` + least + `(CAST($3 AS BIGINT), CAST($5 AS BIGINT)) * CAST($4 AS BIGINT), ` + least + `(CAST($3 AS BIGINT), CAST($5 AS BIGINT)))
	ON CONFLICT (key) DO UPDATE SET tat = ` + base + ` + ` + granted + ` * CAST($4 AS BIGINT), granted = ` + granted + `
	RETURNING tat, granted`
}

// takeCombiner is the state of Take's combining (the DB field takes). Its
// zero value is ready to use.
type takeCombiner struct {
	mu sync.Mutex
	// keys holds the keys that have a statement in flight, with the batches
	// waiting for it; a key is removed when it has neither.
	keys map[string]*takeQueue
	// swept is when this process last deleted spent rows (µs).
	swept atomic.Int64
}

// takeQueue is the batches of one key waiting for its in-flight statement, in
// the order they are sent: one per limit present among the waiters
// (normally one).
type takeQueue struct {
	pending []*takeBatch
}

// takeBatch is one future statement: its members are counted in order.
type takeBatch struct {
	gcra dcvaas.GCRA
	// now is the latest arrival among the members (µs).
	now int64
	// ctx is the first member's, for its values; the statement runs on it
	// without its cancellation, canceled by cancel when every member has
	// given up.
	ctx     context.Context
	members []*takeWaiter
	// After sent, waiting counts the members still waiting and cancel
	// cancels the statement's context.
	sent    bool
	waiting int
	cancel  context.CancelFunc
}

// takeWaiter is one call of Take waiting in a batch. decision, version
// and err are set before done is closed.
type takeWaiter struct {
	done     chan struct{}
	decision dcvaas.RateDecision
	version  int64
	err      error
	gone     bool // gave up before the batch was sent
}

// batch returns the unsent batch of q for g, adding one if there is none.
// The caller holds the combiner's mutex.
func (q *takeQueue) batch(ctx context.Context, g dcvaas.GCRA) *takeBatch {
	for _, b := range q.pending {
		if b.gcra == g {
			return b
		}
	}
	b := &takeBatch{gcra: g, ctx: ctx}
	q.pending = append(q.pending, b)
	return b
}

// takeSent is called when the statement in flight for key has finished: the
// batches that queued meanwhile are sent one after another by a goroutine,
// so that no caller's ctx decides the fate of the others' statement.
func (db *DB) takeSent(key string) {
	c := &db.takes
	c.mu.Lock()
	q := c.keys[key]
	if len(q.pending) == 0 {
		delete(c.keys, key)
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	go db.sendTakes(key, q)
}

// sendTakes sends the pending batches of key, one statement at a time, until
// none is left.
func (db *DB) sendTakes(key string, q *takeQueue) {
	c := &db.takes
	for {
		c.mu.Lock()
		if len(q.pending) == 0 {
			delete(c.keys, key)
			c.mu.Unlock()
			return
		}
		b := q.pending[0]
		q.pending[0] = nil
		q.pending = q.pending[1:]
		members := b.members[:0]
		for _, w := range b.members {
			if !w.gone {
				members = append(members, w)
			}
		}
		b.members = members
		n := len(members)
		var ctx context.Context
		ctx, b.cancel = context.WithCancel(context.WithoutCancel(b.ctx))
		b.sent, b.waiting = true, n
		c.mu.Unlock()
		if n == 0 {
			b.cancel()
			continue
		}
		tat, granted, version, err := db.applyTake(ctx, key, b.gcra, b.now, n)
		b.cancel()
		var ds []dcvaas.RateDecision
		if err == nil {
			ds = b.gcra.Decisions(tat, b.now, n, granted)
		}
		for i, w := range members {
			if err == nil {
				w.decision = ds[i]
			}
			w.version, w.err = version, err
			close(w.done)
		}
	}
}
