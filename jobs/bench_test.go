package jobs

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/dcvaas/dcvaas/sqlstore/storetest"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
)

// The queue benchmarks compare the engine — every job with its jobs row
// (running, then succeeded), audit entries (job.queued, job.started,
// job.succeeded) and the lease checks — with raw River doing no-op jobs on
// the same database, in the same run, with the same drivers, worker count
// and fetch settings. Each reports jobs/s; docs/benchmarks.md has the
// numbers and the command. Both settings default to the engine's own
// defaults and can be changed to see where each side tops out:
//
//	DCVAAS_BENCH_WORKERS=100 DCVAAS_BENCH_FETCH_COOLDOWN=2ms go test ./jobs -run '^$' -bench .
var (
	benchWorkers  = withDefaults(Config{}).Workers
	benchCooldown = withDefaults(Config{}).FetchCooldown
)

func init() {
	if n, err := strconv.Atoi(os.Getenv("DCVAAS_BENCH_WORKERS")); err == nil && n > 0 {
		benchWorkers = n
	}
	if d, err := time.ParseDuration(os.Getenv("DCVAAS_BENCH_FETCH_COOLDOWN")); err == nil && d > 0 {
		benchCooldown = d
	}
}

type noopArgs struct{}

func (noopArgs) Kind() string { return "bench_noop" }

// BenchmarkWork: a backlog of b.N jobs is queued untimed, then the clock
// runs from Start until the last one is done.
func BenchmarkWork(b *testing.B) {
	for _, dialect := range storetest.Dialects(b) {
		b.Run(string(dialect)+"/river", func(b *testing.B) {
			_, client, done := rawRiver(b, dialect)
			params := make([]river.InsertManyParams, b.N)
			for i := range params {
				params[i] = river.InsertManyParams{Args: noopArgs{}}
			}
			for chunk := range slices.Chunk(params, 1000) {
				if _, err := client.InsertMany(context.Background(), chunk); err != nil {
					b.Fatal(err)
				}
			}
			measure(b, func() error { return client.Start(context.Background()) }, func() bool { return done() >= b.N })
			client.Stop(context.Background())
		})
		b.Run(string(dialect)+"/engine", func(b *testing.B) {
			bb, count := benchEngine(b, dialect)
			for i := range b.N {
				d := &dcvaas.Domain{Name: fmt.Sprintf("d%d.example.com", i), CNAMETarget: fmt.Sprintf("t%d.verify.example", i), KeyType: dcvaas.KeyEC256}
				if _, err := bb.db.CreateDomain(bb.ctx, bb.actor, d); err != nil {
					b.Fatal(err)
				}
			}
			measure(b, func() error { return bb.e.Start(context.Background()) }, func() bool { return count() >= b.N })
			bb.e.Stop(context.Background())
		})
	}
}

// BenchmarkInsert: b.N jobs queued one transaction each by 8 goroutines.
// The engine's insert is what the store does for every job: jobs row, audit
// "job.queued", River insert, queue link.
func BenchmarkInsert(b *testing.B) {
	for _, dialect := range storetest.Dialects(b) {
		b.Run(string(dialect)+"/river", func(b *testing.B) {
			_, client, _ := rawRiver(b, dialect)
			parallel(b, func(int) error {
				_, err := client.Insert(context.Background(), noopArgs{}, nil)
				return err
			})
		})
		b.Run(string(dialect)+"/engine", func(b *testing.B) {
			bb, _ := benchEngine(b, dialect)
			d := &dcvaas.Domain{Name: "bench.example.com", CNAMETarget: "t.verify.example", KeyType: dcvaas.KeyEC256}
			if _, err := bb.db.CreateDomain(bb.ctx, bb.actor, d); err != nil {
				b.Fatal(err)
			}
			parallel(b, func(int) error {
				// The store's write transaction, as the API and the engine
				// queue jobs (on SQLite, concurrent ones share a commit);
				// start_issuance, as dns_check queues it: a domain may have
				// one open renewal only (jobs_one_open_renewal).
				return bb.db.InTx(bb.ctx, func(tx *sql.Tx) error {
					_, err := bb.db.InsertJobTx(bb.ctx, tx, bb.actor, d.ID, dcvaas.JobStartIssuance)
					return err
				})
			})
		})
	}
}

// benchEngine is an engine whose dns_check does nothing, and a count of
// finished jobs. Both sides count from River's event stream: an engine job's
// jobs row and audit entries are committed before River reports it done.
func benchEngine(b *testing.B, dialect sqlstore.Dialect) (*bundle, func() int) {
	clk := &clock{}
	db := storetest.NewDB(b, dialect, sqlstore.Options{Clock: clk.Now})
	ctx := context.Background()
	if err := Migrate(ctx, db); err != nil {
		b.Fatal(err)
	}
	cfg := testConfig(db, "127.0.0.1:53", clk)
	cfg.Workers = benchWorkers
	cfg.FetchCooldown = benchCooldown
	e, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	e.handlers[dcvaas.JobDNSCheck] = func(context.Context, *run) outcome { return succeed(nil) }
	org, user, err := db.Bootstrap(ctx, "Bench", "bench@acme.test", &dcvaas.Token{Name: "t", Hash: "h", Role: dcvaas.TokenAdmin})
	if err != nil {
		b.Fatal(err)
	}
	bb := &bundle{ctx: ctx, db: db, e: e, clock: clk, org: org, actor: dcvaas.Actor{OrgID: org.ID, UserID: user.ID}}
	return bb, countCompleted(b, e.client)
}

// countCompleted counts the client's completed jobs.
func countCompleted(b *testing.B, client *river.Client[*sql.Tx]) func() int {
	// Large enough that no event is dropped at River's top speed.
	events, cancel := client.SubscribeConfig(&river.SubscribeConfig{Kinds: []river.EventKind{river.EventKindJobCompleted}, ChanSize: 1 << 20})
	b.Cleanup(cancel)
	var mu sync.Mutex
	n := 0
	go func() {
		for range events {
			mu.Lock()
			n++
			mu.Unlock()
		}
	}()
	return func() int { mu.Lock(); defer mu.Unlock(); return n }
}

// rawRiver is a plain River client on a fresh database of the dialect, set
// up like the engine's (driver, listener, workers, fetch cooldown), with a
// no-op worker, and a count of completed jobs from River's event stream.
func rawRiver(b *testing.B, dialect sqlstore.Dialect) (*sqlstore.DB, *river.Client[*sql.Tx], func() int) {
	db := storetest.NewDB(b, dialect)
	ctx := context.Background()
	if err := Migrate(ctx, db); err != nil {
		b.Fatal(err)
	}
	var driver riverdriver.Driver[*sql.Tx] = riversqlite.New(db.SQL())
	if dialect == sqlstore.Postgres {
		pool, err := listenerPool(db.SQL())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(pool.Close)
		driver = riverdatabasesql.NewWithPgxListener(db.SQL(), pool)
	}
	workers := river.NewWorkers()
	river.AddWorker(workers, river.WorkFunc(func(context.Context, *river.Job[noopArgs]) error { return nil }))
	client, err := river.NewClient(driver, &river.Config{
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: benchWorkers}},
		Workers:           workers,
		FetchCooldown:     benchCooldown,
		FetchPollInterval: testConfig(db, "", &clock{}).FetchPollInterval,
		Logger:            testLogger(),
	})
	if err != nil {
		b.Fatal(err)
	}
	return db, client, countCompleted(b, client)
}

// measure times from start() until done() holds and reports jobs/s.
func measure(b *testing.B, start func() error, done func() bool) {
	b.ResetTimer()
	t0 := time.Now()
	if err := start(); err != nil {
		b.Fatal(err)
	}
	for !done() {
		time.Sleep(2 * time.Millisecond)
		if time.Since(t0) > 5*time.Minute {
			b.Fatal("jobs not done after 5 minutes")
		}
	}
	elapsed := time.Since(t0)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "jobs/s")
}

// parallel runs fn b.N times on 8 goroutines and reports jobs/s.
func parallel(b *testing.B, fn func(i int) error) {
	const goroutines = 8
	next := make(chan int, b.N)
	for i := range b.N {
		next <- i
	}
	close(next)
	b.ResetTimer()
	t0 := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for range goroutines {
		wg.Go(func() {
			for i := range next {
				if err := fn(i); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(t0)
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "jobs/s")
}
