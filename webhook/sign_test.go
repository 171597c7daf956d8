package webhook_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/dcvaas/dcvaas/webhook"
)

// TestSignVerifiesWithStandardWebhooks: our signatures verify with the
// specification's own Go library, alone and during a rotation (two
// signatures: each secret verifies alone), and a wrong secret does not.
func TestSignVerifiesWithStandardWebhooks(t *testing.T) {
	oldSecret, _ := webhook.NewSecret()
	newSecret, _ := webhook.NewSecret()
	if !strings.HasPrefix(newSecret, "whsec_") || len(newSecret) != len("whsec_")+44 {
		t.Fatalf("secret %q is not whsec_ + base64 of 32 bytes", newSecret)
	}
	body := []byte(`{"id":"evt_1","type":"webhook.test"}`)
	now := time.Now()
	for _, secrets := range [][]string{{newSecret}, {newSecret, oldSecret}} {
		sig, err := webhook.Sign(secrets, "evt_1", now, body)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(strings.Fields(sig)); got != len(secrets) {
			t.Fatalf("%d signatures for %d secrets: %q", got, len(secrets), sig)
		}
		h := http.Header{}
		h.Set("webhook-id", "evt_1")
		h.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
		h.Set("webhook-signature", sig)
		for _, s := range secrets {
			wh, err := standardwebhooks.NewWebhook(s)
			if err != nil {
				t.Fatal(err)
			}
			if err := wh.Verify(body, h); err != nil {
				t.Fatalf("secret %d of %d does not verify: %v", 1, len(secrets), err)
			}
		}
		other, _ := webhook.NewSecret()
		wh, _ := standardwebhooks.NewWebhook(other)
		if wh.Verify(body, h) == nil {
			t.Fatal("a foreign secret verifies")
		}
		if wh, _ := standardwebhooks.NewWebhook(secrets[0]); wh.Verify([]byte(`{"tampered":true}`), h) == nil {
			t.Fatal("a changed body verifies")
		}
	}
}
