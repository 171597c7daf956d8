package connection_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/connection"
	"github.com/dcvaas/dcvaas/provider"
	"github.com/dcvaas/dcvaas/provider/providertest"
)

func TestMatchZone(t *testing.T) {
	zones := []provider.Zone{{ID: "1", Name: "example.co.uk"}, {ID: "2", Name: "xample.co.uk"}, {ID: "3", Name: "c.example.co.uk"}, {ID: "4", Name: "co.uk"}}
	for name, want := range map[string]string{
		"a.b.example.co.uk": "1", // longest suffix at a label boundary
		"example.co.uk":     "1", // the apex itself
		"x.c.example.co.uk": "3", // a delegated subzone wins over its parent
		"C.Example.CO.UK.":  "3", // case and trailing dot do not matter
		"ample.co.uk":       "4",
		"example.com":       "",
	} {
		z, ok := connection.MatchZone(zones, name)
		if got := map[bool]string{true: z.ID, false: ""}[ok]; got != want {
			t.Errorf("MatchZone(%s) = %q, want %q", name, got, want)
		}
	}
}

func (b *bundle) cloudflareToken(t *testing.T) *dcvaas.Connection {
	t.Helper()
	b.cf.AddToken("cf-api-token")
	conn, err := b.svc.Create(b.ctx, b.actor, connection.CreateInput{Provider: "cloudflare", Credential: connection.Credential{APIToken: "cf-api-token"}})
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

func TestSetupConflictsAndIdempotence(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b *bundle) {
		b.cf.AddZone("example.com")
		conn := b.cloudflareToken(t)
		d := b.newDomain(t, "shop.example.com")
		name := "_acme-challenge.shop.example.com"
		in := connection.SetupInput{ConnectionID: conn.ID}

		// Someone's TXT record from a manual ACME client is in the way.
		b.cf.AddRecord("example.com", providertest.Record{Type: "TXT", Name: name, Content: "manual-token", TTL: 120})
		_, err := b.svc.SetupDNS(b.ctx, b.actor, d.ID, in)
		wantCode(t, err, dcvaas.ECONFLICT)
		if msg := dcvaas.ErrorMessage(err); !strings.Contains(msg, "TXT manual-token") || !strings.Contains(msg, name) {
			t.Fatalf("conflict message %q does not name the record", msg)
		}
		if recs := b.cf.Records(name); len(recs) != 1 || recs[0].Type != "TXT" {
			t.Fatalf("refused setup changed the zone: %+v", recs)
		}

		in.Replace = true
		res, err := b.svc.SetupDNS(b.ctx, b.actor, d.ID, in)
		if err != nil {
			t.Fatal(err)
		}
		if res.Outcome != connection.OutcomeReplaced || len(res.Replaced) != 1 || res.Replaced[0].Type != "TXT" {
			t.Fatalf("setup %+v", res)
		}
		if recs := b.cf.Records(name); len(recs) != 1 || recs[0].Type != "CNAME" || recs[0].Content != d.CNAMETarget {
			t.Fatalf("records %+v", recs)
		}

		// Running it again finds the record in place.
		in.Replace = false
		res, err = b.svc.SetupDNS(b.ctx, b.actor, d.ID, in)
		if err != nil || res.Outcome != connection.OutcomeUnchanged || res.Job == nil {
			t.Fatalf("rerun %+v, %v", res, err)
		}

		// Another provider's CNAME is a conflict too, and replace overwrites it.
		other := b.newDomain(t, "blog.example.com")
		otherName := "_acme-challenge.blog.example.com"
		b.cf.AddRecord("example.com", providertest.Record{Type: "CNAME", Name: otherName, Content: "x.other-dcv.example.net", TTL: 300})
		_, err = b.svc.SetupDNS(b.ctx, b.actor, other.ID, in)
		wantCode(t, err, dcvaas.ECONFLICT)
		if !strings.Contains(dcvaas.ErrorMessage(err), "CNAME x.other-dcv.example.net") {
			t.Fatalf("message %q", dcvaas.ErrorMessage(err))
		}
		if _, err := b.svc.SetupDNS(b.ctx, b.actor, other.ID, connection.SetupInput{ConnectionID: conn.ID, Replace: true}); err != nil {
			t.Fatal(err)
		}
		if recs := b.cf.Records(otherName); len(recs) != 1 || recs[0].Content != other.CNAMETarget {
			t.Fatalf("records %+v", recs)
		}
	})
}

func TestSetupRefusals(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b *bundle) {
		b.cf.AddZone("example.com")
		b.cf.AddZone("example.org")
		conn := b.cloudflareToken(t)
		d := b.newDomain(t, "shop.example.net")

		_, err := b.svc.SetupDNS(b.ctx, b.actor, d.ID, connection.SetupInput{ConnectionID: conn.ID})
		wantCode(t, err, dcvaas.EINVALID)
		if msg := dcvaas.ErrorMessage(err); !strings.Contains(msg, "zones seen: example.com, example.org") {
			t.Fatalf("message %q", msg)
		}
		_, err = b.svc.SetupDNS(b.ctx, b.actor, d.ID, connection.SetupInput{})
		wantCode(t, err, dcvaas.EINVALID)
		_, err = b.svc.SetupDNS(b.ctx, b.actor, d.ID, connection.SetupInput{ConnectionID: "missing"})
		wantCode(t, err, dcvaas.ENOTFOUND)
		_, err = b.svc.SetupDNS(b.ctx, b.actor, "missing", connection.SetupInput{ConnectionID: conn.ID})
		wantCode(t, err, dcvaas.ENOTFOUND)
		other := b.actor
		other.OrgID = "another-org"
		_, err = b.svc.SetupDNS(b.ctx, other, d.ID, connection.SetupInput{ConnectionID: conn.ID})
		wantCode(t, err, dcvaas.ENOTFOUND)
	})
}

// A provider outage does not fail the setup: it is queued as a dns_setup
// job (setupjob_test.go runs it), one per domain however often the caller
// asks, and nothing about the outage is recorded as a setup or held
// against the connection. A caller's own retry once the provider is back
// still completes the setup at once.
func TestSetupProviderOutage(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b *bundle) {
		b.cf.AddZone("example.com")
		conn := b.cloudflareToken(t)
		d := b.newDomain(t, "shop.example.com")
		in := connection.SetupInput{ConnectionID: conn.ID}

		b.cf.FailNext(http.StatusBadGateway)
		res, err := b.svc.SetupDNS(b.ctx, b.actor, d.ID, in)
		if err != nil || res.Outcome != connection.OutcomeQueued || res.Job == nil || res.Job.Type != dcvaas.JobDNSSetup ||
			res.Job.Status != dcvaas.JobQueued || res.Record.Values[0] != d.CNAMETarget {
			t.Fatalf("setup during an outage: %+v, %v", res, err)
		}
		if !strings.Contains(res.Reason, "Cloudflare is unavailable (HTTP 502)") {
			t.Fatalf("reason %q", res.Reason)
		}
		// Failing mid-way, after the zone and record lookups: the job
		// already queued answers, not a second one.
		b.cf.FailNext(0, 0, http.StatusServiceUnavailable)
		again, err := b.svc.SetupDNS(b.ctx, b.actor, d.ID, connection.SetupInput{ConnectionID: conn.ID, Replace: true})
		if err != nil || again.Outcome != connection.OutcomeQueued || again.Job.ID != res.Job.ID || again.Zone != "example.com" {
			t.Fatalf("second setup during the outage: %+v, %v", again, err)
		}
		queued, total, err := b.db.ListJobs(b.ctx, b.actor.OrgID, dcvaas.JobFilter{Type: dcvaas.JobDNSSetup, Page: dcvaas.Page{Limit: 5}})
		if err != nil || total != 1 || queued[0].ID != res.Job.ID {
			t.Fatalf("dns_setup jobs %d (%v)", total, err)
		}
		if args, err := b.db.DNSSetupArgs(b.ctx, res.Job.ID); err != nil || args != (dcvaas.DNSSetupArgs{ConnectionID: conn.ID}) {
			t.Fatalf("job input %+v, %v", args, err)
		}

		if _, err := b.svc.SetupDNS(b.ctx, b.actor, d.ID, in); err != nil {
			t.Fatalf("retry: %v", err)
		}
		if recs := b.cf.Records("_acme-challenge.shop.example.com"); len(recs) != 1 {
			t.Fatalf("records %+v", recs)
		}
		setups, _, _ := b.db.ListAudit(b.ctx, b.actor.OrgID, dcvaas.AuditFilter{Action: "domain.dns_setup", Page: dcvaas.Page{Limit: 5}})
		if len(setups) != 1 {
			t.Fatalf("the failed attempts were audited as setups: %d", len(setups))
		}
		queuedAudit, _, _ := b.db.ListAudit(b.ctx, b.actor.OrgID, dcvaas.AuditFilter{Action: "job.queued", Page: dcvaas.Page{Limit: 50}})
		n := 0
		for _, e := range queuedAudit {
			if e.EntityID == res.Job.ID {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("the dns_setup job was audited as queued %d times", n)
		}
		got, _ := b.svc.Get(b.ctx, b.actor.OrgID, conn.ID)
		if got.LastError != "" {
			t.Fatalf("an outage was recorded against the connection: %q", got.LastError)
		}
	})
}

func TestSetupGoDaddy(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b *bundle) {
		b.gd.AddKey("gd-key", "gd-secret")
		b.gd.AddDomain("example.co.uk")
		conn, err := b.svc.Create(b.ctx, b.actor, connection.CreateInput{Provider: "godaddy",
			Credential: connection.Credential{APIKey: "gd-key", APISecret: "gd-secret"}})
		if err != nil {
			t.Fatal(err)
		}
		d := b.newDomain(t, "a.b.example.co.uk")
		res, err := b.svc.SetupDNS(b.ctx, b.actor, d.ID, connection.SetupInput{ConnectionID: conn.ID})
		if err != nil || res.Zone != "example.co.uk" {
			t.Fatalf("setup %+v, %v", res, err)
		}
		recs := b.gd.Records("_acme-challenge.a.b.example.co.uk")
		if len(recs) != 1 || recs[0].Type != "CNAME" || recs[0].Content != d.CNAMETarget {
			t.Fatalf("records %+v", recs)
		}
		if res, err := b.svc.SetupDNS(b.ctx, b.actor, d.ID, connection.SetupInput{ConnectionID: conn.ID}); err != nil || res.Outcome != connection.OutcomeUnchanged {
			t.Fatalf("rerun %+v, %v", res, err)
		}
		b.assertNoLeak(t, "gd-secret")
	})
}

func TestSetupRoute53WaitsForSync(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b *bundle) {
		role := "arn:aws:iam::222222222222:role/dcvaas-dns"
		b.r53.AddRole(role, connection.ExternalID(b.actor.OrgID))
		b.r53.AddZone("example.com", false)
		b.r53.SetInSyncAfter(3)
		conn, err := b.svc.Create(b.ctx, b.actor, connection.CreateInput{Provider: "route53", Credential: connection.Credential{RoleARN: role}})
		if err != nil {
			t.Fatal(err)
		}
		d := b.newDomain(t, "shop.example.com")
		res, err := b.svc.SetupDNS(b.ctx, b.actor, d.ID, connection.SetupInput{ConnectionID: conn.ID})
		if err != nil {
			t.Fatal(err)
		}
		if b.r53.ChangePolls() != 4 || res.Job == nil {
			t.Fatalf("GetChange polled %d times (want 3 PENDING + 1 INSYNC); job %v", b.r53.ChangePolls(), res.Job)
		}
		recs := b.r53.Records("_acme-challenge.shop.example.com")
		if len(recs) != 1 || recs[0].Content != d.CNAMETarget+"." || recs[0].TTL != 300 {
			t.Fatalf("records %+v", recs)
		}
	})
}

// A domain already past verification gets its record, but no new check,
// which would restart its issuance.
func TestSetupActiveDomainQueuesNothing(t *testing.T) {
	b := setup(t, "sqlite")
	b.cf.AddZone("example.com")
	conn := b.cloudflareToken(t)
	d := b.newDomain(t, "shop.example.com")
	if _, err := b.db.SQL().ExecContext(b.ctx, `UPDATE domains SET status = 'active' WHERE id = $1`, d.ID); err != nil {
		t.Fatal(err)
	}
	res, err := b.svc.SetupDNS(b.ctx, b.actor, d.ID, connection.SetupInput{ConnectionID: conn.ID})
	if err != nil || res.Job != nil {
		t.Fatalf("setup %+v, %v", res, err)
	}
}
