package delivery

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// selfSigned is a certificate and its key, PEM, for name.
func selfSigned(t *testing.T, name string, serial int64) (certPEM, keyPEM string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
}

// fakeAPI speaks the two routes the agent uses, in the API's format; fail
// makes every answer a 503.
type fakeAPI struct {
	domains   []apiDomain
	cert, key string
	serial    string
	fail      atomic.Bool
	certFetch atomic.Int32
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.fail.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	if r.URL.Path == "/api/domains" {
		json.NewEncoder(w).Encode(map[string]any{"items": f.domains, "total": len(f.domains)})
		return
	}
	etag := `"` + f.serial + `.json+key"`
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	f.certFetch.Add(1)
	w.Header().Set("ETag", etag)
	json.NewEncoder(w).Encode(apiCertificate{SerialNumber: f.serial, CertificatePEM: f.cert, PrivateKeyPEM: f.key, NotAfter: time.Now()})
}

func TestAgentOutageReloadAndPrune(t *testing.T) {
	api := &fakeAPI{domains: []apiDomain{{ID: "d1", DomainName: "shop.example.com", Status: "active"}}, serial: "1"}
	api.cert, api.key = selfSigned(t, "shop.example.com", 1)
	srv := httptest.NewServer(api)
	defer srv.Close()
	dir := t.TempDir()
	flag := filepath.Join(t.TempDir(), "reload-ok")
	a := NewAgent(AgentConfig{APIURL: srv.URL, Token: "t", Dir: dir, Prune: true, Reload: "test -e " + flag})
	ctx := context.Background()

	// The reload fails: the files are in place, the failure reported.
	s := a.Sync(ctx)
	if len(s.Updated) != 1 || s.OK() || s.Reload == "ok" {
		t.Fatalf("pass 1 = %+v", s)
	}
	key, err := os.ReadFile(filepath.Join(dir, "shop.example.com", "privkey.pem"))
	if err != nil || string(key) != api.key {
		t.Fatalf("privkey.pem = %q, %v", key, err)
	}
	// Nothing changed, but the failed reload is retried until it works.
	os.WriteFile(flag, nil, 0o644)
	if s = a.Sync(ctx); s.Reload != "ok" || len(s.Updated) != 0 || !s.OK() {
		t.Fatalf("pass 2 = %+v", s)
	}
	if s = a.Sync(ctx); s.Reload != "" {
		t.Fatalf("pass 3 reloaded without a change: %+v", s)
	}

	// An outage: the pass fails, nothing is pruned or truncated.
	api.fail.Store(true)
	if s = a.Sync(ctx); s.OK() || s.Error == "" || len(s.Pruned) != 0 {
		t.Fatalf("outage pass = %+v", s)
	}
	if key, _ := os.ReadFile(filepath.Join(dir, "shop.example.com", "privkey.pem")); string(key) != api.key {
		t.Fatal("key changed during an outage")
	}
	api.fail.Store(false)

	// A renewal: a new set, the old one kept as previous.
	api.cert, api.key = selfSigned(t, "shop.example.com", 2)
	api.serial = "2"
	if s = a.Sync(ctx); len(s.Updated) != 1 {
		t.Fatalf("renewal pass = %+v", s)
	}
	if key, _ := os.ReadFile(filepath.Join(dir, "shop.example.com", "bundle.pem")); string(key) != api.cert+api.key {
		t.Fatal("bundle.pem is not the new chain + key")
	}
	// A certificate that does not match its key is never installed.
	_, otherKey := selfSigned(t, "shop.example.com", 3)
	api.key, api.serial = otherKey, "3"
	if s = a.Sync(ctx); len(s.Failed) != 1 || s.OK() {
		t.Fatalf("mismatched pair pass = %+v", s)
	}
	if key, _ := os.ReadFile(filepath.Join(dir, "shop.example.com", "privkey.pem")); string(key) == otherKey {
		t.Fatal("a key not matching its certificate was installed")
	}

	// A domain gone from the API goes with --prune; foreign dirs stay.
	os.Mkdir(filepath.Join(dir, "not-ours"), 0o755)
	api.domains = nil
	if s = a.Sync(ctx); len(s.Pruned) != 1 || s.Pruned[0] != "shop.example.com" {
		t.Fatalf("prune pass = %+v", s)
	}
	if _, err := os.Stat(filepath.Join(dir, "not-ours")); err != nil {
		t.Fatal("pruned a directory the agent did not write")
	}
}

func TestHostNameAndCovers(t *testing.T) {
	for in, want := range map[string]string{"Shop.Example.com.": "shop.example.com", "bücher.example.com": "xn--bcher-kva.example.com"} {
		if got, ok := HostName(in); !ok || got != want {
			t.Errorf("HostName(%q) = %q %v", in, got, ok)
		}
	}
	for _, bad := range []string{"", "a b", "[::1]:443", "exa mple.com"} {
		if _, ok := HostName(bad); ok {
			t.Errorf("HostName(%q) ok", bad)
		}
	}
	names := []string{"shop.example.com", "*.shop.example.com"}
	for name, want := range map[string]bool{"shop.example.com": true, "a.shop.example.com": true, "a.b.shop.example.com": false, "example.com": false} {
		if covers(names, name) != want {
			t.Errorf("covers(%q) = %v", name, !want)
		}
	}
}
