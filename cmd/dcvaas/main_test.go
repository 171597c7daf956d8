package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// env is a getenv over a map, so tests never read the real environment.
func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// syncBuffer collects a server's logs while it runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// startServe runs `dcvaas serve` in-process on a free port and returns its
// base URL; the server stops (gracefully) when the test ends.
func startServe(t testing.TB, vars map[string]string) string {
	t.Helper()
	base, _ := startServeDNS(t, vars)
	return base
}

// startServeDNS is startServe that also returns the address of serve's
// DNS server ("" when it runs none).
func startServeDNS(t testing.TB, vars map[string]string) (base, dnsAddr string) {
	t.Helper()
	vars = withTestDefaults(vars) // issuance_test.go
	addrc := make(chan string, 1)
	onListen = func(addr string) { addrc <- addr }
	onDNSListen = func(addr string) { dnsAddr = addr } // before onListen, in serve's goroutine
	t.Cleanup(func() { onListen, onDNSListen = nil, nil })
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	done := make(chan error, 1)
	addr := "127.0.0.1:0" // a free port, unless the test needs a known one
	if a := vars["DCVAAS_HTTP_ADDR"]; a != "" {
		addr = a
	}
	go func() { done <- run(ctx, []string{"serve", "--http-addr", addr}, env(vars), io.Discard, logs) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v\n%s", err, logs.String())
		}
	})
	select {
	case addr := <-addrc:
		return "http://" + addr, dnsAddr
	case err := <-done:
		t.Fatalf("serve exited: %v\n%s", err, logs.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not start\n%s", logs.String())
	}
	return "", ""
}

func call(t testing.TB, method, url, token string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// TestEndToEnd runs the real program: bootstrap, serve, create a domain,
// list it and find it in the audit log.
func TestEndToEnd(t *testing.T) {
	vars := map[string]string{"DCVAAS_DATABASE_URL": filepath.Join(t.TempDir(), "e2e.db"), "DCVAAS_VERIFY_ZONE": "verify.example"}
	var out bytes.Buffer
	// bootstrap refuses a database that does not exist yet.
	var missing bytes.Buffer
	if err := run(context.Background(), []string{"bootstrap", "--org-name", "Acme", "--owner-email", "ops@acme.test"}, env(vars), &out, &missing); err == nil || !strings.Contains(err.Error(), "no database at") {
		t.Fatalf("bootstrap before any migrate: err = %v, want it to say there is no database", err)
	}
	if _, err := os.Stat(vars["DCVAAS_DATABASE_URL"]); err == nil {
		t.Fatal("bootstrap created the database it refused")
	}
	if err := run(context.Background(), []string{"migrate"}, env(vars), io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), []string{"bootstrap", "--org-name", "Acme", "--owner-email", "ops@acme.test", "--json"}, env(vars), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var boot struct{ Token, OrganizationID string }
	if err := json.Unmarshal(out.Bytes(), &boot); err != nil || !strings.HasPrefix(boot.Token, "dcv_") || boot.OrganizationID == "" {
		t.Fatalf("bootstrap printed %q (%v)", out.String(), err)
	}
	// Again with the same name (width folded): organization names are not
	// unique, so this is a second organization with a name of its own form.
	var again bytes.Buffer
	if err := run(context.Background(), []string{"bootstrap", "--org-name", "ａｃｍｅ", "--owner-email", "x@acme.test", "--json"}, env(vars), &again, io.Discard); err != nil {
		t.Fatalf("second bootstrap: %v", err)
	}
	var boot2 struct{ OrganizationID, OrganizationName string }
	if err := json.Unmarshal(again.Bytes(), &boot2); err != nil || boot2.OrganizationID == boot.OrganizationID || boot2.OrganizationName != "acme" {
		t.Fatalf("second bootstrap printed %q (%v)", again.String(), err)
	}
	// A name with a bidirectional override is refused.
	if err := run(context.Background(), []string{"bootstrap", "--org-name", "evil‮gnp", "--owner-email", "x@acme.test"}, env(vars), io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "bidirectional") {
		t.Fatalf("bootstrap with a bidi override: %v", err)
	}

	base := startServe(t, vars)
	if resp, err := http.Get(base + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	if resp, err := http.Get(base + "/readyz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("readyz: %v %v", resp, err)
	}
	status, dom := call(t, "POST", base+"/api/domains", boot.Token, map[string]any{"domainName": "Shop.Example.COM."})
	if status != 201 || dom["domainName"] != "shop.example.com" || dom["status"] != "pending_cname" {
		t.Fatalf("create domain: %d %v", status, dom)
	}
	rec, _ := dom["cnameRecord"].(map[string]any)
	if rec["name"] != "_acme-challenge.shop.example.com" || !strings.HasSuffix(rec["value"].(string), ".verify.example") {
		t.Fatalf("cnameRecord = %v", rec)
	}
	status, list := call(t, "GET", base+"/api/domains", boot.Token, nil)
	if items, _ := list["items"].([]any); status != 200 || len(items) != 1 || list["total"] != 1.0 {
		t.Fatalf("list: %d %v", status, list)
	}
	status, audit := call(t, "GET", base+"/api/audit?action=domain.created", boot.Token, nil)
	items, _ := audit["items"].([]any)
	if status != 200 || len(items) != 1 || items[0].(map[string]any)["entityId"] != dom["id"] {
		t.Fatalf("audit: %d %v", status, audit)
	}
	if status, _ := call(t, "GET", base+"/api/domains", "dcv_wrong", nil); status != 401 {
		t.Fatalf("bad token: %d", status)
	}
}

func TestConfigErrorsNameTheSetting(t *testing.T) {
	cases := map[string]map[string]string{
		"DCVAAS_HTTP_ADDR":        {"DCVAAS_HTTP_ADDR": "nonsense"},
		"DCVAAS_RATE_LIMIT":       {"DCVAAS_RATE_LIMIT": "0"},
		"DCVAAS_LOG_FORMAT":       {"DCVAAS_LOG_FORMAT": "xml"},
		"DCVAAS_LOG_LEVEL":        {"DCVAAS_LOG_LEVEL": "loud"},
		"DCVAAS_ENCRYPTION_KEY":   {"DCVAAS_ENCRYPTION_KEY": "abcd"},
		"DCVAAS_CORS_ORIGINS":     {"DCVAAS_CORS_ORIGINS": "https://ok.example, ftp://x"},
		"DCVAAS_HARD_DELETE":      {"DCVAAS_HARD_DELETE": "maybe"},
		"DCVAAS_ALLOW_TLDS":       {"DCVAAS_ALLOW_TLDS": "test, not a label"},
		"DCVAAS_VERIFY_ZONE":      {"DCVAAS_VERIFY_ZONE": "not a zone"},
		"DCVAAS_SHUTDOWN_TIMEOUT": {"DCVAAS_SHUTDOWN_TIMEOUT": "-1s"},
		"DCVAAS_DB_MAX_CONNS":     {"DCVAAS_DB_MAX_CONNS": "1"},
		"DCVAAS_EVENT_RETENTION":  {"DCVAAS_EVENT_RETENTION": "10m"},
	}
	for name, vars := range cases {
		vars["DCVAAS_DATABASE_URL"] = filepath.Join(t.TempDir(), "x.db")
		err := run(context.Background(), []string{"serve"}, env(vars), io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: error %v does not name the setting", name, err)
		}
	}
	err := run(context.Background(), []string{"migrate"}, env(map[string]string{"DCVAAS_DATABASE_URL": "postgres://127.0.0.1:1/x"}), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "DCVAAS_ENCRYPTION_KEY") {
		t.Errorf("postgres without key: %v", err)
	}
}

func TestBootstrapValidates(t *testing.T) {
	vars := map[string]string{"DCVAAS_DATABASE_URL": filepath.Join(t.TempDir(), "b.db")}
	for _, args := range [][]string{
		{"bootstrap", "--owner-email", "a@b.test"},
		{"bootstrap", "--org-name", "X", "--owner-email", "not-an-email"},
		{"bootstrap", "--org-name", "X"},
	} {
		if err := run(context.Background(), args, env(vars), io.Discard, io.Discard); err == nil {
			t.Errorf("%v: accepted", args)
		}
	}
}

func TestKeyFileGeneratedOnce(t *testing.T) {
	dir := t.TempDir()
	cfg := &Config{DatabaseURL: filepath.Join(dir, "k.db")}
	log := newLogger(&Config{LogFormat: "text"}, io.Discard)
	k1, err := keyring(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	k2, _ := keyring(cfg, log)
	if k1.CurrentKeyID() != k2.CurrentKeyID() {
		t.Fatal("key file not reused")
	}
	if cfg.KeyFile() != filepath.Join(dir, "dcvaas.key") {
		t.Fatalf("key file at %s", cfg.KeyFile())
	}
}
