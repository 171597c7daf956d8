package jobs

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/resolve"
	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/miekg/dns"
)

// TestDNSCheck runs the real handler against a loopback DNS server for each
// shape the customer's record can take.
func TestDNSCheck(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b := setup(t, dialect, func(c *Config) { c.DNSCheckIntervals = []time.Duration{time.Hour} })
		b.start()

		t.Run("present", func(t *testing.T) {
			b := b.with(t)
			d, job := b.domain("present")
			b.dns.SetCNAME(challengeName(d), strings.ToUpper(d.CNAMETarget)+".")
			b.wantVerified(d, job, []string{d.CNAMETarget})
		})
		t.Run("chained", func(t *testing.T) {
			b := b.with(t)
			d, job := b.domain("chained")
			b.dns.SetCNAME(challengeName(d), "alias.chained.example.net")
			b.dns.SetCNAME("alias.chained.example.net", d.CNAMETarget)
			b.wantVerified(d, job, []string{"alias.chained.example.net", d.CNAMETarget})
		})
		t.Run("absent", func(t *testing.T) {
			b := b.with(t)
			d, job := b.domain("absent")
			b.wantNotYet(d, job, "no CNAME at _acme-challenge.absent.example.com (the name does not exist); create a CNAME to "+d.CNAMETarget)
		})
		t.Run("wrong target", func(t *testing.T) {
			b := b.with(t)
			d, job := b.domain("wrong")
			b.dns.SetCNAME(challengeName(d), "x1.other-provider.example.net")
			b.wantNotYet(d, job, "_acme-challenge.wrong.example.com points to x1.other-provider.example.net, expected "+d.CNAMETarget)
		})
		t.Run("txt instead", func(t *testing.T) {
			b := b.with(t)
			d, job := b.domain("txt")
			b.dns.SetTXT(challengeName(d), "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0")
			b.wantNotYet(d, job, `_acme-challenge.txt.example.com has a TXT record ("LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0") instead of a CNAME; replace it with a CNAME to `+d.CNAMETarget)
		})
		t.Run("servfail", func(t *testing.T) {
			b := b.with(t)
			d, job := b.domain("servfail")
			b.dns.Fail(challengeName(d), dns.RcodeServerFailure)
			// An error uses an attempt and is retried with backoff; the 10ms
			// backoff of the test config makes that retry come next.
			j := b.wait(job.ID, 15*time.Second, "retried twice", func(j *dcvaas.Job) bool { return j.Attempts >= 2 })
			want := "DNS lookup of _acme-challenge.servfail.example.com failed (SERVFAIL); will retry"
			if j.LastError != want {
				t.Fatalf("lastError = %q", j.LastError)
			}
			if got := b.findDomain(d.ID); got.Status != dcvaas.DomainPendingCNAME || got.LastError != want {
				t.Fatalf("domain = %+v", got)
			}
			es := b.audit(job.ID)
			retry := es[2] // queued, started, retry_scheduled
			if retry.Action != "job.retry_scheduled" || retry.Details["attemptUsed"] != true || retry.Details["reason"] != "error" ||
				retry.Details["domainId"] != d.ID || retry.Details["message"] != want {
				t.Fatalf("audit = %v %+v", actions(es), retry.Details)
			}
			// Once DNS answers, the same job goes on to verify.
			b.dns.Remove(challengeName(d))
			b.dns.SetCNAME(challengeName(d), d.CNAMETarget)
			j = b.waitStatus(job.ID, dcvaas.JobSucceeded, 15*time.Second)
			if j.LastError != "" {
				t.Fatalf("job = %+v", j)
			}
		})
	})
}

func (b *bundle) wantVerified(d *dcvaas.Domain, job *dcvaas.Job, chain []string) {
	b.t.Helper()
	j := b.waitStatus(job.ID, dcvaas.JobSucceeded, 10*time.Second)
	var res struct {
		Outcome    string   `json:"outcome"`
		CNAMEChain []string `json:"cnameChain"`
	}
	if err := json.Unmarshal(j.Result, &res); err != nil || res.Outcome != "verified" || !slices.Equal(res.CNAMEChain, chain) || j.Attempts != 1 {
		b.t.Fatalf("job = %+v result %s", j, j.Result)
	}
	// The domain may already show start_issuance's first failure.
	got := b.findDomain(d.ID)
	if got.Status != dcvaas.DomainIssuing || (got.LastError != "" && got.LastError != errNoIssuer.Message) {
		b.t.Fatalf("domain = %+v", got)
	}
	if a := actions(b.audit(d.ID)); !slices.Equal(a, []string{"domain.created", "domain.dns_verified"}) {
		b.t.Fatalf("domain audit = %v", a)
	}
	if a := actions(b.audit(job.ID)); !slices.Equal(a, []string{"job.queued", "job.started", "job.succeeded"}) {
		b.t.Fatalf("job audit = %v", a)
	}
	// start_issuance was queued in the same transaction; with no Issuer it
	// fails honestly.
	jobs, _, err := b.db.ListJobs(b.ctx, b.org.ID, dcvaas.JobFilter{DomainID: d.ID, Type: dcvaas.JobStartIssuance, Page: dcvaas.Page{Limit: 10}})
	if err != nil || len(jobs) != 1 {
		b.t.Fatalf("issuance jobs = %v %v", jobs, err)
	}
	b.wait(jobs[0].ID, 10*time.Second, "failed once", func(j *dcvaas.Job) bool {
		return j.LastError == "certificate issuance is not implemented yet"
	})
}

func (b *bundle) wantNotYet(d *dcvaas.Domain, job *dcvaas.Job, msg string) {
	b.t.Helper()
	j := b.wait(job.ID, 10*time.Second, "rescheduled", func(j *dcvaas.Job) bool { return j.LastError != "" })
	if j.Status != dcvaas.JobQueued || j.LastError != msg || j.Attempts != 0 {
		b.t.Fatalf("job = %+v\nwant lastError %q", j, msg)
	}
	// Next check in an hour (the configured interval), by the product's
	// clock and River's.
	if wait := time.Until(j.RunAt); wait < 59*time.Minute || wait > 61*time.Minute {
		b.t.Fatalf("runAt in %s", wait)
	}
	if st := b.riverState(b.queueID(job.ID)); st != "scheduled" {
		b.t.Fatalf("river state %s", st)
	}
	if got := b.findDomain(d.ID); got.Status != dcvaas.DomainPendingCNAME || got.LastError != msg {
		b.t.Fatalf("domain = %+v", got)
	}
	es := b.audit(job.ID)
	if a := actions(es); !slices.Equal(a, []string{"job.queued", "job.started", "job.retry_scheduled"}) {
		b.t.Fatalf("audit = %v", a)
	}
	if det := es[2].Details; det["attemptUsed"] != false || det["reason"] != "not_yet" || det["message"] != msg {
		b.t.Fatalf("details = %+v", det)
	}
}

// TestDNSCheckRecheck: absent at first, the record appears, the next
// scheduled check finds it — no attempt used along the way.
func TestDNSCheckRecheck(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b := setup(t, dialect)
		b.start()
		d, job := b.domain("later")
		b.wait(job.ID, 10*time.Second, "rescheduled", func(j *dcvaas.Job) bool { return j.LastError != "" })
		b.dns.SetCNAME(challengeName(d), d.CNAMETarget)
		j := b.waitStatus(job.ID, dcvaas.JobSucceeded, 15*time.Second)
		if j.Attempts != 1 || b.findDomain(d.ID).Status != dcvaas.DomainIssuing {
			t.Fatalf("job = %+v", j)
		}
	})
}

// TestDNSCheckWindow: when the window has passed, the check gives up with
// what it found, and the domain keeps waiting for a new verify.
func TestDNSCheckWindow(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b := setup(t, dialect, func(c *Config) {
			c.DNSCheckWindow = time.Hour
			c.DNSCheckIntervals = []time.Duration{time.Second}
		})
		b.start()
		d, job := b.domain("never")
		b.dns.SetCNAME(challengeName(d), "other.example.net")
		b.wait(job.ID, 10*time.Second, "rescheduled", func(j *dcvaas.Job) bool { return j.LastError != "" })
		b.clock.Advance(61 * time.Minute)
		j := b.waitStatus(job.ID, dcvaas.JobFailed, 15*time.Second)
		want := "_acme-challenge.never.example.com points to other.example.net, expected " + d.CNAMETarget +
			" — gave up after checking for 1h0m0s; fix the record, then verify again"
		if j.LastError != want || j.Attempts != 0 {
			t.Fatalf("job = %+v", j)
		}
		if got := b.findDomain(d.ID); got.Status != dcvaas.DomainPendingCNAME || got.LastError != want {
			t.Fatalf("domain = %+v", got)
		}
		es := b.audit(job.ID)
		if last := es[len(es)-1]; last.Action != "job.failed" || last.Details["error"] != want || last.Details["domainId"] != d.ID {
			t.Fatalf("audit = %v %+v", actions(es), last.Details)
		}
	})
}

// TestVerifySupersedes: POST /verify while a check sleeps for an hour runs
// a check now; the sleeping one ends as superseded and leaves River.
func TestVerifySupersedes(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b := setup(t, dialect, func(c *Config) { c.DNSCheckIntervals = []time.Duration{time.Hour} })
		b.start()
		d, old := b.domain("verify")
		b.wait(old.ID, 10*time.Second, "rescheduled", func(j *dcvaas.Job) bool { return j.LastError != "" })
		oldQueue := b.queueID(old.ID)
		b.dns.SetCNAME(challengeName(d), d.CNAMETarget)
		now, err := b.db.EnqueueDomainJob(b.ctx, b.actor, d.ID, dcvaas.JobDNSCheck)
		if err != nil {
			t.Fatal(err)
		}
		b.waitStatus(now.ID, dcvaas.JobSucceeded, 10*time.Second)
		o := b.waitStatus(old.ID, dcvaas.JobSucceeded, time.Second)
		if string(o.Result) == "" || !strings.Contains(string(o.Result), now.ID) || o.View(time.Now()) != dcvaas.JobSuperseded {
			t.Fatalf("old = %+v %s", o, o.Result)
		}
		if st := b.riverState(oldQueue); st != "cancelled" {
			t.Fatalf("old river job %s", st)
		}
		if b.findDomain(d.ID).Status != dcvaas.DomainIssuing {
			t.Fatal("not issuing")
		}
		es := b.audit(old.ID)
		if last := es[len(es)-1]; last.Action != "job.succeeded" || last.Details["outcome"] != "superseded" {
			t.Fatalf("audit = %v", actions(es))
		}
	})
}

func TestDescribeChain(t *testing.T) {
	const target = "k7x2.verify.example"
	for _, tc := range []struct {
		c    resolve.Chain
		want string
	}{
		{resolve.Chain{Name: "_a.x.test", End: resolve.EndNXDOMAIN}, "no CNAME at _a.x.test (the name does not exist); create a CNAME to " + target},
		{resolve.Chain{Name: "_a.x.test", End: resolve.EndNoData}, "no CNAME at _a.x.test (the name exists without one); create a CNAME to " + target},
		{resolve.Chain{Name: "_a.x.test", End: resolve.EndNoData, TXT: []string{"a", "b"}}, `_a.x.test has a TXT record ("a" and 1 more) instead of a CNAME; replace it with a CNAME to ` + target},
		{resolve.Chain{Name: "_a.x.test", Targets: []string{"o.net"}, End: resolve.EndNXDOMAIN}, "_a.x.test points to o.net, expected " + target},
		{resolve.Chain{Name: "_a.x.test", Targets: []string{"a.net", "b.net"}, End: resolve.EndNoData}, "_a.x.test points to b.net (via a.net), expected " + target},
		{resolve.Chain{Name: "_a.x.test", Targets: []string{"a.net", "_a.x.test"}, End: resolve.EndLoop}, "_a.x.test has a CNAME loop (_a.x.test → a.net → _a.x.test), expected a CNAME to " + target},
	} {
		if got := describeChain(&tc.c, target+"."); got != tc.want {
			t.Errorf("got  %q\nwant %q", got, tc.want)
		}
	}
}

// TestCheckAfterOneClickSetupLooksAgainSoon: a check queued right after
// dcvaas created the CNAME itself (one-click setup) that misses the record
// (the provider's nameservers do not serve it yet) looks again within
// seconds, not at the next of the usual intervals (an hour here).
func TestCheckAfterOneClickSetupLooksAgainSoon(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b := setup(t, dialect, func(c *Config) { c.DNSCheckIntervals = []time.Duration{time.Hour} })
		b.start()
		d, first := b.domain("oneclick")
		b.wait(first.ID, 10*time.Second, "first check rescheduled", func(j *dcvaas.Job) bool { return j.LastError != "" })
		job, err := b.db.RecordDNSSetup(b.ctx, b.actor, d.ID, map[string]any{"provider": "cloudflare"}, true)
		if err != nil {
			t.Fatal(err)
		}
		b.wait(job.ID, 10*time.Second, "setup check missed the record", func(j *dcvaas.Job) bool { return j.LastError != "" })
		start := time.Now()
		b.dns.SetCNAME(challengeName(d), d.CNAMETarget) // the provider now serves it
		deadline := time.Now().Add(8 * time.Second)
		for b.findDomain(d.ID).Status == dcvaas.DomainPendingCNAME {
			if time.Now().After(deadline) {
				t.Fatalf("domain still pending_cname %s after the record appeared", time.Since(start))
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Logf("verified %s after the record appeared", time.Since(start).Round(time.Millisecond))
	})
}
