package sqlstore

import (
	"context"
	"database/sql"
	"sync"
	"time"

	"github.com/dcvaas/dcvaas"
)

// Take implements dcvaas.RateLimiter with one counter row per key and
// one-minute window. The upsert is atomic, so every node of a cluster that
// shares the database counts against the same budget.
//
// All requests of an organization update the same row, so one upsert per
// request would serialize them on that row's lock, each held through its
// commit. Take therefore combines concurrent calls for a key within this
// process: while one upsert for the key is in flight, later callers join a
// pending batch, and when the in-flight upsert finishes, the batch goes to
// the database as ONE upsert adding its size n. The i-th member of the batch
// (1-based, in arrival order) gets count c-n+i, where c is the count the
// upsert returns, which is exactly the count it would have got from an
// upsert of its own in that order; nothing is approximated. At most one
// upsert per key is in flight per process; keys do not wait on each other.
//
// A caller whose ctx ends while it waits returns ctx.Err(). If its batch had
// not been sent yet it is not counted; if it had, it was counted (as if its
// own upsert had committed before it gave up). The upsert of a sent batch
// runs until all of its members have given up, and is canceled then.
func (db *DB) Take(ctx context.Context, key string, limit int, now time.Time) (dcvaas.RateDecision, error) {
	d, _, err := db.take(ctx, key, limit, now)
	return d, err
}

// take is Take that also returns the identity version of the organization
// named key, read by the count's own statement (admit.go); -1 on SQLite or
// when key names no organization.
func (db *DB) take(ctx context.Context, key string, limit int, now time.Time) (dcvaas.RateDecision, int64, error) {
	window := now.UTC().Truncate(time.Minute)
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
		count, version, err := db.upsertTake(ctx, key, window, 1)
		db.takeSent(key)
		if err != nil {
			return dcvaas.RateDecision{}, -1, err
		}
		return db.rateDecision(ctx, key, window, limit, count), version, nil
	}
	w := &takeWaiter{done: make(chan struct{})}
	b := q.batch(ctx, window)
	b.members = append(b.members, w)
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
				b.cancel() // nobody waits for the upsert any more
			}
			c.mu.Unlock()
			return dcvaas.RateDecision{}, -1, ctx.Err()
		}
		c.mu.Unlock()
	}
	if w.err != nil {
		return dcvaas.RateDecision{}, -1, w.err
	}
	return db.rateDecision(ctx, key, window, limit, w.count), w.version, nil
}

// rateDecision turns the count of one request into its decision. The first
// request of a window sweeps windows that can no longer matter.
func (db *DB) rateDecision(ctx context.Context, key string, window time.Time, limit, count int) dcvaas.RateDecision {
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
	}
}

// upsertTake adds n requests to the counter of (key, window) and returns the
// new count, and on PostgreSQL the identity version of the organization
// named key as of this statement (-1 when there is none, and on SQLite).
func (db *DB) upsertTake(ctx context.Context, key string, window time.Time, n int) (int, int64, error) {
	var count int
	version := sql.NullInt64{Int64: -1}
	dest := []any{&count}
	q := upsertTakeSQL
	if db.dialect == Postgres {
		q += `, (SELECT identity_version FROM organizations WHERE id = $1)`
		dest = append(dest, &version)
	}
	if err := db.write.QueryRowContext(ctx, q, key, micros(window), n).Scan(dest...); err != nil {
		return 0, -1, err
	}
	if !version.Valid {
		version.Int64 = -1
	}
	return count, version.Int64, nil
}

const upsertTakeSQL = `INSERT INTO rate_limits (key, window_start, count) VALUES ($1, $2, $3)
	ON CONFLICT (key, window_start) DO UPDATE SET count = rate_limits.count + excluded.count
	RETURNING count`

// takeCombiner is the state of Take's combining (the DB field takes). Its
// zero value is ready to use.
type takeCombiner struct {
	mu sync.Mutex
	// keys holds the keys that have an upsert in flight, with the batches
	// waiting for it; a key is removed when it has neither.
	keys map[string]*takeQueue
}

// takeQueue is the batches of one key waiting for its in-flight upsert, in
// the order they are sent. There is one per window present among the
// waiters, normally one (two around a minute boundary).
type takeQueue struct {
	pending []*takeBatch
}

// takeBatch is one future upsert: its members are counted in order.
type takeBatch struct {
	window time.Time
	// ctx is the first member's, for its values; the upsert runs on it
	// without its cancellation, canceled by cancel when every member has
	// given up.
	ctx     context.Context
	members []*takeWaiter
	// After sent, waiting counts the members still waiting and cancel
	// cancels the upsert's context.
	sent    bool
	waiting int
	cancel  context.CancelFunc
}

// takeWaiter is one call of Take waiting in a batch. count, version and
// err are set before done is closed.
type takeWaiter struct {
	done    chan struct{}
	count   int
	version int64
	err     error
	gone    bool // gave up before the batch was sent
}

// batch returns the unsent batch of q for window, adding one if there is
// none. The caller holds the combiner's mutex.
func (q *takeQueue) batch(ctx context.Context, window time.Time) *takeBatch {
	for _, b := range q.pending {
		if b.window.Equal(window) {
			return b
		}
	}
	b := &takeBatch{window: window, ctx: ctx}
	q.pending = append(q.pending, b)
	return b
}

// takeSent is called when the upsert in flight for key has finished: the
// batches that queued meanwhile are sent one after another by a goroutine,
// so that no caller's ctx decides the fate of the others' upsert.
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

// sendTakes sends the pending batches of key, one upsert at a time, until
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
		count, version, err := db.upsertTake(ctx, key, b.window, n)
		b.cancel()
		for i, w := range members {
			w.count, w.version, w.err = count-n+i+1, version, err
			close(w.done)
		}
	}
}
