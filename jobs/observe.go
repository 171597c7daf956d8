package jobs

import (
	"context"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// Observer learns what the engine does, for metrics (package metrics
// implements it). Its methods must be cheap and safe for concurrent use.
type Observer interface {
	// JobAttempt reports one run of a queue entry of the kind (a job type,
	// or one of the engine's own: renewal_check, renewal_info,
	// delegation_scan, delegation_check): how long it took, and the error
	// the worker returned to the queue (nil also when the product job's
	// attempt failed and was recorded as such).
	JobAttempt(kind string, took time.Duration, err error)
	// JobOutcome reports a product job's recorded outcome: succeeded,
	// failed (a dead letter) or queued (to run again).
	JobOutcome(jt dcvaas.JobType, status dcvaas.JobStatus)
	// RenewalCheck reports a finished renewal check; err says why it failed.
	RenewalCheck(run *dcvaas.RenewalRun, err error)
	// DelegationChecked reports one domain's CNAME check: "ok", "missing"
	// or "error" (the lookup failed).
	DelegationChecked(result string)
}

type nopObserver struct{}

func (nopObserver) JobAttempt(string, time.Duration, error)     {}
func (nopObserver) JobOutcome(dcvaas.JobType, dcvaas.JobStatus) {}
func (nopObserver) RenewalCheck(*dcvaas.RenewalRun, error)      {}
func (nopObserver) DelegationChecked(string)                    {}
func (e *Engine) observer() Observer {
	if e.cfg.Observer != nil {
		return e.cfg.Observer
	}
	return nopObserver{}
}

// observeOutcome reports a recorded product job outcome.
func (e *Engine) observeOutcome(j *dcvaas.Job) { e.observer().JobOutcome(j.Type, j.Status) }

// middleware times every queue entry's run for the Observer.
func (e *Engine) middleware() []rivertype.Middleware {
	if e.cfg.Observer == nil {
		return nil
	}
	return []rivertype.Middleware{&attemptTimer{obs: e.cfg.Observer}}
}

type attemptTimer struct {
	river.MiddlewareDefaults
	obs Observer
}

func (m *attemptTimer) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
	start := time.Now()
	err := doInner(ctx)
	m.obs.JobAttempt(job.Kind, time.Since(start), err)
	return err
}
