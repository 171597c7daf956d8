package sqlstore_test

import (
	"slices"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/sqlstore"
)

// The store side of ACME issuance: challenge values, accounts, pending
// orders, CA back-offs, failed validations and the certificate hand-over.

func (b *bundle) advance(d time.Duration) {
	b.clock.mu.Lock()
	defer b.clock.mu.Unlock()
	b.clock.now = b.clock.now.Add(d)
}

func TestChallengeTXT(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b *bundle) {
		const name = "K7X2.verify.test."
		for _, kv := range [][2]string{{"a", "v1"}, {"b", "v2"}, {"a", "v1b"}} {
			if err := b.db.PutChallengeTXT(b.ctx, name, kv[0], kv[1]); err != nil {
				t.Fatal(err)
			}
		}
		got, err := b.db.ChallengeTXT(b.ctx, "k7x2.verify.test")
		slices.Sort(got)
		if err != nil || !slices.Equal(got, []string{"v1b", "v2"}) {
			t.Fatalf("values = %v, %v", got, err)
		}
		if err := b.db.DeleteChallengeTXT(b.ctx, name, "a"); err != nil {
			t.Fatal(err)
		}
		if got, _ := b.db.ChallengeTXT(b.ctx, name); !slices.Equal(got, []string{"v2"}) {
			t.Fatalf("after delete: %v", got)
		}
		b.advance(2 * time.Hour)
		if err := b.db.PutChallengeTXT(b.ctx, "fresh.verify.test", "k", "v"); err != nil {
			t.Fatal(err)
		}
		n, err := b.db.PurgeChallengeTXT(b.ctx, b.clock.Now().Add(-time.Hour))
		if err != nil || n != 1 {
			t.Fatalf("purged %d, %v", n, err)
		}
		if got, _ := b.db.ChallengeTXT(b.ctx, "fresh.verify.test"); len(got) != 1 {
			t.Fatalf("fresh value purged: %v", got)
		}
		if err := b.db.ClearChallengeTXT(b.ctx, "fresh.verify.test"); err != nil {
			t.Fatal(err)
		}
		if got, _ := b.db.ChallengeTXT(b.ctx, "fresh.verify.test"); got == nil || len(got) != 0 {
			t.Fatalf("after clear: %#v", got)
		}
	})
}

func TestACMEAccounts(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b *bundle) {
		_, err := b.db.FindACMEAccount(b.ctx, "le", "https://ca/dir")
		wantCode(t, err, dcvaas.ENOTFOUND)
		first, err := b.db.CreateACMEAccount(b.ctx, "le", "https://ca/dir", "key-1")
		if err != nil || first.KeyEnc != "key-1" || first.AccountURL != "" {
			t.Fatalf("create: %+v %v", first, err)
		}
		// A node that lost the race gets the winner's key.
		second, err := b.db.CreateACMEAccount(b.ctx, "le", "https://ca/dir", "key-2")
		if err != nil || second.KeyEnc != "key-1" {
			t.Fatalf("second create: %+v %v", second, err)
		}
		if err := b.db.SetACMEAccountURL(b.ctx, "le", "https://ca/dir", "https://ca/acct/1"); err != nil {
			t.Fatal(err)
		}
		if a, _ := b.db.FindACMEAccount(b.ctx, "le", "https://ca/dir"); a.AccountURL != "https://ca/acct/1" {
			t.Fatalf("url = %q", a.AccountURL)
		}
		wantCode(t, b.db.SetACMEAccountURL(b.ctx, "le", "https://other/dir", "x"), dcvaas.ENOTFOUND)
	})
}

func TestPendingOrders(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b *bundle) {
		d, _ := b.newDomain(t, "orders.example.com")
		o := &sqlstore.PendingOrder{DomainID: d.ID, OrgID: d.OrgID, CAName: "le", DirectoryURL: "https://ca/dir",
			OrderURL: "https://ca/order/1", KeyType: "ec256", KeyEnc: "sealed", Replaces: "aki.serial"}
		if err := b.db.SavePendingOrder(b.ctx, o); err != nil {
			t.Fatal(err)
		}
		got, err := b.db.FindPendingOrder(b.ctx, d.ID)
		if err != nil || got.OrderURL != o.OrderURL || got.Replaces != "aki.serial" || got.KeyEnc != "sealed" {
			t.Fatalf("find: %+v %v", got, err)
		}
		o.OrderURL = "https://ca/order/2"
		if err := b.db.SavePendingOrder(b.ctx, o); err != nil {
			t.Fatal(err)
		}
		// Deleting a superseded order leaves the current one.
		if err := b.db.DeletePendingOrder(b.ctx, d.ID, "https://ca/order/1"); err != nil {
			t.Fatal(err)
		}
		if got, _ := b.db.FindPendingOrder(b.ctx, d.ID); got == nil || got.OrderURL != o.OrderURL {
			t.Fatalf("current order lost: %+v", got)
		}
		if err := b.db.DeletePendingOrder(b.ctx, d.ID, ""); err != nil {
			t.Fatal(err)
		}
		_, err = b.db.FindPendingOrder(b.ctx, d.ID)
		wantCode(t, err, dcvaas.ENOTFOUND)
	})
}

func TestCABackoffs(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b *bundle) {
		now := b.clock.Now()
		actor := dcvaas.SystemActor(b.org.ID)
		if err := b.db.SetCABackoff(b.ctx, actor, "le", now.Add(time.Hour), "rate limited", "ca.rate_limit", map[string]any{"x": 1}); err != nil {
			t.Fatal(err)
		}
		// An earlier end does not shorten a stored back-off.
		if err := b.db.SetCABackoff(b.ctx, actor, "le", now.Add(time.Minute), "unavailable", "", nil); err != nil {
			t.Fatal(err)
		}
		got, err := b.db.CABackoffs(b.ctx, now)
		if err != nil || !got["le"].Equal(now.Add(time.Hour)) {
			t.Fatalf("back-offs = %v, %v", got, err)
		}
		if got, _ := b.db.CABackoffs(b.ctx, now.Add(2*time.Hour)); len(got) != 0 {
			t.Fatalf("expired back-off listed: %v", got)
		}
		if err := b.db.AuditCAEvent(b.ctx, actor, "ca.failover", "le", map[string]any{"to": "zerossl"}); err != nil {
			t.Fatal(err)
		}
		for _, action := range []string{"ca.rate_limit", "ca.failover"} {
			list, _, err := b.db.ListAudit(b.ctx, b.org.ID, dcvaas.AuditFilter{Action: action, Page: dcvaas.Page{Limit: 10}})
			if err != nil || len(list) != 1 || list[0].EntityType != "ca" || list[0].EntityID != "le" {
				t.Fatalf("%s audit = %+v, %v", action, list, err)
			}
		}
	})
}

func TestValidationFailures(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b *bundle) {
		start := b.clock.Now()
		for range 3 {
			if err := b.db.RecordValidationFailure(b.ctx, "Shop.Example.com", "le", "d1"); err != nil {
				t.Fatal(err)
			}
			b.advance(20 * time.Minute)
		}
		n, oldest, err := b.db.ValidationFailuresSince(b.ctx, "shop.example.com", start)
		if err != nil || n != 3 || oldest.Before(start) || oldest.After(start.Add(time.Second)) {
			t.Fatalf("failures = %d since %v, %v", n, oldest, err)
		}
		if n, _, _ := b.db.ValidationFailuresSince(b.ctx, "shop.example.com", start.Add(30*time.Minute)); n != 1 {
			t.Fatalf("window: %d", n)
		}
		if n, oldest, _ := b.db.ValidationFailuresSince(b.ctx, "other.example.com", start); n != 0 || !oldest.IsZero() {
			t.Fatalf("other host: %d %v", n, oldest)
		}
	})
}

func TestSaveCertificate(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b *bundle) {
		d, _ := b.newDomain(t, "certs.example.com")
		if err := b.db.SavePendingOrder(b.ctx, &sqlstore.PendingOrder{DomainID: d.ID, OrgID: d.OrgID, CAName: "le",
			DirectoryURL: "https://ca/dir", OrderURL: "https://ca/order/1", KeyType: "ec256", KeyEnc: "k"}); err != nil {
			t.Fatal(err)
		}
		nb := b.clock.Now().Truncate(time.Second)
		c := &dcvaas.Certificate{ID: "cert-1", DomainID: d.ID, SerialNumber: "0abc", Issuer: "Test CA", CAName: "le",
			OrderURL: "https://ca/order/1", DNSNames: []string{d.Name, "*." + d.Name}, NotBefore: nb, NotAfter: nb.Add(90 * 24 * time.Hour),
			ChainPEM: "chain", PrivateKeyEnc: "sealed"}
		if err := b.db.SaveCertificate(b.ctx, dcvaas.SystemActor(b.org.ID), c, map[string]any{"replaces": ""}); err != nil {
			t.Fatal(err)
		}
		got, err := b.db.CurrentCertificate(b.ctx, b.org.ID, d.ID)
		if err != nil || got.ID != "cert-1" || !got.NotAfter.Equal(c.NotAfter) || !slices.Equal(got.DNSNames, c.DNSNames) || got.PrivateKeyEnc != "sealed" {
			t.Fatalf("current = %+v, %v", got, err)
		}
		dom, _ := b.db.FindDomain(b.ctx, b.org.ID, d.ID)
		if dom.Status != dcvaas.DomainActive || dom.ExpiresAt == nil || !dom.ExpiresAt.Equal(c.NotAfter) || dom.LastIssuedAt == nil || dom.LastError != "" {
			t.Fatalf("domain = %+v", dom)
		}
		_, err = b.db.FindPendingOrder(b.ctx, d.ID)
		wantCode(t, err, dcvaas.ENOTFOUND)
		list, _, _ := b.db.ListAudit(b.ctx, b.org.ID, dcvaas.AuditFilter{Action: "certificate.issued", Page: dcvaas.Page{Limit: 10}})
		if len(list) != 1 || list[0].Details["serialNumber"] != "0abc" || list[0].Details["previousStatus"] != "pending_cname" {
			t.Fatalf("audit = %+v", list)
		}
		// No certificate is kept for a deleted domain.
		if err := b.db.DeleteDomain(b.ctx, b.actor, d.ID, false); err != nil {
			t.Fatal(err)
		}
		c2 := *c
		c2.ID = ""
		wantCode(t, b.db.SaveCertificate(b.ctx, dcvaas.SystemActor(b.org.ID), &c2, nil), dcvaas.ENOTFOUND)
	})
}
