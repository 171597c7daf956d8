package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dcvaas/dcvaas"
)

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("scrape: %d", rec.Code)
	}
	return rec.Body.String()
}

func has(t *testing.T, page string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(page, "\n"+l+"\n") {
			t.Errorf("missing %q", l)
		}
	}
}

// Routes are the mux's patterns, never raw paths.
func TestInstrumentHTTP(t *testing.T) {
	m := New("test")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/domains/{id}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNotFound) })
	mux.HandleFunc("POST /api/domains", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "{}") })
	h := m.InstrumentHTTP(mux)
	for _, r := range []*http.Request{
		httptest.NewRequest("GET", "/api/domains/0193a7e0-aaaa", nil),
		httptest.NewRequest("GET", "/api/domains/0193a7e0-bbbb", nil),
		httptest.NewRequest("POST", "/api/domains", nil),
		httptest.NewRequest("GET", "/nowhere/at/all", nil),
		httptest.NewRequest("BREW", "/api/domains", nil),
	} {
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	page := scrape(t, m)
	has(t, page,
		`dcvaas_http_requests_total{method="GET",route="/api/domains/{id}",status="404"} 2`,
		`dcvaas_http_requests_total{method="POST",route="/api/domains",status="200"} 1`,
		`dcvaas_http_requests_total{method="GET",route="unmatched",status="404"} 1`,
		`dcvaas_http_requests_total{method="other",route="unmatched",status="405"} 1`,
		`dcvaas_http_request_duration_seconds_count{method="GET",route="/api/domains/{id}"} 2`,
		`dcvaas_build_info{version="test"} 1`,
	)
	if strings.Contains(page, "aaaa") {
		t.Error("raw path in a label")
	}
}

func TestEventCounters(t *testing.T) {
	m := New("test")
	m.DNSQuery(dns.Question{Name: "x.verify.example.", Qtype: dns.TypeTXT}, dns.RcodeSuccess, time.Millisecond)
	m.DNSQuery(dns.Question{Name: "example.org.", Qtype: dns.TypeMX}, dns.RcodeRefused, time.Millisecond)
	m.CertificateIssued("letsencrypt", false)
	m.CertificateIssued("letsencrypt", true)
	m.IssuanceFailed(true)
	m.CAFailed("letsencrypt", "rate limited")
	m.CAFailed("zerossl", "timed out")
	m.CAFailover("letsencrypt", "zerossl")
	m.JobAttempt("renewal", 2*time.Second, nil)
	m.JobAttempt("renewal_check", time.Second, errors.New("db down"))
	m.JobOutcome(dcvaas.JobRenewal, dcvaas.JobSucceeded)
	m.RenewalCheck(nil, errors.New("db down"))
	m.DelegationChecked("missing")
	has(t, scrape(t, m),
		`dcvaas_dns_queries_total{qtype="TXT",rcode="NOERROR"} 1`,
		`dcvaas_dns_queries_total{qtype="other",rcode="REFUSED"} 1`,
		`dcvaas_dns_query_duration_seconds_count 2`,
		`dcvaas_certificates_issued_total{ca="letsencrypt",kind="issue"} 1`,
		`dcvaas_certificates_issued_total{ca="letsencrypt",kind="renewal"} 1`,
		`dcvaas_issuance_failures_total{kind="renewal"} 1`,
		`dcvaas_ca_failures_total{ca="letsencrypt",reason="rate_limited"} 1`,
		`dcvaas_ca_failures_total{ca="zerossl",reason="timed_out"} 1`,
		`dcvaas_ca_rate_limited_total{ca="letsencrypt"} 1`,
		`dcvaas_ca_failovers_total{from="letsencrypt",to="zerossl"} 1`,
		`dcvaas_job_runs_total{kind="renewal",result="ok"} 1`,
		`dcvaas_job_runs_total{kind="renewal_check",result="error"} 1`,
		`dcvaas_job_duration_seconds_count{kind="renewal"} 1`,
		`dcvaas_jobs_finished_total{status="succeeded",type="renewal"} 1`,
		`dcvaas_renewal_checks_total{result="failed"} 1`,
		`dcvaas_renewal_checks_total{result="succeeded"} 0`,
		`dcvaas_delegation_checks_total{result="missing"} 1`,
	)
}

// The fleet gauges come from one read per TTL, every series present (zero
// included); a failed read shows as fleet_stats_up 0 and no stale values.
func TestFleetCollector(t *testing.T) {
	var reads atomic.Int32
	var fail atomic.Bool
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	src := func(_ context.Context, at time.Time, horizons ...time.Duration) (*dcvaas.FleetStats, error) {
		reads.Add(1)
		if fail.Load() {
			return nil, errors.New("database away")
		}
		if len(horizons) != 2 {
			t.Errorf("horizons %v", horizons)
		}
		started := at.Add(-3 * time.Hour)
		finished := started.Add(90 * time.Second)
		return &dcvaas.FleetStats{
			At:           at,
			Jobs:         map[dcvaas.JobType]map[dcvaas.JobStatus]int{dcvaas.JobRenewal: {dcvaas.JobFailed: 2}},
			Queue:        map[string]int{"available": 5},
			Domains:      map[dcvaas.DomainStatus]int{dcvaas.DomainActive: 10},
			CNAMEMissing: 1,
			Expiring:     map[time.Duration]int{7 * 24 * time.Hour: 3, 14 * 24 * time.Hour: 4},
			LastRenewal:  &dcvaas.RenewalRun{StartedAt: started, FinishedAt: &finished, Scanned: 10, Due: 3, Queued: 2},
			CABackoffs:   map[string]time.Time{"letsencrypt": at.Add(time.Hour)},
		}, nil
	}
	m := New("test")
	m.WatchFleet(src, time.Minute, clock, nil)
	page := scrape(t, m)
	has(t, page,
		`dcvaas_fleet_stats_up 1`,
		`dcvaas_jobs{status="failed",type="renewal"} 2`,
		`dcvaas_jobs{status="queued",type="dns_check"} 0`,
		`dcvaas_queue_jobs{state="available"} 5`,
		`dcvaas_queue_jobs{state="retryable"} 0`,
		`dcvaas_domains{status="active"} 10`,
		`dcvaas_domains{status="failed"} 0`,
		`dcvaas_domains_cname_missing 1`,
		`dcvaas_certificates_expiring{within="7d"} 3`,
		`dcvaas_certificates_expiring{within="14d"} 4`,
		"dcvaas_renewal_check_last_success_timestamp_seconds "+strconv.FormatFloat(float64(now.Add(-3*time.Hour).Unix()), 'g', -1, 64),
		`dcvaas_renewal_check_last_scanned 10`,
		`dcvaas_renewal_check_last_queued 2`,
		`dcvaas_renewal_check_last_duration_seconds 90`,
		`dcvaas_ca_backoff_until_timestamp_seconds{ca="letsencrypt"} `+strconv.FormatFloat(float64(now.Add(time.Hour).Unix()), 'g', -1, 64),
	)
	scrape(t, m)
	if reads.Load() != 1 {
		t.Fatalf("%d reads within the TTL", reads.Load())
	}
	now = now.Add(2 * time.Minute)
	fail.Store(true)
	page = scrape(t, m)
	has(t, page, `dcvaas_fleet_stats_up 0`)
	if strings.Contains(page, "dcvaas_domains{") || reads.Load() != 2 {
		t.Fatalf("stale gauges after a failed read (%d reads)", reads.Load())
	}
}

// The rate-limit counters are the DNS server's own, read at each scrape,
// both present from the start.
func TestDNSRateLimit(t *testing.T) {
	var dropped, truncated atomic.Uint64
	m := New("test")
	m.WatchDNSRateLimit(func() (uint64, uint64) { return dropped.Load(), truncated.Load() })
	has(t, scrape(t, m),
		`dcvaas_dns_rate_limited_total{action="dropped"} 0`,
		`dcvaas_dns_rate_limited_total{action="truncated"} 0`,
	)
	dropped.Add(7)
	truncated.Add(3)
	has(t, scrape(t, m),
		`dcvaas_dns_rate_limited_total{action="dropped"} 7`,
		`dcvaas_dns_rate_limited_total{action="truncated"} 3`,
	)
}
