package acme_test

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"strings"
	"testing"

	"github.com/dcvaas/dcvaas/acme"
	acmeapi "github.com/mholt/acmez/v3/acme"
)

// An account the CA deactivated (RFC 8555 §7.3.6; here its owner asks
// Pebble to) takes no more orders: the next renewal registers a new
// account in its place and renews through it, without replaces (a
// certificate of the old account cannot be replaced from the new one),
// and keeps the old account's row for the record.
func TestDeactivatedAccountReplaced(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ca := e.newCA("letsencrypt")
		is := e.issuer([]string{"letsencrypt"}, func(c *acme.Config) { c.RenewDedup = -1 })
		d := e.domain(true, "")
		if _, err := is.Obtain(e.ctx, d, false); err != nil {
			t.Fatal(err)
		}
		dir := ca.DirectoryURL
		old, err := e.db.FindACMEAccount(e.ctx, "letsencrypt", dir)
		if err != nil || old.AccountURL == "" {
			t.Fatalf("account = %+v, %v", old, err)
		}

		// The account's owner deactivates it at the CA.
		key, err := acme.AccountKey(e.keyring, "letsencrypt", dir, old.KeyEnc)
		if err != nil {
			t.Fatal(err)
		}
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(ca.TLSRootsPEM)
		client := &acmeapi.Client{Directory: dir, HTTPClient: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}}
		gone, err := client.UpdateAccount(e.ctx, acmeapi.Account{PrivateKey: key, Location: old.AccountURL, Status: acmeapi.StatusDeactivated})
		if err != nil || gone.Status != acmeapi.StatusDeactivated {
			t.Fatalf("deactivate: %+v, %v", gone, err)
		}

		prev := e.cert(d)
		res, err := is.Obtain(e.ctx, e.reload(d), true)
		if err != nil {
			t.Fatalf("renewal after deactivation: %v", err)
		}
		cur := e.cert(d)
		if res.Outcome != "renewed" || cur.ID == prev.ID || res.Replaces != "" {
			t.Fatalf("renewal = %+v", res)
		}
		e.verifyChain(cur, ca, d.Name)
		orders := ca.NewOrders()
		if last := orders[len(orders)-1]; last.Replaces != "" {
			t.Fatalf("the new account's order names the old account's certificate: %+v", last)
		}
		now, err := e.db.FindACMEAccount(e.ctx, "letsencrypt", dir)
		if err != nil || now.AccountURL == "" || now.AccountURL == old.AccountURL || now.KeyEnc == old.KeyEnc {
			t.Fatalf("account in place = %+v (was %s), %v", now, old.AccountURL, err)
		}
		var retired int
		if err := e.db.SQL().QueryRowContext(e.ctx, `SELECT COUNT(*) FROM acme_accounts WHERE ca_name = 'letsencrypt'
			AND account_url = $1 AND directory_url LIKE $2`, old.AccountURL, dir+"#deactivated=%").Scan(&retired); err != nil || retired != 1 {
			t.Fatalf("retired rows = %d, %v", retired, err)
		}

		// New domains use the new account too; the old one is not asked again.
		if _, err := is.Obtain(e.ctx, e.domain(false, ""), false); err != nil {
			t.Fatal(err)
		}
		if again, _ := e.db.FindACMEAccount(e.ctx, "letsencrypt", dir); again.AccountURL != now.AccountURL {
			t.Fatalf("account changed again: %s → %s", now.AccountURL, again.AccountURL)
		}
		if !strings.HasPrefix(now.AccountURL, "https://") {
			t.Fatalf("account URL %q", now.AccountURL)
		}
	})
}
