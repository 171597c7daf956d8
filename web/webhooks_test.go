package web_test

import (
	"context"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/crypt"
	"github.com/dcvaas/dcvaas/session"
	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/dcvaas/dcvaas/web"
	"github.com/dcvaas/dcvaas/webhook"
)

var secretRE = regexp.MustCompile(`whsec_[A-Za-z0-9+/=]+`)

// secrets returns the signing secrets on a page, as a browser reads it
// (html/template writes + as &#43;).
type pageSecrets struct{}

var secretOnPage = pageSecrets{}

func (pageSecrets) FindAllString(body string, n int) []string {
	return secretRE.FindAllString(html.UnescapeString(body), n)
}
func (p pageSecrets) FindString(body string) string {
	if all := p.FindAllString(body, 1); len(all) > 0 {
		return all[0]
	}
	return ""
}
func (p pageSecrets) MatchString(body string) bool { return p.FindString(body) != "" }

// The webhooks page: create shows the secret once (no-store) and never
// again; test, retry, rotate, disable, enable and delete go through the
// API's webhook.Service; read-only sign-ins see no buttons and are refused;
// a bad URL is refused with the rule next to the field; another
// organization's endpoint is not found.
func TestWebhooksPage(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d sqlstore.Dialect) {
		b := setup(t, d, "")
		kr, err := crypt.NewKeyring([]byte(strings.Repeat("k", 32)))
		if err != nil {
			t.Fatal(err)
		}
		svc := &webhook.Service{Store: b.db, Sealer: kr, Clock: b.clock.Now}
		b.srv.Close()
		b.srv = httptest.NewServer(web.New(web.Deps{Store: b.db, Sessions: session.NewManager(b.db, "", b.clock.Now),
			VerifyZone: "verify.example.net", Clock: b.clock.Now, Webhooks: svc}))
		t.Cleanup(b.srv.Close)
		ctx := context.Background()

		admin := b.browser()
		admin.signIn(b.admin, "/")
		csrf := admin.csrf()
		if page := admin.send("GET", "/webhooks", nil); page.status != 200 || !strings.Contains(page.body, `href="/webhooks" aria-current="page"`) ||
			!strings.Contains(page.body, `<label for="url">`) || !strings.Contains(page.body, `action="/webhooks"`) {
			t.Fatalf("webhooks page: %d", page.status)
		}

		// A loopback URL: 422, the rule next to the field, nothing stored.
		r := admin.send("POST", "/webhooks", url.Values{"url": {"https://127.0.0.1/hook"}, "eventTypes": {"certificate.*"}, "csrf": {csrf}})
		if r.status != http.StatusUnprocessableEntity || !regexp.MustCompile(`id="url-error" class="field-error">[^<]*deliveries never reach`).MatchString(r.body) ||
			!strings.Contains(r.body, `aria-describedby="url-error"`) || !strings.Contains(r.body, `value="https://127.0.0.1/hook"`) {
			t.Fatalf("loopback URL: %d\n%s", r.status, r.body)
		}
		if r := admin.send("POST", "/webhooks", url.Values{"url": {"https://hooks.example.com/x"}, "eventTypes": {"nonsense.kind"}, "csrf": {csrf}}); r.status != http.StatusUnprocessableEntity ||
			!strings.Contains(r.body, `id="eventTypes-error"`) {
			t.Fatalf("bad event type: %d", r.status)
		}
		if _, n, _ := b.db.ListWebhooks(ctx, b.orgA.ID, dcvaas.Page{Limit: 10}); n != 0 {
			t.Fatalf("%d webhooks stored after refusals", n)
		}

		// Create: the secret once, not cached, the one that signs.
		r = admin.send("POST", "/webhooks", url.Values{"url": {"https://receiver.example.org/dcvaas"}, "eventTypes": {"certificate.*, domain.verified"},
			"description": {"ops receiver"}, "csrf": {csrf}})
		shown := secretOnPage.FindAllString(r.body, -1)
		if r.status != http.StatusCreated || len(shown) == 0 || r.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("create: %d %q %v", r.status, r.header.Get("Cache-Control"), shown)
		}
		hooks, _, _ := b.db.ListWebhooks(ctx, b.orgA.ID, dcvaas.Page{Limit: 10})
		if len(hooks) != 1 || hooks[0].URL != "https://receiver.example.org/dcvaas" || strings.Join(hooks[0].EventTypes, " ") != "certificate.* domain.verified" ||
			hooks[0].Description != "ops receiver" || !hooks[0].Enabled {
			t.Fatalf("stored %+v", hooks)
		}
		hook := hooks[0]
		secrets, err := webhook.Secrets(kr, hook, b.clock.Now())
		if err != nil || len(secrets) != 1 || secrets[0] != shown[0] {
			t.Fatalf("the secret shown is not the one that signs: %v", err)
		}
		audit, _, _ := b.db.ListAudit(ctx, b.orgA.ID, dcvaas.AuditFilter{Action: "webhook.created", Page: dcvaas.Page{Limit: 10}})
		if len(audit) != 1 {
			t.Fatal("creation not audited")
		}
		list := admin.send("GET", "/webhooks", nil).body
		if strings.Contains(html.UnescapeString(list), shown[0]) || secretOnPage.MatchString(list) || !strings.Contains(list, `href="/webhooks/`+hook.ID+`"`) ||
			!strings.Contains(list, "<code>certificate.*</code>") {
			t.Fatal("list shows a secret or lacks the endpoint")
		}
		path := "/webhooks/" + hook.ID
		page := admin.send("GET", path, nil).body
		if secretOnPage.MatchString(page) {
			t.Fatal("endpoint page shows a secret")
		}
		for _, a := range []string{"/disable", "/test", "/rotate", "/delete"} {
			if !strings.Contains(page, `action="`+path+a+`"`) {
				t.Fatalf("endpoint page lacks %s", a)
			}
		}

		// Send test: a webhook.test delivery, pending, with a retry button.
		if r := admin.send("POST", path+"/test", url.Values{"csrf": {csrf}}); r.status != http.StatusSeeOther || !strings.HasPrefix(flash(r), "Test event queued") {
			t.Fatalf("test: %d %q", r.status, flash(r))
		}
		ds, _, _ := b.db.ListWebhookDeliveries(ctx, b.orgA.ID, hook.ID, dcvaas.Page{Limit: 10})
		if len(ds) != 1 || ds[0].EventType != "webhook.test" {
			t.Fatalf("deliveries %+v", ds)
		}
		page = admin.send("GET", path, nil).body
		retry := path + "/deliveries/" + ds[0].ID + "/retry"
		if !regexp.MustCompile(`(?s)id="deliveries".*<code>webhook.test</code>.*pending`).MatchString(page) || !strings.Contains(page, `action="`+retry+`"`) {
			t.Fatal("deliveries table lacks the test delivery or its retry button")
		}
		if r := admin.send("POST", retry, url.Values{"csrf": {csrf}}); flash(r) != "Delivery queued again." {
			t.Fatalf("retry: %d %q", r.status, flash(r))
		}
		if a, _, _ := b.db.ListAudit(ctx, b.orgA.ID, dcvaas.AuditFilter{Action: "webhook.delivery_retried", Page: dcvaas.Page{Limit: 10}}); len(a) != 1 {
			t.Fatal("retry not audited")
		}

		// Rotate: a new secret once, not cached; both sign during the overlap.
		r = admin.send("POST", path+"/rotate", url.Values{"csrf": {csrf}})
		rotated := secretOnPage.FindString(r.body)
		if r.status != 200 || rotated == "" || rotated == shown[0] || r.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("rotate: %d %q", r.status, r.header.Get("Cache-Control"))
		}
		hook, _ = b.db.FindWebhook(ctx, b.orgA.ID, hook.ID)
		if secrets, err := webhook.Secrets(kr, hook, b.clock.Now()); len(secrets) != 2 || secrets[0] != rotated || secrets[1] != shown[0] {
			t.Fatalf("rotation did not make the shown secret the current one: %d %v %v %v", len(secrets), err, hook.PrevSecretExpiresAt, secrets[0] == rotated)
		}
		if page := admin.send("GET", path, nil).body; secretOnPage.MatchString(page) {
			t.Fatal("rotated secret shown again")
		}

		// Disable, enable.
		if r := admin.send("POST", path+"/disable", url.Values{"csrf": {csrf}}); flash(r) != "Endpoint disabled." {
			t.Fatalf("disable: %q", flash(r))
		}
		if h, _ := b.db.FindWebhook(ctx, b.orgA.ID, hook.ID); h.Enabled {
			t.Fatal("still enabled")
		}
		if page := admin.send("GET", path, nil).body; !strings.Contains(page, `action="`+path+`/enable"`) {
			t.Fatal("no Enable button on a disabled endpoint")
		}
		if r := admin.send("POST", path+"/enable", url.Values{"csrf": {csrf}}); flash(r) != "Endpoint enabled." {
			t.Fatalf("enable: %q", flash(r))
		}

		// Without the CSRF token: refused.
		if r := admin.send("POST", path+"/disable", url.Values{}); r.status != http.StatusForbidden {
			t.Fatalf("POST without CSRF: %d", r.status)
		}

		// Read-only: the list and the deliveries, no write buttons; forged
		// POSTs refused, nothing changed.
		reader := b.browser()
		reader.signIn(b.reader, "/")
		rlist := reader.send("GET", "/webhooks", nil).body
		rpage := reader.send("GET", path, nil).body
		if !strings.Contains(rlist, "https://receiver.example.org/dcvaas") || strings.Contains(rlist, `action="/webhooks"`) ||
			!strings.Contains(rpage, "<code>webhook.test</code>") || strings.Contains(rpage, `action="/webhooks/`) {
			t.Fatal("read-only pages offer writes or lack the endpoint")
		}
		rcsrf := reader.csrf()
		for _, p := range []string{"/webhooks", path + "/disable", path + "/test", path + "/rotate", path + "/delete", retry} {
			if r := reader.send("POST", p, url.Values{"url": {"https://evil.example.com/"}, "csrf": {rcsrf}}); r.status != http.StatusForbidden || secretOnPage.MatchString(r.body) {
				t.Fatalf("read-only POST %s: %d", p, r.status)
			}
		}

		// Another organization: not found, nothing changed.
		other := b.browser()
		other.signIn(b.other, "/")
		ocsrf := other.csrf()
		if r := other.send("GET", path, nil); r.status != http.StatusNotFound {
			t.Fatalf("other org's endpoint page: %d", r.status)
		}
		if strings.Contains(other.send("GET", "/webhooks", nil).body, "receiver.example.org") {
			t.Fatal("other org sees the endpoint")
		}
		for _, p := range []string{path + "/disable", path + "/rotate", path + "/delete", retry} {
			if r := other.send("POST", p, url.Values{"csrf": {ocsrf}}); r.status != http.StatusNotFound {
				t.Fatalf("other org's POST %s: %d", p, r.status)
			}
		}
		if h, err := b.db.FindWebhook(ctx, b.orgA.ID, hook.ID); err != nil || !h.Enabled {
			t.Fatalf("endpoint changed by others: %v", err)
		}

		// Delete.
		if r := admin.send("POST", path+"/delete", url.Values{"csrf": {csrf}}); flash(r) != "Endpoint deleted." {
			t.Fatalf("delete: %q", flash(r))
		}
		if r := admin.send("GET", path, nil); r.status != http.StatusNotFound {
			t.Fatalf("deleted endpoint: %d", r.status)
		}
	})
}

// Without a webhook service the page says so.
func TestWebhooksPageNotConfigured(t *testing.T) {
	b := setup(t, sqlstore.SQLite, "")
	br := b.browser()
	br.signIn(b.admin, "/")
	if r := br.send("GET", "/webhooks", nil); r.status != http.StatusNotImplemented || !strings.Contains(r.body, "not configured") {
		t.Fatalf("%d", r.status)
	}
}
