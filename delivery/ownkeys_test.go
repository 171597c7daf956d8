package delivery

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas/csr"
)

// csrAPI plays dcvaas for a keyMode csr domain: it keeps the CSR put to
// it and "issues" (signs with a test CA) a certificate for its key.
type csrAPI struct {
	t      *testing.T
	caKey  *ecdsa.PrivateKey
	ca     *x509.Certificate
	mu     sync.Mutex
	status string
	csrPEM string
	cert   string
	serial int64
	bodies []string // every request body the agent sent
}

func newCSRAPI(t *testing.T) *csrAPI {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true, BasicConstraintsValid: true,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(48 * time.Hour), KeyUsage: x509.KeyUsageCertSign}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	ca, _ := x509.ParseCertificate(der)
	return &csrAPI{t: t, caKey: k, ca: ca, status: "issuing", serial: 10}
}

// issue signs a certificate for the stored CSR's key (as a renewal does).
func (a *csrAPI) issue() {
	a.mu.Lock()
	defer a.mu.Unlock()
	b, _ := pem.Decode([]byte(a.csrPEM))
	req, err := x509.ParseCertificateRequest(b.Bytes)
	if err != nil {
		a.t.Fatal(err)
	}
	a.serial++
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(a.serial), DNSNames: req.DNSNames,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.ca, req.PublicKey, a.caKey)
	if err != nil {
		a.t.Fatal(err)
	}
	a.cert = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})) +
		string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.ca.Raw}))
	a.status = "active"
}

func (a *csrAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.bodies = append(a.bodies, string(body))
	switch {
	case r.URL.Path == "/api/domains":
		json.NewEncoder(w).Encode(map[string]any{"total": 1, "items": []apiDomain{
			{ID: "d1", DomainName: "own.example.com", Status: a.status, KeyMode: "csr", KeyType: "ec256", IncludeWildcard: true}}})
	case r.URL.Path == "/api/domains/d1/csr" && r.Method == http.MethodGet:
		if a.csrPEM == "" {
			w.WriteHeader(http.StatusNotFound)
			json.NewEncoder(w).Encode(map[string]any{"detail": "no CSR has been submitted for this domain yet"})
			return
		}
		b, _ := pem.Decode([]byte(a.csrPEM))
		req, _ := x509.ParseCertificateRequest(b.Bytes)
		json.NewEncoder(w).Encode(map[string]any{"publicKeySha256": csr.PublicKeySHA256(req.RawSubjectPublicKeyInfo)})
	case r.URL.Path == "/api/domains/d1/csr" && r.Method == http.MethodPut:
		var in struct{ CSR string }
		json.Unmarshal(body, &in)
		if _, err := csr.Check([]byte(in.CSR), csr.Names("own.example.com", true), "ec256"); err != nil {
			w.WriteHeader(http.StatusUnprocessableEntity)
			json.NewEncoder(w).Encode(map[string]any{"detail": err.Error()})
			return
		}
		a.csrPEM = in.CSR
		json.NewEncoder(w).Encode(map[string]any{"domainId": "d1"})
	case r.URL.Path == "/api/domains/d1/certificate":
		if r.URL.Query().Get("includeKey") != "false" {
			w.WriteHeader(http.StatusConflict)
			return
		}
		if a.cert == "" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		etag := `"` + big.NewInt(a.serial).String() + `.json"`
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", etag)
		json.NewEncoder(w).Encode(apiCertificate{SerialNumber: "x", CertificatePEM: a.cert, ChainPEM: leaf(a.cert)})
	default:
		http.NotFound(w, r)
	}
}

func TestAgentOwnKeys(t *testing.T) {
	api := newCSRAPI(t)
	srv := httptest.NewServer(api)
	defer srv.Close()
	dir := t.TempDir()
	a := NewAgent(AgentConfig{APIURL: srv.URL, Token: "t", Dir: dir, OwnKeys: true})
	ctx := context.Background()
	keyPath := filepath.Join(dir, "own.example.com", ownKeyDir, "privkey.pem")

	// Issuing: the agent makes its key and submits the CSR; nothing to install yet.
	if s := a.Sync(ctx); !s.OK() || len(s.Updated) != 0 {
		t.Fatalf("pass 1 = %+v", s)
	}
	st, err := os.Stat(keyPath)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("local key: %v %v", st, err)
	}
	localKey, _ := os.ReadFile(keyPath)
	if api.csrPEM == "" {
		t.Fatal("no CSR submitted")
	}
	// Issued: the certificate is installed with the local key.
	api.issue()
	if s := a.Sync(ctx); len(s.Updated) != 1 || !s.OK() {
		t.Fatalf("pass 2 = %+v", s)
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "own.example.com", "fullchain.pem"), filepath.Join(dir, "own.example.com", "privkey.pem"))
	if err != nil {
		t.Fatalf("installed pair: %v", err)
	}
	if onDisk, _ := os.ReadFile(filepath.Join(dir, "own.example.com", "privkey.pem")); string(onDisk) != string(localKey) {
		t.Fatal("privkey.pem is not the local key")
	}
	firstLeaf := pair.Certificate[0]
	// The CSR is not submitted again while dcvaas has it.
	n := len(api.bodies)
	if s := a.Sync(ctx); len(s.Updated) != 0 || !s.OK() {
		t.Fatalf("pass 3 = %+v", s)
	}
	for _, b := range api.bodies[n:] {
		if strings.Contains(b, "CERTIFICATE REQUEST") {
			t.Fatal("CSR submitted again though dcvaas had it")
		}
	}

	// Rotation: the key file is deleted. A new key, a new CSR; until dcvaas
	// issues for it the old pair stays in place, untouched.
	os.Remove(keyPath)
	if s := a.Sync(ctx); len(s.Waiting) != 1 || len(s.Updated) != 0 || !s.OK() {
		t.Fatalf("rotation pass = %+v", s)
	}
	newKey, _ := os.ReadFile(keyPath)
	if string(newKey) == string(localKey) {
		t.Fatal("no new key")
	}
	pair, err = tls.LoadX509KeyPair(filepath.Join(dir, "own.example.com", "fullchain.pem"), filepath.Join(dir, "own.example.com", "privkey.pem"))
	if err != nil || string(pair.Certificate[0]) != string(firstLeaf) {
		t.Fatalf("the old pair changed while waiting: %v", err)
	}
	api.issue()
	if s := a.Sync(ctx); len(s.Updated) != 1 || !s.OK() {
		t.Fatalf("after reissue = %+v", s)
	}
	if onDisk, _ := os.ReadFile(filepath.Join(dir, "own.example.com", "privkey.pem")); string(onDisk) != string(newKey) {
		t.Fatal("privkey.pem is not the new key")
	}
	if _, err := tls.LoadX509KeyPair(filepath.Join(dir, "own.example.com", "fullchain.pem"), filepath.Join(dir, "own.example.com", "privkey.pem")); err != nil {
		t.Fatalf("after rotation: %v", err)
	}

	// The key never left the machine.
	for _, k := range [][]byte{localKey, newKey} {
		b, _ := pem.Decode(k)
		body := strings.Join(api.bodies, "\n")
		if strings.Contains(body, "PRIVATE KEY") || strings.Contains(body, string(pem.EncodeToMemory(b))[30:70]) {
			t.Fatal("a private key was sent to the API")
		}
	}
}
