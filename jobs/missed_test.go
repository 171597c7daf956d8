package jobs

import (
	"testing"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/sqlstore"
)

// A scheduled time that passed with no check begun since — its leader died
// just before it, and River's next leader schedules from its own start —
// is caught up by the watch of every node, once; a scheduled check for a
// time already covered by a successful one does nothing.
func TestRenewalCheckMissedBySchedule(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		hourly, err := ParseSchedule("0 * * * *")
		if err != nil {
			t.Fatal(err)
		}
		b := setup(t, dialect, func(c *Config) { c.Renewal.Schedule = hourly })
		// The last check began 2 hours ago: at least one hour's check was
		// missed, yet less than the start-up catch-up's day has passed.
		b.clock.Advance(-2 * time.Hour)
		old := b.check()
		b.clock.Advance(2 * time.Hour)
		b.start()
		run := waitRunWithin(t, b, old.ID, missedEvery+missedGrace+20*time.Second)
		if run.Cause != CauseSchedule {
			t.Fatalf("caught-up run = %+v", run)
		}

		// The leader's own check for that hour, queued late after all:
		// covered, it runs nothing.
		if _, err := b.e.client.Insert(b.ctx, renewalCheckArgs{Cause: CauseSchedule}, nil); err != nil {
			t.Fatal(err)
		}
		time.Sleep(missedEvery + 2*time.Second) // and the watch's next look
		var runs int
		if err := b.db.SQL().QueryRowContext(b.ctx, `SELECT COUNT(*) FROM renewal_runs`).Scan(&runs); err != nil {
			t.Fatal(err)
		}
		if runs != 2 {
			t.Fatalf("%d renewal checks, want the old one and the caught-up one", runs)
		}
	})
}

// waitRunWithin is waitRun with a deadline of its own.
func waitRunWithin(t *testing.T, b *bundle, after string, within time.Duration) *dcvaas.RenewalRun {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		last, err := b.db.LastRenewalRun(b.ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if last != nil && last.ID != after && last.Status != dcvaas.RenewalRunning {
			return last
		}
		if time.Now().After(deadline) {
			t.Fatalf("no renewal check ran within %s; last %+v", within, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
