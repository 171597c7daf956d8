package acme_test

import (
	"strings"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/acme"
	"github.com/dcvaas/dcvaas/acme/acmetest"
	acmeapi "github.com/mholt/acmez/v3/acme"
)

// Renewal: a new serial, the old certificate named in replaces (RFC 9773
// §5), the domain active all along, and the CA's ARI window readable.
func TestRenewal(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ca := e.newCA("letsencrypt")
		is := e.issuer([]string{"letsencrypt"}, func(c *acme.Config) { c.RenewDedup = -1 })
		d := e.domain(true, dcvaas.KeyEC384)
		if _, err := is.Obtain(e.ctx, d, false); err != nil {
			t.Fatal(err)
		}
		old := e.cert(d)
		oldLeaf := e.verifyChain(old, ca, d.Name)

		// The CA's ARI says when to renew; a window that has begun makes
		// the certificate due although it is young.
		w, err := is.RenewalWindow(e.ctx, old)
		if err != nil || w == nil || !w.Start.After(time.Now()) || acme.Due(old, w, time.Now(), 0) {
			t.Fatalf("window %+v, %v", w, err)
		}
		start := time.Now().Add(-time.Minute)
		if err := ca.SetRenewalWindow([]byte(old.ChainPEM), start, start.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if w, err = is.RenewalWindow(e.ctx, old); err != nil || !w.Start.Equal(start.Truncate(time.Second)) && !w.Start.Equal(start) {
			t.Fatalf("window after change %+v, %v", w, err)
		}
		if !acme.Due(old, w, time.Now(), 0) {
			t.Fatal("not due inside the ARI window")
		}

		res, err := is.Obtain(e.ctx, e.reload(d), true)
		if err != nil {
			t.Fatal(err)
		}
		cur := e.cert(d)
		if cur.ID == old.ID || cur.SerialNumber == old.SerialNumber || res.Outcome != "renewed" || res.CertificateID != cur.ID {
			t.Fatalf("renewal: %+v, old %s new %s", res, old.SerialNumber, cur.SerialNumber)
		}
		wantID, err := acmeapi.ARIUniqueIdentifier(oldLeaf)
		if err != nil {
			t.Fatal(err)
		}
		orders := ca.NewOrders()
		if len(orders) != 2 || orders[0].Replaces != "" || orders[1].Replaces != wantID || res.Replaces != wantID {
			t.Fatalf("orders = %+v, want replaces %s", orders, wantID)
		}
		if got := e.reload(d); got.Status != dcvaas.DomainActive || !got.ExpiresAt.Equal(cur.NotAfter) {
			t.Fatalf("domain = %+v", got)
		}
		if left := e.txtLeft(d); len(left) != 0 {
			t.Fatalf("TXT left: %v", left)
		}
	})
}

// The CA refuses an order because of its replaces (Pebble cannot match
// some serials, a CA may refuse a second replacement): the renewal orders
// again without the hint, and gets its certificate.
func TestRenewalReplacesRefused(t *testing.T) {
	e := setup(t, "sqlite")
	ca := e.newCA("letsencrypt")
	is := e.issuer([]string{"letsencrypt"}, func(c *acme.Config) { c.RenewDedup = -1 })
	d := e.domain(false, "")
	if _, err := is.Obtain(e.ctx, d, false); err != nil {
		t.Fatal(err)
	}
	old := e.cert(d)
	ca.SetFault(acmetest.Fault{Mode: acmetest.FaultRefuseReplaces})
	res, err := is.Obtain(e.ctx, e.reload(d), true)
	if err != nil {
		t.Fatal(err)
	}
	if cur := e.cert(d); cur.ID == old.ID || res.Outcome != "renewed" || res.Replaces != "" {
		t.Fatalf("renewal %+v", res)
	}
	// The first order, then the refused ones with the hint (the ACME
	// client repeats a 500 a few times), then one without.
	orders := ca.NewOrders()
	last := len(orders) - 1
	if last < 2 || orders[last].Replaces != "" || orders[last].Refused {
		t.Fatalf("orders = %+v", orders)
	}
	for _, o := range orders[1:last] {
		if o.Replaces == "" || !o.Refused {
			t.Fatalf("orders = %+v", orders)
		}
	}
}

// A renewal that runs again right after succeeding (its success was not
// recorded) does not order again.
func TestRenewalDedup(t *testing.T) {
	e := setup(t, "sqlite")
	ca := e.newCA("letsencrypt")
	is := e.issuer([]string{"letsencrypt"})
	d := e.domain(false, "")
	if _, err := is.Obtain(e.ctx, d, false); err != nil {
		t.Fatal(err)
	}
	res, err := is.Obtain(e.ctx, e.reload(d), true)
	if err != nil || res.Outcome != "recently_renewed" || len(ca.NewOrders()) != 1 {
		t.Fatalf("%+v %v, %d orders", res, err, len(ca.NewOrders()))
	}
}

// The customer removed the CNAME before renewal: a clear error, and the
// domain keeps its certificate and stays active.
func TestRenewalWithoutDelegation(t *testing.T) {
	e := setup(t, "sqlite")
	ca := e.newCA("letsencrypt")
	is := e.issuer([]string{"letsencrypt"}, func(c *acme.Config) { c.RenewDedup = -1 })
	d := e.domain(true, "")
	if _, err := is.Obtain(e.ctx, d, false); err != nil {
		t.Fatal(err)
	}
	old := e.cert(d)
	e.dns.Undelegate(d.Name)
	_, err := is.Obtain(e.ctx, e.reload(d), true)
	if dcvaas.ErrorCode(err) != dcvaas.ECONFLICT || !strings.Contains(dcvaas.ErrorMessage(err), "_acme-challenge."+d.Name+" must be a CNAME to "+d.CNAMETarget) ||
		!strings.Contains(dcvaas.ErrorMessage(err), "no CNAME record") {
		t.Fatalf("err = %v", err)
	}
	if got := e.reload(d); got.Status != dcvaas.DomainActive || e.cert(d).ID != old.ID || len(ca.NewOrders()) != 1 {
		t.Fatalf("domain %+v after failed renewal", got)
	}
	e.dns.Customer.AddDNSCNAMERecord("_acme-challenge."+d.Name+".", "elsewhere.example.net.")
	_, err = is.Obtain(e.ctx, e.reload(d), true)
	if !strings.Contains(dcvaas.ErrorMessage(err), "it points to elsewhere.example.net") {
		t.Fatalf("err = %v", err)
	}
}

func TestDue(t *testing.T) {
	nb := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &dcvaas.Certificate{NotBefore: nb, NotAfter: nb.Add(90 * 24 * time.Hour)}
	day := 24 * time.Hour
	for _, tc := range []struct {
		name   string
		now    time.Time
		ari    *acme.Window
		before time.Duration
		want   bool
	}{
		{"fresh", nb.Add(day), nil, 0, false},
		{"59 days in: 31 left", nb.Add(59 * day), nil, 0, false},
		{"61 days in: 29 left", nb.Add(61 * day), nil, 0, true},
		{"expired", nb.Add(100 * day), nil, 0, true},
		{"configured 10 days, 20 left", nb.Add(70 * day), nil, 10 * day, false},
		{"configured 10 days, 9 left", nb.Add(81 * day), nil, 10 * day, true},
		{"ARI window begun", nb.Add(2 * day), &acme.Window{Start: nb.Add(day), End: nb.Add(3 * day)}, 0, true},
		{"ARI window ahead", nb.Add(2 * day), &acme.Window{Start: nb.Add(50 * day), End: nb.Add(60 * day)}, 0, false},
		{"ARI window ahead, lifetime rule still applies", nb.Add(70 * day), &acme.Window{Start: nb.Add(80 * day)}, 0, true},
	} {
		if got := acme.Due(c, tc.ari, tc.now, tc.before); got != tc.want {
			t.Errorf("%s: Due = %v", tc.name, got)
		}
	}
	if !acme.Due(nil, nil, nb, 0) {
		t.Error("no certificate is due")
	}
}
