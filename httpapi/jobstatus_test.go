package httpapi_test

import (
	"testing"
	"time"

	"github.com/dcvaas/dcvaas/sqlstore"
)

// TestJobStatusViews: a queued job whose next run is later reads
// "scheduled" with that runAt, one a newer job replaced reads
// "superseded" (not "succeeded"), attempts counts every run and
// attemptsUsed the counted ones; ?status= filters by what the job reads.
func TestJobStatusViews(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b := setup(t, dialect)
		ids := map[string]string{}
		for _, n := range []string{"later", "replaced", "done", "now"} {
			d := b.createDomain(b.a.admin, n+".example.com")
			ids[n] = d["latestJob"].(map[string]any)["id"].(string)
		}
		runAt := b.clock.Now().Add(time.Hour).UTC().Truncate(time.Second)
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{`UPDATE jobs SET run_at = $1, runs = 4, attempts = 1 WHERE id = $2`, []any{runAt.UnixMicro(), ids["later"]}},
			{`UPDATE jobs SET status = 'succeeded', result = '{"outcome":"superseded","supersededBy":"x"}', runs = 1 WHERE id = $1`, []any{ids["replaced"]}},
			{`UPDATE jobs SET status = 'succeeded', result = '{"outcome":"verified"}', runs = 1, attempts = 1 WHERE id = $1`, []any{ids["done"]}},
		} {
			if _, err := b.db.SQL().Exec(q.sql, q.args...); err != nil {
				t.Fatal(err)
			}
		}
		j := b.do("GET", "/api/jobs/"+ids["later"], b.a.read, nil).want(t, 200).obj(t)
		if j["status"] != "scheduled" || j["runAt"] != runAt.Format(time.RFC3339) || j["attempts"] != 4.0 || j["attemptsUsed"] != 1.0 {
			t.Fatalf("rescheduled job = %v", j)
		}
		if j := b.do("GET", "/api/jobs/"+ids["replaced"], b.a.read, nil).want(t, 200).obj(t); j["status"] != "superseded" {
			t.Fatalf("replaced job = %v", j)
		}
		for status, want := range map[string]string{"scheduled": ids["later"], "superseded": ids["replaced"], "succeeded": ids["done"], "queued": ids["now"]} {
			items := b.do("GET", "/api/jobs?status="+status, b.a.read, nil).want(t, 200).items(t)
			if len(items) != 1 || items[0]["id"] != want || items[0]["status"] != status {
				t.Errorf("status=%s: %v, want only %s", status, items, want)
			}
		}
	})
}
