package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/dcvaas/dcvaas/sqlstore/storetest"
)

// rateDB is a fresh store plus a second, plain connection pool to the same
// database for looking at (and locking) rate_limits rows behind its back.
type rateDB struct {
	db  *sqlstore.DB
	raw *sql.DB
	d   sqlstore.Dialect
}

func newRateDB(t *testing.T, d sqlstore.Dialect) *rateDB {
	t.Helper()
	url := storetest.URL(t, d)
	db := storetest.Open(t, url)
	driver, dsn := "pgx", url
	if d == sqlstore.SQLite {
		driver, dsn = "sqlite", "file:"+url+"?_pragma=busy_timeout(10000)"
	}
	raw, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return &rateDB{db: db, raw: raw, d: d}
}

func forEachRateDB(t *testing.T, fn func(t *testing.T, r *rateDB)) {
	for _, d := range storetest.Dialects(t) {
		t.Run(string(d), func(t *testing.T) { fn(t, newRateDB(t, d)) })
	}
}

// used is how many requests key's row holds at now with limit: (TAT -
// now) / T, or 0 without a row. All at one instant, that is the count.
func (r *rateDB) used(t *testing.T, key string, limit int, now time.Time) int {
	t.Helper()
	var tat int64
	err := r.raw.QueryRow(`SELECT tat FROM rate_limit_tats WHERE key = $1`, key).Scan(&tat)
	if errors.Is(err, sql.ErrNoRows) {
		return 0
	} else if err != nil {
		t.Fatal(err)
	}
	return int(max(tat-now.UnixMicro(), 0) / dcvaas.NewGCRA(limit).Interval)
}

func (r *rateDB) exists(t *testing.T, key string) bool {
	t.Helper()
	var n int
	if err := r.raw.QueryRow(`SELECT count(*) FROM rate_limit_tats WHERE key = $1`, key).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

// burst runs n concurrent Takes of key and returns their decisions, failing
// on any error and when they do not all return within a minute. It may run
// outside the test's goroutine.
func burst(db *sqlstore.DB, key string, limit, n int, now time.Time) ([]dcvaas.RateDecision, error) {
	out := make([]dcvaas.RateDecision, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			out[i], errs[i] = db.Take(context.Background(), key, limit, now)
		})
	}
	close(start)
	if !waitFor(&wg, time.Minute) {
		return nil, errors.New("Takes still running after a minute: deadlock?")
	}
	return out, errors.Join(errs...)
}

func mustBurst(t *testing.T, db *sqlstore.DB, key string, limit, n int, now time.Time) []dcvaas.RateDecision {
	t.Helper()
	ds, err := burst(db, key, limit, n, now)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func waitFor(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

func waitGroup(t *testing.T, wg *sync.WaitGroup, d time.Duration) {
	t.Helper()
	if !waitFor(wg, d) {
		t.Fatalf("Takes still running after %v: deadlock?", d)
	}
}

func recvErr(t *testing.T, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("Take still running after 30s: deadlock?")
		return nil
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestTakeCombinedExact: concurrent Takes of one key, combined into few
// statements, decide exactly as one statement each would: with limit 150,
// 150 of 200 pass and the counts handed out are 1..200, each once.
func TestTakeCombinedExact(t *testing.T) {
	forEachRateDB(t, func(t *testing.T, r *rateDB) {
		now := time.Date(2026, 11, 1, 12, 0, 10, 0, time.UTC)
		// limit 150: decisions
		ds := mustBurst(t, r.db, "org-a", 150, 200, now)
		var remaining []int
		for _, d := range ds {
			if d.Limit != 150 || (!d.Allowed && !d.Reset.Equal(now.Add(time.Minute))) {
				t.Fatalf("decision %+v", d)
			}
			if d.Allowed {
				remaining = append(remaining, d.Remaining)
			} else if d.Remaining != 0 {
				t.Fatalf("denied with remaining %d", d.Remaining)
			}
		}
		if len(remaining) != 150 {
			t.Fatalf("allowed %d of 200 with limit 150", len(remaining))
		}
		slices.Sort(remaining)
		for i, rem := range remaining { // counts 1..150 each once
			if rem != i {
				t.Fatalf("allowed remainings %v, want 0..149 each once", remaining)
			}
		}
		// Refused requests do not spend the budget.
		if got := r.used(t, "org-a", 150, now); got != 150 {
			t.Fatalf("row holds %d, want 150", got)
		}

		// A limit above the burst shows every count: limit - remaining.
		const big = 1000
		ds = mustBurst(t, r.db, "org-b", big, 200, now)
		var counts []int
		for _, d := range ds {
			if !d.Allowed {
				t.Fatalf("denied under limit: %+v", d)
			}
			counts = append(counts, big-d.Remaining)
		}
		slices.Sort(counts)
		for i, c := range counts {
			if c != i+1 {
				t.Fatalf("counts %v, want 1..200 each once", counts)
			}
		}
		if got := r.used(t, "org-b", big, now); got != 200 {
			t.Fatalf("row holds %d, want 200", got)
		}

		// Mixed with sequential Takes the count goes on where it was.
		d, err := r.db.Take(context.Background(), "org-b", big, now)
		if err != nil || d.Remaining != big-201 {
			t.Fatalf("next take: %+v %v", d, err)
		}
	})
}

// TestTakeKeysIndependent: concurrent bursts of several keys each count
// exactly; on PostgreSQL a key whose row is locked does not hold up others.
func TestTakeKeysIndependent(t *testing.T) {
	forEachRateDB(t, func(t *testing.T, r *rateDB) {
		now := time.Date(2026, 11, 1, 12, 0, 10, 0, time.UTC)
		keys := []string{"org-a", "org-b", "org-c", "org-d"}
		var wg sync.WaitGroup
		for _, k := range keys {
			wg.Go(func() {
				ds := mustBurst(t, r.db, k, 30, 50, now)
				allowed := 0
				for _, d := range ds {
					if d.Allowed {
						allowed++
					}
				}
				if allowed != 30 {
					t.Errorf("%s: allowed %d of 50 with limit 30", k, allowed)
				}
			})
		}
		waitGroup(t, &wg, time.Minute)
		for _, k := range keys {
			if got := r.used(t, k, 30, now); got != 30 {
				t.Fatalf("%s: row holds %d, want 30", k, got)
			}
		}

		if r.d != sqlstore.Postgres {
			return
		}
		// Lock org-a's row: its Takes wait in the database, org-b's do not.
		b := r.block(t, "org-a")
		aDone := make(chan error, 1)
		go func() {
			_, err := r.db.Take(context.Background(), "org-a", 30, now)
			aDone <- err
		}()
		waitUntil(t, "org-a's statement to wait on the lock", func() bool { return b.waiters(t) == 1 })
		for range 3 {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := r.db.Take(ctx, "org-b", 1000, now)
			cancel()
			if err != nil {
				t.Fatalf("org-b blocked behind org-a: %v", err)
			}
		}
		b.release(t)
		if err := recvErr(t, aDone); err != nil {
			t.Fatal(err)
		}
		if got := r.used(t, "org-a", 30, now); got != 30 {
			t.Fatalf("org-a row holds %d, want 30", got)
		}
	})
}

// TestTakeBoundaryBurst: with fixed one-minute windows, limit requests at
// 12:00:59 and limit more at 12:01:01 all passed: twice the limit in two
// seconds. GCRA lets the limit through plus what two seconds earn back,
// also when the requests come combined.
func TestTakeBoundaryBurst(t *testing.T) {
	forEachRateDB(t, func(t *testing.T, r *rateDB) {
		const limit = 60
		before := time.Date(2026, 11, 1, 12, 0, 59, 0, time.UTC)
		allowed := 0
		for _, at := range []time.Time{before, before.Add(2 * time.Second)} {
			for _, d := range mustBurst(t, r.db, "org-a", limit, limit, at) {
				if d.Allowed {
					allowed++
				}
			}
		}
		if allowed != limit+2 {
			t.Fatalf("%d of %d allowed across the minute boundary, want %d", allowed, 2*limit, limit+2)
		}
	})
}

// TestTakeSweep: rows whose TAT has passed (a full budget, like no row)
// are deleted, at most once a minute.
func TestTakeSweep(t *testing.T) {
	forEachRateDB(t, func(t *testing.T, r *rateDB) {
		t0 := time.Date(2026, 11, 1, 12, 0, 10, 0, time.UTC)
		r.take(t, "org-a", t0)
		r.take(t, "org-b", t0.Add(30*time.Second))
		if !r.exists(t, "org-a") || !r.exists(t, "org-b") {
			t.Fatal("rows missing")
		}
		r.take(t, "org-c", t0.Add(2*time.Minute))
		if r.exists(t, "org-a") || r.exists(t, "org-b") || !r.exists(t, "org-c") {
			t.Fatal("spent rows not swept")
		}
	})
}

// TestTakeCanceled: a Take whose context ends returns its error and leaves
// the others going.
func TestTakeCanceled(t *testing.T) {
	forEachRateDB(t, func(t *testing.T, r *rateDB) {
		now := time.Date(2026, 11, 1, 12, 0, 10, 0, time.UTC)
		canceled, cancel := context.WithCancel(context.Background())
		cancel()
		var wg sync.WaitGroup
		var mu sync.Mutex
		var counts []int
		for i := range 100 {
			ctx := context.Background()
			if i%3 == 0 {
				ctx = canceled
			}
			wg.Go(func() {
				d, err := r.db.Take(ctx, "org-a", 1000, now)
				if ctx == canceled {
					if err == nil {
						t.Error("canceled Take succeeded")
					}
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				counts = append(counts, 1000-d.Remaining)
				mu.Unlock()
			})
		}
		waitGroup(t, &wg, time.Minute)
		slices.Sort(counts)
		if len(counts) != 66 || len(slices.Compact(slices.Clone(counts))) != 66 {
			t.Fatalf("counts of the live Takes %v, want 66 distinct", counts)
		}
		// A canceled Take is counted only if its batch had been sent.
		got := r.used(t, "org-a", 1000, now)
		if got < 66 || got > 100 || counts[65] > got {
			t.Fatalf("row holds %d, counts %v", got, counts)
		}
		d, err := r.db.Take(context.Background(), "org-a", 1000, now)
		if err != nil || 1000-d.Remaining != got+1 {
			t.Fatalf("take after cancellations: %+v %v (row held %d)", d, err, got)
		}

		if r.d != sqlstore.Postgres {
			return
		}
		t.Run("waiting", func(t *testing.T) {
			// With org-b's row locked, its first Take waits in the
			// database; later ones wait in a batch, not in the database.
			r.take(t, "org-b", now)
			b := r.block(t, "org-b")
			first := make(chan error, 1)
			go func() {
				_, err := r.db.Take(context.Background(), "org-b", 1000, now)
				first <- err
			}()
			waitUntil(t, "the first statement to wait on the lock", func() bool { return b.waiters(t) == 1 })
			ctx, cancel := context.WithCancel(context.Background())
			var wg, gone sync.WaitGroup
			live := make(chan int, 10)
			for i := range 20 {
				if i%2 == 0 {
					gone.Go(func() {
						_, err := r.db.Take(ctx, "org-b", 1000, now)
						if !errors.Is(err, context.Canceled) {
							t.Errorf("canceled waiter: %v", err)
						}
					})
					continue
				}
				wg.Go(func() {
					d, err := r.db.Take(context.Background(), "org-b", 1000, now)
					if err != nil {
						t.Error(err)
					}
					live <- 1000 - d.Remaining
				})
			}
			time.Sleep(100 * time.Millisecond) // let them queue
			if n := b.waiters(t); n != 1 {
				t.Fatalf("%d statements wait on the lock, want 1", n)
			}
			cancel()
			// The canceled ones return while the lock is still held.
			waitGroup(t, &gone, 30*time.Second)
			if n := b.waiters(t); n != 1 || len(live) != 0 || len(first) != 0 {
				t.Fatalf("after cancel: %d statements wait on the lock, %d live done, first done %v", n, len(live), len(first) != 0)
			}
			b.release(t)
			waitGroup(t, &wg, time.Minute)
			if err := recvErr(t, first); err != nil {
				t.Fatal(err)
			}
			close(live)
			var got []int
			for c := range live {
				got = append(got, c)
			}
			slices.Sort(got)
			// Row had 1, the first Take made 2, the 10 live waiters 3..12;
			// the canceled ones, never sent, are not counted.
			if !slices.Equal(got, []int{3, 4, 5, 6, 7, 8, 9, 10, 11, 12}) {
				t.Fatalf("live counts %v", got)
			}
			if got := r.used(t, "org-b", 1000, now); got != 12 {
				t.Fatalf("row holds %d, want 12", got)
			}
		})
		t.Run("sent", func(t *testing.T) {
			// When every member of a sent batch gives up, they return and
			// its statement is canceled; the key goes on working.
			r.take(t, "org-c", now)
			b := r.block(t, "org-c")
			ctxA, cancelA := context.WithCancel(context.Background())
			ctxB, cancelB := context.WithCancel(context.Background())
			errA, errB := make(chan error, 1), make(chan error, 1)
			go func() { _, err := r.db.Take(ctxA, "org-c", 1000, now); errA <- err }()
			waitUntil(t, "A's statement to wait on the lock", func() bool { return b.waiters(t) == 1 })
			go func() { _, err := r.db.Take(ctxB, "org-c", 1000, now); errB <- err }()
			time.Sleep(50 * time.Millisecond) // let B queue behind A
			cancelA()
			if err := recvErr(t, errA); err == nil {
				t.Fatal("A succeeded")
			}
			// B's batch goes out and waits on the lock in turn (A's backend
			// may still be waiting too until its cancel request lands).
			waitUntil(t, "B's statement to wait on the lock", func() bool { return b.waiters(t) == 1 })
			cancelB()
			if err := recvErr(t, errB); !errors.Is(err, context.Canceled) {
				t.Fatalf("B: %v", err)
			}
			b.release(t)
			// Whether a canceled statement still committed depends on when
			// PostgreSQL got the cancel request: the row had 1, A and B may
			// each be counted or not.
			d, err := r.db.Take(context.Background(), "org-c", 1000, now)
			if c := 1000 - d.Remaining; err != nil || c < 2 || c > 4 {
				t.Fatalf("take after canceled statements: %+v %v", d, err)
			}
		})
	})
}

func (r *rateDB) take(t *testing.T, key string, now time.Time) {
	t.Helper()
	if _, err := r.db.Take(context.Background(), key, 1000, now); err != nil {
		t.Fatal(err)
	}
}

// blocker holds the row lock of a key's rate_limit_tats row (PostgreSQL).
type blocker struct {
	r   *rateDB
	tx  *sql.Tx
	pid int
}

func (r *rateDB) block(t *testing.T, key string) *blocker {
	t.Helper()
	tx, err := r.raw.Begin()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback() })
	b := &blocker{r: r, tx: tx}
	if err := tx.QueryRow(`SELECT pg_backend_pid()`).Scan(&b.pid); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`SELECT 1 FROM rate_limit_tats WHERE key = $1 FOR UPDATE`, key); err != nil {
		t.Fatal(err)
	}
	return b
}

// waiters counts the sessions waiting for the blocker's locks.
func (b *blocker) waiters(t *testing.T) int {
	t.Helper()
	var n int
	if err := b.r.raw.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE $1::int = ANY(pg_blocking_pids(pid))`, b.pid).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func (b *blocker) release(t *testing.T) {
	t.Helper()
	if err := b.tx.Rollback(); err != nil {
		t.Fatal(err)
	}
}
