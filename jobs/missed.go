package jobs

import (
	"context"
	"time"

	"github.com/riverqueue/river"

	"github.com/dcvaas/dcvaas"
)

// River's periodic jobs live in the leader's memory: the leader's enqueuer
// works out each job's next run when it starts leading. A leader that dies
// shortly before the daily renewal check's time takes the check with it,
// and the next leader, elected once the dead one's lease has run out (up
// to 15 s with River's defaults), schedules the next one a day later. So
// every node watches the schedule: when a scheduled time passed more than
// missedGrace ago and no check began since, it queues that check itself.
// The leader's own check, queued late after all, is the same check twice:
// the unique insert keeps one while one is unfinished, and a check for a
// time that a successful check already covered does nothing (covered).

const (
	missedEvery = 10 * time.Second
	missedGrace = 5 * time.Second
)

// watchSchedule runs until ctx ends.
func (e *Engine) watchSchedule(ctx context.Context) {
	t := time.NewTicker(missedEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		e.queueMissedCheck(ctx)
	}
}

// queueMissedCheck queues the renewal check when its scheduled time passed
// with no check begun since (see above). Any check counts, failed ones
// too: those River retries, and a check that failed for good waits for
// the next day rather than starting again every few seconds.
func (e *Engine) queueMissedCheck(ctx context.Context) {
	last, err := e.db.LastRenewalRun(ctx, "")
	if err != nil || last == nil {
		return // none ever: the start-up catch-up queues the first
	}
	due := e.cfg.Renewal.Schedule.Next(last.StartedAt)
	if e.now().Before(due.Add(missedGrace)) {
		return
	}
	res, err := e.client.Insert(ctx, renewalCheckArgs{Cause: CauseSchedule}, &river.InsertOpts{MaxAttempts: checkAttempts, UniqueOpts: *uniqueCheck})
	if err != nil {
		e.log.ErrorContext(ctx, "cannot queue the missed renewal check", "err", err)
		return
	}
	if !res.UniqueSkippedAsDuplicate {
		e.log.InfoContext(ctx, "scheduled renewal check missed (no leader at its time): queued it now", "due", due, "lastCheck", last.StartedAt)
	}
}

// covered says whether a successful check already began at or after the
// latest scheduled time, so that a scheduled check now would run the same
// time slot twice.
func (e *Engine) covered(ctx context.Context) (bool, error) {
	last, err := e.db.LastRenewalRun(ctx, dcvaas.RenewalSucceeded)
	if err != nil || last == nil {
		return false, err
	}
	return e.cfg.Renewal.Schedule.Next(last.StartedAt).After(e.now()), nil
}
