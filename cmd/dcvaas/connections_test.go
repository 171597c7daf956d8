package main

import (
	"crypto/x509"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas/provider/providertest"
	"github.com/dcvaas/dcvaas/sqlstore/storetest"
)

// TestOneClickSetupEndToEnd runs the real program from authorization to
// certificate: OAuth connects Cloudflare (fakes of its API and of its
// OAuth server, which the DCVAAS_ variables point at), dns-setup creates
// the delegation CNAME there, the customers' DNS serves it as Cloudflare's
// nameservers would, and the domain is verified and issued by Pebble
// (issuance_test.go's world). A second domain meets a Cloudflare outage at
// dns-setup: 202, queued, and the dns_setup job takes it the same way.
func TestOneClickSetupEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("issues real certificates from an in-process Pebble")
	}
	for _, dialect := range storetest.Dialects(t) {
		t.Run(string(dialect), func(t *testing.T) { oneClickSetup(t, storetest.URL(t, dialect)) })
	}
}

func oneClickSetup(t *testing.T, dbURL string) {
	world := newIssuanceWorld(t, dbURL)
	cf, oauth := providertest.NewCloudflare(t), providertest.NewOAuth(t)
	oauth.OnToken, oauth.OnRevoke = cf.AddToken, cf.RevokeToken
	cf.AddZone("example.com")
	cf.OnCNAME = func(name, target string) { world.dns.Delegate(strings.TrimPrefix(name, "_acme-challenge."), target) }
	for k, v := range map[string]string{
		"DCVAAS_PUBLIC_URL":                     "https://dcvaas.example.test",
		"DCVAAS_CLOUDFLARE_API_URL":             cf.URL(),
		"DCVAAS_OAUTH_CLOUDFLARE_CLIENT_ID":     oauth.ClientID,
		"DCVAAS_OAUTH_CLOUDFLARE_CLIENT_SECRET": oauth.ClientSecret,
		"DCVAAS_OAUTH_CLOUDFLARE_AUTH_URL":      oauth.AuthURL(),
		"DCVAAS_OAUTH_CLOUDFLARE_TOKEN_URL":     oauth.TokenURL(),
	} {
		world.vars[k] = v
	}
	token, _ := bootstrapOrg(t, world.vars)
	base := world.serve(t)
	start := time.Now()

	// Nothing here follows a redirect: the public URL is not on loopback.
	// The browser keeps its cookies by hand: they are Secure (the public URL
	// is https) and this test talks plain http to loopback.
	browser := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	cookies := map[string]string{}
	send := func(req *http.Request, want int) *url.URL {
		t.Helper()
		for k, v := range cookies {
			req.AddCookie(&http.Cookie{Name: k, Value: v})
		}
		resp, err := browser.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		for _, c := range resp.Cookies() {
			if c.MaxAge < 0 {
				delete(cookies, c.Name)
			} else {
				cookies[c.Name] = c.Value
			}
		}
		loc, err := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != want || err != nil {
			t.Fatalf("%s %s: %d %q", req.Method, req.URL, resp.StatusCode, resp.Header.Get("Location"))
		}
		return loc
	}
	redirect := func(u, token string) *url.URL {
		t.Helper()
		req, _ := http.NewRequest("GET", u, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		return send(req, http.StatusFound)
	}
	// The admin signs in to the dashboard in the browser that connects.
	form := url.Values{"token": {token}, "next": {"/settings"}}
	signIn, _ := http.NewRequest("POST", base+"/signin", strings.NewReader(form.Encode()))
	signIn.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	signIn.Header.Set("Origin", "https://dcvaas.example.test")
	send(signIn, http.StatusSeeOther)

	startPage := redirect(base+"/api/oauth/cloudflare/authorize", token)
	if !strings.HasPrefix(startPage.String(), "https://dcvaas.example.test/oauth/cloudflare/start?") {
		t.Fatalf("authorize sent the browser to %s", startPage)
	}
	atProvider := redirect(base+startPage.Path+"?"+startPage.RawQuery, "")
	back := redirect(atProvider.String(), "")
	if !strings.HasPrefix(back.String(), "https://dcvaas.example.test/api/oauth/cloudflare/callback?") {
		t.Fatalf("provider sent the browser to %s", back)
	}
	done := redirect(base+back.Path+"?"+back.RawQuery, "")
	if done.Query().Get("oauth") != "success" {
		t.Fatalf("callback redirected to %s", done)
	}
	connID := done.Query().Get("connectionId")

	newDomain := func(label string) (id, name, target string) {
		t.Helper()
		name = label + "-" + randLabel(5) + ".example.com"
		status, dom := call(t, "POST", base+"/api/domains", token, map[string]any{"domainName": name})
		if status != http.StatusCreated {
			t.Fatalf("create domain: %d %v", status, dom)
		}
		return dom["id"].(string), name, dom["cnameTarget"].(string)
	}
	shop, shopName, shopTarget := newDomain("shop")
	status, setup := call(t, "POST", base+"/api/domains/"+shop+"/dns-setup", token, map[string]any{"connectionId": connID})
	if status != http.StatusOK || setup["outcome"] != "created" || setup["jobId"] == nil {
		t.Fatalf("dns-setup: %d %v", status, setup)
	}
	if recs := cf.Records("_acme-challenge." + shopName); len(recs) != 1 || recs[0].Content != shopTarget {
		t.Fatalf("records %+v", recs)
	}

	// Cloudflare answers 502: the setup is queued, and the job does it.
	blog, blogName, blogTarget := newDomain("blog")
	cf.FailNext(http.StatusBadGateway)
	status, queued := call(t, "POST", base+"/api/domains/"+blog+"/dns-setup", token, map[string]any{"connectionId": connID})
	if status != http.StatusAccepted || queued["outcome"] != "queued" || queued["jobId"] == nil {
		t.Fatalf("dns-setup during an outage: %d %v", status, queued)
	}
	job := waitJob(t, base, token, queued["jobId"].(string), 30*time.Second)
	if job["type"] != "dns_setup" || job["result"].(map[string]any)["outcome"] != "created" {
		t.Fatalf("dns_setup job %v", job)
	}
	if recs := cf.Records("_acme-challenge." + blogName); len(recs) != 1 || recs[0].Content != blogTarget {
		t.Fatalf("records %+v", recs)
	}

	// Verified through the customers' DNS, then issued.
	for _, d := range []struct{ id, name string }{{shop, shopName}, {blog, blogName}} {
		waitDomain(t, base, token, d.id, 60*time.Second, isActive)
		code, _, chainPEM := get(t, base+"/api/domains/"+d.id+"/certificate", token, "application/pem-certificate-chain")
		if code != http.StatusOK {
			t.Fatalf("certificate of %s: %d %s", d.name, code, chainPEM)
		}
		chain := parseChain(t, chainPEM)
		inter := x509.NewCertPool()
		for _, c := range chain[1:] {
			inter.AddCert(c)
		}
		if _, err := chain[0].Verify(x509.VerifyOptions{DNSName: "www." + d.name, Roots: world.ca.Roots(), Intermediates: inter}); err != nil {
			t.Fatalf("chain of %s does not verify: %v", d.name, err)
		}
	}
	t.Logf("authorize → two domains active in %s", time.Since(start).Round(time.Millisecond))
	if _, audit := call(t, "GET", base+"/api/audit?action=domain.dns_setup", token, nil); audit["total"] != 2.0 {
		t.Fatalf("setups audited: %v", audit)
	}
}
