package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/dcvaas/dcvaas"
	dcacme "github.com/dcvaas/dcvaas/acme"
	"github.com/dcvaas/dcvaas/cabudget"
	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/robfig/cron/v3"
	"golang.org/x/sync/errgroup"
)

// The renewal check. Once a day (on the cluster's River leader, which runs
// the periodic jobs) and at start-up when the last successful check is
// older than a day, a renewal_check job streams every active domain in id
// order (keyset pages over the partial index domains_active) and queues a
// renewal for each whose certificate is due: its CA's ARI window has begun
// (RFC 9773), or less than RenewBefore of its lifetime is left
// (dcacme.Due). A page's renewals are queued in one transaction — jobs rows,
// audit entries and River jobs in batches — and spread over Spread so that
// no CA sees a burst at midnight.
//
// "At most one open renewal per domain" is the database's rule (the unique
// index jobs_one_open_renewal): the insert skips domains that have one, so
// two checks at the same moment — two nodes, or `dcvaas cron run` beside
// the daemon — queue each renewal once.
//
// Asking a CA for the renewal window of every certificate would make a
// check take hours on a large fleet; the check only queues renewal_info
// jobs for the certificates whose stored Retry-After has passed, spread
// like renewals, and those store the new window and queue the renewal if it
// has begun.

// River kinds of the engine's own jobs, which have no row in the jobs
// table: they work on many domains, not on one.
const (
	kindRenewalCheck    = "renewal_check"
	kindRenewalInfo     = "renewal_info"
	kindDelegationScan  = "delegation_scan"
	kindDelegationCheck = "delegation_check"
)

// Causes of a renewal check, as recorded in renewal_runs.
const (
	CauseSchedule = "schedule"
	CauseStartup  = "startup"
	CauseCLI      = "cli"
)

// RenewalConfig configures the renewal check and delegation monitoring.
type RenewalConfig struct {
	// Schedule runs the renewal check and the delegation check (on the
	// leader node only). Nil: neither runs by itself, nor at start-up;
	// RenewalCheck and DelegationScan still work when called.
	Schedule Schedule
	// Spread is the window over which the renewals, ARI requests and
	// CNAME checks a check queues start (0: all at once).
	Spread time.Duration
	// RenewBefore: a certificate is due when less than this of it remains
	// (0: a third of its lifetime), as acme.Config.RenewBefore.
	RenewBefore time.Duration
	// CatchUpAfter: at start, a check is queued when the last successful
	// one began longer ago than this (default 24h).
	CatchUpAfter time.Duration
	// PageSize is how many domains a page of the scan covers (default 5000).
	PageSize int
	// OrderPace paces the renewals that spend a CA's new-order budget:
	// the check starts the k-th of them no earlier than k×OrderPace after
	// it (or later, at its place in the spread window), so that they reach
	// the budget as a steady flow at the pace it refills instead of a
	// burst that empties it and then waits. Those are the renewals ARI
	// does not cover: of certificates without a renewal window from their
	// CA (a CA without ARI; their orders carry no replaces, which alone
	// exempts an order) and of domains without a certificate. 0: no
	// pacing. See OrderPace (the function) for the value dcvaas uses.
	OrderPace time.Duration
}

// OrderPace is RenewalConfig.OrderPace for a CA whose new orders are
// limited to orders per account (unlimited: 0) with accounts accounts:
// twice the time one token takes to come back, so renewals use at most
// half of what refills and leave the rest, and the burst, to first
// certificates of new domains, which must not wait long.
func OrderPace(orders cabudget.Limit, accounts int) time.Duration {
	if orders.Unlimited() {
		return 0
	}
	return 2 * orders.Interval() / time.Duration(max(accounts, 1))
}

// Schedule says when a periodic check runs next; see ParseSchedule.
type Schedule interface {
	Next(after time.Time) time.Time
}

// ParseSchedule reads a cron expression, evaluated in UTC: five fields
// (minute hour day-of-month month day-of-week), an optional leading
// seconds field, or a descriptor such as @daily or "@every 1h".
func ParseSchedule(spec string) (Schedule, error) {
	p := cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
	s, err := p.Parse(spec)
	if err != nil {
		return nil, err
	}
	return utcSchedule{s}, nil
}

type utcSchedule struct{ s cron.Schedule }

func (u utcSchedule) Next(t time.Time) time.Time { return u.s.Next(t.UTC()) }

func (c RenewalConfig) withDefaults() RenewalConfig {
	setDefault(&c.CatchUpAfter, 24*time.Hour)
	setDefault(&c.PageSize, 5000)
	return c
}

// Batch sizes: domains per renewal_info and delegation_check job, and how
// many of their requests run at once.
const (
	infoBatch   = 50
	checkBatch  = 50
	checkFanout = 8
)

type (
	renewalCheckArgs struct {
		Cause string `json:"cause"`
	}
	renewalInfoArgs struct {
		DomainIDs []string `json:"domain_ids"`
	}
)

func (renewalCheckArgs) Kind() string { return kindRenewalCheck }
func (renewalInfoArgs) Kind() string  { return kindRenewalInfo }

type renewalCheckWorker struct {
	river.WorkerDefaults[renewalCheckArgs]
	e *Engine
}

// Work runs the check; a failed one is retried by River (with riverRetry)
// and counted by the Observer.
func (w *renewalCheckWorker) Work(ctx context.Context, job *river.Job[renewalCheckArgs]) error {
	_, err := w.e.renewalCheck(ctx, job.Args.Cause, false)
	return err
}

type renewalInfoWorker struct {
	river.WorkerDefaults[renewalInfoArgs]
	e *Engine
}

func (w *renewalInfoWorker) Work(ctx context.Context, job *river.Job[renewalInfoArgs]) error {
	_, _, err := w.e.checkRenewalInfo(ctx, job.Args.DomainIDs, "", false)
	return err
}

// addRenewalWorkers registers the workers of the renewal check and of
// delegation monitoring.
func (e *Engine) addRenewalWorkers(ws *river.Workers) {
	river.AddWorker(ws, &renewalCheckWorker{e: e})
	river.AddWorker(ws, &renewalInfoWorker{e: e})
	river.AddWorker(ws, &delegationScanWorker{e: e})
	river.AddWorker(ws, &delegationCheckWorker{e: e})
	river.AddWorker(ws, &eventScanWorker{e: e})
}

// checkAttempts bounds River's retries of a failed check: it runs again
// after 2s, 4s, 8s, … and the next day's check starts afresh anyway.
const checkAttempts = 8

// uniqueCheck lets at most one unfinished check of a kind exist, so the
// start-up catch-up of several nodes and the leader's schedule do not
// stack up checks (each would be harmless, the database sees to that, but
// pointless).
var uniqueCheck = &river.UniqueOpts{ByState: []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStatePending,
	rivertype.JobStateRetryable, rivertype.JobStateRunning, rivertype.JobStateScheduled}}

// periodicJobs are the daily checks, run by River's leader.
func (e *Engine) periodicJobs() []*river.PeriodicJob {
	s := e.cfg.Renewal.Schedule
	if s == nil {
		return nil
	}
	return []*river.PeriodicJob{
		river.NewPeriodicJob(s, func() (river.JobArgs, *river.InsertOpts) {
			return renewalCheckArgs{Cause: CauseSchedule}, &river.InsertOpts{MaxAttempts: checkAttempts, UniqueOpts: *uniqueCheck}
		}, &river.PeriodicJobOpts{ID: kindRenewalCheck}),
		river.NewPeriodicJob(s, func() (river.JobArgs, *river.InsertOpts) {
			return delegationScanArgs{}, &river.InsertOpts{MaxAttempts: checkAttempts, UniqueOpts: *uniqueCheck}
		}, &river.PeriodicJobOpts{ID: kindDelegationScan}),
		e.eventScanJob(s),
	}
}

// catchUp queues a renewal check at start-up when the last successful one
// began more than CatchUpAfter ago: a cluster that was down at the
// scheduled time must not skip a day.
func (e *Engine) catchUp(ctx context.Context) {
	rc := e.cfg.Renewal
	if rc.Schedule == nil {
		return
	}
	last, err := e.db.LastRenewalRun(ctx, dcvaas.RenewalSucceeded)
	if err != nil {
		e.log.ErrorContext(ctx, "cannot read the last renewal check", "err", err)
		return
	}
	if last != nil && e.now().Sub(last.StartedAt) < rc.CatchUpAfter {
		return
	}
	res, err := e.client.Insert(ctx, renewalCheckArgs{Cause: CauseStartup}, &river.InsertOpts{MaxAttempts: checkAttempts, UniqueOpts: *uniqueCheck})
	if err != nil {
		e.log.ErrorContext(ctx, "cannot queue the missed renewal check", "err", err)
		return
	}
	attrs := []any{"duplicate", res.UniqueSkippedAsDuplicate}
	if last != nil {
		attrs = append(attrs, "lastSuccess", last.StartedAt)
	}
	e.log.InfoContext(ctx, "renewal check overdue: queued one now", attrs...)
}

// RenewalCheck runs a renewal check now: it queues the renewals that are
// due (and, on a large fleet, the ARI requests that may find more, which
// the workers then make). cause is recorded with the run.
func (e *Engine) RenewalCheck(ctx context.Context, cause string) (*dcvaas.RenewalRun, error) {
	return e.renewalCheck(ctx, cause, false)
}

// RenewalCheckNow is RenewalCheck for a process that runs no workers
// (`dcvaas cron run`): it makes the ARI requests itself, so the renewals
// their windows make due are queued too before it returns.
func (e *Engine) RenewalCheckNow(ctx context.Context) (*dcvaas.RenewalRun, error) {
	return e.renewalCheck(ctx, CauseCLI, true)
}

func (e *Engine) renewalCheck(ctx context.Context, cause string, inlineARI bool) (*dcvaas.RenewalRun, error) {
	start := time.Now()
	run, err := e.db.StartRenewalRun(ctx, cause)
	if err != nil {
		err = fmt.Errorf("renewal check: %w", err)
		e.log.ErrorContext(ctx, "renewal check failed", "cause", cause, "err", err)
		e.observer().RenewalCheck(&dcvaas.RenewalRun{Cause: cause, Status: dcvaas.RenewalFailed, Error: err.Error()}, err)
		return nil, err
	}
	err = e.scanRenewals(ctx, run, inlineARI)
	if err == nil {
		err = e.pruneBudgets(ctx)
	}
	run.Status = dcvaas.RenewalSucceeded
	if err != nil {
		run.Status, run.Error = dcvaas.RenewalFailed, err.Error()
	}
	// The run's record must be written even when ctx has ended.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if ferr := e.db.FinishRenewalRun(fctx, run); ferr != nil && err == nil {
		err = fmt.Errorf("record renewal check: %w", ferr)
		run.Status, run.Error = dcvaas.RenewalFailed, err.Error()
	}
	attrs := []any{"runId", run.ID, "cause", cause, "scanned", run.Scanned, "due", run.Due, "queued", run.Queued,
		"skipped", run.Skipped, "ariChecks", run.ARIChecks, "errors", run.Errors, "took", time.Since(start).Round(time.Millisecond).String()}
	e.observer().RenewalCheck(run, err)
	if err != nil {
		e.log.ErrorContext(ctx, "renewal check failed", append(attrs, "err", err)...)
		return run, err
	}
	e.log.InfoContext(ctx, "renewal check done", attrs...)
	if run.Scanned == 0 {
		// The seed's alarm: a check that finds nothing to look at while
		// there are active domains suspects its own query.
		if active, err := e.db.HasActiveDomains(fctx); err == nil && active {
			e.log.WarnContext(ctx, "renewal check scanned 0 domains although active domains exist: potential query issue", "runId", run.ID)
		}
	}
	return run, nil
}

// pruneBudgets deletes the CA budgets that are full again (per registered
// domain and per name set; account order budgets stay, the API lists
// them): a missing row is a full bucket, so nothing changes but the
// table's size, which would otherwise keep a row for every registered
// domain and name set ever ordered. The daily check is the moment: a row
// is at most a day older than it need be.
func (e *Engine) pruneBudgets(ctx context.Context) error {
	n, err := e.db.PruneBudgets(ctx, e.now())
	if err != nil {
		return fmt.Errorf("prune CA budgets: %w", err)
	}
	if n > 0 {
		e.log.InfoContext(ctx, "full CA budgets pruned", "rows", n)
	}
	return nil
}

// scanRenewals is the check's pass over the active domains. Pages are read
// in order; their writes run on up to writers() transactions at once, which
// keeps both of PostgreSQL's cores (and the network) busy while the next
// page is read, and never holds more than that many pages in memory.
func (e *Engine) scanRenewals(ctx context.Context, run *dcvaas.RenewalRun, inlineARI bool) error {
	rc := e.cfg.Renewal
	ari := e.renewalInfo() != nil
	var mu sync.Mutex // guards run's counts
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(e.writers())
	after := ""
	paced := 0 // renewals so far that spend an order budget (OrderPace)
	for gctx.Err() == nil {
		now := e.now().UTC()
		page, scanned, last, err := e.db.RenewalPage(gctx, after, rc.PageSize, sqlstore.RenewalFilter{Now: now, RenewBefore: rc.RenewBefore, ARI: ari})
		if err != nil {
			g.Go(func() error { return fmt.Errorf("read active domains: %w", err) })
			break
		}
		if scanned == 0 {
			break
		}
		after = last
		var stale []sqlstore.RenewalCandidate
		var due []sqlstore.RenewalRequest
		var ask []string
		for _, c := range page {
			if c.Stale {
				stale = append(stale, c)
			}
			if reason := dueReason(c, now, rc.RenewBefore); reason != "" {
				offset := e.spreadOffset(c.DomainID)
				if rc.OrderPace > 0 && (c.NotAfter == nil || c.ARIStart == nil) {
					offset = max(offset, time.Duration(paced)*rc.OrderPace)
					paced++
				}
				due = append(due, sqlstore.RenewalRequest{DomainID: c.DomainID, OrgID: c.OrgID, NotAfter: c.NotAfter,
					Reason: reason, RunID: run.ID, RunAt: now.Add(offset)})
				continue
			}
			if ari && c.NotAfter != nil && !c.ARINextCheck.After(now) {
				ask = append(ask, c.DomainID)
			}
		}
		mu.Lock()
		run.Scanned += scanned
		run.Due += len(due)
		run.ARIChecks += len(ask)
		mu.Unlock()
		g.Go(func() error {
			deferred := ask
			if inlineARI {
				deferred = nil
			}
			queued, err := e.queuePage(gctx, stale, due, deferred)
			if err != nil {
				return err
			}
			var q, failed int
			if inlineARI && len(ask) > 0 {
				if q, failed, err = e.checkRenewalInfo(gctx, ask, run.ID, true); err != nil {
					return err
				}
			}
			mu.Lock()
			defer mu.Unlock()
			run.Queued += queued + q
			run.Skipped += len(due) - queued
			run.Due += q
			run.Errors += failed
			return nil
		})
		if scanned < rc.PageSize {
			break
		}
	}
	return g.Wait()
}

// writers is how many pages of a check are written at once: SQLite has one
// writer anyway.
func (e *Engine) writers() int {
	if e.db.Dialect() == sqlstore.Postgres {
		return 2
	}
	return 1
}

// dueReason says why the candidate's certificate is due at now ("ari",
// "lifetime" or "no_certificate"), or "" when it is not.
func dueReason(c sqlstore.RenewalCandidate, now time.Time, renewBefore time.Duration) string {
	if c.NotAfter == nil {
		return "no_certificate"
	}
	cert := &dcvaas.Certificate{NotAfter: *c.NotAfter}
	if c.NotBefore != nil {
		cert.NotBefore = *c.NotBefore
	} else {
		// Only a certificate row that vanished leaves this unknown; the
		// common lifetime stands in for its own.
		cert.NotBefore = c.NotAfter.Add(-90 * 24 * time.Hour)
	}
	var w *dcacme.Window
	if c.ARIStart != nil {
		w = &dcacme.Window{Start: *c.ARIStart}
	}
	return reasonDue(cert, w, now, renewBefore)
}

func reasonDue(cert *dcvaas.Certificate, w *dcacme.Window, now time.Time, renewBefore time.Duration) string {
	switch {
	case !dcacme.Due(cert, w, now, renewBefore):
		return ""
	case dcacme.Due(cert, nil, now, renewBefore):
		return "lifetime"
	default:
		return "ari"
	}
}

// spreadOffset is when, within the spread window, the domain's renewal
// starts: the same place every day (a hash of its id), so the load is even
// and a domain does not wander through the window.
func (e *Engine) spreadOffset(domainID string) time.Duration {
	spread := e.cfg.Renewal.Spread
	if spread <= 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(domainID))
	return time.Duration(h.Sum64() % uint64(spread))
}

// randomOffset spreads batches of checks, which have no identity of their own.
func (e *Engine) randomOffset() time.Duration {
	if s := e.cfg.Renewal.Spread; s > 0 {
		return rand.N(s)
	}
	return 0
}

// queuePage writes one page's outcome in one transaction: the renewal
// information of certificates that changed, the due renewals (those that
// are new), and renewal_info jobs for the certificates whose window is to
// be asked of their CA. It returns how many renewals it queued.
func (e *Engine) queuePage(ctx context.Context, stale []sqlstore.RenewalCandidate, due []sqlstore.RenewalRequest, ask []string) (int, error) {
	if len(stale) == 0 && len(due) == 0 && len(ask) == 0 {
		return 0, nil
	}
	tx, err := e.db.SQL().BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	if err := e.db.SaveRenewalInfo(ctx, tx, stale); err != nil {
		return 0, fmt.Errorf("store renewal information: %w", err)
	}
	n, err := e.queueRenewalsTx(ctx, tx, due)
	if err != nil {
		return 0, err
	}
	if err := e.insertBatches(ctx, tx, ask, infoBatch, func(ids []string) river.JobArgs { return renewalInfoArgs{DomainIDs: ids} }); err != nil {
		return 0, fmt.Errorf("queue ARI requests: %w", err)
	}
	return n, tx.Commit()
}

// queueRenewalsTx queues a renewal per request whose domain has none open,
// inside tx: the River jobs first, in one insert, then the jobs rows that
// point at them, with their audit entries. It returns how many it queued.
func (e *Engine) queueRenewalsTx(ctx context.Context, tx *sql.Tx, reqs []sqlstore.RenewalRequest) (int, error) {
	if len(reqs) == 0 {
		return 0, nil
	}
	domains := make([]string, len(reqs))
	for i, r := range reqs {
		domains[i] = r.DomainID
	}
	open, err := e.db.OpenRenewals(ctx, tx, domains)
	if err != nil {
		return 0, fmt.Errorf("queue renewals: %w", err)
	}
	fresh := reqs[:0:0]
	for _, r := range reqs {
		if !open[r.DomainID] {
			fresh = append(fresh, r)
		}
	}
	if len(fresh) == 0 {
		return 0, nil
	}
	jobs := e.db.PlanRenewals(fresh, e.maxAttempts(dcvaas.JobRenewal))
	now := e.now()
	params := make([]river.InsertManyParams, len(jobs))
	ids := make([]string, len(jobs))
	for i, j := range jobs {
		opts := &river.InsertOpts{MaxAttempts: riverMaxAttempts}
		if wait := j.RunAt.Sub(now); wait > 0 {
			// The queue runs on real time; RunAt is the product clock's.
			opts.ScheduledAt = time.Now().Add(wait)
		}
		params[i] = river.InsertManyParams{Args: renewalArgs{ref{JobID: j.ID}}, InsertOpts: opts}
		ids[i] = j.ID
	}
	queueIDs, err := e.insertQueue(ctx, tx, params, ids)
	if err != nil {
		return 0, fmt.Errorf("queue renewals: %w", err)
	}
	inserted, err := e.db.InsertRenewalJobs(ctx, tx, fresh, jobs, queueIDs)
	if err != nil {
		return 0, fmt.Errorf("queue renewals: %w", err)
	}
	if len(inserted) < len(jobs) {
		// Another check queued these since OpenRenewals looked (PostgreSQL
		// only: SQLite has one writer): their queue entries go.
		done := make(map[string]bool, len(inserted))
		for _, j := range inserted {
			done[j.ID] = true
		}
		for i, j := range jobs {
			if done[j.ID] {
				continue
			}
			if _, err := e.client.JobCancelTx(ctx, tx, queueIDs[i]); err != nil && !errors.Is(err, rivertype.ErrNotFound) {
				return 0, fmt.Errorf("queue renewals: %w", err)
			}
		}
	}
	return len(inserted), nil
}

// insertQueue queues params in one insert inside tx and returns the River
// job ids in order; params[i] runs the product job jobIDs[i].
func (e *Engine) insertQueue(ctx context.Context, tx *sql.Tx, params []river.InsertManyParams, jobIDs []string) ([]int64, error) {
	ids := make([]int64, len(params))
	if e.db.Dialect() == sqlstore.Postgres {
		res, err := e.client.InsertManyTx(ctx, tx, params)
		if err != nil {
			return nil, err
		}
		for i, r := range res {
			ids[i] = r.Job.ID
		}
		return ids, nil
	}
	// On SQLite, returning every inserted row and decoding it was half the
	// cost of River's insert. This transaction is the only writer, so the
	// new rows are those above the highest id before, and each names its
	// job in its args.
	var before int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM river_job`).Scan(&before); err != nil {
		return nil, err
	}
	if _, err := e.client.InsertManyFastTx(ctx, tx, params); err != nil {
		return nil, err
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, json_extract(args, '$.job_id') FROM river_job WHERE id > $1`, before)
	if err != nil {
		return nil, err
	}
	byJob := make(map[string]int64, len(params))
	for rows.Next() {
		var id int64
		var job string
		if err := rows.Scan(&id, &job); err != nil {
			rows.Close()
			return nil, err
		}
		byJob[job] = id
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	for i, j := range jobIDs {
		if ids[i] = byJob[j]; ids[i] == 0 {
			return nil, fmt.Errorf("queue entry of job %s not found after insert", j)
		}
	}
	return ids, nil
}

// insertBatches queues one River job per size ids, each starting at a
// random point of the spread window.
func (e *Engine) insertBatches(ctx context.Context, tx *sql.Tx, ids []string, size int, args func([]string) river.JobArgs) error {
	if len(ids) == 0 {
		return nil
	}
	var params []river.InsertManyParams
	for len(ids) > 0 {
		n := min(size, len(ids))
		opts := &river.InsertOpts{MaxAttempts: checkAttempts}
		if wait := e.randomOffset(); wait > 0 {
			opts.ScheduledAt = time.Now().Add(wait)
		}
		params = append(params, river.InsertManyParams{Args: args(ids[:n:n]), InsertOpts: opts})
		ids = ids[n:]
	}
	_, err := e.client.InsertManyTx(ctx, tx, params)
	return err
}

// fanOut calls fn for each item, at most n at once, and waits for all.
func fanOut(items []string, n int, fn func(string)) {
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	for _, it := range items {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			fn(it)
		}()
	}
	wg.Wait()
}
