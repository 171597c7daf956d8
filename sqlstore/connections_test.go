package sqlstore_test

import (
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/connection"
	"github.com/dcvaas/dcvaas/crypt"
	"github.com/dcvaas/dcvaas/sqlstore"
)

func newKey() []byte {
	k := make([]byte, crypt.KeySize)
	rand.Read(k)
	return k
}

func (b *bundle) newConnection(t *testing.T, kr *crypt.Keyring, secret string) *dcvaas.Connection {
	t.Helper()
	c := &dcvaas.Connection{Provider: dcvaas.ProviderCloudflare, Kind: dcvaas.ConnectionCredential, DisplayName: "Cloudflare"}
	err := b.db.CreateConnection(b.ctx, b.actor, c, func(id string) (string, error) {
		return kr.Encrypt([]byte(secret), connection.SecretAD(id))
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestConnectionLifecycle(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b *bundle) {
		kr, _ := crypt.NewKeyring(newKey())
		c := b.newConnection(t, kr, "cf-token-SECRET")
		if c.ID == "" || c.Status != dcvaas.ConnectionActive || c.CreatedBy != b.actor.UserID {
			t.Fatalf("created %+v", c)
		}
		got, err := b.db.FindConnection(b.ctx, b.org.ID, c.ID)
		if err != nil || got.SecretEnc != c.SecretEnc || got.Provider != dcvaas.ProviderCloudflare {
			t.Fatalf("find = %+v, %v", got, err)
		}
		if plain, err := kr.Decrypt(got.SecretEnc, connection.SecretAD(c.ID)); err != nil || string(plain) != "cf-token-SECRET" {
			t.Fatalf("decrypt = %q, %v", plain, err)
		}
		_, err = b.db.FindConnection(b.ctx, "other-org", c.ID)
		wantCode(t, err, dcvaas.ENOTFOUND)

		list, total, err := b.db.ListConnections(b.ctx, b.org.ID, dcvaas.Page{Limit: 10})
		if err != nil || total != 1 || len(list) != 1 {
			t.Fatalf("list = %v %d %v", list, total, err)
		}

		// A refresh against a stale envelope loses; against the current one wins.
		err = b.db.UpdateConnectionSecret(b.ctx, b.actor, c.ID, "stale", "new", nil, "connection.token_refreshed")
		wantCode(t, err, dcvaas.ECONFLICT)
		exp := time.Date(2026, 11, 1, 13, 0, 0, 0, time.UTC)
		newEnc, _ := kr.Encrypt([]byte("refreshed"), connection.SecretAD(c.ID))
		if err := b.db.UpdateConnectionSecret(b.ctx, b.actor, c.ID, c.SecretEnc, newEnc, &exp, "connection.token_refreshed"); err != nil {
			t.Fatal(err)
		}
		got, _ = b.db.FindConnection(b.ctx, b.org.ID, c.ID)
		if got.SecretEnc != newEnc || got.TokenExpiresAt == nil || !got.TokenExpiresAt.Equal(exp) {
			t.Fatalf("after refresh %+v", got)
		}

		for range 2 { // the second call changes nothing and audits nothing
			if err := b.db.SetConnectionStatus(b.ctx, b.actor, c.ID, dcvaas.ConnectionNeedsReauth, "refresh refused", "connection.needs_reauth"); err != nil {
				t.Fatal(err)
			}
		}
		audit, _, _ := b.db.ListAudit(b.ctx, b.org.ID, dcvaas.AuditFilter{Action: "connection.needs_reauth", Page: dcvaas.Page{Limit: 10}})
		if len(audit) != 1 {
			t.Fatalf("needs_reauth audits = %d", len(audit))
		}

		if err := b.db.DeleteConnection(b.ctx, b.actor, c.ID, map[string]any{"revoked": false}); err != nil {
			t.Fatal(err)
		}
		_, err = b.db.FindConnection(b.ctx, b.org.ID, c.ID)
		wantCode(t, err, dcvaas.ENOTFOUND)
		wantCode(t, b.db.DeleteConnection(b.ctx, b.actor, c.ID, nil), dcvaas.ENOTFOUND)

		all, _, _ := b.db.ListAudit(b.ctx, b.org.ID, dcvaas.AuditFilter{Page: dcvaas.Page{Limit: 100}})
		for _, e := range all {
			for k, v := range e.Details {
				if s, ok := v.(string); ok && (strings.Contains(s, "SECRET") || strings.HasPrefix(s, "v1.")) {
					t.Errorf("audit %s detail %s leaks a secret: %q", e.Action, k, s)
				}
			}
		}
	})
}

func TestOAuthStateSingleUse(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b *bundle) {
		now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
		put := func(hash string) {
			t.Helper()
			if err := b.db.CreateOAuthState(b.ctx, &dcvaas.OAuthState{Hash: hash, OrgID: b.org.ID, UserID: b.actor.UserID,
				Provider: "cloudflare", VerifierEnc: "v1.x", CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute)}); err != nil {
				t.Fatal(err)
			}
		}
		put("good")
		st, err := b.db.ConsumeOAuthState(b.ctx, "good", now.Add(time.Minute))
		if err != nil || st.OrgID != b.org.ID || st.UserID != b.actor.UserID || st.Provider != "cloudflare" {
			t.Fatalf("consume = %+v, %v", st, err)
		}
		_, err = b.db.ConsumeOAuthState(b.ctx, "good", now.Add(time.Minute))
		wantCode(t, err, dcvaas.ECONFLICT)
		_, err = b.db.ConsumeOAuthState(b.ctx, "unknown", now)
		wantCode(t, err, dcvaas.ENOTFOUND)

		put("late")
		_, err = b.db.ConsumeOAuthState(b.ctx, "late", now.Add(10*time.Minute))
		wantCode(t, err, dcvaas.EINVALID)
		_, err = b.db.ConsumeOAuthState(b.ctx, "late", now.Add(10*time.Minute))
		wantCode(t, err, dcvaas.ECONFLICT)
	})
}

func TestRecordDNSSetup(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b *bundle) {
		d, _ := b.newDomain(t, "shop.example.com")
		job, err := b.db.RecordDNSSetup(b.ctx, b.actor, d.ID, map[string]any{"outcome": "created"}, true)
		if err != nil || job == nil || job.Type != dcvaas.JobDNSCheck || job.DomainID != d.ID {
			t.Fatalf("job = %+v, %v", job, err)
		}
		if job, err := b.db.RecordDNSSetup(b.ctx, b.actor, d.ID, nil, false); err != nil || job != nil {
			t.Fatalf("without check: %+v, %v", job, err)
		}
		entries, _, _ := b.db.ListAudit(b.ctx, b.org.ID, dcvaas.AuditFilter{Action: "domain.dns_setup", Page: dcvaas.Page{Limit: 10}})
		if len(entries) != 2 || entries[1].Details["outcome"] != "created" {
			t.Fatalf("audit = %+v", entries)
		}
		_, err = b.db.RecordDNSSetup(b.ctx, b.actor, "missing", nil, true)
		wantCode(t, err, dcvaas.ENOTFOUND)
	})
}

func TestRotateSecrets(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b *bundle) {
		oldKey, newKeyBytes := newKey(), newKey()
		oldRing, _ := crypt.NewKeyring(oldKey)
		var conns []*dcvaas.Connection
		for i := range 5 {
			conns = append(conns, b.newConnection(t, oldRing, "secret-"+string(rune('a'+i))))
		}
		d, _ := b.newDomain(t, "cert.example.com")
		certID := "cert-1"
		// The acme package's conventions (CertificateKeyAD, accountKeyAD, orderKeyAD).
		keyEnc, _ := oldRing.Encrypt([]byte("PRIVATE KEY"), []byte("certificate:"+certID))
		if _, err := b.db.SQL().ExecContext(b.ctx, `INSERT INTO certificates (id, org_id, domain_id, serial_number, issuer,
			ca_name, dns_names, not_before, not_after, chain_pem, private_key_enc, created_at)
			VALUES ($1, $2, $3, '01', 'CA', 'pebble', '[]', 0, 0, '', $4, 0)`, certID, b.org.ID, d.ID, keyEnc); err != nil {
			t.Fatal(err)
		}

		accountAD, orderAD := "acme-account:letsencrypt:https://ca.test/dir", "acme-order:"+d.ID+":https://ca.test/order/1"
		accEnc, _ := oldRing.Encrypt([]byte("ACCOUNT KEY"), []byte(accountAD))
		ordEnc, _ := oldRing.Encrypt([]byte("ORDER KEY"), []byte(orderAD))
		if _, err := b.db.SQL().ExecContext(b.ctx, `INSERT INTO acme_accounts (ca_name, directory_url, key_enc, account_url, created_at, updated_at)
			VALUES ('letsencrypt', 'https://ca.test/dir', $1, '', 0, 0)`, accEnc); err != nil {
			t.Fatal(err)
		}
		if _, err := b.db.SQL().ExecContext(b.ctx, `INSERT INTO acme_orders (domain_id, org_id, ca_name, directory_url, order_url, key_type, key_enc, created_at)
			VALUES ($1, $2, 'letsencrypt', 'https://ca.test/dir', 'https://ca.test/order/1', 'ec256', $3, 0)`, d.ID, b.org.ID, ordEnc); err != nil {
			t.Fatal(err)
		}

		// A keyring without the old key cannot rotate: the run stops and names the row.
		lonely, _ := crypt.NewKeyring(newKeyBytes)
		_, err := b.db.RotateSecrets(b.ctx, lonely, 2)
		if err == nil || !strings.Contains(err.Error(), "oauth_connections") {
			t.Fatalf("rotate without old key: %v", err)
		}

		both, _ := crypt.NewKeyring(newKeyBytes, oldKey)
		res, err := b.db.RotateSecrets(b.ctx, both, 2) // batches of 2: several commits
		if err != nil {
			t.Fatal(err)
		}
		counts := map[string]int{}
		for _, r := range res {
			counts[r.Table] = r.Resealed
		}
		if counts["oauth_connections"] != 5 || counts["certificates"] != 1 || counts["acme_accounts"] != 1 || counts["acme_orders"] != 1 {
			t.Fatalf("rotated %+v", res)
		}
		// Idempotent: nothing left to do.
		res, err = b.db.RotateSecrets(b.ctx, both, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r.Resealed != 0 {
				t.Fatalf("second run re-sealed %+v", r)
			}
		}
		// The old key can be retired: the new key alone opens everything.
		for i, c := range conns {
			got, _ := b.db.FindConnection(b.ctx, b.org.ID, c.ID)
			plain, err := lonely.Decrypt(got.SecretEnc, connection.SecretAD(c.ID))
			if err != nil || string(plain) != "secret-"+string(rune('a'+i)) {
				t.Fatalf("connection %d after rotation: %q, %v", i, plain, err)
			}
		}
		cert, err := b.db.CurrentCertificate(b.ctx, b.org.ID, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range []struct{ query, ad, want string }{
			{`SELECT key_enc FROM acme_accounts`, accountAD, "ACCOUNT KEY"},
			{`SELECT key_enc FROM acme_orders`, orderAD, "ORDER KEY"},
		} {
			var env string
			if err := b.db.SQL().QueryRowContext(b.ctx, q.query).Scan(&env); err != nil {
				t.Fatal(err)
			}
			if plain, err := lonely.Decrypt(env, []byte(q.ad)); err != nil || string(plain) != q.want {
				t.Fatalf("%s after rotation: %v", q.query, err)
			}
		}
		if plain, err := lonely.Decrypt(cert.PrivateKeyEnc, []byte("certificate:"+certID)); err != nil || string(plain) != "PRIVATE KEY" {
			t.Fatalf("certificate key after rotation: %v", err)
		}
	})
}

var _ dcvaas.ConnectionStore = (*sqlstore.DB)(nil)
