package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/miekg/dns"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/acme"
	"github.com/dcvaas/dcvaas/jobs"
	"github.com/dcvaas/dcvaas/metrics"
	"github.com/dcvaas/dcvaas/sqlstore"
)

// fleetStatsTTL is how long the fleet gauges are served from one read of
// the database (tests shorten it).
var fleetStatsTTL = 15 * time.Second

// newMetrics builds the registry of a serving process, its fleet gauges
// read from db.
func newMetrics(db *sqlstore.DB, log *slog.Logger) *metrics.Metrics {
	m := metrics.New(dcvaas.Version)
	m.WatchFleet(db.FleetStats, fleetStatsTTL, time.Now, log)
	return m
}

// metricsOnAPI is the /metrics handler for the HTTP API's address; nil
// when DCVAAS_METRICS_ADDR moves it elsewhere.
func metricsOnAPI(cfg *Config) http.Handler {
	if cfg.Metrics == nil || cfg.Renewal.MetricsAddr != "" {
		return nil
	}
	return cfg.Metrics.Handler()
}

// onMetricsListen, when set (by tests), learns the metrics address.
var onMetricsListen func(addr string)

// serveMetrics serves GET /metrics on DCVAAS_METRICS_ADDR, when set. The
// returned stop shuts it down.
func serveMetrics(cfg *Config, log *slog.Logger) (stop func(), err error) {
	if cfg.Metrics == nil || cfg.Renewal.MetricsAddr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", cfg.Renewal.MetricsAddr)
	if err != nil {
		return nil, bindError("DCVAAS_METRICS_ADDR", err) // serve.go
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", cfg.Metrics.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go srv.Serve(ln)
	log.Info("metrics listening", "addr", ln.Addr().String())
	if onMetricsListen != nil {
		onMetricsListen(ln.Addr().String())
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}, nil
}

// instrument counts and times the API's requests, when metrics are on.
func instrument(cfg *Config, h http.Handler) http.Handler {
	if cfg.Metrics == nil {
		return h
	}
	return cfg.Metrics.InstrumentHTTP(h)
}

// jobObserver is the engine's Observer: nil (no interface holding a nil
// pointer) when metrics are off.
func jobObserver(m *metrics.Metrics) jobs.Observer {
	if m == nil {
		return nil
	}
	return m
}

// dnsQueryHook is the DNS server's OnQuery: nil when metrics are off.
func dnsQueryHook(m *metrics.Metrics) func(dns.Question, int, time.Duration) {
	if m == nil {
		return nil
	}
	return m.DNSQuery
}

// observeIssuer counts the certificates the jobs obtain, by CA, and the
// attempts that get none.
func observeIssuer(is jobs.Issuer, m *metrics.Metrics) jobs.Issuer {
	if m == nil || is == nil {
		return is
	}
	o := &observedIssuer{next: is, m: m}
	if w, ok := is.(renewalWindower); ok {
		return &observedARIIssuer{observedIssuer: o, w: w}
	}
	return o
}

type observedIssuer struct {
	next jobs.Issuer
	m    *metrics.Metrics
}

func (o *observedIssuer) Issue(ctx context.Context, d *dcvaas.Domain, renewal bool) (any, error) {
	res, err := o.next.Issue(ctx, d, renewal)
	if err != nil {
		o.m.IssuanceFailed(renewal)
		return res, err
	}
	if r, ok := res.(*acme.Result); ok && (r.Outcome == "issued" || r.Outcome == "renewed") {
		o.m.CertificateIssued(r.CAName, renewal)
	}
	return res, err
}

// renewalWindower is what the renewal check asks ARI windows of.
type renewalWindower interface {
	RenewalWindow(ctx context.Context, cert *dcvaas.Certificate) (*acme.Window, error)
}

type observedARIIssuer struct {
	*observedIssuer
	w renewalWindower
}

func (o *observedARIIssuer) RenewalWindow(ctx context.Context, cert *dcvaas.Certificate) (*acme.Window, error) {
	return o.w.RenewalWindow(ctx, cert)
}

// observeACMEStore counts, as the issuer records them, the orders a CA
// failed (with why) and the moves to the next CA.
func observeACMEStore(s acme.Store, m *metrics.Metrics) acme.Store {
	if m == nil {
		return s
	}
	return observedStore{Store: s, m: m}
}

type observedStore struct {
	acme.Store
	m *metrics.Metrics
}

func (o observedStore) SetCABackoff(ctx context.Context, actor dcvaas.Actor, caName string, until time.Time, reason, action string, details map[string]any) error {
	if r, ok := details["reason"].(string); ok {
		o.m.CAFailed(caName, r)
	}
	return o.Store.SetCABackoff(ctx, actor, caName, until, reason, action, details)
}

func (o observedStore) AuditCAEvent(ctx context.Context, actor dcvaas.Actor, action, caName string, details map[string]any) error {
	if action == "ca.failover" {
		to, _ := details["to"].(string)
		o.m.CAFailover(caName, to)
	}
	return o.Store.AuditCAEvent(ctx, actor, action, caName, details)
}
