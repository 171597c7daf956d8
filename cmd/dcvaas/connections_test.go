package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dcvaas/dcvaas/provider/providertest"
)

// TestOneClickSetupEndToEnd runs the real program against provider fakes:
// the DCVAAS_ variables point it at them, OAuth connects Cloudflare, and
// dns-setup creates the CNAME.
func TestOneClickSetupEndToEnd(t *testing.T) {
	cf, oauth := providertest.NewCloudflare(t), providertest.NewOAuth(t)
	oauth.OnToken, oauth.OnRevoke = cf.AddToken, cf.RevokeToken
	cf.AddZone("example.com")
	vars := map[string]string{
		"DCVAAS_DATABASE_URL":                   filepath.Join(t.TempDir(), "e2e.db"),
		"DCVAAS_VERIFY_ZONE":                    "verify.example",
		"DCVAAS_PUBLIC_URL":                     "https://dcvaas.example.test",
		"DCVAAS_CLOUDFLARE_API_URL":             cf.URL(),
		"DCVAAS_OAUTH_CLOUDFLARE_CLIENT_ID":     oauth.ClientID,
		"DCVAAS_OAUTH_CLOUDFLARE_CLIENT_SECRET": oauth.ClientSecret,
		"DCVAAS_OAUTH_CLOUDFLARE_AUTH_URL":      oauth.AuthURL(),
		"DCVAAS_OAUTH_CLOUDFLARE_TOKEN_URL":     oauth.TokenURL(),
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"bootstrap", "--org-name", "Acme", "--owner-email", "ops@acme.test", "--json"}, env(vars), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var boot struct{ Token string }
	json.Unmarshal(out.Bytes(), &boot)
	base := startServe(t, vars)

	// Nothing here follows a redirect: the public URL is not on loopback.
	browser := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(u, token string) *url.URL {
		t.Helper()
		req, _ := http.NewRequest("GET", u, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := browser.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, err := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || err != nil {
			t.Fatalf("GET %s: %d %q", u, resp.StatusCode, resp.Header.Get("Location"))
		}
		return loc
	}
	atProvider := get(base+"/api/oauth/cloudflare/authorize", boot.Token)
	back := get(atProvider.String(), "")
	if !strings.HasPrefix(back.String(), "https://dcvaas.example.test/api/oauth/cloudflare/callback?") {
		t.Fatalf("provider sent the browser to %s", back)
	}
	done := get(base+back.Path+"?"+back.RawQuery, "")
	if done.Query().Get("oauth") != "success" {
		t.Fatalf("callback redirected to %s", done)
	}

	status, dom := call(t, "POST", base+"/api/domains", boot.Token, map[string]any{"domainName": "shop.example.com"})
	if status != 201 {
		t.Fatalf("create domain: %d %v", status, dom)
	}
	status, setup := call(t, "POST", base+"/api/domains/"+dom["id"].(string)+"/dns-setup", boot.Token,
		map[string]any{"connectionId": done.Query().Get("connectionId")})
	if status != 200 || setup["outcome"] != "created" || setup["jobId"] == nil {
		t.Fatalf("dns-setup: %d %v", status, setup)
	}
	if recs := cf.Records("_acme-challenge.shop.example.com"); len(recs) != 1 || recs[0].Content != dom["cnameTarget"] {
		t.Fatalf("records %+v", recs)
	}
}
