package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base32"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"maps"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/acme"
	"github.com/dcvaas/dcvaas/acme/acmetest"
	"github.com/dcvaas/dcvaas/cabudget"
	"github.com/dcvaas/dcvaas/dnsserver"
	"github.com/dcvaas/dcvaas/provider/providertest"
	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/dcvaas/dcvaas/sqlstore/storetest"
)

// withTestDefaults keeps a test's `serve` on loopback: the DNS server on
// a free port instead of 8053 (tests run in parallel), and no real CA
// unless the test names one.
func withTestDefaults(vars map[string]string) map[string]string {
	out := maps.Clone(vars)
	if out == nil {
		out = map[string]string{}
	}
	if out["DCVAAS_DNS_ADDR"] == "" {
		out["DCVAAS_DNS_ADDR"] = "127.0.0.1:0"
	}
	if out["DCVAAS_ACME_CAS"] == "" {
		out["DCVAAS_ACME_CAS"] = "nowhere"
		out["DCVAAS_ACME_NOWHERE_DIRECTORY"] = "https://127.0.0.1:1/directory"
	}
	return out
}

const issuanceZone = "verify.dcvaas.test"

// issuanceWorld is what a real issuance talks to, all in this process and
// on loopback: Pebble, the customers' DNS, and the recursive resolver that
// joins them to the DNS server of the dcvaas under test. That server binds
// a port of its own choosing (DCVAAS_DNS_ADDR 127.0.0.1:0, the default of
// withTestDefaults); serve points the resolver at it.
type issuanceWorld struct {
	dns  *acmetest.DNS
	ca   *acmetest.CA
	vars map[string]string
}

// newIssuanceWorld starts Pebble and the DNS around a dcvaas whose
// database is dbURL, and returns the variables that configure it.
func newIssuanceWorld(t testing.TB, dbURL string) *issuanceWorld {
	t.Helper()
	return newIssuanceWorldResolver(t, dbURL, "")
}

// newIssuanceWorldResolver is newIssuanceWorld whose CA validates through
// caResolver ("": the world's resolver), e.g. a validating unbound.
func newIssuanceWorldResolver(t testing.TB, dbURL, caResolver string) *issuanceWorld {
	t.Helper()
	w := &issuanceWorld{dns: acmetest.NewDNS(t, issuanceZone, "")}
	if caResolver == "" {
		caResolver = w.dns.ResolverAddr
	}
	w.ca = acmetest.NewCA(t, acmetest.Options{Resolver: caResolver})
	bundle := filepath.Join(t.TempDir(), "pebble-tls.pem")
	if err := os.WriteFile(bundle, w.ca.TLSRootsPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	w.vars = map[string]string{
		"DCVAAS_DATABASE_URL":          dbURL,
		"DCVAAS_ENCRYPTION_KEY":        strings.Repeat("cd", 32),
		"DCVAAS_VERIFY_ZONE":           issuanceZone,
		"DCVAAS_RESOLVERS":             w.dns.ResolverAddr,
		"DCVAAS_ACME_CAS":              "pebble",
		"DCVAAS_ACME_PEBBLE_DIRECTORY": w.ca.DirectoryURL,
		"DCVAAS_ACME_CA_BUNDLE":        bundle,
		"DCVAAS_ACME_EMAIL":            "ops@dcvaas.test",
		"DCVAAS_SHUTDOWN_TIMEOUT":      "10s",
		// The renewal test watches the served certificate every 10 ms; on a
		// loaded machine that outlasts the default 600 requests a minute.
		"DCVAAS_RATE_LIMIT": "1000000",
	}
	return w
}

// serve starts `dcvaas serve` with the world's variables and sends the
// verify zone's questions to its DNS server.
func (w *issuanceWorld) serve(t testing.TB) string {
	t.Helper()
	base, dnsAddr := startServeDNS(t, w.vars)
	if dnsAddr == "" {
		t.Fatal("serve started no DNS server")
	}
	w.dns.SetVerifyAddr(dnsAddr)
	return base
}

// addDomain creates the domain name through the API and delegates its
// _acme-challenge CNAME in the customers' DNS, as a customer does; it
// returns the created domain.
func addDomain(t testing.TB, d *acmetest.DNS, base, token, name string) map[string]any {
	t.Helper()
	status, dom := call(t, "POST", base+"/api/domains", token, map[string]any{"domainName": name})
	if status != http.StatusCreated {
		t.Fatalf("create domain %s: %d %v", name, status, dom)
	}
	d.Delegate(name, dom["cnameTarget"].(string))
	return dom
}

// dnsListening finds the address in the "dns listening" log line of a
// serve in a child process, text or JSON; serve logs it before it accepts
// HTTP.
var dnsListening = regexp.MustCompile(`dns listening"?.*?"?addr"?[=:]"?(127\.0\.0\.1:\d+)`)

func dnsListenAddr(t testing.TB, logs string) string {
	t.Helper()
	m := dnsListening.FindStringSubmatch(logs)
	if m == nil {
		t.Fatalf("serve logged no DNS address\n%s", logs)
	}
	return m[1]
}

// bootstrapOrg runs `dcvaas migrate` (bootstrap refuses a database that
// does not exist yet) and `dcvaas bootstrap`, and returns the admin token
// and organization id.
func bootstrapOrg(t testing.TB, vars map[string]string) (token, orgID string) {
	t.Helper()
	if err := run(context.Background(), []string{"migrate"}, env(vars), io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"bootstrap", "--org-name", "Acme " + randLabel(4), "--owner-email", "ops@acme.test", "--json"}, env(vars), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var boot struct{ Token, OrganizationID string }
	if err := json.Unmarshal(out.Bytes(), &boot); err != nil {
		t.Fatal(err)
	}
	return boot.Token, boot.OrganizationID
}

func randLabel(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// get fetches url with the token and an Accept header.
func get(t testing.TB, url, token, accept string) (int, http.Header, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, body
}

// waitDomain polls the domain until done says so, failing on status
// "failed" (unless done accepts it) and after timeout.
func waitDomain(t testing.TB, base, token, id string, timeout time.Duration, done func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		_, d := call(t, "GET", base+"/api/domains/"+id, token, nil)
		if done(d) {
			return d
		}
		if d["status"] == "failed" {
			t.Fatalf("domain failed: %v", d)
		}
		if time.Now().After(deadline) {
			t.Fatalf("domain after %s: %v", timeout, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func isActive(d map[string]any) bool { return d["status"] == "active" }

// waitJob polls a job until it succeeds (or ends superseded by a newer
// job, its kind of success); failing or timing out fails t.
func waitJob(t testing.TB, base, token, id string, timeout time.Duration) map[string]any {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		_, j := call(t, "GET", base+"/api/jobs/"+id, token, nil)
		switch j["status"] {
		case "succeeded", "superseded":
			return j
		case "failed":
			t.Fatalf("job failed: %v", j)
		}
		if time.Now().After(deadline) {
			t.Fatalf("job after %s: %v", timeout, j)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// parseChain decodes a PEM chain: leaf first.
func parseChain(t testing.TB, p []byte) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for {
		var b *pem.Block
		if b, p = pem.Decode(p); b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	if len(out) < 2 {
		t.Fatalf("chain of %d certificates, want leaf and intermediate", len(out))
	}
	return out
}

// servedSerial is the serial number of the certificate the API serves
// (safe outside the test's goroutine).
func servedSerial(base, token, id string) (string, error) {
	req, _ := http.NewRequest("GET", base+"/api/domains/"+id+"/certificate", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var c struct{ SerialNumber string }
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		return "", err
	}
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("status %d", resp.StatusCode)
	}
	return c.SerialNumber, nil
}

// challengeRecords counts the TXT values left in the verify zone.
func challengeRecords(t *testing.T, dbURL string) int {
	t.Helper()
	db := storetest.Open(t, dbURL)
	var n int
	if err := db.SQL().QueryRow(`SELECT COUNT(*) FROM challenge_records`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestIssuance runs the real program against Pebble: a customer adds the
// CNAME, asks for a check, and gets an apex + wildcard certificate whose
// chain verifies, its key, and a renewal with a new serial while the old
// certificate stays served.
func TestIssuance(t *testing.T) {
	if testing.Short() {
		t.Skip("issues real certificates from an in-process Pebble")
	}
	for _, dialect := range storetest.Dialects(t) {
		t.Run(string(dialect), func(t *testing.T) { issuance(t, storetest.URL(t, dialect)) })
	}
}

func issuance(t *testing.T, dbURL string) {
	w := newIssuanceWorld(t, dbURL)
	w.vars["DCVAAS_WEBHOOK_ALLOW_HTTP"], w.vars["DCVAAS_WEBHOOK_ALLOW_PRIVATE"] = "true", "true" // a receiver on loopback
	token, _ := bootstrapOrg(t, w.vars)
	base := w.serve(t)
	events := eventStream(t, base, token) // events_test.go
	hooks, hookURL := newHookReceiver(t)  // webhooks_test.go
	hooks.add(t, base, token, hookURL)

	name := "shop-" + randLabel(5) + ".example.com"
	id := addDomain(t, w.dns, base, token, name)["id"].(string)
	start := time.Now()
	if status, job := call(t, "POST", base+"/api/domains/"+id+"/verify", token, nil); status != http.StatusAccepted {
		t.Fatalf("verify: %d %v", status, job)
	}
	d := waitDomain(t, base, token, id, 60*time.Second, isActive)
	t.Logf("POST /verify → active in %s", time.Since(start).Round(time.Millisecond))
	if d["expiresAt"] == nil || d["lastIssuedAt"] == nil {
		t.Fatalf("active domain = %v", d)
	}

	// The chain verifies to Pebble's root for the apex and the wildcard.
	code, hdr, chainPEM := get(t, base+"/api/domains/"+id+"/certificate", token, "application/pem-certificate-chain")
	if code != 200 || hdr.Get("Content-Type") != "application/pem-certificate-chain" {
		t.Fatalf("certificate: %d %s %s", code, hdr.Get("Content-Type"), chainPEM)
	}
	chain := parseChain(t, chainPEM)
	leaf := chain[0]
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	for _, n := range []string{name, "www." + name} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: n, Roots: w.ca.Roots(), Intermediates: inter}); err != nil {
			t.Fatalf("chain does not verify for %s: %v", n, err)
		}
	}
	sans := slices.Sorted(slices.Values(leaf.DNSNames))
	if !slices.Equal(sans, []string{"*." + name, name}) {
		t.Fatalf("SANs = %v", leaf.DNSNames)
	}
	if !strings.HasPrefix(d["expiresAt"].(string), leaf.NotAfter.UTC().Format("2006-01-02T15:04:05")) {
		t.Fatalf("expiresAt %v, certificate's notAfter %v", d["expiresAt"], leaf.NotAfter)
	}

	// The key matches the leaf; reading it is audited.
	code, _, keyPEM := get(t, base+"/api/domains/"+id+"/certificate/key", token, "application/x-pem-file")
	if code != 200 {
		t.Fatalf("key: %d %s", code, keyPEM)
	}
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		t.Fatalf("key is not PEM: %q", keyPEM)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if pub, ok := key.(crypto.Signer); !ok || !pub.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(leaf.PublicKey) {
		t.Fatal("the private key does not match the certificate")
	}
	if _, audit := call(t, "GET", base+"/api/audit?action=certificate.key_read", token, nil); audit["total"] != 1.0 {
		t.Fatalf("key reads audited: %v", audit)
	}
	if n := challengeRecords(t, dbURL); n != 0 {
		t.Fatalf("%d TXT records left after issuance", n)
	}

	// Renewal: a new serial; until it is stored, the old one is served.
	oldSerial := leaf.SerialNumber.Text(16)
	var mu sync.Mutex
	var seen []string
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case <-stop:
				return
			default:
			}
			s, err := servedSerial(base, token, id)
			if err != nil {
				s = "error: " + err.Error()
			}
			mu.Lock()
			if len(seen) == 0 || seen[len(seen)-1] != s {
				seen = append(seen, s)
			}
			mu.Unlock()
			time.Sleep(10 * time.Millisecond)
		}
	}()
	status, job := call(t, "POST", base+"/api/domains/"+id+"/renew", token, nil)
	if status != http.StatusAccepted {
		t.Fatalf("renew: %d %v", status, job)
	}
	waitJob(t, base, token, job["jobId"].(string), 60*time.Second)
	close(stop)
	<-watched
	_, c := call(t, "GET", base+"/api/domains/"+id+"/certificate", token, nil)
	newSerial, _ := c["serialNumber"].(string)
	mu.Lock()
	defer mu.Unlock()
	if newSerial == "" || newSerial == oldSerial {
		t.Fatalf("renewal kept serial %s", oldSerial)
	}
	if len(seen) == 0 || seen[0] != oldSerial || slices.Contains(seen, "") || len(seen) > 2 {
		t.Fatalf("served serials during renewal: %v (old %s, new %s)", seen, oldSerial, newSerial)
	}
	orders := w.ca.NewOrders()
	if len(orders) != 2 || orders[1].Replaces == "" {
		t.Fatalf("orders at the CA: %+v", orders)
	}
	if n := challengeRecords(t, dbURL); n != 0 {
		t.Fatalf("%d TXT records left after renewal", n)
	}
	wantEvents(t, base, token, id, oldSerial, newSerial, events)
	hooks.want(t, id, oldSerial, newSerial)
}

// TestCrashMidIssuance kills `dcvaas serve` with SIGKILL while the CA is
// validating its challenge — order created, TXT values published, the CA's
// DNS query on its way to dcvaas's DNS server — and starts it again: the
// job is rescued, resumes the order, the domain becomes active, and no TXT
// value is left in the verify zone.
func TestCrashMidIssuance(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and waits for River's rescuer (~15s)")
	}
	bin := filepath.Join(t.TempDir(), "dcvaas")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, dialect := range storetest.Dialects(t) {
		t.Run(string(dialect), func(t *testing.T) {
			t.Parallel()
			crashMidIssuance(t, bin, storetest.URL(t, dialect))
		})
	}
}

func crashMidIssuance(t *testing.T, bin, dbURL string) {
	// The CA reaches dcvaas's DNS server through a proxy that can hold its
	// TXT queries: the moment one arrives, issuance is mid-flight.
	hold := newHoldingDNS(t)
	w := &issuanceWorld{dns: acmetest.NewDNS(t, issuanceZone, hold.addr)}
	w.ca = acmetest.NewCA(t, acmetest.Options{Resolver: w.dns.ResolverAddr})
	bundle := filepath.Join(t.TempDir(), "pebble-tls.pem")
	if err := os.WriteFile(bundle, w.ca.TLSRootsPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	vars := []string{
		"DCVAAS_DATABASE_URL=" + dbURL,
		"DCVAAS_ENCRYPTION_KEY=" + strings.Repeat("ab", 32),
		"DCVAAS_VERIFY_ZONE=" + issuanceZone,
		"DCVAAS_DNS_ADDR=127.0.0.1:0",
		"DCVAAS_RESOLVERS=" + w.dns.ResolverAddr,
		"DCVAAS_ACME_CAS=pebble",
		"DCVAAS_ACME_PEBBLE_DIRECTORY=" + w.ca.DirectoryURL,
		"DCVAAS_ACME_CA_BUNDLE=" + bundle,
		"DCVAAS_JOB_RESCUE_AFTER=5s",
		"DCVAAS_SHUTDOWN_TIMEOUT=5s",
	}
	creds := migrateAndBootstrap(t, bin, vars)

	hold.hold()
	first := startBinary(t, bin, vars)
	hold.setUpstream(dnsListenAddr(t, first.logs.String()))
	base := first.base
	name := "crash-" + randLabel(5) + ".example.com"
	id := addDomain(t, w.dns, base, creds.Token, name)["id"].(string)
	if status, _ := call(t, "POST", base+"/api/domains/"+id+"/verify", creds.Token, nil); status != http.StatusAccepted {
		t.Fatalf("verify: %d", status)
	}
	select {
	case <-hold.seen:
	case <-time.After(60 * time.Second):
		t.Fatalf("the CA never asked for the TXT record\n%s", first.logs.String())
	}
	first.kill(t)

	// What the crash left: the order pending, its values published.
	db := storetest.Open(t, dbURL)
	var orders, txt int
	if err := db.SQL().QueryRow(`SELECT COUNT(*) FROM acme_orders`).Scan(&orders); err != nil {
		t.Fatal(err)
	}
	if err := db.SQL().QueryRow(`SELECT COUNT(*) FROM challenge_records`).Scan(&txt); err != nil {
		t.Fatal(err)
	}
	if orders != 1 || txt == 0 {
		t.Fatalf("after the crash: %d pending orders, %d TXT values; want 1 and some", orders, txt)
	}
	if d, err := db.FindDomain(context.Background(), creds.OrganizationID, id); err != nil || d.Status != "issuing" {
		t.Fatalf("after the crash: domain %+v, %v", d, err)
	}

	second := startBinary(t, bin, vars)
	hold.setUpstream(dnsListenAddr(t, second.logs.String()))
	base = second.base
	hold.release()
	deadline := time.Now().Add(90 * time.Second)
	for {
		_, d := call(t, "GET", base+"/api/domains/"+id, creds.Token, nil)
		if d["status"] == "active" {
			break
		}
		if d["status"] == "failed" || time.Now().After(deadline) {
			t.Fatalf("after the restart: %v\n%s", d, second.logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	code, _, chainPEM := get(t, base+"/api/domains/"+id+"/certificate", creds.Token, "application/pem-certificate-chain")
	if code != 200 {
		t.Fatalf("certificate: %d", code)
	}
	chain := parseChain(t, chainPEM)
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{DNSName: name, Roots: w.ca.Roots(), Intermediates: inter}); err != nil {
		t.Fatal(err)
	}
	if err := db.SQL().QueryRow(`SELECT COUNT(*) FROM challenge_records`).Scan(&txt); err != nil || txt != 0 {
		t.Fatalf("%d TXT values left after the restart (%v)", txt, err)
	}
	if err := db.SQL().QueryRow(`SELECT COUNT(*) FROM acme_orders`).Scan(&orders); err != nil || orders != 0 {
		t.Fatalf("%d pending orders left after the restart (%v)", orders, err)
	}
	// One certificate: the restarted job finished the order it had.
	var certs int
	if err := db.SQL().QueryRow(`SELECT COUNT(*) FROM certificates`).Scan(&certs); err != nil || certs != 1 {
		t.Fatalf("%d certificates (%v)", certs, err)
	}
	// The crash lost no event and doubled none: each change wrote its
	// event in its own transaction.
	var types []string
	rows, err := db.SQL().Query(`SELECT type FROM events WHERE domain_id = $1 ORDER BY seq`, id)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var typ string
		rows.Scan(&typ)
		types = append(types, typ)
	}
	rows.Close()
	if got := strings.Join(types, ","); got != "domain.created,domain.verified,certificate.issued" {
		t.Fatalf("events across the crash: %s", got)
	}
	second.stop(t)
}

// holdingDNS forwards DNS to upstream, and while held keeps TXT queries
// waiting, reporting the first one on seen.
type holdingDNS struct {
	addr string
	seen chan struct{}

	mu       sync.Mutex
	upstream string // the DNS server of the serve running now
	held     bool
	released chan struct{}
	once     sync.Once
}

func newHoldingDNS(t *testing.T) *holdingDNS {
	t.Helper()
	h := &holdingDNS{seen: make(chan struct{}), released: make(chan struct{})}
	pc, ln, err := dnsserver.ListenBoth("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.addr = pc.LocalAddr().String()
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		errc := make(chan error, 1)
		go func() { errc <- srv.ActivateAndServe() }()
		select {
		case <-started:
		case err := <-errc:
			t.Fatal(err)
		}
		t.Cleanup(func() { h.release(); srv.Shutdown() })
	}
	return h
}

func (h *holdingDNS) setUpstream(addr string) { h.mu.Lock(); h.upstream = addr; h.mu.Unlock() }

func (h *holdingDNS) hold() { h.mu.Lock(); h.held = true; h.mu.Unlock() }

func (h *holdingDNS) release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.held {
		h.held = false
		close(h.released)
	}
}

func (h *holdingDNS) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	h.mu.Lock()
	held := h.held && len(req.Question) == 1 && req.Question[0].Qtype == dns.TypeTXT
	upstream := h.upstream
	h.mu.Unlock()
	if held {
		h.once.Do(func() { close(h.seen) })
		<-h.released
	}
	c := &dns.Client{Timeout: 2 * time.Second}
	if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
		c.Net = "tcp"
	}
	if held {
		h.mu.Lock()
		upstream = h.upstream // released after a restart: the new server
		h.mu.Unlock()
	}
	resp, _, err := c.Exchange(req, upstream)
	if err != nil {
		resp = new(dns.Msg)
		resp.SetRcode(req, dns.RcodeServerFailure)
	}
	w.WriteMsg(resp)
}

// parseACMEConfig parses the configuration from vars and extra flags.
func parseACMEConfig(t *testing.T, vars map[string]string, args ...string) (*Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if vars["DCVAAS_DATABASE_URL"] == "" {
		vars["DCVAAS_DATABASE_URL"] = filepath.Join(t.TempDir(), "c.db")
	}
	return parseConfig(fs, args, env(vars))
}

func TestACMEConfigDefaults(t *testing.T) {
	cfg, err := parseACMEConfig(t, map[string]string{"DCVAAS_VERIFY_ZONE": "verify.example.net"})
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.ACME
	if a.DNSAddr != "127.0.0.1:8053" || !slices.Equal(a.NS, []string{"ns1.verify.example.net"}) || a.SOAEmail != "hostmaster.verify.example.net" ||
		a.Publisher != "builtin" || a.RenewBefore != 0 || a.Staging {
		t.Fatalf("defaults: %+v", a)
	}
	// ZeroSSL without EAB credentials is left out of the default list, with a warning.
	if len(a.CAs) != 1 || a.CAs[0].Name != "letsencrypt" || a.CAs[0].Directory != acme.LetsEncrypt.Directory || len(a.Warnings) != 1 ||
		!strings.Contains(a.Warnings[0], "DCVAAS_ACME_ZEROSSL_EAB_KID") {
		t.Fatalf("CAs %+v, warnings %v", a.CAs, a.Warnings)
	}

	cfg, err = parseACMEConfig(t, map[string]string{
		"DCVAAS_ACME_ZEROSSL_EAB_KID": "kid", "DCVAAS_ACME_ZEROSSL_EAB_HMAC": "c2VjcmV0", "DCVAAS_ACME_ZEROSSL_PROFILE": "short",
		"DCVAAS_DNS_NS": "a.ns.example.com, b.ns.example.com.", "DCVAAS_RENEW_BEFORE": "720h", "DCVAAS_ACME_EMAIL": "ops@example.com",
	}, "--staging")
	if err != nil {
		t.Fatal(err)
	}
	a = cfg.ACME
	if len(a.CAs) != 2 || a.CAs[0].Directory != acme.LetsEncryptStaging.Directory || a.CAs[1].Directory != acme.ZeroSSL.Directory ||
		a.CAs[1].EABKeyID != "kid" || a.CAs[1].Profile != "short" || !slices.Equal(a.CAs[1].CAAIdentities, acme.ZeroSSL.CAAIdentities) ||
		!a.Staging || a.RenewBefore != 720*time.Hour || !slices.Equal(a.NS, []string{"a.ns.example.com", "b.ns.example.com"}) || a.Email != "ops@example.com" {
		t.Fatalf("configured: %+v", a)
	}
	// Budgets: Let's Encrypt's published limits unless set; none for others.
	if a.CAs[0].Limits.String() != cabudget.LetsEncrypt.String() || len(a.CAs[1].Limits) != 0 ||
		a.FailoverAfter != time.Hour || a.MaxFailedDays != 7 {
		t.Fatalf("budget defaults: %s / %s, failover %s, %d days", a.CAs[0].Limits, a.CAs[1].Limits, a.FailoverAfter, a.MaxFailedDays)
	}
	cfg, err = parseACMEConfig(t, map[string]string{"DCVAAS_ACME_ZEROSSL_EAB_KID": "kid", "DCVAAS_ACME_ZEROSSL_EAB_HMAC": "c2VjcmV0",
		"DCVAAS_ACME_ZEROSSL_LIMITS": "orders=2/10s", "DCVAAS_ACME_LETSENCRYPT_LIMITS": "none", "DCVAAS_FAILOVER_AFTER": "5m"})
	if err != nil || len(cfg.ACME.CAs[0].Limits) != 0 || cfg.ACME.CAs[1].Limits.String() != "orders=2/10s" || cfg.ACME.FailoverAfter != 5*time.Minute {
		t.Fatalf("configured budgets: %+v %v", cfg.ACME, err)
	}
	cfg, err = parseACMEConfig(t, map[string]string{"DCVAAS_ACME_STAGING": "true", "DCVAAS_ACME_CAS": "letsencrypt"}, "--staging=false")
	if err != nil || cfg.ACME.Staging || cfg.ACME.CAs[0].Directory != acme.LetsEncrypt.Directory {
		t.Fatalf("--staging=false: %+v %v", cfg.ACME, err)
	}

	bundle := filepath.Join(t.TempDir(), "roots.pem")
	if err := os.WriteFile(bundle, selfSignedPEM(t), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err = parseACMEConfig(t, map[string]string{
		"DCVAAS_ACME_CAS": "Pebble, letsencrypt", "DCVAAS_ACME_PEBBLE_DIRECTORY": "https://127.0.0.1:14000/dir",
		"DCVAAS_ACME_PEBBLE_CAA_IDENTITIES": "pebble.letsencrypt.org", "DCVAAS_ACME_CA_BUNDLE": bundle,
		"DCVAAS_CHALLENGE_PUBLISHER": "cloudflare", "DCVAAS_CLOUDFLARE_API_TOKEN": "tok", "DCVAAS_CLOUDFLARE_ZONE_ID": "zone1",
		"DCVAAS_CLOUDFLARE_NAMESERVERS": "127.0.0.1:5300",
	})
	if err != nil {
		t.Fatal(err)
	}
	a = cfg.ACME
	if len(a.CAs) != 2 || a.CAs[0].Name != "pebble" || a.CAs[0].Directory != "https://127.0.0.1:14000/dir" ||
		!slices.Equal(a.CAs[0].CAAIdentities, []string{"pebble.letsencrypt.org"}) || len(a.CABundle) == 0 ||
		a.Publisher != "cloudflare" || a.Cloudflare.Token != "tok" || a.Cloudflare.ZoneID != "zone1" ||
		!slices.Equal(a.Cloudflare.Nameservers, []string{"127.0.0.1:5300"}) || a.Cloudflare.PropagationTimeout != 2*time.Minute {
		t.Fatalf("custom CA: %+v", a)
	}
}

func TestACMEConfigErrorsNameTheVariable(t *testing.T) {
	cases := map[string]map[string]string{
		"DCVAAS_DNS_ADDR":                   {"DCVAAS_DNS_ADDR": "5353"},
		"DCVAAS_DNS_NS":                     {"DCVAAS_DNS_NS": "ns1.example.com,not a name"},
		"DCVAAS_DNS_SOA_EMAIL":              {"DCVAAS_DNS_SOA_EMAIL": "@example.com"},
		"DCVAAS_ACME_CAS":                   {"DCVAAS_ACME_CAS": "lets-encrypt"},
		"DCVAAS_ACME_PEBBLE_DIRECTORY":      {"DCVAAS_ACME_CAS": "pebble"},
		"DCVAAS_ACME_LETSENCRYPT_DIRECTORY": {"DCVAAS_ACME_CAS": "letsencrypt", "DCVAAS_ACME_LETSENCRYPT_DIRECTORY": "http://acme.example/dir"},
		"DCVAAS_ACME_ZEROSSL_EAB_KID":       {"DCVAAS_ACME_CAS": "zerossl"},
		"DCVAAS_ACME_X_EAB_HMAC":            {"DCVAAS_ACME_CAS": "x", "DCVAAS_ACME_X_DIRECTORY": "https://x.example/dir", "DCVAAS_ACME_X_EAB_KID": "k"},
		"DCVAAS_ACME_Y_EAB_HMAC":            {"DCVAAS_ACME_CAS": "y", "DCVAAS_ACME_Y_DIRECTORY": "https://y.example/dir", "DCVAAS_ACME_Y_EAB_KID": "k", "DCVAAS_ACME_Y_EAB_HMAC": "not base64!"},
		"DCVAAS_ACME_LETSENCRYPT_PROFILE":   {"DCVAAS_ACME_CAS": "letsencrypt", "DCVAAS_ACME_LETSENCRYPT_PROFILE": "a b"},
		"DCVAAS_ACME_EMAIL":                 {"DCVAAS_ACME_EMAIL": "Ops <ops@example.com>"},
		"DCVAAS_ACME_CA_BUNDLE":             {"DCVAAS_ACME_CA_BUNDLE": "/nonexistent/roots.pem"},
		"DCVAAS_ACME_STAGING":               {"DCVAAS_ACME_STAGING": "perhaps"},
		"DCVAAS_RENEW_BEFORE":               {"DCVAAS_RENEW_BEFORE": "-5h"},
		"DCVAAS_ACME_LETSENCRYPT_LIMITS":    {"DCVAAS_ACME_CAS": "letsencrypt", "DCVAAS_ACME_LETSENCRYPT_LIMITS": "orders=300"},
		"DCVAAS_FAILOVER_AFTER":             {"DCVAAS_FAILOVER_AFTER": "soon"},
		"DCVAAS_ACME_LETSENCRYPT_ACCOUNTS":  {"DCVAAS_ACME_CAS": "letsencrypt", "DCVAAS_ACME_LETSENCRYPT_ACCOUNTS": "0"},
		"DCVAAS_MAX_FAILED_DAYS":            {"DCVAAS_MAX_FAILED_DAYS": "0"},
		"DCVAAS_CHALLENGE_PUBLISHER":        {"DCVAAS_CHALLENGE_PUBLISHER": "route53"},
		"DCVAAS_CLOUDFLARE_API_TOKEN":       {"DCVAAS_CHALLENGE_PUBLISHER": "cloudflare", "DCVAAS_CLOUDFLARE_ZONE_ID": "z"},
		"DCVAAS_CLOUDFLARE_ZONE_ID":         {"DCVAAS_CHALLENGE_PUBLISHER": "cloudflare", "DCVAAS_CLOUDFLARE_API_TOKEN": "t"},
		"DCVAAS_CLOUDFLARE_NAMESERVERS":     {"DCVAAS_CHALLENGE_PUBLISHER": "cloudflare", "DCVAAS_CLOUDFLARE_API_TOKEN": "t", "DCVAAS_CLOUDFLARE_ZONE_ID": "z", "DCVAAS_CLOUDFLARE_NAMESERVERS": "ns1.example.com"},
		"DCVAAS_PROPAGATION_TIMEOUT":        {"DCVAAS_CHALLENGE_PUBLISHER": "cloudflare", "DCVAAS_CLOUDFLARE_API_TOKEN": "t", "DCVAAS_CLOUDFLARE_ZONE_ID": "z", "DCVAAS_PROPAGATION_TIMEOUT": "0s"},
	}
	for name, vars := range cases {
		_, err := parseACMEConfig(t, vars)
		if err == nil || !strings.Contains(err.Error(), name+":") {
			t.Errorf("%s: error %v does not name the variable", name, err)
		}
	}
	// The same through the program: serve refuses to start.
	err := run(context.Background(), []string{"serve"}, env(map[string]string{
		"DCVAAS_DATABASE_URL": filepath.Join(t.TempDir(), "x.db"), "DCVAAS_ACME_CAS": "pebble"}), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "DCVAAS_ACME_PEBBLE_DIRECTORY") {
		t.Errorf("serve: %v", err)
	}
}

// The DNS server's port taken: serve refuses to start, naming the setting.
func TestServeDNSAddrInUse(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	err = run(context.Background(), []string{"serve", "--http-addr", "127.0.0.1:0"}, env(withTestDefaults(map[string]string{
		"DCVAAS_DATABASE_URL": filepath.Join(t.TempDir(), "x.db"), "DCVAAS_DNS_ADDR": pc.LocalAddr().String()})), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "DCVAAS_DNS_ADDR") {
		t.Fatalf("serve with the DNS port taken: %v", err)
	}
}

// selfSignedPEM is a CA certificate, as DCVAAS_ACME_CA_BUNDLE holds.
func selfSignedPEM(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test root"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// TestIssuanceCloudflare issues through a verify zone hosted at
// Cloudflare (a fake speaking its v4 API, whose DNS serves a change only
// after a delay): the TXT values go through the API, issuance waits until
// the zone's servers serve them, and they are deleted afterwards.
func TestIssuanceCloudflare(t *testing.T) {
	if testing.Short() {
		t.Skip("issues real certificates from an in-process Pebble")
	}
	fake := providertest.NewCloudflare(t)
	fake.AddToken("cf-token")
	zoneID := fake.AddZone(issuanceZone)
	nsAddr := fake.StartDNS(t, 200*time.Millisecond)
	world := acmetest.NewDNS(t, issuanceZone, nsAddr)
	ca := acmetest.NewCA(t, acmetest.Options{Resolver: world.ResolverAddr})
	bundle := filepath.Join(t.TempDir(), "pebble-tls.pem")
	if err := os.WriteFile(bundle, ca.TLSRootsPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{
		"DCVAAS_DATABASE_URL":           filepath.Join(t.TempDir(), "cf.db"),
		"DCVAAS_VERIFY_ZONE":            issuanceZone,
		"DCVAAS_RESOLVERS":              world.ResolverAddr,
		"DCVAAS_ACME_CAS":               "pebble",
		"DCVAAS_ACME_PEBBLE_DIRECTORY":  ca.DirectoryURL,
		"DCVAAS_ACME_CA_BUNDLE":         bundle,
		"DCVAAS_CHALLENGE_PUBLISHER":    "cloudflare",
		"DCVAAS_CLOUDFLARE_API_URL":     fake.URL(),
		"DCVAAS_CLOUDFLARE_API_TOKEN":   "cf-token",
		"DCVAAS_CLOUDFLARE_ZONE_ID":     zoneID,
		"DCVAAS_CLOUDFLARE_NAMESERVERS": nsAddr,
		// Taken: with the cloudflare publisher, no DNS server is started.
		"DCVAAS_DNS_ADDR": nsAddr,
	}
	token, _ := bootstrapOrg(t, vars)
	base := startServe(t, vars)
	name := "cf-" + randLabel(5) + ".example.com"
	dom := addDomain(t, world, base, token, name)
	id, target := dom["id"].(string), dom["cnameTarget"].(string)
	if status, _ := call(t, "POST", base+"/api/domains/"+id+"/verify", token, nil); status != http.StatusAccepted {
		t.Fatalf("verify: %d", status)
	}
	waitDomain(t, base, token, id, 60*time.Second, isActive)
	code, _, chainPEM := get(t, base+"/api/domains/"+id+"/certificate", token, "application/pem-certificate-chain")
	if code != 200 {
		t.Fatalf("certificate: %d", code)
	}
	chain := parseChain(t, chainPEM)
	if !slices.Contains(chain[0].DNSNames, "*."+name) {
		t.Fatalf("SANs = %v", chain[0].DNSNames)
	}
	// The values are removed once the order is done, after the certificate
	// is stored (and the domain active): the issuance job's last step.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		left := fake.Records(target)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("TXT records left at Cloudflare: %+v", left)
		}
	}
}

// A renewal that runs again after a crash finds the certificate its
// earlier run stored and takes it as its own; a renewal of a certificate
// issued before it was queued renews, however young that certificate is.
func TestRenewalRecognizesItsOwnCertificate(t *testing.T) {
	ctx := context.Background()
	db := storetest.NewDB(t, sqlstore.SQLite)
	org, _, err := db.Bootstrap(ctx, "Acme", "ops@acme.test", &dcvaas.Token{Name: "t", Prefix: "dcv_t", Hash: "h", Role: dcvaas.TokenAdmin})
	if err != nil {
		t.Fatal(err)
	}
	actor := dcvaas.SystemActor(org.ID)
	d := &dcvaas.Domain{Name: "shop.example.com", CNAMETarget: "abc." + issuanceZone, IncludeWildcard: true, KeyType: dcvaas.KeyEC256}
	if _, err := db.CreateDomain(ctx, actor, d); err != nil {
		t.Fatal(err)
	}
	save := func() {
		t.Helper()
		c := &dcvaas.Certificate{DomainID: d.ID, SerialNumber: randLabel(4), CAName: "pebble", DNSNames: []string{d.Name},
			NotBefore: time.Now(), NotAfter: time.Now().Add(90 * 24 * time.Hour), ChainPEM: "x", PrivateKeyEnc: "y"}
		if err := db.SaveCertificate(ctx, actor, c, nil); err != nil {
			t.Fatal(err)
		}
	}
	renewal := func(attempts int) {
		t.Helper()
		j, err := db.EnqueueDomainJob(ctx, actor, d.ID, dcvaas.JobRenewal)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.SQL().Exec(`UPDATE jobs SET status = 'running', attempts = $1 WHERE id = $2`, attempts, j.ID); err != nil {
			t.Fatal(err)
		}
	}
	ji := &jobIssuer{db: db}

	save()
	time.Sleep(2 * time.Millisecond)
	renewal(2)
	if res := ji.renewedByThisJob(ctx, d); res != nil {
		t.Fatalf("a certificate older than the renewal taken as its work: %+v", res)
	}
	time.Sleep(2 * time.Millisecond)
	save()
	res := ji.renewedByThisJob(ctx, d)
	if res == nil || res.Outcome != "recently_renewed" {
		t.Fatalf("the renewal's own certificate not recognized: %+v", res)
	}
	// A first attempt has no earlier run whose work it could find.
	if _, err := db.SQL().Exec(`UPDATE jobs SET attempts = 1`); err != nil {
		t.Fatal(err)
	}
	if res := ji.renewedByThisJob(ctx, d); res != nil {
		t.Fatalf("first attempt: %+v", res)
	}
}
