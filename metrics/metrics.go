// Package metrics is dcvaas's Prometheus instrumentation: one registry
// with every dcvaas_ metric, served in the text format by Handler.
//
// Two kinds of numbers live here. Counters and histograms of what this
// process did (HTTP requests, job runs, DNS queries, issuance results) are
// per node; Prometheus sums them over a cluster. Gauges of the fleet (jobs
// waiting, certificates about to expire, the last renewal check) are read
// from the shared database by a Collector, cached for a few seconds so
// that scrapes stay cheap, and are the same on every node.
//
// No metric has a per-organization label, and none carries a secret: the
// endpoint may be scraped without a token.
package metrics

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dcvaas/dcvaas"
)

const namespace = "dcvaas"

// Metrics holds the registry and this process's collectors. Its methods
// are safe for concurrent use; a nil *Metrics is not.
type Metrics struct {
	reg *prometheus.Registry

	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec

	jobAttempts *prometheus.CounterVec
	jobDuration *prometheus.HistogramVec
	jobOutcomes *prometheus.CounterVec

	renewalChecks    *prometheus.CounterVec
	delegationChecks *prometheus.CounterVec

	dnsQueries  *prometheus.CounterVec
	dnsDuration prometheus.Histogram

	issued           *prometheus.CounterVec
	issuanceFailures *prometheus.CounterVec
	caFailures       *prometheus.CounterVec
	caRateLimited    *prometheus.CounterVec
	caFailovers      *prometheus.CounterVec
}

// New builds the registry: dcvaas's metrics, build information and the Go
// runtime and process collectors.
func New(version string) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	f := func(c prometheus.Collector) { m.reg.MustRegister(c) }
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "build_info",
		Help: "Always 1; the version label is the running dcvaas."}, []string{"version"})
	build.WithLabelValues(version).Set(1)
	f(build)

	m.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "http_requests_total",
		Help: "HTTP requests answered, by route pattern, method and status code."}, []string{"route", "method", "status"})
	m.httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: "http_request_duration_seconds",
		Help: "Time to answer an HTTP request, by route pattern and method.", Buckets: prometheus.DefBuckets}, []string{"route", "method"})

	m.jobAttempts = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "job_runs_total",
		Help: "Queue entries run by this node, by kind; result=error when the run could not record its outcome (River retries it)."},
		[]string{"kind", "result"})
	m.jobDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: "job_duration_seconds",
		Help:    "Time a queue entry ran on this node, by kind (a job type, or renewal_check, renewal_info, delegation_scan, delegation_check).",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}}, []string{"kind"})
	m.jobOutcomes = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "jobs_finished_total",
		Help: "Job outcomes recorded by this node, by type and status: succeeded, failed (a dead letter) or queued (to run again)."},
		[]string{"type", "status"})

	m.renewalChecks = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "renewal_checks_total",
		Help: "Renewal checks run by this node, by result (succeeded, failed)."}, []string{"result"})
	m.delegationChecks = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "delegation_checks_total",
		Help: "CNAME checks of active domains made by this node, by result (ok, missing, error)."}, []string{"result"})

	m.dnsQueries = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "dns_queries_total",
		Help: "Queries answered by the verify zone's DNS server, by response code and query type."}, []string{"rcode", "qtype"})
	m.dnsDuration = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "dns_query_duration_seconds",
		Help: "Time to answer a DNS query.", Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2}})

	m.issued = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "certificates_issued_total",
		Help: "Certificates obtained by this node, by CA and kind (issue, renewal)."}, []string{"ca", "kind"})
	m.issuanceFailures = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "issuance_failures_total",
		Help: "Issuance attempts that ended without a certificate, by kind (issue, renewal)."}, []string{"kind"})
	m.caFailures = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "ca_failures_total",
		Help: "Orders a CA failed, by CA and reason (rate_limited, unavailable, unreachable, timed_out)."}, []string{"ca", "reason"})
	m.caRateLimited = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "ca_rate_limited_total",
		Help: "Times a CA answered rateLimited, by CA."}, []string{"ca"})
	m.caFailovers = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "ca_failovers_total",
		Help: "Orders moved from one CA to the next, by CA left and CA tried next."}, []string{"from", "to"})

	for _, c := range []prometheus.Collector{m.httpRequests, m.httpDuration, m.jobAttempts, m.jobDuration, m.jobOutcomes,
		m.renewalChecks, m.delegationChecks, m.dnsQueries, m.dnsDuration, m.issued, m.issuanceFailures, m.caFailures,
		m.caRateLimited, m.caFailovers} {
		f(c)
	}
	// Series that alerts compare against exist from the start.
	for _, r := range []string{"succeeded", "failed"} {
		m.renewalChecks.WithLabelValues(r)
	}
	return m
}

// Registry is where further collectors go (e.g. NewFleetCollector's).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// InstrumentHTTP counts and times the requests next answers. The route is
// the pattern net/http's ServeMux matched (e.g. /api/domains/{id}), never
// the raw path, so that ids do not become labels; "unmatched" for the rest.
func (m *Metrics) InstrumentHTTP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			route, method := routeOf(r)
			m.httpRequests.WithLabelValues(route, method, strconv.Itoa(sw.code())).Inc()
			m.httpDuration.WithLabelValues(route, method).Observe(time.Since(start).Seconds())
		}()
		next.ServeHTTP(sw, r)
	})
}

// routeOf reads the route from the pattern the mux recorded in r (the
// mux sets it on the request it was handed).
func routeOf(r *http.Request) (route, method string) {
	method = r.Method
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
	default:
		method = "other"
	}
	p := r.Pattern
	if _, path, ok := strings.Cut(p, " "); ok {
		p = path
	}
	if i := strings.IndexByte(p, '/'); i > 0 {
		p = p[i:] // a host in the pattern is not part of the route
	}
	if p == "" || p == "/" {
		p = "unmatched"
	}
	return p, method
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// JobAttempt implements jobs.Observer.
func (m *Metrics) JobAttempt(kind string, took time.Duration, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.jobAttempts.WithLabelValues(kind, result).Inc()
	m.jobDuration.WithLabelValues(kind).Observe(took.Seconds())
}

// JobOutcome implements jobs.Observer.
func (m *Metrics) JobOutcome(jt dcvaas.JobType, status dcvaas.JobStatus) {
	m.jobOutcomes.WithLabelValues(string(jt), string(status)).Inc()
}

// RenewalCheck implements jobs.Observer.
func (m *Metrics) RenewalCheck(_ *dcvaas.RenewalRun, err error) {
	if err != nil {
		m.renewalChecks.WithLabelValues("failed").Inc()
		return
	}
	m.renewalChecks.WithLabelValues("succeeded").Inc()
}

// DelegationChecked implements jobs.Observer.
func (m *Metrics) DelegationChecked(result string) { m.delegationChecks.WithLabelValues(result).Inc() }

// DNSQuery counts one answered DNS query; it fits dnsserver.Config.OnQuery.
func (m *Metrics) DNSQuery(q dns.Question, rcode int, took time.Duration) {
	rc, ok := dns.RcodeToString[rcode]
	if !ok {
		rc = "RCODE" + strconv.Itoa(rcode)
	}
	qt := "other"
	switch q.Qtype {
	case dns.TypeA, dns.TypeAAAA, dns.TypeTXT, dns.TypeSOA, dns.TypeNS, dns.TypeCNAME, dns.TypeCAA, dns.TypeANY:
		qt = dns.TypeToString[q.Qtype]
	}
	m.dnsQueries.WithLabelValues(rc, qt).Inc()
	m.dnsDuration.Observe(took.Seconds())
}

func kind(renewal bool) string {
	if renewal {
		return "renewal"
	}
	return "issue"
}

// CertificateIssued counts a certificate obtained from ca.
func (m *Metrics) CertificateIssued(ca string, renewal bool) {
	m.issued.WithLabelValues(ca, kind(renewal)).Inc()
}

// IssuanceFailed counts an issuance attempt that got no certificate.
func (m *Metrics) IssuanceFailed(renewal bool) {
	m.issuanceFailures.WithLabelValues(kind(renewal)).Inc()
}

// CAFailed counts an order that ca failed for reason ("rate limited",
// "unavailable", …: spaces become underscores).
func (m *Metrics) CAFailed(ca, reason string) {
	reason = strings.ReplaceAll(strings.TrimSpace(reason), " ", "_")
	m.caFailures.WithLabelValues(ca, reason).Inc()
	if reason == "rate_limited" {
		m.caRateLimited.WithLabelValues(ca).Inc()
	}
}

// CAFailover counts an order moved from one CA to the next.
func (m *Metrics) CAFailover(from, to string) { m.caFailovers.WithLabelValues(from, to).Inc() }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
