package jobs

import (
	"context"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/riverqueue/river"
)

// The daily event maintenance (on the leader, with the renewal check's
// schedule): certificate.expiring for certificates near their end, once
// per threshold per certificate, and the deletion of events older than
// Config.EventRetention.

const kindEventScan = "event_scan"

type eventScanArgs struct{}

func (eventScanArgs) Kind() string { return kindEventScan }

type eventScanWorker struct {
	river.WorkerDefaults[eventScanArgs]
	e *Engine
}

func (w *eventScanWorker) Work(ctx context.Context, _ *river.Job[eventScanArgs]) error {
	_, _, err := w.e.EventScan(ctx)
	return err
}

// DefaultEventRetention is how long events are kept when Config does not say.
const DefaultEventRetention = 720 * time.Hour

// EventScan writes the certificate.expiring events that are due and
// deletes expired events; it returns how many of each.
func (e *Engine) EventScan(ctx context.Context) (expiring, deleted int, err error) {
	now := e.now().UTC()
	expiring, err = e.db.WriteExpiringEvents(ctx, now, dcvaas.ExpiringThresholds)
	if err != nil {
		return expiring, 0, err
	}
	deleted, err = e.db.DeleteEventsBefore(ctx, now.Add(-e.cfg.EventRetention))
	if err != nil {
		return expiring, deleted, err
	}
	// Finished webhook deliveries are kept as long as events.
	deliveries, err := e.db.DeleteDeliveriesBefore(ctx, now.Add(-e.cfg.EventRetention))
	e.log.InfoContext(ctx, "event scan", "expiringEvents", expiring, "deletedEvents", deleted, "deletedDeliveries", deliveries,
		"retention", e.cfg.EventRetention.String())
	return expiring, deleted, err
}

func (e *Engine) eventScanJob(s Schedule) *river.PeriodicJob {
	return river.NewPeriodicJob(s, func() (river.JobArgs, *river.InsertOpts) {
		return eventScanArgs{}, &river.InsertOpts{MaxAttempts: checkAttempts, UniqueOpts: *uniqueCheck}
	}, &river.PeriodicJobOpts{ID: kindEventScan})
}
