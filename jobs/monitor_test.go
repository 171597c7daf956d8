package jobs

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/miekg/dns"
)

// TestDelegationMonitoring follows one active domain's CNAME through the
// daily check: in place, gone, pointing elsewhere, unanswerable, back.
func TestDelegationMonitoring(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		obs := &countingObserver{}
		b := setup(t, dialect, func(c *Config) { c.Observer = obs })
		now := b.clock.Now()
		d := b.activeDomain("watched", now.Add(-day), now.Add(89*day))
		other := b.activeDomain("other", now.Add(-day), now.Add(89*day))
		b.dns.SetCNAME(challengeName(d), d.CNAMETarget)
		b.dns.SetCNAME(challengeName(other), other.CNAMETarget)

		check := func(want DelegationCounts) *dcvaas.Domain {
			t.Helper()
			got, err := b.e.CheckDelegations(b.ctx, []string{d.ID, other.ID})
			if err != nil || got != want {
				t.Fatalf("counts %+v (%v), want %+v", got, err, want)
			}
			return b.findDomain(d.ID)
		}
		domainAudit := func() []string {
			var out []string
			for _, a := range actions(b.audit(d.ID)) {
				if strings.HasPrefix(a, "domain.cname") {
					out = append(out, a)
				}
			}
			return out
		}

		if got := check(DelegationCounts{OK: 2}); got.CNAMEStatus != dcvaas.CNAMEOK || got.LastError != "" || got.Delegation() != dcvaas.CNAMEOK {
			t.Fatalf("in place: %+v", got)
		}

		b.dns.Remove(challengeName(d))
		got := check(DelegationCounts{OK: 1, Missing: 1})
		wantMsg := "no CNAME at _acme-challenge.watched.example.com (the name does not exist); create a CNAME to " + d.CNAMETarget + missingSuffix
		if got.CNAMEStatus != dcvaas.CNAMEMissing || got.LastError != wantMsg || got.Status != dcvaas.DomainActive {
			t.Fatalf("gone: %+v", got)
		}
		es := b.audit(d.ID)
		if last := es[len(es)-1]; last.Action != "domain.cname_missing" || last.Details["expected"] != d.CNAMETarget ||
			!strings.HasPrefix(wantMsg, last.Details["found"].(string)) {
			t.Fatalf("audit %s %v", last.Action, last.Details)
		}

		// Still missing, but now pointing elsewhere: the message follows,
		// no second audit entry.
		b.dns.SetCNAME(challengeName(d), "x1.other-provider.example.net")
		got = check(DelegationCounts{OK: 1, Missing: 1})
		if !strings.HasPrefix(got.LastError, "_acme-challenge.watched.example.com points to x1.other-provider.example.net, expected ") {
			t.Fatalf("elsewhere: %q", got.LastError)
		}
		if a := domainAudit(); !slices.Equal(a, []string{"domain.cname_missing"}) {
			t.Fatalf("audit %v", a)
		}

		// A lookup that fails says nothing about the record.
		b.dns.Fail(challengeName(d), dns.RcodeServerFailure)
		if got = check(DelegationCounts{OK: 1, Failed: 1}); got.CNAMEStatus != dcvaas.CNAMEMissing {
			t.Fatalf("servfail changed it: %+v", got)
		}

		// Back: ok, our message gone, audit cname_restored.
		b.dns.Remove(challengeName(d))
		b.dns.SetCNAME(challengeName(d), d.CNAMETarget)
		if got = check(DelegationCounts{OK: 2}); got.CNAMEStatus != dcvaas.CNAMEOK || got.LastError != "" {
			t.Fatalf("restored: %+v", got)
		}
		if a := domainAudit(); !slices.Equal(a, []string{"domain.cname_missing", "domain.cname_restored"}) {
			t.Fatalf("audit %v", a)
		}
		if got := typesOf(b.eventsOf(d.ID)); !slices.Equal(got[len(got)-2:], []dcvaas.EventType{
			dcvaas.EventDomainDelegationLost, dcvaas.EventDomainDelegationRestored}) {
			t.Fatalf("events %v", got)
		}
		if obs.get("delegation:missing") != 2 || obs.get("delegation:error") != 1 || obs.get("delegation:ok") != 7 {
			t.Fatalf("observed %v", obs.n)
		}

		// Another error the domain shows is not ours to clear.
		if _, err := b.db.SQL().ExecContext(b.ctx, `UPDATE domains SET last_error = 'renewal failed: CA down' WHERE id = $1`, d.ID); err != nil {
			t.Fatal(err)
		}
		if got = check(DelegationCounts{OK: 2}); got.LastError != "renewal failed: CA down" {
			t.Fatalf("foreign error cleared: %+v", got)
		}
	})
}

// The daily scan queues the checks of every active domain in batches
// spread over the window, and a started engine works them.
func TestDelegationScan(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b := setup(t, dialect, func(c *Config) { c.Renewal.PageSize = 40 })
		now := b.clock.Now()
		var ds []*dcvaas.Domain
		for i := range 120 {
			d := b.activeDomain("scan"+string(rune('a'+i%26))+strings.Repeat("x", i/26), now.Add(-day), now.Add(89*day))
			if i%2 == 0 {
				b.dns.SetCNAME(challengeName(d), d.CNAMETarget)
			}
			ds = append(ds, d)
		}
		b.domain("pending") // not active: not checked
		n, err := b.e.DelegationScan(b.ctx)
		if err != nil || n != 120 {
			t.Fatalf("scan: %d, %v", n, err)
		}
		// 40 per page, 50 per job: 3 pages of 1 job each.
		if got := b.countRiver(kindDelegationCheck); got != 3 {
			t.Fatalf("%d check jobs", got)
		}
		b.start()
		deadline := time.Now().Add(20 * time.Second)
		for {
			var missing int
			if err := b.db.SQL().QueryRowContext(b.ctx, `SELECT COUNT(*) FROM domains WHERE cname_status = 'missing'`).Scan(&missing); err != nil {
				t.Fatal(err)
			}
			if missing == 60 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d domains missing, want 60", missing)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if got := b.findDomain(ds[1].ID); got.CNAMEStatus != dcvaas.CNAMEMissing || b.findDomain(ds[0].ID).CNAMEStatus != dcvaas.CNAMEOK {
			t.Fatalf("domains %+v", got)
		}
	})
}
