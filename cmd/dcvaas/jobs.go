package main

import (
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/dcvaas/dcvaas/crypt"
	"github.com/dcvaas/dcvaas/jobs"
	"github.com/dcvaas/dcvaas/sqlstore"
)

// jobSettings configure the job engine and its DNS checks (issue 3).
var jobSettings = []setting{
	{"resolvers", "DCVAAS_RESOLVERS", "", "comma-separated host:port recursive resolvers for DNS checks; empty: the system's (/etc/resolv.conf)", groupDNS},
	{"dns-check-window", "DCVAAS_DNS_CHECK_WINDOW", "72h", "how long a domain's CNAME is looked for before the check gives up", groupJobs},
	{"job-rescue-after", "DCVAAS_JOB_RESCUE_AFTER", "2m", "a job running this long counts as stuck (its worker died) and runs again", groupJobs},
	{"job-max-attempts", "DCVAAS_JOB_MAX_ATTEMPTS", "3", "attempts of issuance, renewal and one-click setup (dns_setup) before they become dead letters", groupJobs},
	{"workers", "DCVAAS_WORKERS", "32", "jobs this process runs at once", groupJobs},
	{"node-id", "DCVAAS_NODE_ID", "", "this node's name, the same across restarts and unique among running nodes; a restarted node takes back its interrupted jobs at once; empty: host name and HTTP address (none when the HTTP port is 0)", groupJobs},
}

// jobConfig is the validated part of Config for the job engine.
type jobConfig struct {
	Resolvers      []string
	DNSCheckWindow time.Duration
	RescueAfter    time.Duration
	MaxAttempts    int
	Workers        int
	NodeID         string // as configured; see Config.nodeID
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
	c.NodeID = get("DCVAAS_NODE_ID")
	if len(c.NodeID) > 64 || strings.IndexFunc(c.NodeID, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0 {
		bad("DCVAAS_NODE_ID", "want at most 64 printable ASCII characters without spaces, got %q", c.NodeID)
	}
	return c
}

// nodeID is the name under which serve's job engine takes back its own
// interrupted jobs after a restart. Unless configured it is the host name
// and the HTTP address: serve binds that address before it takes anything
// back, so no other live process on the host can hold the same name. With
// port 0 (tests) a restarted process gets another address and another name,
// and River's rescuer alone recovers the jobs.
func (c *Config) nodeID() string {
	if c.Jobs.NodeID != "" {
		return c.Jobs.NodeID
	}
	host, _ := os.Hostname()
	if _, port, err := net.SplitHostPort(c.HTTPAddr); err != nil || port == "0" || host == "" {
		return ""
	}
	return host + "-" + c.HTTPAddr
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
//
// With kr, it delivers webhooks too (webhooks.go).
func newEngine(cfg *Config, db *sqlstore.DB, log *slog.Logger, issuer jobs.Issuer, setup jobs.DNSSetup, kr *crypt.Keyring) (*jobs.Engine, error) {
	return jobs.New(jobs.Config{
		Webhooks:        cfg.engineWebhooks(kr),             // webhooks.go
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
		NodeID:          cfg.nodeID(),
		EventRetention:  cfg.Events.Retention,
	})
}
