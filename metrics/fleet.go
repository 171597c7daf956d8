package metrics

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dcvaas/dcvaas"
)

// Horizons are the expiry windows certificates are counted for.
var Horizons = []time.Duration{7 * 24 * time.Hour, 14 * 24 * time.Hour}

// FleetSource reads the fleet's state; *sqlstore.DB's FleetStats is one.
type FleetSource func(ctx context.Context, now time.Time, horizons ...time.Duration) (*dcvaas.FleetStats, error)

// fleetCollector turns FleetStats into gauges. A scrape within ttl of the
// last read is answered from it, so that any number of Prometheus servers
// (and nodes) scraping cost the database a few queries per ttl.
type fleetCollector struct {
	src     FleetSource
	ttl     time.Duration
	timeout time.Duration
	now     dcvaas.Clock
	log     *slog.Logger

	mu      sync.Mutex
	at      time.Time
	stats   *dcvaas.FleetStats
	lastErr error

	up, jobs, queue, domains, cnameMissing, expiring, lastSuccess, lastScanned, lastDue, lastQueued,
	lastDuration, backoff *prometheus.Desc
}

// WatchFleet registers the gauges read from src, cached for ttl (default
// 15s).
func (m *Metrics) WatchFleet(src FleetSource, ttl time.Duration, clock dcvaas.Clock, log *slog.Logger) {
	if ttl <= 0 {
		ttl = 15 * time.Second
	}
	if clock == nil {
		clock = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(namespace+"_"+name, help, labels, nil)
	}
	m.reg.MustRegister(&fleetCollector{src: src, ttl: ttl, timeout: 5 * time.Second, now: clock, log: log,
		up:           d("fleet_stats_up", "1 when the fleet gauges could be read from the database, else 0 (and they are absent)."),
		jobs:         d("jobs", "Jobs that are queued, running or failed (dead letters), by type and status.", "type", "status"),
		queue:        d("queue_jobs", "Entries of the job queue by state: available (waiting for a worker), scheduled, retryable, running.", "state"),
		domains:      d("domains", "Live domains by status.", "status"),
		cnameMissing: d("domains_cname_missing", "Active domains whose delegation CNAME the last daily check did not find."),
		expiring:     d("certificates_expiring", "Active domains whose certificate expires within the window (expired ones included).", "within"),
		lastSuccess:  d("renewal_check_last_success_timestamp_seconds", "Start of the last successful renewal check (0: none yet)."),
		lastScanned:  d("renewal_check_last_scanned", "Active domains the last successful renewal check scanned."),
		lastDue:      d("renewal_check_last_due", "Domains the last successful renewal check found due."),
		lastQueued:   d("renewal_check_last_queued", "Renewals the last successful renewal check queued."),
		lastDuration: d("renewal_check_last_duration_seconds", "How long the last successful renewal check took."),
		backoff:      d("ca_backoff_until_timestamp_seconds", "Until when a CA asked to be left alone (rate limit, outage), for CAs still in back-off.", "ca"),
	})
}

func (c *fleetCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.jobs, c.queue, c.domains, c.cnameMissing, c.expiring, c.lastSuccess,
		c.lastScanned, c.lastDue, c.lastQueued, c.lastDuration, c.backoff} {
		ch <- d
	}
}

// read returns the cached stats, reading them again when older than ttl.
// A failure is cached as long, so that a sick database is not hammered.
func (c *fleetCollector) read() (*dcvaas.FleetStats, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if !c.at.IsZero() && now.Sub(c.at) < c.ttl && !now.Before(c.at) {
		return c.stats, c.lastErr
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	c.stats, c.lastErr = c.src(ctx, now, Horizons...)
	c.at = now
	if c.lastErr != nil {
		c.log.Warn("cannot read fleet metrics from the database", "err", c.lastErr)
	}
	return c.stats, c.lastErr
}

func (c *fleetCollector) Collect(ch chan<- prometheus.Metric) {
	s, err := c.read()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	if err != nil || s == nil {
		gauge(c.up, 0)
		return
	}
	gauge(c.up, 1)
	// Every series exists, zero included, so that alerts and dashboards
	// see 0 rather than nothing.
	for _, jt := range dcvaas.JobTypes {
		for _, st := range []dcvaas.JobStatus{dcvaas.JobQueued, dcvaas.JobRunning, dcvaas.JobFailed} {
			gauge(c.jobs, float64(s.Jobs[jt][st]), string(jt), string(st))
		}
	}
	if s.Queue != nil {
		for _, st := range []string{"available", "scheduled", "retryable", "running"} {
			gauge(c.queue, float64(s.Queue[st]), st)
		}
	}
	for _, st := range dcvaas.DomainStatuses {
		gauge(c.domains, float64(s.Domains[st]), string(st))
	}
	gauge(c.cnameMissing, float64(s.CNAMEMissing))
	for _, h := range Horizons {
		gauge(c.expiring, float64(s.Expiring[h]), days(h))
	}
	var last dcvaas.RenewalRun
	if s.LastRenewal != nil {
		last = *s.LastRenewal
		gauge(c.lastSuccess, float64(last.StartedAt.UnixMilli())/1000)
	} else {
		gauge(c.lastSuccess, 0)
	}
	gauge(c.lastScanned, float64(last.Scanned))
	gauge(c.lastDue, float64(last.Due))
	gauge(c.lastQueued, float64(last.Queued))
	if last.FinishedAt != nil {
		gauge(c.lastDuration, last.FinishedAt.Sub(last.StartedAt).Seconds())
	}
	for ca, until := range s.CABackoffs {
		gauge(c.backoff, float64(until.UnixMilli())/1000, ca)
	}
}

// days writes a horizon as Prometheus users write it: "7d".
func days(d time.Duration) string {
	return prometheusDuration(d)
}

func prometheusDuration(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return itoa(int64(d/(24*time.Hour))) + "d"
	}
	if d%time.Hour == 0 {
		return itoa(int64(d/time.Hour)) + "h"
	}
	return d.String()
}
