package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas/acme/acmetest"
	"github.com/dcvaas/dcvaas/sqlstore/storetest"
)

// TestRateLimitedIssuanceWaitsForCA runs the real program against a CA
// (Pebble) that refuses new orders as rate limited with Retry-After: 2h.
// The failed start_issuance is retried when the CA said — its runAt, its
// job.retry_scheduled entry and River's queue all say so — not after the
// one-minute backoff that would only hit the limit again.
func TestRateLimitedIssuanceWaitsForCA(t *testing.T) {
	if testing.Short() {
		t.Skip("talks to an in-process Pebble")
	}
	for _, dialect := range storetest.Dialects(t) {
		t.Run(string(dialect), func(t *testing.T) {
			dbURL := storetest.URL(t, dialect)
			w := newIssuanceWorld(t, dbURL)
			const retryAfter = 2 * time.Hour
			w.ca.SetFault(acmetest.Fault{Mode: acmetest.FaultRateLimited, RetryAfter: retryAfter})
			token, _ := bootstrapOrg(t, w.vars)
			base := w.serve(t)

			name := "limited-" + randLabel(5) + ".example.com"
			id := addDomain(t, w.dns, base, token, name)["id"].(string)
			if status, _ := call(t, "POST", base+"/api/domains/"+id+"/verify", token, nil); status != http.StatusAccepted {
				t.Fatalf("verify: %d", status)
			}
			before := time.Now()

			// The first attempt of start_issuance meets the rate limit.
			var job map[string]any
			deadline := time.Now().Add(60 * time.Second)
			for {
				_, list := call(t, "GET", base+"/api/jobs?type=start_issuance&domain_id="+id, token, nil)
				if items, _ := list["items"].([]any); len(items) == 1 {
					job = items[0].(map[string]any)
					if job["attempts"] == 1.0 && job["attemptsUsed"] == 1.0 && job["status"] == "scheduled" {
						break
					}
				}
				if time.Now().After(deadline) {
					t.Fatalf("start_issuance after 60s: %v", job)
				}
				time.Sleep(50 * time.Millisecond)
			}
			after := time.Now()
			runAt, err := time.Parse(time.RFC3339Nano, job["runAt"].(string))
			if err != nil {
				t.Fatal(err)
			}
			// Retry-After counts from the CA's answer, between before and
			// after; a minute of jitter at most comes on top.
			if runAt.Before(before.Add(retryAfter)) || runAt.After(after.Add(retryAfter+time.Minute)) {
				t.Fatalf("runAt %s, %s after the attempt; want the CA's %s", runAt, runAt.Sub(after).Round(time.Second), retryAfter)
			}

			_, audit := call(t, "GET", base+"/api/audit?action=job.retry_scheduled", token, nil)
			var entry map[string]any
			for _, it := range audit["items"].([]any) {
				if e := it.(map[string]any); e["entityId"] == job["id"] {
					entry = e
				}
			}
			det, _ := entry["details"].(map[string]any)
			if det["nextRunAt"] != runAt.UTC().Format(time.RFC3339) || det["retryAfter"] == nil || det["attemptUsed"] != true {
				t.Fatalf("job.retry_scheduled = %v", entry)
			}
			ra, err := time.Parse(time.RFC3339, det["retryAfter"].(string))
			if err != nil || ra.Before(before.Add(retryAfter).Add(-time.Second)) || ra.After(after.Add(retryAfter)) {
				t.Fatalf("retryAfter %v (%v)", det["retryAfter"], err)
			}

			// River holds the next attempt until then.
			db := storetest.Open(t, dbURL)
			var state string
			var scheduled time.Time
			if err := db.SQL().QueryRow(`SELECT state, scheduled_at FROM river_job WHERE id = (SELECT queue_job_id FROM jobs WHERE id = $1)`, job["id"]).Scan(&state, &scheduled); err != nil {
				t.Fatal(err)
			}
			if state != "scheduled" || scheduled.Sub(runAt).Abs() > time.Second {
				t.Fatalf("River job %s at %s; runAt %s", state, scheduled, runAt)
			}
		})
	}
}
