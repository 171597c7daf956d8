package sqlstore_test

import (
	"testing"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/crypt"
	"github.com/dcvaas/dcvaas/webhook"
)

// TestRotateWebhookSecrets: `dcvaas keys rotate` re-seals both secrets of
// a webhook (the current one and the one a rotation kept), which then open
// under the new key alone.
func TestRotateWebhookSecrets(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b *bundle) {
		oldKey, newKeyBytes := newKey(), newKey()
		oldRing, _ := crypt.NewKeyring(oldKey)
		svc := &webhook.Service{Store: b.db, Sealer: oldRing, Policy: webhook.Policy{}}
		u := "https://hooks.example.com/"
		w, first, err := svc.Create(b.ctx, b.actor, webhook.Input{URL: &u})
		if err != nil {
			t.Fatal(err)
		}
		_, second, err := svc.Rotate(b.ctx, b.actor, w.ID)
		if err != nil {
			t.Fatal(err)
		}
		both, _ := crypt.NewKeyring(newKeyBytes, oldKey)
		res, err := b.db.RotateSecrets(b.ctx, both, 1)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, r := range res {
			if r.Table == "webhooks" {
				n += r.Resealed
			}
		}
		if n != 2 {
			t.Fatalf("re-sealed %d webhook secrets, want 2 (%+v)", n, res)
		}
		fresh, _ := crypt.NewKeyring(newKeyBytes)
		got, err := b.db.FindWebhook(b.ctx, b.org.ID, w.ID)
		if err != nil {
			t.Fatal(err)
		}
		secrets, err := webhook.Secrets(fresh, got, time.Now())
		if err != nil || len(secrets) != 2 || secrets[0] != second || secrets[1] != first {
			t.Fatalf("after rotation: %v, %v", len(secrets), err)
		}
		// Past the overlap the old secret no longer signs.
		if s, _ := webhook.Secrets(fresh, got, time.Now().Add(dcvaas.SecretOverlap+time.Hour)); len(s) != 1 {
			t.Fatalf("%d secrets after the overlap", len(s))
		}
	})
}
