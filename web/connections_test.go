package web_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/connection"
	"github.com/dcvaas/dcvaas/crypt"
	"github.com/dcvaas/dcvaas/provider/providertest"
	"github.com/dcvaas/dcvaas/session"
	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/dcvaas/dcvaas/web"
)

func flash(r resp) string {
	u, _ := url.Parse(r.header.Get("Location"))
	if u == nil {
		return ""
	}
	return u.Query().Get("flash")
}

// Connections from the dashboard: connect with a credential, test, "Create
// it for me" (also past records in the way), delete; read-only and other
// organizations cannot.
func TestConnectionsAndCreateItForMe(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d sqlstore.Dialect) {
		b := setup(t, d, "")
		cf := providertest.NewCloudflare(t)
		cf.AddZone("example.com")
		cf.AddToken("cf-token")
		kr, err := crypt.NewKeyring([]byte(strings.Repeat("k", 32)))
		if err != nil {
			t.Fatal(err)
		}
		conns := connection.New(connection.Config{Store: b.db, Keys: kr, Clock: b.clock.Now,
			Providers: []connection.Provider{connection.Cloudflare(cf.URL(), nil, nil)}})
		b.srv.Close()
		b.srv = httptest.NewServer(web.New(web.Deps{Store: b.db, Sessions: session.NewManager(b.db, "", b.clock.Now),
			Connections: conns, VerifyZone: "verify.example.net", Clock: b.clock.Now}))
		t.Cleanup(b.srv.Close)
		ctx := context.Background()

		admin := b.browser()
		admin.signIn(b.admin, "/")
		csrf := admin.csrf()
		if r := admin.send("POST", "/settings/credentials/cloudflare", url.Values{"apiToken": {"wrong"}, "csrf": {csrf}}); !strings.HasPrefix(flash(r), "Not connected") {
			t.Fatalf("refused credential: %d %q", r.status, flash(r))
		}
		r := admin.send("POST", "/settings/credentials/cloudflare", url.Values{"apiToken": {"cf-token"}, "displayName": {"CF prod"}, "csrf": {csrf}})
		if flash(r) != "Connected." {
			t.Fatalf("connect: %d %q", r.status, flash(r))
		}
		list, _, _ := conns.List(ctx, b.orgA.ID, dcvaas.Page{Limit: 10})
		if len(list) != 1 || list[0].DisplayName != "CF prod" {
			t.Fatalf("connections %v", list)
		}
		conn := list[0].ID
		if page := admin.send("GET", "/settings", nil).body; strings.Contains(page, "cf-token") || !strings.Contains(page, "/settings/connections/"+conn+"/test") {
			t.Fatal("settings page shows the secret, or lacks the Test button")
		}
		if r := admin.send("POST", "/settings/connections/"+conn+"/test", url.Values{"csrf": {csrf}}); flash(r) != "The connection works; it manages example.com." {
			t.Fatalf("test: %q", flash(r))
		}

		// Create it for me: the CNAME appears at the provider, audited, and
		// a DNS check is queued.
		r = admin.send("POST", "/domains", url.Values{"domainName": {"shop.example.com"}, "csrf": {csrf}})
		path := strings.SplitN(r.header.Get("Location"), "?", 2)[0]
		id := strings.TrimPrefix(path, "/domains/")
		if page := admin.send("GET", path, nil).body; !strings.Contains(page, "Create it for me through CF prod") {
			t.Fatal("no Create it for me button")
		}
		r = admin.send("POST", path+"/dns-setup", url.Values{"connectionId": {conn}, "csrf": {csrf}})
		if flash(r) != "Created the CNAME in example.com; checking it now." {
			t.Fatalf("setup: %d %q", r.status, flash(r))
		}
		dom, _ := b.db.FindDomain(ctx, b.orgA.ID, id)
		recs := cf.Records("_acme-challenge.shop.example.com")
		if len(recs) != 1 || recs[0].Type != "CNAME" || recs[0].Content != dom.CNAMETarget {
			t.Fatalf("records at the provider: %+v", recs)
		}
		// The domain's timeline shows the setup and the queued check.
		page := admin.send("GET", path, nil).body
		if !regexp.MustCompile(`(?s)id="timeline".*domain\.dns_setup.*domain\.created`).MatchString(page) || !strings.Contains(page, "job dns_check") {
			t.Fatal("timeline lacks the setup, the creation or the check")
		}

		// A record in the way: refused, then replaced on request.
		r = admin.send("POST", "/domains", url.Values{"domainName": {"two.example.com"}, "csrf": {csrf}})
		two := strings.SplitN(r.header.Get("Location"), "?", 2)[0]
		cf.AddRecord("example.com", providertest.Record{Type: "TXT", Name: "_acme-challenge.two.example.com", Content: "old", TTL: 300})
		r = admin.send("POST", two+"/dns-setup", url.Values{"connectionId": {conn}, "csrf": {csrf}})
		if !strings.HasPrefix(flash(r), "Not created") || !strings.Contains(r.header.Get("Location"), "conflict="+conn) {
			t.Fatalf("conflict: %q %s", flash(r), r.header.Get("Location"))
		}
		if page := admin.send("GET", r.header.Get("Location"), nil).body; !strings.Contains(page, `name="replace" value="true"`) {
			t.Fatal("no offer to replace")
		}
		if r := admin.send("POST", two+"/dns-setup", url.Values{"connectionId": {conn}, "replace": {"true"}, "csrf": {csrf}}); !strings.HasPrefix(flash(r), "Created the CNAME in example.com in place") {
			t.Fatalf("replace: %q", flash(r))
		}
		if recs := cf.Records("_acme-challenge.two.example.com"); len(recs) != 1 || recs[0].Type != "CNAME" {
			t.Fatalf("after replace: %+v", recs)
		}

		// Read-only: no buttons, forged POSTs refused; another
		// organization: not found.
		reader := b.browser()
		reader.signIn(b.reader, "/")
		if page := reader.send("GET", "/settings", nil).body; strings.Contains(page, "/delete") || strings.Contains(page, "/test") || strings.Contains(page, "apiToken") {
			t.Fatal("read-only settings page offers writes")
		}
		if page := reader.send("GET", path, nil).body; strings.Contains(page, "Create it for me") {
			t.Fatal("read-only domain page offers Create it for me")
		}
		for _, p := range []string{"/settings/connections/" + conn + "/delete", "/settings/connections/" + conn + "/test", two + "/dns-setup"} {
			if r := reader.send("POST", p, url.Values{"connectionId": {conn}, "csrf": {reader.csrf()}}); r.status != http.StatusForbidden {
				t.Fatalf("read-only POST %s: %d", p, r.status)
			}
		}
		other := b.browser()
		other.signIn(b.other, "/")
		if r := other.send("POST", "/settings/connections/"+conn+"/delete", url.Values{"csrf": {other.csrf()}}); r.status != http.StatusNotFound {
			t.Fatalf("other org's delete: %d", r.status)
		}
		if r := admin.send("POST", "/settings/connections/"+conn+"/delete", url.Values{"csrf": {csrf}}); flash(r) != "Connection deleted." {
			t.Fatalf("delete: %q", flash(r))
		}
		if list, _, _ := conns.List(ctx, b.orgA.ID, dcvaas.Page{Limit: 10}); len(list) != 0 {
			t.Fatal("connection still listed")
		}
	})
}
