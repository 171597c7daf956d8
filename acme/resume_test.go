package acme_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/acme"
	"github.com/dcvaas/dcvaas/acme/acmetest"
)

// A job stopped in the middle of its order (here: the first TXT value is
// being published) leaves the order recorded; the next run — a new
// process — resumes that order instead of creating another, and leaves no
// TXT values behind.
func TestResumeAfterRestart(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ca := e.newCA("letsencrypt")
		d := e.domain(true, "")

		ctx, cancel := context.WithCancel(e.ctx)
		defer cancel()
		pub := &hookPublisher{DBPublisher: acme.DBPublisher{Store: e.db}}
		pub.onPublish = func(_, _, v string) string { cancel(); return v }
		crashing := e.issuer([]string{"letsencrypt"}, func(c *acme.Config) { c.Publisher = pub })
		_, err := crashing.Obtain(ctx, d, false)
		if err == nil {
			t.Fatal("interrupted issuance succeeded")
		}
		po, err := e.db.FindPendingOrder(e.ctx, d.ID)
		if err != nil || po.CAName != "letsencrypt" || po.OrderURL == "" || po.KeyEnc == "" {
			t.Fatalf("pending order = %+v, %v", po, err)
		}
		if len(ca.NewOrders()) != 1 {
			t.Fatalf("%d orders", len(ca.NewOrders()))
		}

		res, err := e.issuer([]string{"letsencrypt"}).Obtain(e.ctx, e.reload(d), false)
		if err != nil {
			t.Fatal(err)
		}
		c := e.cert(d)
		if !res.ResumedOrder || c.OrderURL != po.OrderURL || len(ca.NewOrders()) != 1 {
			t.Fatalf("result %+v, order %s (pending was %s), %d orders", res, c.OrderURL, po.OrderURL, len(ca.NewOrders()))
		}
		e.verifyChain(c, ca, d.Name, "a."+d.Name)
		if left := e.txtLeft(d); len(left) != 0 {
			t.Fatalf("TXT left: %v", left)
		}
		if _, err := e.db.FindPendingOrder(e.ctx, d.ID); dcvaas.ErrorCode(err) != dcvaas.ENOTFOUND {
			t.Fatalf("pending order kept: %v", err)
		}
	})
}

// A pending order at the second CA (the first was failing when it was
// made) is resumed there even after the first CA is healthy again.
func TestResumeAtPendingOrdersCA(t *testing.T) {
	e := setup(t, "sqlite")
	le := e.newCA("letsencrypt")
	zs := e.newCA("zerossl")
	d := e.domain(false, "")
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	pub := &hookPublisher{DBPublisher: acme.DBPublisher{Store: e.db}}
	pub.onPublish = func(_, _, v string) string { cancel(); return v }
	le.SetFault(acmetest.Fault{Mode: acmetest.FaultDown})
	e.issuer([]string{"letsencrypt", "zerossl"}, func(c *acme.Config) { c.Publisher = pub; c.UnavailableBackoff = time.Millisecond }).Obtain(ctx, d, false)
	if po, err := e.db.FindPendingOrder(e.ctx, d.ID); err != nil || po.CAName != "zerossl" {
		t.Fatalf("pending order = %+v, %v", po, err)
	}
	le.SetFault(acmetest.Fault{})
	time.Sleep(5 * time.Millisecond) // the back-off has passed
	res, err := e.issuer([]string{"letsencrypt", "zerossl"}).Obtain(e.ctx, d, false)
	if err != nil || res.CAName != "zerossl" || !res.ResumedOrder || len(le.NewOrders()) != 0 || len(zs.NewOrders()) != 1 {
		t.Fatalf("%+v %v", res, err)
	}
}

// A failed validation fails the attempt without trying another CA (the
// domain is at fault, not the CA), removes the values, and counts against
// the hostname's hourly budget; at the limit no order is attempted.
func TestValidationFailure(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		le := e.newCA("letsencrypt")
		zs := e.newCA("zerossl")
		d := e.domain(true, "")
		pub := &hookPublisher{DBPublisher: acme.DBPublisher{Store: e.db}}
		pub.onPublish = func(_, _, _ string) string { return "not-the-key-authorization" }
		is := e.issuer([]string{"letsencrypt", "zerossl"}, func(c *acme.Config) { c.Publisher = pub })
		_, err := is.Obtain(e.ctx, d, false)
		if dcvaas.ErrorCode(err) != dcvaas.ECONFLICT || !strings.Contains(dcvaas.ErrorMessage(err), "could not validate") || len(zs.NewOrders()) != 0 {
			t.Fatalf("err = %v", err)
		}
		if left := e.txtLeft(d); len(left) != 0 {
			t.Fatalf("TXT left after failure: %v", left)
		}
		if _, err := e.db.FindPendingOrder(e.ctx, d.ID); dcvaas.ErrorCode(err) != dcvaas.ENOTFOUND {
			t.Fatalf("invalid order kept: %v", err)
		}
		n, _, err := e.db.ValidationFailuresSince(e.ctx, d.Name, time.Now().Add(-time.Hour))
		if err != nil || n != 1 {
			t.Fatalf("%d failures counted, %v", n, err)
		}
		for range 4 {
			if err := e.db.RecordValidationFailure(e.ctx, d.Name, "letsencrypt", d.ID); err != nil {
				t.Fatal(err)
			}
		}
		orders := len(le.NewOrders())
		_, err = e.issuer([]string{"letsencrypt", "zerossl"}).Obtain(e.ctx, d, false)
		at, ok := acme.RetryAt(err)
		if dcvaas.ErrorCode(err) != dcvaas.ERATELIMITED || !ok || time.Until(at) < 50*time.Minute || len(le.NewOrders()) != orders {
			t.Fatalf("at the limit: %v (retry %v)", err, at)
		}
	})
}
