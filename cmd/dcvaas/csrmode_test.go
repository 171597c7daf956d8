package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/dcvaas/dcvaas/sqlstore/storetest"
)

// newCSR makes a PEM CSR for names with key.
func newCSR(t testing.TB, key crypto.Signer, names ...string) string {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: names}, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// keyTraces are forms in which a private key's bytes could sit in a
// database: the PKCS #8 DER as base64 (PEM body) and hex, and the private
// scalar raw, hex and base64.
func keyTraces(t testing.TB, k *ecdsa.PrivateKey) [][]byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	d := k.D.FillBytes(make([]byte, 32))
	b64 := base64.StdEncoding.EncodeToString(der)
	return [][]byte{
		[]byte(b64[20:60]), // a stretch of the PEM body, whatever its line breaks
		[]byte(hex.EncodeToString(der)[40:120]),
		d,
		[]byte(hex.EncodeToString(d)),
		[]byte(base64.StdEncoding.EncodeToString(d)[:40]),
		[]byte(base64.RawURLEncoding.EncodeToString(d)[:40]),
	}
}

// dumpRows renders every row of every table of the database as text (the
// SQL equivalent of grepping a dump).
func dumpRows(t testing.TB, db *sqlstore.DB, dialect sqlstore.Dialect) []byte {
	t.Helper()
	q := `SELECT name FROM sqlite_master WHERE type = 'table'`
	if dialect == sqlstore.Postgres {
		q = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`
	}
	rows, err := db.SQL().Query(q)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		tables = append(tables, n)
	}
	rows.Close()
	if len(tables) < 10 {
		t.Fatalf("found only tables %v", tables)
	}
	var out bytes.Buffer
	for _, tbl := range tables {
		rows, err := db.SQL().Query(`SELECT * FROM "` + tbl + `"`)
		if err != nil {
			t.Fatalf("%s: %v", tbl, err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for _, v := range vals {
				switch v := v.(type) {
				case []byte:
					out.Write(v)
					out.WriteString(" " + hex.EncodeToString(v))
				default:
					fmt.Fprint(&out, v)
				}
				out.WriteByte('|')
			}
			out.WriteByte('\n')
		}
		rows.Close()
	}
	return out.Bytes()
}

// TestCSRModeEndToEnd: a domain with keyMode csr is issued for the
// customer's CSR by a real Pebble through the real program; the key never
// reaches the database, the certificate carries the CSR's key, renewals
// reuse the CSR, a new CSR rotates the key, the key endpoints answer 409,
// and bad input changes nothing.
func TestCSRModeEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("issues real certificates from an in-process Pebble")
	}
	for _, dialect := range storetest.Dialects(t) {
		t.Run(string(dialect), func(t *testing.T) { csrModeEndToEnd(t, dialect, storetest.URL(t, dialect)) })
	}
}

func csrModeEndToEnd(t *testing.T, dialect sqlstore.Dialect, dbURL string) {
	w := newIssuanceWorld(t, dbURL)
	admin, _ := bootstrapOrg(t, w.vars)
	base := w.serve(t)
	delivery := deliveryToken(t, base, admin)

	name := "own-" + randLabel(5) + ".example.com"
	status, dom := call(t, "POST", base+"/api/domains", admin, map[string]any{"domainName": name, "keyMode": "csr"})
	if status != http.StatusCreated || dom["keyMode"] != "csr" {
		t.Fatalf("create csr domain: %d %v", status, dom)
	}
	id := dom["id"].(string)
	w.dns.Delegate(name, dom["cnameTarget"].(string))
	managed := addDomain(t, w.dns, base, admin, "managed-"+randLabel(5)+".example.com")
	if managed["keyMode"] != "managed" {
		t.Fatalf("default keyMode: %v", managed)
	}

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	weak, _ := rsa.GenerateKey(rand.Reader, 1024)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	good := newCSR(t, key, name, "*."+name)

	// Bad input: each a 4xx naming the problem, and nothing changes.
	csrURL := base + "/api/domains/" + id + "/csr"
	badInput := func(t *testing.T) {
		t.Helper()
		_, before := call(t, "GET", csrURL, admin, nil)
		delete(before, "requestId")
		for _, tc := range []struct {
			name, token, url string
			body             any
			status           int
			detail           string
		}{
			{"another name", admin, csrURL, map[string]any{"csr": newCSR(t, key, "other.example.com", "*.other.example.com")}, 422, "other.example.com"},
			{"a name too many", admin, csrURL, map[string]any{"csr": newCSR(t, key, name, "*."+name, "evil.example.net")}, 422, "evil.example.net"},
			{"no wildcard", admin, csrURL, map[string]any{"csr": newCSR(t, key, name)}, 422, "lacks *." + name},
			{"1024-bit RSA", admin, csrURL, map[string]any{"csr": newCSR(t, weak, name, "*."+name)}, 422, "1024 bits is too weak"},
			{"RSA for an ec256 domain", admin, csrURL, map[string]any{"csr": newCSR(t, rsaKey, name, "*."+name)}, 422, "keyType is ec256"},
			{"broken PEM", admin, csrURL, map[string]any{"csr": "-----BEGIN CERTIFICATE REQUEST-----\nAAAA!!\n-----END CERTIFICATE REQUEST-----\n"}, 422, "no PEM block"},
			{"not a CSR", admin, csrURL, map[string]any{"csr": string(selfSignedPEM(t))}, 422, "not a CERTIFICATE REQUEST"},
			{"empty", admin, csrURL, map[string]any{"csr": ""}, 422, ""},
			{"managed domain", admin, base + "/api/domains/" + managed["id"].(string) + "/csr", map[string]any{"csr": good}, 409, "keyMode managed"},
			{"unknown domain", admin, base + "/api/domains/nope/csr", map[string]any{"csr": good}, 404, ""},
			{"delivery token creates a domain", delivery, base + "/api/domains", map[string]any{"domainName": "x-" + randLabel(4) + ".example.com", "keyMode": "csr"}, 403, "delivery token"},
		} {
			status, p := call(t, "PUT", tc.url, tc.token, tc.body)
			if strings.HasSuffix(tc.url, "/api/domains") {
				status, p = call(t, "POST", tc.url, tc.token, tc.body)
			}
			if status != tc.status {
				t.Fatalf("%s: %d %v, want %d", tc.name, status, p, tc.status)
			}
			if raw := fmt.Sprint(p); !strings.Contains(raw, tc.detail) {
				t.Fatalf("%s: %v lacks %q", tc.name, p, tc.detail)
			}
		}
		_, after := call(t, "GET", csrURL, admin, nil)
		if delete(after, "requestId"); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Fatalf("bad input changed the CSR:\n%v\n%v", before, after)
		}
		if _, list := call(t, "GET", base+"/api/domains", admin, nil); list["total"] != float64(2) {
			t.Fatalf("bad input changed the domains: %v", list)
		}
	}
	badInput(t)

	// The CNAME is found, and the domain waits for its CSR.
	if status, j := call(t, "POST", base+"/api/domains/"+id+"/verify", admin, nil); status != http.StatusAccepted {
		t.Fatalf("verify: %d %v", status, j)
	}
	waitDomain(t, base, admin, id, 30*time.Second, func(d map[string]any) bool {
		return d["status"] == "issuing" && strings.Contains(fmt.Sprint(d["lastError"]), "CSR")
	})
	// The delivery token (what dcvaas sync --own-keys holds) submits it.
	status, sub := call(t, "PUT", csrURL, delivery, map[string]any{"csr": good})
	if status != http.StatusOK || sub["jobId"] == nil || sub["keyType"] != "ec256" {
		t.Fatalf("submit CSR: %d %v", status, sub)
	}
	waitDomain(t, base, admin, id, 60*time.Second, isActive)

	certKey := func() (*x509.Certificate, string) {
		t.Helper()
		status, _, body := get(t, base+"/api/domains/"+id+"/certificate", admin, "application/pem-certificate-chain")
		if status != 200 {
			t.Fatalf("certificate: %d %s", status, body)
		}
		leaf := parseChain(t, body)[0]
		return leaf, fmt.Sprintf("%x", leaf.SerialNumber)
	}
	leaf, serial1 := certKey()
	if !key.PublicKey.Equal(leaf.PublicKey) {
		t.Fatal("the certificate does not carry the CSR's public key")
	}
	if !strings.Contains(strings.Join(leaf.DNSNames, " "), "*."+name) {
		t.Fatalf("names %v", leaf.DNSNames)
	}

	// No private key to hand out: 409 with the reason, for every way of asking.
	for _, tc := range []struct{ token, path string }{
		{admin, "/certificate/key"},
		{delivery, "/certificate/key"},
		{admin, "/certificate?includeKey=true"},
		{delivery, "/certificate?includeKey=true"},
	} {
		status, p := call(t, "GET", base+"/api/domains/"+id+tc.path, tc.token, nil)
		if status != http.StatusConflict || !strings.Contains(fmt.Sprint(p["detail"]), "held by the customer") {
			t.Fatalf("%s: %d %v", tc.path, status, p)
		}
	}
	// Caddy's endpoint has no key to serve: 204, so Caddy looks elsewhere.
	if status, _, body := get(t, base+"/tls/"+delivery+"/certificate?server_name="+name, "", ""); status != http.StatusNoContent {
		t.Fatalf("Caddy endpoint for a csr-mode domain: %d %s", status, body)
	}
	// A delivery token's JSON form comes without a key rather than failing.
	if status, c := call(t, "GET", base+"/api/domains/"+id+"/certificate", delivery, nil); status != 200 || c["privateKeyPem"] != nil || c["certificatePem"] == nil {
		t.Fatalf("delivery JSON: %d %v", status, c)
	}

	// A renewal reuses the stored CSR: a new serial for the same key.
	status, j := call(t, "POST", base+"/api/domains/"+id+"/renew", admin, nil)
	if status != http.StatusAccepted {
		t.Fatalf("renew: %d %v", status, j)
	}
	waitJob(t, base, admin, j["jobId"].(string), 60*time.Second)
	leaf, serial2 := certKey()
	if serial2 == serial1 || !key.PublicKey.Equal(leaf.PublicKey) {
		t.Fatalf("renewal: serial %s → %s, same key %v", serial1, serial2, key.PublicKey.Equal(leaf.PublicKey))
	}

	badInput(t)

	// Key rotation: a CSR for a new key renews at once with it.
	key2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	status, sub = call(t, "PUT", csrURL, admin, map[string]any{"csr": newCSR(t, key2, "*."+name, name)})
	if status != http.StatusOK || sub["jobId"] == nil {
		t.Fatalf("rotate: %d %v", status, sub)
	}
	waitJob(t, base, admin, sub["jobId"].(string), 60*time.Second)
	if leaf, _ = certKey(); !key2.PublicKey.Equal(leaf.PublicKey) {
		t.Fatal("after rotation the certificate does not carry the new key")
	}
	// Submitting the same key again queues nothing.
	if status, sub = call(t, "PUT", csrURL, admin, map[string]any{"csr": newCSR(t, key2, name, "*."+name)}); status != 200 || sub["jobId"] != nil {
		t.Fatalf("same key again: %d %v", status, sub)
	}

	// Every submission is on record.
	if status, a := call(t, "GET", base+"/api/audit?action=domain.csr_submitted", admin, nil); status != 200 || a["total"] != float64(3) {
		t.Fatalf("audit domain.csr_submitted: %d %v", status, a)
	}

	// The keys never reached the database: not in any row, nor (SQLite) in
	// the database files' bytes.
	db := storetest.Open(t, dbURL)
	dump := dumpRows(t, db, dialect)
	if !bytes.Contains(dump, []byte(leaf.Subject.CommonName)) && !bytes.Contains(dump, []byte(name)) {
		t.Fatal("the dump does not even hold the domain name: it dumps nothing")
	}
	files := [][]byte{dump}
	if dialect == sqlstore.SQLite {
		for _, suffix := range []string{"", "-wal", "-shm"} {
			if b, err := os.ReadFile(dbURL + suffix); err == nil {
				files = append(files, b)
			}
		}
		if len(files) < 2 {
			t.Fatalf("no database file at %s (%v)", dbURL, filepath.Base(dbURL))
		}
	}
	for _, k := range []*ecdsa.PrivateKey{key, key2} {
		for i, trace := range keyTraces(t, k) {
			for j, f := range files {
				if bytes.Contains(f, trace) {
					t.Fatalf("private key trace %d found in database image %d", i, j)
				}
			}
		}
	}
	// The scan can see what it looks for: the stored CSR is in the dump.
	csrLine := strings.Split(sub["csr"].(string), "\n")[2]
	if !bytes.Contains(dump, []byte(csrLine)) {
		t.Fatalf("the stored CSR (%q) is not in the dump either: the scan sees nothing", csrLine)
	}
}

// TestSyncOwnKeysFollowsStream: `dcvaas sync --own-keys` (long-running,
// polling only hourly) makes the key of a csr-mode domain on its machine,
// submits its CSR, and installs the certificate Pebble issues for it; a
// renewal reaches disk within 5 s through the event stream alone.
func TestSyncOwnKeysFollowsStream(t *testing.T) {
	if testing.Short() {
		t.Skip("issues real certificates from an in-process Pebble")
	}
	for _, dialect := range storetest.Dialects(t) {
		t.Run(string(dialect), func(t *testing.T) { syncOwnKeys(t, storetest.URL(t, dialect)) })
	}
}

func syncOwnKeys(t *testing.T, dbURL string) {
	w := newIssuanceWorld(t, dbURL)
	admin, _ := bootstrapOrg(t, w.vars)
	base := w.serve(t)
	tok := deliveryToken(t, base, admin)
	name := "agent-" + randLabel(5) + ".example.com"
	status, dom := call(t, "POST", base+"/api/domains", admin, map[string]any{"domainName": name, "keyMode": "csr"})
	if status != http.StatusCreated {
		t.Fatalf("create: %d %v", status, dom)
	}
	id := dom["id"].(string)
	w.dns.Delegate(name, dom["cnameTarget"].(string))

	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	logs := &syncBuffer{}
	go func() {
		done <- run(ctx, []string{"sync", "--api-url", base, "--dir", dir, "--own-keys", "--interval", "1h"},
			env(map[string]string{"DCVAAS_SYNC_TOKEN": tok}), io.Discard, logs)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	// The agent is following the stream before the domain moves.
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(logs.String(), "following the event stream") {
		if time.Now().After(deadline) {
			t.Fatalf("the agent does not follow the stream:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if status, j := call(t, "POST", base+"/api/domains/"+id+"/verify", admin, nil); status != http.StatusAccepted {
		t.Fatalf("verify: %d %v", status, j)
	}
	// domain.verified → the agent submits its CSR → issuance →
	// certificate.issued → the agent installs it with its own key.
	keyPath := filepath.Join(dir, name, ".own-key", "privkey.pem")
	serial := func() string {
		if _, err := os.Stat(filepath.Join(dir, name, "current")); err != nil {
			return ""
		}
		return leafSerial(t, dir, name) // checks certificate and key match
	}
	deadline = time.Now().Add(90 * time.Second)
	for serial() == "" {
		if time.Now().After(deadline) {
			_, d := call(t, "GET", base+"/api/domains/"+id, admin, nil)
			t.Fatalf("nothing installed; domain %v\n%s", d, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	local, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if installed, _ := os.ReadFile(filepath.Join(dir, name, "privkey.pem")); string(installed) != string(local) {
		t.Fatal("privkey.pem is not the agent's own key")
	}
	first := serial()

	status, j := call(t, "POST", base+"/api/domains/"+id+"/renew", admin, nil)
	if status != http.StatusAccepted {
		t.Fatalf("renew: %d %v", status, j)
	}
	waitJob(t, base, admin, j["jobId"].(string), 60*time.Second)
	renewed := time.Now()
	for serial() == first {
		if time.Since(renewed) > 5*time.Second {
			t.Fatalf("the renewal did not reach disk within 5 s\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("renewal on disk %s after its job succeeded", time.Since(renewed).Round(time.Millisecond))
	if installed, _ := os.ReadFile(filepath.Join(dir, name, "privkey.pem")); string(installed) != string(local) {
		t.Fatal("the renewal changed the key")
	}
}
