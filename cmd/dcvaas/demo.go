package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dcvaas/dcvaas/sandbox"
)

// Names the demo uses. The customer's domain is under .test (RFC 6761), a
// name no real resolver will ever answer for.
const (
	demoDomain = "shop.demo.test"
	demoZone   = "demo.test"
	demoCA     = "demo"
)

const demoUsage = `usage: dcvaas demo [--json] [--http-addr host:port] [--log-level level]

Shows a certificate being issued, end to end, on this machine alone: starts
dcvaas on a throw-away SQLite database together with a local ACME test CA
(Pebble, in process), a DNS server for a pretend customer zone (demo.test)
and a resolver that follows the customer's CNAME into the verify zone. It
then does what a new user does by hand: creates an organization and a
token, adds shop.demo.test, creates the CNAME the API asks for, verifies,
and prints the issued certificate. The server keeps running (Ctrl-C stops
it and removes the demo's database) so you can go on with curl.

It never talks to a real CA or a real DNS server: everything listens on
127.0.0.1. The demo's certificates are trusted by nothing but the demo CA.

--json prints one JSON object per step (one line each), the last with
"step": "ready".`

// demoStep is one line of the demo's --json output.
type demoStep struct {
	Step    string `json:"step"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
}

// demo is `dcvaas demo`.
func demo(ctx context.Context, fs *flag.FlagSet, args []string, stdout, stderr io.Writer) error {
	asJSON := fs.Bool("json", false, "print one JSON object per step instead of text")
	httpAddr := fs.String("http-addr", "127.0.0.1:8080", "address of the demo's HTTP API (127.0.0.1:0: any free port)")
	logLevel := fs.String("log-level", "warn", "level of the server's log on stderr: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	started := time.Now()
	say := func(step, format string, a ...any) {} // replaced below
	var data any
	say = func(step, format string, a ...any) {
		msg := fmt.Sprintf(format, a...)
		if *asJSON {
			json.NewEncoder(stdout).Encode(demoStep{Step: step, Message: msg, Data: data})
		} else {
			fmt.Fprintln(stdout, msg)
		}
		data = nil
	}

	dir, err := os.MkdirTemp("", "dcvaas-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	// The world a laptop lacks, on loopback: the customer's zone, a
	// resolver in front of it and of the verify zone, and the CA.
	zone, err := sandbox.StartZone()
	if err != nil {
		return fmt.Errorf("demo customer DNS: %w", err)
	}
	defer zone.Close()
	// The verify zone's server is dcvaas's own, known once it listens;
	// until then its questions go to the customer zone (empty answers).
	verifyZone := settingDefault("DCVAAS_VERIFY_ZONE")
	resolver, err := sandbox.StartResolver(map[string]string{demoZone: zone.Addr, verifyZone: zone.Addr}, zone.Addr)
	if err != nil {
		return fmt.Errorf("demo resolver: %w", err)
	}
	defer resolver.Close()
	ca, err := sandbox.StartCA(sandbox.CAOptions{Resolver: resolver.Addr})
	if err != nil {
		return fmt.Errorf("demo CA: %w", err)
	}
	defer ca.Close()
	bundle := filepath.Join(dir, "demo-ca-https.pem")
	if err := os.WriteFile(bundle, ca.TLSRootsPEM, 0o600); err != nil {
		return err
	}
	data = map[string]string{"acmeDirectory": ca.DirectoryURL, "resolver": resolver.Addr, "customerDns": zone.Addr, "database": dir}
	say("sandbox", "Sandbox: nothing leaves this machine. ACME CA: Pebble at %s (a test CA, not Let's Encrypt); customer DNS for %s at %s; resolver at %s; database in %s (removed on exit).",
		ca.DirectoryURL, demoZone, zone.Addr, resolver.Addr, dir)

	// The demo's settings: serve's defaults, with the sandbox's CA,
	// resolver and a throw-away database. The environment is not read, so
	// no real CA or database configured there is touched.
	key := make([]byte, 32)
	rand.Read(key)
	vars := map[string]string{
		// A key of its own: the database it seals is thrown away too.
		"DCVAAS_ENCRYPTION_KEY":           hex.EncodeToString(key),
		"DCVAAS_DATABASE_URL":             filepath.Join(dir, "dcvaas.db"),
		"DCVAAS_HTTP_ADDR":                *httpAddr,
		"DCVAAS_LOG_LEVEL":                *logLevel,
		"DCVAAS_DNS_ADDR":                 "127.0.0.1:0",
		"DCVAAS_RESOLVERS":                resolver.Addr,
		"DCVAAS_ACME_CAS":                 demoCA,
		"DCVAAS_ACME_DEMO_DIRECTORY":      ca.DirectoryURL,
		"DCVAAS_ACME_DEMO_CAA_IDENTITIES": "pebble.letsencrypt.org",
		"DCVAAS_ACME_CA_BUNDLE":           bundle,
		"DCVAAS_ACME_EMAIL":               "demo@example.com",
		// The customer's domain is under .test, which domain validation
		// refuses unless allowed.
		"DCVAAS_ALLOW_TLDS": "test",
	}
	cfg, err := parseConfig(flag.NewFlagSet("demo", flag.ContinueOnError), nil, func(k string) string { return vars[k] })
	if err != nil {
		return err
	}
	a, err := openApp(ctx, cfg, stderr, opening{keyring: true}) // app.go
	if err != nil {
		return err
	}
	defer a.Close()

	org, _, _, token, err := createOrganization(ctx, a.db, "Demo", "owner@example.com") // bootstrap.go
	if err != nil {
		return err
	}
	data = map[string]string{"organizationId": org.ID, "token": token}
	say("bootstrap", "1. Organization %q (%s) and an admin API token created (what `dcvaas bootstrap` does).", org.Name, org.ID)

	type addrs struct{ http, dns string }
	listening := make(chan addrs, 1)
	srvCtx, stopServer := context.WithCancel(ctx)
	defer stopServer()
	served := make(chan error, 1)
	go func() {
		served <- runServer(srvCtx, a, func(h, d string) { listening <- addrs{h, d} }) // serve.go
	}()
	var at addrs
	select {
	case at = <-listening:
	case err := <-served:
		return fmt.Errorf("demo server: %w", err)
	}
	resolver.SetServer(verifyZone, at.dns)
	base := "http://" + at.http
	api := &demoClient{base: base, token: token}

	issued, err := demoIssue(ctx, api, zone, say, &data)
	if err != nil {
		stopServer()
		<-served
		return err
	}
	chain, err := demoCertificate(issued.CertificatePEM, ca.Roots())
	if err != nil {
		stopServer()
		<-served
		return err
	}
	took := time.Since(started)
	leaf := chain[0]
	data = map[string]any{
		"serialNumber": issued.SerialNumber, "dnsNames": leaf.DNSNames, "notBefore": leaf.NotBefore, "notAfter": leaf.NotAfter,
		"issuer": leaf.Issuer.String(), "caName": issued.CAName, "certificatePem": issued.CertificatePEM, "caRootsPem": string(ca.RootsPEM()),
	}
	say("certificate", "5. Certificate issued by %s (CA %q) and verified against the demo CA's root:\n     serial    %s\n     names     %s\n     valid     %s to %s",
		leaf.Issuer.CommonName, issued.CAName, issued.SerialNumber, strings.Join(leaf.DNSNames, ", "),
		leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339))

	data = map[string]any{"apiUrl": base, "token": token, "organizationId": org.ID, "domainId": issued.domainID,
		"domainName": demoDomain, "durationMs": took.Milliseconds(), "dnsAddr": at.dns}
	say("ready", `Done in %.1f s. dcvaas keeps running until Ctrl-C:
  API    %s   (OpenAPI: %s/openapi.json)
  token  %s
Try:
  curl -s -H "Authorization: Bearer %s" %s/api/domains
  curl -s -H "Authorization: Bearer %s" -H 'Accept: application/pem-certificate-chain' %s/api/domains/%s/certificate`,
		took.Seconds(), base, base, token, token, base, token, base, issued.domainID)

	err = <-served
	if ctx.Err() != nil && err == nil {
		return nil
	}
	return err
}

// demoIssued is the demo's view of an issued certificate.
type demoIssued struct {
	domainID       string
	SerialNumber   string `json:"serialNumber"`
	CertificatePEM string `json:"certificatePem"`
	CAName         string `json:"caName"`
}

// demoIssue walks through the API as a new user would: add the domain,
// create the CNAME it asks for, verify, wait for the certificate.
func demoIssue(ctx context.Context, api *demoClient, zone *sandbox.Zone, say func(step, format string, a ...any), data *any) (*demoIssued, error) {
	var d struct {
		ID          string                             `json:"id"`
		Status      string                             `json:"status"`
		LastError   string                             `json:"lastError"`
		CNAMERecord struct{ Name, Type, Value string } `json:"cnameRecord"`
	}
	if err := api.do(ctx, http.MethodPost, "/api/domains", map[string]any{"domainName": demoDomain, "includeWildcard": true}, http.StatusCreated, &d); err != nil {
		return nil, err
	}
	*data = map[string]any{"domainId": d.ID, "cnameRecord": map[string]string{"name": d.CNAMERecord.Name, "type": d.CNAMERecord.Type, "value": d.CNAMERecord.Value}}
	say("domain", "2. POST /api/domains %s (with *.%s): the customer must create one record, once:\n     %s. CNAME %s.", demoDomain, demoDomain, d.CNAMERecord.Name, d.CNAMERecord.Value)

	zone.SetCNAME(d.CNAMERecord.Name, d.CNAMERecord.Value)
	say("cname", "3. Created that CNAME in the pretend customer zone %s (the customer's DNS provider, here on loopback).", demoZone)

	if err := api.do(ctx, http.MethodPost, "/api/domains/"+d.ID+"/verify", nil, http.StatusAccepted, nil); err != nil {
		return nil, err
	}
	say("verify", "4. POST /api/domains/%s/verify: dcvaas finds the CNAME, orders the certificate and answers the CA's DNS-01 challenges in its verify zone...", d.ID)

	deadline := time.Now().Add(2 * time.Minute)
	for d.Status != "active" {
		if d.Status == "failed" {
			return nil, fmt.Errorf("the demo domain failed: %s", d.LastError)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no certificate after 2 minutes (status %s, last error %q)", d.Status, d.LastError)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if err := api.do(ctx, http.MethodGet, "/api/domains/"+d.ID, nil, http.StatusOK, &d); err != nil {
			return nil, err
		}
	}
	out := &demoIssued{domainID: d.ID}
	if err := api.do(ctx, http.MethodGet, "/api/domains/"+d.ID+"/certificate", nil, http.StatusOK, out); err != nil {
		return nil, err
	}
	return out, nil
}

// demoCertificate parses the chain and verifies it against roots.
func demoCertificate(chainPEM string, roots *x509.CertPool) ([]*x509.Certificate, error) {
	var chain []*x509.Certificate
	rest := []byte(chainPEM)
	for {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		chain = append(chain, c)
	}
	if len(chain) == 0 {
		return nil, errors.New("the certificate endpoint returned no PEM certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{DNSName: demoDomain, Roots: roots, Intermediates: inter}); err != nil {
		return nil, fmt.Errorf("the issued certificate does not verify against the demo CA: %w", err)
	}
	return chain, nil
}

// demoClient calls the demo's API with its token.
type demoClient struct{ base, token string }

func (c *demoClient) do(ctx context.Context, method, path string, body any, want int, out any) error {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, raw)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(raw, out)
}

// settingDefault returns a setting's default from the settings table.
func settingDefault(env string) string {
	for _, s := range settings {
		if s.env == env {
			return s.def
		}
	}
	return ""
}
