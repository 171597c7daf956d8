// Package jobs is dcvaas's durable job engine: River workers for dns_check,
// start_issuance and renewal on SQLite (riversqlite) or PostgreSQL
// (riverdatabasesql over pgx), with the product's jobs table as the record
// of every attempt.
//
// River schedules and runs; the jobs row is the truth. Each River job is one
// attempt at a product job and carries only its id. The jobs row names the
// one River job allowed to run it, and every outcome (success, "not there
// yet", retry, dead letter) is written under that lease in one transaction
// with its audit entry, the domain's change and, when there is one, the
// insert of the next attempt's River job — so the jobs table and the queue
// never disagree about what happens next. River then marks the finished
// attempt completed (its completer, in batches); a crash in between makes
// River run the attempt again, which finds the job finished and stops.
// River's own retries are left for what our transaction cannot cover: a
// crash (the rescuer) or a failure to record the outcome.
//
// River's JobCompleteTx would put that completion into our transaction too;
// it is not used because it halved throughput on both databases (River's
// completer still runs for the job afterwards, on SQLite as two extra
// queries) and buys nothing the lease does not already give.
package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/logsample"
	"github.com/dcvaas/dcvaas/resolve"
	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivertype"
)

// Config wires an Engine. Zero values take the documented defaults.
type Config struct {
	DB     *sqlstore.DB
	Logger *slog.Logger
	Clock  dcvaas.Clock
	// Resolvers are "host:port" recursive resolvers for DNS checks; empty
	// means the system's, from /etc/resolv.conf.
	Resolvers []string
	// Workers is how many jobs this process runs at once (default 32: jobs
	// mostly wait on DNS and CAs, not on the CPU).
	Workers int
	// MaxAttempts is how often issuance and renewal run before they become
	// dead letters (default 3).
	MaxAttempts int
	// RescueAfter is how long a job may run before it counts as stuck (its
	// worker died) and runs again (default 2m). Jobs time out at 3/4 of it,
	// so a live worker has stopped before its job is rescued.
	RescueAfter time.Duration
	// DNSCheckWindow is how long dns_check keeps looking for the CNAME
	// before it gives up (default 72h).
	DNSCheckWindow time.Duration
	// ShutdownTimeout bounds how long Stop lets running jobs finish
	// (default 30s); jobs still running then are cancelled and re-queued.
	ShutdownTimeout time.Duration
	// Issuer runs start_issuance and renewal. Nil until issuance exists:
	// those jobs then fail, honestly, as not implemented.
	Issuer Issuer
	// DNSSetup runs dns_setup, one-click setup retried after a provider
	// outage (dnssetup.go); *connection.Service is one. Nil: those jobs
	// fail as not configured.
	DNSSetup DNSSetup
	// Renewal configures the daily renewal check and delegation
	// monitoring (scan.go, monitor.go).
	Renewal RenewalConfig
	// Observer, when set, learns what the engine does (metrics).
	Observer Observer

	// RetryBackoff is the wait before the first retry of a failed job
	// (default 1m); it doubles per attempt up to an hour, ±20% jitter. An
	// error carrying a later acme.RetryAt waits until then (retryDelay).
	RetryBackoff time.Duration
	// DNSCheckIntervals are the waits after successive "not there yet"
	// answers (default 1, 2, 5, 10, 30, 60 minutes; the last repeats).
	DNSCheckIntervals []time.Duration
	// AfterChangeIntervals are the first waits of a check queued right
	// after dcvaas changed the record itself (one-click setup); default
	// seconds apart, then DNSCheckIntervals.
	AfterChangeIntervals []time.Duration
	// DNSCheckMaxAttempts is how many failed lookups (SERVFAIL, timeouts) a
	// dns_check absorbs before it becomes a dead letter (default 10).
	DNSCheckMaxAttempts int
	// FetchCooldown is the least time between two fetches of the queue
	// (default 10ms; River's own default is 100ms).
	FetchCooldown time.Duration
	// EventRetention is how long events are kept before the daily event
	// scan deletes them (default 720h).
	EventRetention time.Duration
	// FetchPollInterval is how often the queue is polled besides
	// notifications (default 100ms on PostgreSQL, 1s on SQLite).
	FetchPollInterval time.Duration
	// NodeID names this node the same way across restarts, and no other
	// live process may share it. When set, River's client id starts with
	// it, and Start takes back at once the jobs that a previous incarnation
	// of this node left running when it died, instead of waiting
	// RescueAfter for River's rescuer (reclaim.go). Empty: no take-back.
	NodeID string
	// Webhooks configures webhook delivery (webhook.go); without a Sealer
	// this engine delivers none.
	Webhooks WebhookConfig
}

// riverRetry paces River's own retries of an attempt: after a crash rescue,
// when the attempt should run again soon, or when recording its outcome
// failed (the database is away), when it should keep trying for hours.
var riverRetry = Backoff{Base: 2 * time.Second, Max: time.Hour, Jitter: 0.2}

// riverMaxAttempts bounds River's own retries of one attempt, which happen
// only after crashes or failures to record an outcome (the engine schedules
// every other retry itself). With the backoff capped at an hour, this rides
// out a database outage of more than half a day before River would discard
// the attempt.
const riverMaxAttempts = 25

// roundMax bounds how many jobs share one database round.
const roundMax = 128

// handler does the work of one job type and says what happened.
type handler func(ctx context.Context, r *run) outcome

// Engine runs the jobs. It implements sqlstore.Enqueuer.
type Engine struct {
	cfg Config
	db  *sqlstore.DB
	log *slog.Logger
	// lookupLog writes DNS lookup failures, sampled (logsample): a
	// resolver outage fails every domain's check at once.
	lookupLog *slog.Logger
	now       dcvaas.Clock
	resolver  *resolve.Resolver
	backoff   Backoff
	client    *river.Client[*sql.Tx]
	listeners *pgxpool.Pool // PostgreSQL LISTEN connections; nil on SQLite
	handlers  map[dcvaas.JobType]handler
	// starts and successes gather the hot path of concurrent workers into
	// shared database rounds (see batch.go).
	starts    *batcher[sqlstore.JobClaim, sqlstore.StartedJob]
	successes *batcher[sqlstore.JobSuccess, bool]
	// stopping tells a job cancelled by Stop (to be re-queued) from one
	// that timed out (a failed attempt).
	stopping atomic.Bool
	// stopWatch ends watchSchedule (missed.go); watchDone closes after.
	stopWatch context.CancelFunc
	watchDone chan struct{}
	// hooks delivers webhooks (webhook.go); nil when not configured.
	hooks *hooks
}

// New builds the engine and installs it as cfg.DB's Enqueuer, so that every
// job the store records from now on is queued in the same transaction.
func New(cfg Config) (*Engine, error) {
	if cfg.DB == nil {
		return nil, errors.New("jobs: Config.DB is required")
	}
	cfg = withDefaults(cfg)
	if cfg.RescueAfter < 4*time.Second {
		return nil, fmt.Errorf("jobs: RescueAfter %s is too short (minimum 4s)", cfg.RescueAfter)
	}
	res, err := resolve.New(cfg.Resolvers)
	if err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	e := &Engine{
		cfg: cfg, db: cfg.DB, log: cfg.Logger, now: cfg.Clock, resolver: res,
		lookupLog: logsample.Logger(cfg.Logger, 20),
		backoff:   Backoff{Base: cfg.RetryBackoff, Max: time.Hour, Jitter: 0.2},
	}
	e.starts = &batcher[sqlstore.JobClaim, sqlstore.StartedJob]{max: roundMax, run: e.db.StartJobs}
	e.successes = &batcher[sqlstore.JobSuccess, bool]{max: roundMax, run: e.db.SucceedJobs}
	e.handlers = map[dcvaas.JobType]handler{
		dcvaas.JobDNSCheck:      e.dnsCheck,
		dcvaas.JobStartIssuance: e.issue(false),
		dcvaas.JobRenewal:       e.issue(true),
		dcvaas.JobDNSSetup:      e.dnsSetup,
	}
	workers := river.NewWorkers()
	river.AddWorker(workers, &worker[dnsCheckArgs]{e: e})
	river.AddWorker(workers, &worker[startIssuanceArgs]{e: e})
	river.AddWorker(workers, &worker[renewalArgs]{e: e})
	river.AddWorker(workers, &worker[dnsSetupArgs]{e: e})
	e.addRenewalWorkers(workers)
	queues := map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: cfg.Workers}}
	if cfg.Webhooks.Sealer != nil {
		e.hooks = newHooks(cfg.Webhooks, cfg.DB)
		river.AddWorker(workers, &webhookDeliveryWorker{e: e})
		// Their own worker budget: slow receivers never hold up issuance.
		queues[QueueWebhooks] = river.QueueConfig{MaxWorkers: e.hooks.cfg.Workers}
	}

	driver, err := e.driver()
	if err != nil {
		return nil, err
	}
	e.client, err = river.NewClient(driver, &river.Config{
		ID:                clientID(cfg.NodeID, time.Now()), // reclaim.go
		Logger:            riverLog(cfg.Logger),             // riverlog.go
		Queues:            queues,
		Workers:           workers,
		FetchCooldown:     cfg.FetchCooldown,
		FetchPollInterval: cfg.FetchPollInterval,
		// A job's context ends at 3/4 of RescueAfter; the rescuer then
		// only ever picks up jobs whose worker is gone, not slow ones.
		JobTimeout:           cfg.RescueAfter * 3 / 4,
		RescueStuckJobsAfter: cfg.RescueAfter,
		RetryPolicy:          riverRetry,
		MaxAttempts:          riverMaxAttempts,
		ErrorHandler:         errorHandler{e.log},
		SoftStopTimeout:      cfg.ShutdownTimeout,
		PeriodicJobs:         e.periodicJobs(),
		Middleware:           e.middleware(),
	})
	if err != nil {
		e.closeListeners()
		return nil, fmt.Errorf("jobs: %w", err)
	}
	cfg.DB.SetEnqueuer(e)
	if e.hooks != nil {
		cfg.DB.SetDeliveryEnqueuer(e)
	}
	return e, nil
}

func withDefaults(cfg Config) Config {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Renewal = cfg.Renewal.withDefaults()
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	setDefault(&cfg.Workers, 32)
	setDefault(&cfg.MaxAttempts, dcvaas.DefaultMaxAttempts)
	setDefault(&cfg.RescueAfter, 2*time.Minute)
	setDefault(&cfg.DNSCheckWindow, 72*time.Hour)
	setDefault(&cfg.ShutdownTimeout, 30*time.Second)
	setDefault(&cfg.RetryBackoff, time.Minute)
	setDefault(&cfg.DNSCheckMaxAttempts, 10)
	setDefault(&cfg.FetchCooldown, 10*time.Millisecond)
	setDefault(&cfg.EventRetention, DefaultEventRetention)
	// River announces inserted jobs to the workers of other nodes through
	// LISTEN/NOTIFY on PostgreSQL, but at most once per queue and
	// FetchCooldown: a job queued by a job that began within that time (a
	// start_issuance after a quick dns_check) goes unannounced and waits
	// for the next poll. The issuance benchmark's p50 on PostgreSQL was
	// 1.33 s with a 1 s poll and 0.83 s with 100 ms. SQLite has one node,
	// whose inserts River hands to its own workers directly.
	if cfg.DB != nil && cfg.DB.Dialect() == sqlstore.Postgres {
		setDefault(&cfg.FetchPollInterval, 100*time.Millisecond)
	}
	setDefault(&cfg.FetchPollInterval, time.Second)
	if len(cfg.DNSCheckIntervals) == 0 {
		cfg.DNSCheckIntervals = defaultCheckIntervals
	}
	if len(cfg.AfterChangeIntervals) == 0 {
		cfg.AfterChangeIntervals = defaultAfterChangeIntervals
	}
	return cfg
}

func setDefault[T int | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// driver picks River's driver for the store's database. Both share the
// store's write pool, so River and the store use one *sql.Tx type and a job
// can be queued or completed inside any store transaction.
func (e *Engine) driver() (riverdriver.Driver[*sql.Tx], error) {
	if e.db.Dialect() == sqlstore.SQLite {
		// The write pool is one connection: SQLite has one writer, and River
		// on SQLite is only safe that way (see the riversqlite docs).
		return riversqlite.New(e.db.SQL()), nil
	}
	// database/sql cannot LISTEN, so River would only poll. A small pgx
	// pool with the same connection settings carries the notifications, so
	// a job queued on any node starts at once.
	pool, err := listenerPool(e.db.SQL())
	if err != nil {
		e.log.Warn("job queue falls back to polling: no LISTEN connection", "err", err)
		return riverdatabasesql.New(e.db.SQL()), nil
	}
	e.listeners = pool
	return riverdatabasesql.NewWithPgxListener(e.db.SQL(), pool), nil
}

// Start begins working jobs; they run until Stop. ctx bounds only the
// start itself: a process's signal context ending must not cut jobs short
// before Stop has had the chance to let them finish. An Engine starts once.
func (e *Engine) Start(ctx context.Context) error {
	e.stopping.Store(false)
	if err := e.reclaim(ctx); err != nil { // reclaim.go
		return err
	}
	if err := e.client.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("start job queue: %w", err)
	}
	// River's client id is what river_job.attempted_by records: it ties a
	// job's attempts to this node's logs.
	e.log.Info("job engine started", "riverClientId", e.client.ID(), "workers", e.cfg.Workers, "resolvers", e.resolver.Servers(),
		"rescueAfter", e.cfg.RescueAfter.String(), "dnsCheckWindow", e.cfg.DNSCheckWindow.String())
	e.catchUp(ctx) // scan.go: a missed renewal check runs now
	if e.cfg.Renewal.Schedule != nil {
		var wctx context.Context
		wctx, e.stopWatch = context.WithCancel(context.WithoutCancel(ctx))
		e.watchDone = make(chan struct{})
		go func() { defer close(e.watchDone); e.watchSchedule(wctx) }() // missed.go
	}
	e.startFanOut() // webhook.go
	return nil
}

// Stop stops fetching jobs and lets running ones finish until ctx ends or
// ShutdownTimeout passes; jobs still running then are cancelled, and each
// records itself as queued again (no attempt used) for the next start.
func (e *Engine) Stop(ctx context.Context) error {
	e.stopping.Store(true)
	e.stopFanOut()
	defer e.closeListeners()
	if e.stopWatch != nil {
		e.stopWatch()
		<-e.watchDone
	}
	soft, cancel := context.WithTimeout(ctx, e.cfg.ShutdownTimeout)
	defer cancel()
	err := e.client.Stop(soft)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		e.log.Warn("jobs still running at shutdown deadline: cancelling them")
		hard, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		defer cancel()
		err = e.client.StopAndCancel(hard)
	}
	if err != nil {
		return fmt.Errorf("stop job queue: %w", err)
	}
	return nil
}

func (e *Engine) closeListeners() {
	if e.listeners != nil {
		e.listeners.Close()
		e.listeners = nil
	}
}

// worker adapts River's typed Worker to the engine.
type worker[T args] struct {
	river.WorkerDefaults[T]
	e *Engine
}

func (w *worker[T]) Work(ctx context.Context, job *river.Job[T]) error {
	return w.e.work(ctx, job.JobRow, job.Args.get())
}

// errorHandler logs what River itself saw fail: only failures to record an
// outcome reach it, since handlers' errors are turned into outcomes.
type errorHandler struct{ log *slog.Logger }

func (h errorHandler) HandleError(ctx context.Context, job *rivertype.JobRow, err error) *river.ErrorHandlerResult {
	h.log.ErrorContext(ctx, "job attempt failed to record", "kind", job.Kind, "riverJobId", job.ID, "attempt", job.Attempt, "err", err)
	return nil
}

func (h errorHandler) HandlePanic(ctx context.Context, job *rivertype.JobRow, v any, trace string) *river.ErrorHandlerResult {
	h.log.ErrorContext(ctx, "job attempt panicked while recording", "kind", job.Kind, "riverJobId", job.ID, "panic", v, "trace", trace)
	return nil
}
