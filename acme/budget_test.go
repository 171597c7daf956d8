package acme_test

import (
	"strings"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/acme"
)

// Validations failing for MaxFailedDays without a certificate since give
// the domain up (EINVALID: the job fails for good) before any order.
func TestFailingDaysGiveUp(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		le := e.newCA("letsencrypt")
		d := e.domain(true, "")
		for range 2 {
			if err := e.db.RecordValidationFailure(e.ctx, d.Name, "letsencrypt", d.ID); err != nil {
				t.Fatal(err)
			}
		}
		later := func() time.Time { return time.Now().Add(61 * time.Minute) }
		_, err := e.issuer([]string{"letsencrypt"}, func(c *acme.Config) { c.Clock, c.MaxFailedDays = later, time.Hour }).Obtain(e.ctx, d, false)
		if dcvaas.ErrorCode(err) != dcvaas.EINVALID || !strings.Contains(dcvaas.ErrorMessage(err), "stopped trying") || len(le.NewOrders()) != 0 {
			t.Fatalf("after an hour of failures with MaxFailedDays 1h: %v (%d orders)", err, len(le.NewOrders()))
		}
	})
}
