package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"github.com/dcvaas/dcvaas/benchdoc"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/letsencrypt/challtestsrv"
	"github.com/mholt/acmez/v3"
	acmeapi "github.com/mholt/acmez/v3/acme"

	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/dcvaas/dcvaas/sqlstore/storetest"
)

// BenchmarkIssuance measures issuance through the whole program — `dcvaas
// serve` in this process, its DNS server on loopback, the in-process Pebble
// with PEBBLE_VA_NOSLEEP — beside a plain acmez client ordering the same
// certificates (apex + wildcard, DNS-01) from the same Pebble in the same
// run, so that dcvaas's overhead is a ratio. One at a time: POST /verify
// (CNAME in place) until the domain is active, seen by polling GET
// /api/domains/{id}, against the plain client's ObtainCertificate. A burst:
// 100 domains' POST /verify sent at once until all are active, against the
// plain client obtaining 100 certificates with as many goroutines as dcvaas
// has workers.
//
//	go test ./cmd/dcvaas -run '^$' -bench Issuance -benchtime 1x
//
// DCVAAS_BENCH_SEQUENTIAL and DCVAAS_BENCH_BURST change the counts (12,
// 100); DCVAAS_BENCH_WRITE=docs/benchmarks.md (from the module's root)
// replaces that file's "## Issuance" section with the results. PostgreSQL
// is measured too when DCVAAS_TEST_POSTGRES_URL is set.
func BenchmarkIssuance(b *testing.B) {
	seq, burst := envInt("DCVAAS_BENCH_SEQUENTIAL", 12), envInt("DCVAAS_BENCH_BURST", 100)
	var rows, overheads []string
	for range b.N {
		rows, overheads = rows[:0], overheads[:0]
		for _, dialect := range storetest.Dialects(b) {
			r := benchIssuance(b, dialect, seq, burst)
			rows = append(rows, r.rows(dialect)...)
			overheads = append(overheads, fmt.Sprintf("%s: +%d ms at p50, +%d ms at p90", dialect,
				(r.p50-r.plainP50).Milliseconds(), (r.p90-r.plainP90).Milliseconds()))
			b.ReportMetric(r.p50.Seconds()*1000, string(dialect)+"-p50-ms")
			b.ReportMetric(r.rate, string(dialect)+"-certs/s")
			b.ReportMetric(r.plainP50.Seconds()*1000, string(dialect)+"-acmez-p50-ms")
			b.ReportMetric(r.plainRate, string(dialect)+"-acmez-certs/s")
		}
	}
	var doc strings.Builder
	fmt.Fprintf(&doc, "`dcvaas serve` (in the benchmark's process, its DNS server on loopback) issuing apex + wildcard certificates from an\n"+
		"in-process Pebble (`PEBBLE_VA_NOSLEEP=1`), beside a plain acmez v3 client ordering the same certificates from the same Pebble\n"+
		"in the same run (DNS-01 values put straight into the customers' DNS, no database, no jobs). Both poll authorizations every\n"+
		"250 ms (acmez's default). dcvaas's time runs from `POST /verify` (CNAME in place) until `GET /api/domains/{id}` says\n"+
		"`active`, polled every 20 ms: it includes the dns_check job (CNAME lookup), the start_issuance job (CAA lookup, delegation\n"+
		"check, ACME account and order, TXT values in the database served by the built-in DNS server, CSR, download, sealed key,\n"+
		"cleanup) and each job's bookkeeping. Burst: %d domains' `POST /verify` sent at once; certificates/s from the first request\n"+
		"until the last domain is active; the plain client runs as many goroutines as dcvaas has workers (32).\n\n", burst)
	fmt.Fprintf(&doc, "```\nDCVAAS_TEST_POSTGRES_URL='postgres://postgres@127.0.0.1:5432/test?sslmode=disable' \\\n"+
		"  DCVAAS_BENCH_WRITE=docs/benchmarks.md go test ./cmd/dcvaas -run '^$' -bench Issuance -benchtime 1x\n```\n\n")
	fmt.Fprintf(&doc, "Machine: %d CPUs (%s/%s), %s, %s; one run; other sessions' tests shared the CPUs.\n\n",
		runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), time.Now().UTC().Format("2006-01-02"))
	fmt.Fprintf(&doc, "| database | scenario | dcvaas | plain acmez | ratio | goal |\n|---|---|---:|---:|---:|---|\n")
	for _, r := range rows {
		fmt.Fprintln(&doc, r)
	}
	fmt.Fprintf(&doc, "\nReading: per certificate both clients make the same ACME requests (present both values, start both\n"+
		"challenges, poll every 250 ms; the plain client also fetches Pebble's alternate chains), and the audit log's timestamps\n"+
		"show dcvaas's start_issuance job itself taking 0.76–0.79 s, like the plain client's whole call. What dcvaas adds\n"+
		"(this run: %s) is mostly waiting for the job queue: a queued job (the dns_check of POST /verify, then\n"+
		"start_issuance) starts 5–50 ms later when the engine's River client is woken, or at River's next fetch poll\n"+
		"(`jobs.Config.FetchPollInterval`) when it is not. On PostgreSQL River announces inserts at most once per queue and\n"+
		"fetch cooldown (10 ms), so a start_issuance queued by a quick dns_check goes unannounced: with a 1 s poll that\n"+
		"made PostgreSQL's p50 1.33 s (2026-12-01); the poll is 100 ms there now. The CNAME, CAA and delegation lookups and\n"+
		"database writes add tens of milliseconds, which now and then cost a whole extra 250 ms poll round. In a burst the\n"+
		"32 workers overlap the waits and dcvaas keeps pace with the plain client; burst figures of single runs vary by up\n"+
		"to ±40%% (26–48 certificates/s seen).\n", strings.Join(overheads, "; "))
	b.Log("\n" + doc.String())
	if path := os.Getenv("DCVAAS_BENCH_WRITE"); path != "" {
		if !filepath.IsAbs(path) {
			path = filepath.Join("..", "..", path) // from the module's root, not the package's
		}
		if err := benchdoc.ReplaceSection(path, "## Issuance", doc.String()); err != nil {
			b.Fatal(err)
		}
	}
}

type issuanceResult struct {
	seq, burst         int
	p50, p90           time.Duration
	rate               float64
	plainP50, plainP90 time.Duration
	plainRate          float64
}

func (r issuanceResult) rows(dialect sqlstore.Dialect) []string {
	ms := func(d time.Duration) string { return fmt.Sprintf("%d ms", d.Milliseconds()) }
	met := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**not met**"
	}
	return []string{
		fmt.Sprintf("| %s | one domain, p50 of %d | %s | %s | %.2f× | ≤ 1.5 s: %s |", dialect, r.seq, ms(r.p50), ms(r.plainP50),
			r.p50.Seconds()/r.plainP50.Seconds(), met(r.p50 <= 1500*time.Millisecond)),
		fmt.Sprintf("| %s | one domain, p90 of %d | %s | %s | %.2f× | |", dialect, r.seq, ms(r.p90), ms(r.plainP90), r.p90.Seconds()/r.plainP90.Seconds()),
		fmt.Sprintf("| %s | %d domains at once | %.1f certs/s | %.1f certs/s | %.2f× | ≥ 5/s: %s |", dialect, r.burst, r.rate, r.plainRate,
			r.rate/r.plainRate, met(r.rate >= 5)),
	}
}

func benchIssuance(b *testing.B, dialect sqlstore.Dialect, seq, burst int) issuanceResult {
	res := issuanceResult{seq: seq, burst: burst}
	w := newIssuanceWorld(b, storetest.URL(b, dialect))
	w.vars["DCVAAS_RATE_LIMIT"] = "1000000"
	w.vars["DCVAAS_LOG_LEVEL"] = "warn"
	token, _ := bootstrapOrg(b, w.vars)
	base := w.serve(b)
	plain := newPlainClient(b, w)

	// Warm both up: accounts, connections, prepared statements.
	issueOne(b, w, base, token)
	plain.obtain(b, "warm-"+randLabel(5)+".example.com")

	var times, plainTimes []time.Duration
	for range seq {
		times = append(times, issueOne(b, w, base, token))
		start := time.Now()
		plain.obtain(b, "plain-"+randLabel(5)+".example.com")
		plainTimes = append(plainTimes, time.Since(start))
	}
	res.p50, res.p90 = percentile(times, 50), percentile(times, 90)
	res.plainP50, res.plainP90 = percentile(plainTimes, 50), percentile(plainTimes, 90)

	// The burst: every domain created and delegated first.
	var ids []string
	for range burst {
		name := "burst-" + randLabel(5) + ".example.com"
		ids = append(ids, addDomain(b, w.dns, base, token, name)["id"].(string))
	}
	start := time.Now()
	parallel(16, ids, func(id string) {
		req, _ := http.NewRequest("POST", base+"/api/domains/"+id+"/verify", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Errorf("verify: %v", err)
			return
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			b.Errorf("verify: %d", resp.StatusCode)
		}
	})
	deadline := start.Add(5 * time.Minute)
	for {
		_, active := call(b, "GET", base+"/api/domains?status=active&limit=1", token, nil)
		if active["total"] == float64(burst+seq+1) {
			break
		}
		if _, failed := call(b, "GET", base+"/api/domains?status=failed&limit=5", token, nil); failed["total"] != 0.0 {
			b.Fatalf("domains failed: %v", failed)
		}
		if time.Now().After(deadline) {
			b.Fatalf("burst not done after 5 minutes: %v active", active["total"])
		}
		time.Sleep(20 * time.Millisecond)
	}
	res.rate = float64(burst) / time.Since(start).Seconds()

	var names []string
	for range burst {
		names = append(names, "plainburst-"+randLabel(5)+".example.com")
	}
	start = time.Now()
	parallel(32, names, func(n string) { plain.obtain(b, n) })
	res.plainRate = float64(burst) / time.Since(start).Seconds()
	return res
}

// benchPoll is how often the benchmark asks whether a domain is active:
// often enough to measure, seldom enough not to load the CPUs it measures.
var benchPoll = time.Duration(envInt("DCVAAS_BENCH_POLL_MS", 20)) * time.Millisecond

// issueOne takes one new domain from POST /verify to active.
func issueOne(b testing.TB, w *issuanceWorld, base, token string) time.Duration {
	name := "seq-" + randLabel(5) + ".example.com"
	id := addDomain(b, w.dns, base, token, name)["id"].(string)
	start := time.Now()
	if status, _ := call(b, "POST", base+"/api/domains/"+id+"/verify", token, nil); status != http.StatusAccepted {
		b.Fatalf("verify: %d", status)
	}
	for {
		_, d := call(b, "GET", base+"/api/domains/"+id, token, nil)
		if d["status"] == "active" {
			return time.Since(start)
		}
		if d["status"] == "failed" || time.Since(start) > time.Minute {
			b.Fatalf("domain: %v", d)
		}
		time.Sleep(benchPoll)
	}
}

// plainClient is the baseline: acmez's own high-level client, DNS-01
// values put straight into the customers' DNS (challtestsrv), as a
// single-tenant ACME client with DNS credentials would.
type plainClient struct {
	client  *acmez.Client
	account acmeapi.Account
}

func newPlainClient(b testing.TB, w *issuanceWorld) *plainClient {
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(w.ca.TLSRootsPEM)
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, MaxIdleConnsPerHost: 64}}
	solver := &txtSolver{srv: w.dns.Customer, refs: map[string]int{}}
	c := &acmez.Client{
		Client:           &acmeapi.Client{Directory: w.ca.DirectoryURL, HTTPClient: hc},
		ChallengeSolvers: map[string]acmez.Solver{acmeapi.ChallengeTypeDNS01: solver},
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	acct, err := c.NewAccount(context.Background(), acmeapi.Account{Contact: []string{"mailto:ops@plain.test"}, TermsOfServiceAgreed: true, PrivateKey: key})
	if err != nil {
		b.Fatal(err)
	}
	return &plainClient{client: c, account: acct}
}

func (p *plainClient) obtain(b testing.TB, name string) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	certs, err := p.client.ObtainCertificateForSANs(context.Background(), p.account, key, []string{name, "*." + name})
	if err != nil || len(certs) == 0 {
		b.Errorf("plain acmez client: %v", err)
	}
}

// txtSolver publishes DNS-01 values at _acme-challenge.<name> itself; the
// apex's and the wildcard's share the name, so a name is cleared when its
// last value is done.
type txtSolver struct {
	srv  *challtestsrv.ChallSrv
	mu   sync.Mutex
	refs map[string]int
}

func (s *txtSolver) Present(_ context.Context, c acmeapi.Challenge) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refs[c.DNS01TXTRecordName()]++
	s.srv.AddDNSTXTRecord(c.DNS01TXTRecordName(), c.DNS01KeyAuthorization())
	return nil
}

func (s *txtSolver) CleanUp(_ context.Context, c acmeapi.Challenge) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	name := c.DNS01TXTRecordName()
	if s.refs[name]--; s.refs[name] <= 0 {
		delete(s.refs, name)
		s.srv.DeleteDNSTXTRecord(name)
	}
	return nil
}

// parallel runs fn over items with n goroutines.
func parallel[T any](n int, items []T, fn func(T)) {
	ch := make(chan T)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for it := range ch {
				fn(it)
			}
		})
	}
	for _, it := range items {
		ch <- it
	}
	close(ch)
	wg.Wait()
}

func percentile(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

func envInt(name string, def int) int {
	var n int
	if _, err := fmt.Sscan(os.Getenv(name), &n); err != nil || n < 1 {
		return def
	}
	return n
}
