package main

import (
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/dcvaas/dcvaas/jobs"
	"github.com/dcvaas/dcvaas/sqlstore"
)

// jobSettings configure the job engine and its DNS checks (issue 3).
var jobSettings = []setting{
	{"resolvers", "DCVAAS_RESOLVERS", "", "comma-separated host:port recursive resolvers for DNS checks; empty: the system's (/etc/resolv.conf)"},
	{"dns-check-window", "DCVAAS_DNS_CHECK_WINDOW", "72h", "how long a domain's CNAME is looked for before the check gives up"},
	{"job-rescue-after", "DCVAAS_JOB_RESCUE_AFTER", "2m", "a job running this long counts as stuck (its worker died) and runs again"},
	{"job-max-attempts", "DCVAAS_JOB_MAX_ATTEMPTS", "3", "attempts of issuance, renewal and one-click setup (dns_setup) before they become dead letters"},
	{"workers", "DCVAAS_WORKERS", "32", "jobs this process runs at once"},
}

// jobConfig is the validated part of Config for the job engine.
type jobConfig struct {
	Resolvers      []string
	DNSCheckWindow time.Duration
	RescueAfter    time.Duration
	MaxAttempts    int
	Workers        int
}

// parseJobs reads jobSettings; bad reports a setting's error.
func parseJobs(get func(string) string, bad func(env, format string, args ...any)) jobConfig {
	var c jobConfig
	for _, r := range strings.Split(get("DCVAAS_RESOLVERS"), ",") {
		if r = strings.TrimSpace(r); r == "" {
			continue
		}
		host, port, err := net.SplitHostPort(r)
		if n, perr := strconv.Atoi(port); err != nil || net.ParseIP(host) == nil || perr != nil || n < 1 || n > 65535 {
			bad("DCVAAS_RESOLVERS", "want IP:port entries like 1.1.1.1:53 or [2606:4700:4700::1111]:53, got %q", r)
			continue
		}
		c.Resolvers = append(c.Resolvers, r)
	}
	duration := func(env string, min time.Duration) time.Duration {
		d, err := time.ParseDuration(get(env))
		if err != nil || d < min {
			bad(env, "want a duration of at least %s, like %s, got %q", min, jobDefault(env), get(env))
		}
		return d
	}
	c.DNSCheckWindow = duration("DCVAAS_DNS_CHECK_WINDOW", time.Minute)
	// Jobs time out at 3/4 of it; below a few seconds no DNS check fits.
	c.RescueAfter = duration("DCVAAS_JOB_RESCUE_AFTER", 4*time.Second)
	count := func(env string) int {
		n, err := strconv.Atoi(get(env))
		if err != nil || n < 1 {
			bad(env, "want a positive number, got %q", get(env))
		}
		return n
	}
	c.MaxAttempts = count("DCVAAS_JOB_MAX_ATTEMPTS")
	c.Workers = count("DCVAAS_WORKERS")
	return c
}

func jobDefault(env string) string {
	for _, s := range jobSettings {
		if s.env == env {
			return s.def
		}
	}
	return ""
}

// newEngine builds the job engine on db, issuing through issuer (acme.go)
// and retrying one-click setup through setup (the connection service,
// connections.go); it installs itself as the store's enqueuer, so every
// job recorded from then on is queued with it.
func newEngine(cfg *Config, db *sqlstore.DB, log *slog.Logger, issuer jobs.Issuer, setup jobs.DNSSetup) (*jobs.Engine, error) {
	return jobs.New(jobs.Config{
		Issuer:          observeIssuer(issuer, cfg.Metrics), // metrics.go
		Renewal:         cfg.engineRenewal(),                // cron.go
		DNSSetup:        setup,                              // connections.go
		Observer:        jobObserver(cfg.Metrics),
		DB:              db,
		Logger:          log,
		Clock:           time.Now,
		Resolvers:       cfg.Jobs.Resolvers,
		Workers:         cfg.Jobs.Workers,
		MaxAttempts:     cfg.Jobs.MaxAttempts,
		RescueAfter:     cfg.Jobs.RescueAfter,
		DNSCheckWindow:  cfg.Jobs.DNSCheckWindow,
		ShutdownTimeout: cfg.ShutdownTimeout,
		EventRetention:  cfg.Events.Retention,
	})
}
