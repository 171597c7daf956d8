package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/dcvaas/dcvaas/sqlstore/storetest"
)

// chromiumPath finds Debian's chromium; outside CI a missing one skips the
// test, in CI (CI=true) it fails it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is missing: .ci/run installs the Debian package chromium")
	}
	t.Skip("browser test skipped: install the Debian package chromium (apt-get install -y chromium)")
	return ""
}

// page is one headless Chromium tab with its console errors collected.
type page struct {
	t    *testing.T
	ctx  context.Context
	mu   sync.Mutex
	errs []string
}

func newPage(t *testing.T) *page {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromiumPath(t)), chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true), chromedp.WindowSize(1280, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatal(err)
	}
	p := &page{t: t, ctx: ctx}
	go func() {
		for m, err := range chromedp.Console(ctx) {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException {
				p.mu.Lock()
				p.errs = append(p.errs, m.String())
				p.mu.Unlock()
			}
		}
	}()
	return p
}

func (p *page) consoleErrors() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.errs...)
}

func (p *page) clearConsole() { p.mu.Lock(); p.errs = nil; p.mu.Unlock() }

func (p *page) do(steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		p.t.Fatal(err)
	}
}

func eval[T any](p *page, js string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("%s: %v", js, err)
	}
	return v
}

func (p *page) text(sel string) string {
	return eval[string](p, fmt.Sprintf(`(document.querySelector(%q) || {}).textContent || ""`, sel))
}

// waitText waits until sel's text is want, without reloading the page.
func (p *page) waitText(sel, want string, timeout time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := strings.TrimSpace(p.text(sel))
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s shows %q, want %q", sel, got, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (p *page) signIn(base, token string) {
	p.t.Helper()
	p.do(chromedp.Navigate(base+"/domains"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), token),
		chromedp.Submit(chromedp.CSS("#token")),
		chromedp.WaitVisible(chromedp.CSS("#q")))
	if h1 := p.text("h1"); h1 != "Domains" {
		p.t.Fatalf("after sign-in the page is %q", h1)
	}
}

// postStatus sends a form POST from the page, as a forged form would, and
// returns the status.
func (p *page) postStatus(path string, form map[string]string) int {
	p.t.Helper()
	var parts []string
	for k, v := range form {
		parts = append(parts, fmt.Sprintf("%q: %q", k, v))
	}
	js := fmt.Sprintf(`fetch(%q, {method: "POST", body: new URLSearchParams({%s}), redirect: "manual"}).then(r => r.status)`,
		path, strings.Join(parts, ", "))
	return int(eval[float64](p, js))
}

// screenshot saves the page to $DCVAAS_SCREENSHOTS/name.jpg when set, for
// docs/screenshots (DCVAAS_SCREENSHOTS=$PWD/docs/screenshots go test …).
func (p *page) screenshot(name string) {
	dir := os.Getenv("DCVAAS_SCREENSHOTS")
	if dir == "" {
		return
	}
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(85))
	if err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".jpg"), png, 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// a11y checks the page's basics: one h1, every visible input labelled.
func (p *page) a11y(path string) {
	p.t.Helper()
	h1s := eval[float64](p, `document.querySelectorAll("h1").length`)
	unlabelled := eval[[]string](p, `Array.from(document.querySelectorAll("input:not([type=hidden]), select, textarea"))
		.filter(e => !(e.id && document.querySelector('label[for="' + e.id + '"]')) && !e.getAttribute("aria-label") && !e.closest("label"))
		.map(e => e.name || e.outerHTML)`)
	if h1s != 1 || len(unlabelled) > 0 {
		p.t.Fatalf("%s: %v h1 elements, inputs without a label %v", path, h1s, unlabelled)
	}
}

// The dashboard in a real browser against a real serve with Pebble and the
// tests' DNS (issue 17).
func TestDashboardInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("drives Chromium against a serve that issues from an in-process Pebble")
	}
	chromiumPath(t)
	w := newIssuanceWorld(t, storetest.URL(t, sqlstore.SQLite))
	admin, _ := bootstrapOrg(t, w.vars)
	other, _ := bootstrapOrg(t, w.vars)
	base := w.serve(t)
	status, readTok := call(t, "POST", base+"/api/tokens", admin, map[string]any{"name": "viewer", "role": "read"})
	if status != http.StatusCreated {
		t.Fatalf("read token: %d %v", status, readTok)
	}
	foreign := addDomain(t, w.dns, base, other, "other-"+randLabel(5)+".example.com")

	p := newPage(t)
	p.signIn(base, admin)

	// Add a domain: the page shows exactly the API's cnameRecord.
	name := "shop-" + randLabel(5) + ".example.com"
	p.do(chromedp.SendKeys(chromedp.CSS("#domainName"), name),
		chromedp.Submit(chromedp.CSS("#domainName")),
		chromedp.WaitVisible(chromedp.CSS("#cname-value")))
	loc := eval[string](p, `location.pathname`)
	id := strings.TrimPrefix(loc, "/domains/")
	status, api := call(t, "GET", base+"/api/domains/"+id, admin, nil)
	if status != 200 || api["domainName"] != name {
		t.Fatalf("page %s, API %d %v", loc, status, api)
	}
	rec := api["cnameRecord"].(map[string]any)
	if p.text("#cname-name") != rec["name"] || p.text("#cname-value") != rec["value"] {
		t.Fatalf("page shows %s CNAME %s, API says %v", p.text("#cname-name"), p.text("#cname-value"), rec)
	}
	p.waitText("#domain-status", "pending_cname", 5*time.Second)
	p.screenshot("domain-pending")

	// A POST without the CSRF token is refused, and changes nothing.
	if got := p.postStatus("/domains/"+id+"/verify", nil); got != http.StatusForbidden {
		t.Fatalf("POST without CSRF token: %d", got)
	}

	// The customer creates the CNAME; the page turns active by itself.
	eval[bool](p, `window.notReloaded = true`)
	w.dns.Delegate(name, rec["value"].(string))
	if status, job := call(t, "POST", base+"/api/domains/"+id+"/verify", admin, nil); status != http.StatusAccepted {
		t.Fatalf("verify: %d %v", status, job)
	}
	p.waitText("#domain-status", "active", 90*time.Second)
	if !eval[bool](p, `window.notReloaded === true`) {
		t.Fatal("the page was reloaded")
	}
	status, cert := call(t, "GET", base+"/api/domains/"+id+"/certificate", admin, nil)
	if status != 200 || p.text("#cert-serial") != cert["serialNumber"] {
		t.Fatalf("page serial %q, API %d %v", p.text("#cert-serial"), status, cert["serialNumber"])
	}
	chain := eval[string](p, `fetch(document.querySelector('a[href$="fullchain.pem"]').href).then(r => r.text())`)
	if chain != cert["certificatePem"] {
		t.Fatalf("downloaded fullchain differs from the API's")
	}
	p.screenshot("domain-active")

	// The admin's key download is the API's key, and it is audited.
	csrf := eval[string](p, `document.querySelector('.signout input[name=csrf]').value`)
	key := eval[string](p, fmt.Sprintf(`fetch("/domains/%s/key", {method: "POST", body: new URLSearchParams({csrf: %q})}).then(r => r.text())`, id, csrf))
	status, apiKey := call(t, "GET", base+"/api/domains/"+id+"/certificate/key", admin, nil)
	if status != 200 || !strings.HasPrefix(key, "-----BEGIN PRIVATE KEY-----") || key != apiKey["privateKeyPem"] {
		t.Fatalf("key download: %.40q, API %d", key, status)
	}
	status, reads := call(t, "GET", base+"/api/audit?action=certificate.key_read", admin, nil)
	if status != 200 || reads["total"].(float64) != 2 { // the page's and the API's
		t.Fatalf("key reads audited: %v", reads["total"])
	}

	// Another organization's domain is a 404 page.
	p.do(chromedp.Navigate(base + "/domains/" + foreign["id"].(string)))
	if h1 := p.text("h1"); h1 != "Not found" || strings.Contains(eval[string](p, `document.body.innerText`), foreign["domainName"].(string)) {
		t.Fatalf("other org's domain page: %q", h1)
	}

	// Every page: one h1, labelled inputs, no console errors.
	p.clearConsole()
	for _, path := range []string{"/", "/domains", "/domains/" + id, "/jobs", "/tokens", "/webhooks", "/audit", "/members", "/settings", "/settings?oauth=error&reason=browser_mismatch"} {
		p.do(chromedp.Navigate(base + path))
		p.a11y(path)
		switch path {
		case "/":
			p.screenshot("overview")
		case "/domains":
			p.screenshot("domains")
		}
	}
	// At 360 px wide nothing overflows the page sideways.
	p.do(chromedp.EmulateViewport(360, 740), chromedp.Navigate(base+"/domains/"+id))
	if wide := eval[bool](p, `document.documentElement.scrollWidth > window.innerWidth + 1`); wide {
		t.Fatal("the domain page is wider than 360 px")
	}
	p.screenshot("domain-narrow")
	p.do(chromedp.EmulateViewport(1280, 900))
	if errs := p.consoleErrors(); len(errs) > 0 {
		t.Fatalf("console errors: %v", errs)
	}

	// Sign out; a read-only sign-in sees no write buttons, and a forged
	// POST, even with its valid CSRF token, is refused.
	p.do(chromedp.Navigate(base+"/domains"), chromedp.Click(chromedp.CSS(".signout button")), chromedp.WaitVisible(chromedp.CSS("#token")))
	p.signIn(base, readTok["token"].(string))
	if n := eval[float64](p, `document.querySelectorAll("#domainName").length`); n != 0 {
		t.Fatal("read-only sign-in sees the Add domain form")
	}
	p.do(chromedp.Navigate(base+"/domains/"+id), chromedp.WaitVisible(chromedp.CSS("#domain-status")))
	writes := eval[float64](p, `document.querySelectorAll('main form[method=post], main a[href$="/delete"]').length`)
	if writes != 0 {
		t.Fatalf("read-only sign-in sees %v write buttons", writes)
	}
	csrf = eval[string](p, `document.querySelector('.signout input[name=csrf]').value`)
	if got := p.postStatus("/domains/"+id+"/key", map[string]string{"csrf": csrf}); got != http.StatusForbidden {
		t.Fatalf("read-only key download: %d", got)
	}
	if got := p.postStatus("/domains/"+id+"/renew", map[string]string{"csrf": csrf}); got != http.StatusForbidden {
		t.Fatalf("read-only forged POST: %d", got)
	}
	if got := p.postStatus("/domains/"+id+"/delete", map[string]string{"csrf": csrf}); got != http.StatusForbidden {
		t.Fatalf("read-only forged delete: %d", got)
	}
	status, after := call(t, "GET", base+"/api/domains/"+id, admin, nil)
	if status != 200 || after["status"] != "active" {
		t.Fatalf("domain after forged POSTs: %d %v", status, after)
	}
	status, renewals := call(t, "GET", base+"/api/jobs?type=renewal&domain_id="+id, admin, nil)
	if status != 200 || renewals["total"].(float64) != 0 {
		t.Fatalf("renewal jobs after a forged POST: %v", renewals)
	}
}
