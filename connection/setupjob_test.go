package connection_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/connection"
	"github.com/dcvaas/dcvaas/jobs"
	"github.com/dcvaas/dcvaas/provider/providertest"
	"github.com/dcvaas/dcvaas/resolve/resolvetest"
)

// engine builds a job engine on the bundle's database with the service as
// its dns_setup hook, not yet started: from here on the store queues every
// job with it. Retries come fast; DNS checks find nothing (the resolver
// knows no record) and wait an hour, so that nothing moves past them.
func (b *bundle) engine(t *testing.T) *jobs.Engine {
	t.Helper()
	if err := jobs.Migrate(b.ctx, b.db); err != nil {
		t.Fatal(err)
	}
	e, err := jobs.New(jobs.Config{
		DB: b.db, Clock: b.clock.Now, DNSSetup: b.svc, Resolvers: []string{resolvetest.New(t).Addr},
		Workers: 2, RetryBackoff: 20 * time.Millisecond, DNSCheckIntervals: []time.Duration{time.Hour},
		ShutdownTimeout: 5 * time.Second, FetchPollInterval: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func start(t *testing.T, e *jobs.Engine) {
	t.Helper()
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		e.Stop(ctx)
	})
}

// waitJob polls a job until it is finished (succeeded or failed).
func (b *bundle) waitJob(t *testing.T, id string) *dcvaas.Job {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		j, err := b.db.FindJob(b.ctx, b.actor.OrgID, id)
		if err != nil {
			t.Fatal(err)
		}
		if j.Status == dcvaas.JobSucceeded || j.Status == dcvaas.JobFailed {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s still %s: %+v", id, j.Status, j)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// auditOf returns the actions recorded about an entity, oldest first.
func (b *bundle) auditOf(t *testing.T, entityID string) []string {
	t.Helper()
	all, _, err := b.db.ListAudit(b.ctx, b.actor.OrgID, dcvaas.AuditFilter{Page: dcvaas.Page{Limit: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range slices.Backward(all) {
		if e.EntityID == entityID {
			out = append(out, e.Action)
		}
	}
	return out
}

// The provider answers 5xx to the API's attempt and to the job's first:
// the job retries with backoff, creates the CNAME once the provider is
// back, records the setup as the API would have, and queues the dns_check.
func TestSetupJobRetriesProviderOutage(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b *bundle) {
		b.cf.AddZone("example.com")
		conn := b.cloudflareToken(t)
		// Created before the engine: its first dns_check is never run.
		d := b.newDomain(t, "shop.example.com")
		e := b.engine(t)

		b.cf.FailNext(http.StatusBadGateway, http.StatusServiceUnavailable)
		res, err := b.svc.SetupDNS(b.ctx, b.actor, d.ID, connection.SetupInput{ConnectionID: conn.ID})
		if err != nil || res.Outcome != connection.OutcomeQueued {
			t.Fatalf("setup %+v, %v", res, err)
		}
		start(t, e)
		j := b.waitJob(t, res.Job.ID)
		if j.Status != dcvaas.JobSucceeded || j.Attempts != 2 || j.MaxAttempts != dcvaas.DefaultMaxAttempts {
			t.Fatalf("job %+v", j)
		}
		if recs := b.cf.Records("_acme-challenge.shop.example.com"); len(recs) != 1 || recs[0].Type != "CNAME" || recs[0].Content != d.CNAMETarget {
			t.Fatalf("records %+v", recs)
		}
		var result struct{ Outcome, Zone, DNSCheckJobID string }
		if err := json.Unmarshal(j.Result, &result); err != nil || result.Outcome != connection.OutcomeCreated || result.Zone != "example.com" {
			t.Fatalf("result %s (%v)", j.Result, err)
		}
		check, err := b.db.FindJob(b.ctx, b.actor.OrgID, result.DNSCheckJobID)
		if err != nil || check.Type != dcvaas.JobDNSCheck || check.DomainID != d.ID {
			t.Fatalf("dns_check %+v, %v", check, err)
		}
		want := []string{"job.queued", "job.started", "job.retry_scheduled", "job.started", "job.succeeded"}
		if got := b.auditOf(t, j.ID); !slices.Equal(got, want) {
			t.Fatalf("job audit %v, want %v", got, want)
		}
		setups, _, _ := b.db.ListAudit(b.ctx, b.actor.OrgID, dcvaas.AuditFilter{Action: "domain.dns_setup", Page: dcvaas.Page{Limit: 5}})
		if len(setups) != 1 || setups[0].UserID != "" || setups[0].Details["outcome"] != connection.OutcomeCreated {
			t.Fatalf("setups %+v", setups)
		}
		// The outage the job retried through is not left on the domain, nor
		// held against the connection.
		if got, _ := b.db.FindDomain(b.ctx, b.actor.OrgID, d.ID); strings.Contains(got.LastError, "unavailable") {
			t.Fatalf("domain lastError %q", got.LastError)
		}
		if got, _ := b.svc.Get(b.ctx, b.actor.OrgID, conn.ID); got.LastError != "" {
			t.Fatalf("connection lastError %q", got.LastError)
		}

		// A rerun (as after a crash before the outcome was recorded) finds
		// the record in place, and checks again only while the domain
		// awaits verification.
		args := dcvaas.DNSSetupArgs{ConnectionID: conn.ID}
		again, err := b.svc.RunDNSSetup(b.ctx, j, args)
		if m, _ := again.(map[string]any); err != nil || m["outcome"] != connection.OutcomeUnchanged || m["dnsCheckJobId"] == nil {
			t.Fatalf("rerun %v, %v", again, err)
		}
		if _, err := b.db.SQL().ExecContext(b.ctx, `UPDATE domains SET status = 'active' WHERE id = $1`, d.ID); err != nil {
			t.Fatal(err)
		}
		again, err = b.svc.RunDNSSetup(b.ctx, j, args)
		if m, _ := again.(map[string]any); err != nil || m["outcome"] != connection.OutcomeUnchanged || m["dnsCheckJobId"] != nil {
			t.Fatalf("rerun for an active domain %v, %v", again, err)
		}
		if recs := b.cf.Records("_acme-challenge.shop.example.com"); len(recs) != 1 {
			t.Fatalf("records after reruns %+v", recs)
		}
	})
}

// What waiting cannot fix ends the job at once, after one attempt, with
// the reason on the job and the domain: a record in the way, a connection
// deleted meanwhile.
func TestSetupJobPermanentFailures(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b *bundle) {
		b.cf.AddZone("example.com")
		conn := b.cloudflareToken(t)
		// Created before the engine: their first dns_checks, which would
		// note a missing CNAME on the domains, are never run.
		blocked, gone := b.newDomain(t, "shop.example.com"), b.newDomain(t, "blog.example.com")
		e := b.engine(t)

		b.cf.FailNext(http.StatusBadGateway)
		first, err := b.svc.SetupDNS(b.ctx, b.actor, blocked.ID, connection.SetupInput{ConnectionID: conn.ID})
		if err != nil || first.Outcome != connection.OutcomeQueued {
			t.Fatalf("setup %+v, %v", first, err)
		}
		// While the provider was down, someone created a record there.
		b.cf.AddRecord("example.com", providertest.Record{Type: "TXT", Name: "_acme-challenge.shop.example.com", Content: "manual-token", TTL: 120})

		oauthConn := b.connectOAuth(t)
		b.cf.FailNext(http.StatusBadGateway)
		second, err := b.svc.SetupDNS(b.ctx, b.actor, gone.ID, connection.SetupInput{ConnectionID: oauthConn.ID})
		if err != nil || second.Outcome != connection.OutcomeQueued {
			t.Fatalf("setup %+v, %v", second, err)
		}
		if err := b.svc.Delete(b.ctx, b.actor, oauthConn.ID); err != nil {
			t.Fatal(err)
		}

		start(t, e)
		for _, c := range []struct {
			job    *dcvaas.Job
			domain *dcvaas.Domain
			reason string
		}{
			{first.Job, blocked, `already has TXT manual-token; set "replace": true`},
			{second.Job, gone, "connection " + oauthConn.ID + " was deleted"},
		} {
			j := b.waitJob(t, c.job.ID)
			if j.Status != dcvaas.JobFailed || j.Attempts != 1 || !strings.Contains(j.LastError, c.reason) ||
				!strings.HasPrefix(j.LastError, "one-click DNS setup: ") {
				t.Fatalf("job %+v", j)
			}
			if got := b.auditOf(t, j.ID); slices.Contains(got, "job.retry_scheduled") || got[len(got)-1] != "job.failed" {
				t.Fatalf("job audit %v", got)
			}
			d, err := b.db.FindDomain(b.ctx, b.actor.OrgID, c.domain.ID)
			if err != nil || d.LastError != j.LastError || d.Status != dcvaas.DomainPendingCNAME {
				t.Fatalf("domain %+v, %v", d, err)
			}
		}
		if recs := b.cf.Records("_acme-challenge.shop.example.com"); len(recs) != 1 || recs[0].Type != "TXT" {
			t.Fatalf("a refused setup changed the zone: %+v", recs)
		}
		setups, _, _ := b.db.ListAudit(b.ctx, b.actor.OrgID, dcvaas.AuditFilter{Action: "domain.dns_setup", Page: dcvaas.Page{Limit: 5}})
		if len(setups) != 0 {
			t.Fatalf("failed setups audited as done: %+v", setups)
		}
	})
}
