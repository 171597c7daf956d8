package httpapi_test

import (
	"crypto/rand"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas/crypt"
	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/dcvaas/dcvaas/webhook"
)

func testKeyring(t *testing.T) *crypt.Keyring {
	t.Helper()
	key := make([]byte, crypt.KeySize)
	rand.Read(key)
	kr, err := crypt.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// TestWebhookLifecycle: create (secret once, no-store), read without the
// secret (read tokens too), change, rotate, test, deliveries, retry,
// delete — each audited, the secret never stored or logged in clear.
func TestWebhookLifecycle(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b := setup(t, dialect)
		a := b.a
		r := b.do("POST", "/api/webhooks", a.admin, map[string]any{"url": "https://hooks.example.com/dcvaas",
			"eventTypes": []string{"certificate.*", "domain.created"}, "description": "deploy hook"}).want(t, http.StatusCreated)
		if r.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("Cache-Control %q on the answer with the secret", r.header.Get("Cache-Control"))
		}
		w := r.obj(t)
		id, secret := w["id"].(string), w["secret"].(string)
		if !strings.HasPrefix(secret, "whsec_") || len(secret) != 50 || w["enabled"] != true || r.header.Get("Location") != "/api/webhooks/"+id {
			t.Fatalf("created %v", w)
		}
		for _, tok := range []string{a.admin, a.read} {
			one := b.do("GET", "/api/webhooks/"+id, tok, nil).want(t, http.StatusOK)
			list := b.do("GET", "/api/webhooks", tok, nil).want(t, http.StatusOK)
			if strings.Contains(string(one.body), "secret\"") || strings.Contains(string(list.body), "whsec_") || len(list.items(t)) != 1 {
				t.Fatalf("a read shows the secret or misses the webhook: %s %s", one.body, list.body)
			}
		}
		p := b.do("PATCH", "/api/webhooks/"+id, a.admin, map[string]any{"eventTypes": []string{}, "enabled": false, "description": "off"}).
			want(t, http.StatusOK).obj(t)
		if p["enabled"] != false || p["description"] != "off" || len(p["eventTypes"].([]any)) != 0 || p["url"] != "https://hooks.example.com/dcvaas" {
			t.Fatalf("patched %v", p)
		}
		rot := b.do("POST", "/api/webhooks/"+id+"/rotate-secret", a.admin, nil).want(t, http.StatusOK)
		rw := rot.obj(t)
		if rot.header.Get("Cache-Control") != "no-store" || rw["secret"] == secret || !strings.HasPrefix(rw["secret"].(string), "whsec_") {
			t.Fatalf("rotated %v (%v)", rw, rot.header)
		}
		until, err := time.Parse(time.RFC3339Nano, rw["previousSecretExpiresAt"].(string))
		if err != nil || until.Sub(b.clock.Now()) < 23*time.Hour || until.Sub(b.clock.Now()) > 25*time.Hour {
			t.Fatalf("previousSecretExpiresAt %v", rw["previousSecretExpiresAt"])
		}
		test := b.do("POST", "/api/webhooks/"+id+"/test", a.admin, nil).want(t, http.StatusAccepted).obj(t)
		if test["eventType"] != "webhook.test" || test["status"] != "pending" || test["eventId"] == "" {
			t.Fatalf("test delivery %v", test)
		}
		ds := b.do("GET", "/api/webhooks/"+id+"/deliveries", a.read, nil).want(t, http.StatusOK).items(t)
		if len(ds) != 1 || ds[0]["id"] != test["id"] {
			t.Fatalf("deliveries %v", ds)
		}
		b.do("POST", "/api/webhooks/"+id+"/deliveries/"+test["id"].(string)+"/retry", a.admin, nil).want(t, http.StatusAccepted)
		// (On PostgreSQL an event is listed once every older writing
		// transaction on the server has ended: waitEvents polls.)
		if evs := b.waitEvents(t, a.admin, "?type=webhook.test", 1).events(t); len(evs) != 1 {
			t.Fatalf("webhook.test events %v", evs)
		}
		// The secrets are sealed at rest, and no log or audit entry holds them.
		var enc, prev string
		if err := b.db.SQL().QueryRow(`SELECT secret_enc, prev_secret_enc FROM webhooks WHERE id = $1`, id).Scan(&enc, &prev); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(enc, "v1.") || !strings.HasPrefix(prev, "v1.") || strings.Contains(enc+prev, "whsec_") {
			t.Fatalf("secrets at rest: %q %q", enc, prev)
		}
		d := b.dump()
		for _, s := range []string{secret, rw["secret"].(string)} {
			if strings.Contains(d, s) || strings.Contains(b.logs.String(), s) || strings.Contains(d, strings.TrimPrefix(s, "whsec_")) {
				t.Fatal("a secret is in the database or the logs in clear")
			}
		}
		b.do("DELETE", "/api/webhooks/"+id, a.admin, nil).want(t, http.StatusNoContent)
		b.do("GET", "/api/webhooks/"+id, a.admin, nil).wantProblem(t, http.StatusNotFound)
		var acts []string
		for _, e := range b.do("GET", "/api/audit", a.admin, nil).want(t, http.StatusOK).items(t) {
			if e["entityId"] == id {
				acts = append(acts, e["action"].(string))
			}
		}
		slices.Reverse(acts)
		want := []string{"webhook.created", "webhook.updated", "webhook.secret_rotated", "webhook.tested", "webhook.delivery_retried", "webhook.deleted"}
		if !slices.Equal(acts, want) {
			t.Fatalf("audit %v, want %v", acts, want)
		}
		for _, act := range want {
			if n := len(b.do("GET", "/api/audit?action="+act, a.admin, nil).want(t, http.StatusOK).items(t)); n != 1 {
				t.Fatalf("audit filter %s: %d entries", act, n)
			}
		}
	})
}

// TestWebhookValidation: each bad request is a 422 naming the field and
// the rule, and changes nothing.
func TestWebhookValidation(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b := setup(t, dialect)
		before := b.dump()
		for _, c := range []struct {
			body  map[string]any
			field string
			rule  string
		}{
			{map[string]any{"url": "http://hooks.example.com/"}, "body.url", "rule: scheme"},
			{map[string]any{"url": "ftp://hooks.example.com/"}, "body.url", "rule: scheme"},
			{map[string]any{"url": "https://127.0.0.1/"}, "body.url", "rule: address"},
			{map[string]any{"url": "https://[::1]:8443/"}, "body.url", "rule: address"},
			{map[string]any{"url": "https://10.0.0.1/"}, "body.url", "rule: address"},
			{map[string]any{"url": "https://169.254.169.254/"}, "body.url", "rule: address"},
			{map[string]any{"url": "https://localhost/"}, "body.url", "rule: address"},
			{map[string]any{"url": "https://u:p@hooks.example.com/"}, "body.url", "rule: userinfo"},
			{map[string]any{"url": "https://hooks.example.com/", "eventTypes": []string{"domain.exploded"}}, "body.eventTypes", "unknown event type"},
			{map[string]any{"url": "https://hooks.example.com/", "eventTypes": []string{"dom*"}}, "body.eventTypes", "unknown event type"},
			{map[string]any{"url": "https://hooks.example.com/", "description": strings.Repeat("x", 501)}, "body.description", ""},
			{map[string]any{"description": "no url"}, "body.url", ""},
		} {
			p := b.do("POST", "/api/webhooks", b.a.admin, c.body).wantProblem(t, http.StatusUnprocessableEntity)
			if !slices.Contains(fieldsOf(p), c.field) || !strings.Contains(string(mustJSON(t, p)), c.rule) {
				t.Errorf("%v: problem %v, want field %s and %q", c.body, p, c.field, c.rule)
			}
		}
		id := b.do("POST", "/api/webhooks", b.a.admin, map[string]any{"url": "https://hooks.example.com/"}).want(t, http.StatusCreated).obj(t)["id"].(string)
		after := b.dump()
		p := b.do("PATCH", "/api/webhooks/"+id, b.a.admin, map[string]any{"url": "https://192.168.0.10/"}).wantProblem(t, http.StatusUnprocessableEntity)
		if !slices.Contains(fieldsOf(p), "body.url") || b.dump() != after {
			t.Fatalf("bad PATCH: %v, or it changed something", p)
		}
		if before == after {
			t.Fatal("the valid create changed nothing?")
		}
	})
}

// TestWebhookAllowFlags: the settings lift the rules.
func TestWebhookAllowFlags(t *testing.T) {
	b := setup(t, sqlstore.SQLite, options{webhookPolicy: webhook.Policy{AllowHTTP: true, AllowPrivate: true}})
	for _, u := range []string{"http://hooks.example.com/", "http://127.0.0.1:9000/hook", "https://10.0.0.1/"} {
		b.do("POST", "/api/webhooks", b.a.admin, map[string]any{"url": u}).want(t, http.StatusCreated)
	}
}

// TestWebhookIsolation: another organization's webhook is 404 on every
// route; read-only tokens cannot change anything (403) but can list.
func TestWebhookIsolation(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b := setup(t, dialect)
		id := b.do("POST", "/api/webhooks", b.a.admin, map[string]any{"url": "https://hooks.example.com/"}).want(t, http.StatusCreated).obj(t)["id"].(string)
		did := b.do("POST", "/api/webhooks/"+id+"/test", b.a.admin, nil).want(t, http.StatusAccepted).obj(t)["id"].(string)
		before := b.dump()
		for _, c := range []struct{ method, path string }{
			{"GET", "/api/webhooks/" + id},
			{"PATCH", "/api/webhooks/" + id},
			{"DELETE", "/api/webhooks/" + id},
			{"POST", "/api/webhooks/" + id + "/rotate-secret"},
			{"POST", "/api/webhooks/" + id + "/test"},
			{"GET", "/api/webhooks/" + id + "/deliveries"},
			{"POST", "/api/webhooks/" + id + "/deliveries/" + did + "/retry"},
		} {
			var body any
			if c.method == "PATCH" {
				body = map[string]any{"enabled": false}
			}
			b.do(c.method, c.path, b.b.admin, body).wantProblem(t, http.StatusNotFound)
			if c.method != "GET" {
				b.do(c.method, c.path, b.a.read, body).wantProblem(t, http.StatusForbidden)
			}
		}
		b.do("POST", "/api/webhooks", b.a.read, map[string]any{"url": "https://hooks.example.com/"}).wantProblem(t, http.StatusForbidden)
		if len(b.do("GET", "/api/webhooks", b.b.admin, nil).want(t, http.StatusOK).items(t)) != 0 {
			t.Fatal("another organization lists the webhook")
		}
		// A delivery of this webhook named under another webhook is 404 too.
		other := b.do("POST", "/api/webhooks", b.a.admin, map[string]any{"url": "https://other.example.com/"}).want(t, http.StatusCreated).obj(t)["id"].(string)
		b.do("POST", "/api/webhooks/"+other+"/deliveries/"+did+"/retry", b.a.admin, nil).wantProblem(t, http.StatusNotFound)
		_ = before
	})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}
