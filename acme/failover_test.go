package acme_test

import (
	"strings"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/acme"
	"github.com/dcvaas/dcvaas/acme/acmetest"
)

// The first CA refuses or fails; the same call moves on to the second,
// which requires EAB as ZeroSSL does, and it issues.
func TestFailover(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fault  acmetest.Fault
		reason string
		audit  bool // ca.rate_limit expected
		// minUntil is the least back-off stored for the first CA.
		minUntil time.Duration
	}{
		{"rate_limited", acmetest.Fault{Mode: acmetest.FaultRateLimited, RetryAfter: 2 * time.Hour}, "rate limited", true, 110 * time.Minute},
		{"unavailable", acmetest.Fault{Mode: acmetest.FaultUnavailable, RetryAfter: 10 * time.Minute}, "unavailable", false, 9 * time.Minute},
		{"down", acmetest.Fault{Mode: acmetest.FaultDown}, "unreachable", false, 50 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forEachDialect(t, func(t *testing.T, e *env) {
				le := e.newCA("letsencrypt")
				zs := e.newCA("zerossl")
				le.SetFault(tc.fault)
				is := e.issuer([]string{"letsencrypt", "zerossl"})
				d := e.domain(true, "")
				res, err := is.Obtain(e.ctx, d, false)
				if err != nil {
					t.Fatal(err)
				}
				c := e.cert(d)
				e.verifyChain(c, zs, d.Name, "x."+d.Name)
				if res.CAName != "zerossl" || c.CAName != "zerossl" || len(res.Skipped) != 1 || res.Skipped[0].Reason != tc.reason {
					t.Fatalf("result = %+v", res)
				}
				if left := e.txtLeft(d); len(left) != 0 {
					t.Fatalf("TXT values left: %v", left)
				}
				// The back-off is in the database, for every node.
				backoffs, err := e.db.CABackoffs(e.ctx, time.Now())
				if err != nil {
					t.Fatal(err)
				}
				if until, ok := backoffs["letsencrypt"]; !ok || time.Until(until) < tc.minUntil {
					t.Fatalf("back-offs = %v", backoffs)
				}
				if got := len(e.audit("ca.rate_limit")); (got == 1) != tc.audit {
					t.Fatalf("%d ca.rate_limit entries", got)
				}
				fo := e.audit("ca.failover")
				if len(fo) != 1 || fo[0].EntityID != "letsencrypt" || fo[0].Details["to"] != "zerossl" || fo[0].Details["domainId"] != d.ID {
					t.Fatalf("ca.failover = %+v", fo)
				}

				// Another domain, another job (a new Issuer: another node):
				// the first CA is not even asked while it backs off.
				le.SetFault(acmetest.Fault{})
				seen := le.Requests()
				other := e.domain(false, "")
				res, err = e.issuer([]string{"letsencrypt", "zerossl"}).Obtain(e.ctx, other, false)
				if err != nil {
					t.Fatal(err)
				}
				if res.CAName != "zerossl" || le.Requests() != seen || res.Skipped[0].Reason != "backoff" {
					t.Fatalf("second issuance: %+v, %d requests to the first CA", res, le.Requests()-seen)
				}
			})
		})
	}
}

// All CAs fail: the error says so, when to try again, and leaves nothing.
func TestAllCAsFail(t *testing.T) {
	e := setup(t, "sqlite")
	e.newCA("letsencrypt").SetFault(acmetest.Fault{Mode: acmetest.FaultRateLimited, RetryAfter: time.Hour})
	e.newCA("zerossl").SetFault(acmetest.Fault{Mode: acmetest.FaultUnavailable, RetryAfter: 5 * time.Minute})
	d := e.domain(true, "")
	_, err := e.issuer([]string{"letsencrypt", "zerossl"}).Obtain(e.ctx, d, false)
	if dcvaas.ErrorCode(err) != dcvaas.EUNAVAILABLE || !strings.Contains(dcvaas.ErrorMessage(err), "letsencrypt: rate limited") ||
		!strings.Contains(dcvaas.ErrorMessage(err), "zerossl: unavailable") {
		t.Fatalf("err = %v", err)
	}
	at, ok := acme.RetryAt(err)
	if !ok || time.Until(at) < 4*time.Minute || time.Until(at) > 6*time.Minute {
		t.Fatalf("retry at %v (%v)", at, ok)
	}
	if got := e.reload(d); got.Status != dcvaas.DomainIssuing {
		t.Fatalf("domain = %+v", got)
	}
	// While both back off, nothing is asked of either.
	_, err = e.issuer([]string{"letsencrypt", "zerossl"}).Obtain(e.ctx, d, false)
	if dcvaas.ErrorCode(err) != dcvaas.EUNAVAILABLE || !strings.Contains(dcvaas.ErrorMessage(err), "asked to be left alone") {
		t.Fatalf("err = %v", err)
	}
}
