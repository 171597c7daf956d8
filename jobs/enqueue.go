package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// EnqueueTx implements sqlstore.Enqueuer: the store calls it inside the
// transaction that records a queued job (new, or a dead letter retried), so
// the River job exists exactly when the jobs row says "queued".
func (e *Engine) EnqueueTx(ctx context.Context, tx *sql.Tx, j *dcvaas.Job, opts sqlstore.EnqueueOpts) (int64, error) {
	r := ref{JobID: j.ID}
	if j.Type == dcvaas.JobDNSCheck {
		r.Since, r.AfterChange = e.now().UTC(), opts.AfterChange
	}
	a, err := argsFor(j.Type, r)
	if err != nil {
		return 0, err
	}
	res, err := e.client.InsertTx(ctx, tx, a, &river.InsertOpts{MaxAttempts: riverMaxAttempts})
	if err != nil {
		return 0, fmt.Errorf("queue job %s: %w", j.ID, err)
	}
	j.MaxAttempts = e.maxAttempts(j.Type)
	return res.Job.ID, nil
}

// CancelTx implements sqlstore.QueueCanceler: the River jobs of checks the
// store superseded go, or one snoozed for an hour would run later for
// nothing.
func (e *Engine) CancelTx(ctx context.Context, tx *sql.Tx, queueJobIDs []int64) error {
	for _, id := range queueJobIDs {
		if _, err := e.client.JobCancelTx(ctx, tx, id); err != nil && !errors.Is(err, rivertype.ErrNotFound) {
			return fmt.Errorf("cancel superseded check: %w", err)
		}
	}
	return nil
}

// maxAttempts is the attempt limit of a job type. dns_check gets more: a
// customer's DNS host having a bad hour should not end verification.
func (e *Engine) maxAttempts(jt dcvaas.JobType) int {
	if jt == dcvaas.JobDNSCheck {
		return e.cfg.DNSCheckMaxAttempts
	}
	return e.cfg.MaxAttempts
}
