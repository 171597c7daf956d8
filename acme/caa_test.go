package acme_test

import (
	"strings"
	"testing"

	"github.com/dcvaas/dcvaas"
)

// CAA forbidding the first CA sends the order to the second; forbidding
// both fails with the record to add. The records sit on the parent
// (shop.test), so finding them means climbing (RFC 8659 §3).
func TestCAA(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		le := e.newCA("letsencrypt")
		zs := e.newCA("zerossl")
		is := e.issuer([]string{"letsencrypt", "zerossl"})

		// Other tests share the customers' DNS: the CAA records go on a
		// parent of this test's own.
		parent := "own" + label(4) + ".test"
		d := e.domainUnder(parent, true, "")
		e.dns.SetCAA(parent, "issue zerossl.test", "iodef mailto:sec@"+parent)
		t.Cleanup(func() { e.dns.ClearCAA(parent) })

		res, err := is.Obtain(e.ctx, d, false)
		if err != nil {
			t.Fatal(err)
		}
		if res.CAName != "zerossl" || len(res.Skipped) != 1 || res.Skipped[0].Reason != "caa" || len(le.NewOrders()) != 0 {
			t.Fatalf("result = %+v", res)
		}
		e.verifyChain(e.cert(d), zs, d.Name)

		// issuewild for the wildcard only: the apex may come from
		// letsencrypt, the wildcard may not, so the order goes to zerossl.
		e.dns.SetCAA(parent, "issue letsencrypt.test", "issue zerossl.test", "issuewild zerossl.test")
		d2 := e.domainUnder(parent, true, "")
		if res, err := is.Obtain(e.ctx, d2, false); err != nil || res.CAName != "zerossl" {
			t.Fatalf("issuewild: %+v %v", res, err)
		}

		// Nobody allowed: a clear failure naming the record to add.
		e.dns.SetCAA(parent, "issue sectigo.com")
		d3 := e.domainUnder(parent, false, "")
		_, err = is.Obtain(e.ctx, d3, false)
		msg := dcvaas.ErrorMessage(err)
		if dcvaas.ErrorCode(err) != dcvaas.EINVALID || !strings.Contains(msg, `0 issue "sectigo.com"`) ||
			!strings.Contains(msg, parent+`. CAA 0 issue "letsencrypt.test"`) {
			t.Fatalf("err = %v", err)
		}
		if left := e.txtLeft(d3); len(left) != 0 {
			t.Fatalf("TXT left: %v", left)
		}
	})
}
