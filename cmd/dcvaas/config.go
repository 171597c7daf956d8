package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dcvaas/dcvaas/crypt"
	"github.com/dcvaas/dcvaas/domainname"
	"github.com/dcvaas/dcvaas/metrics"
	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/dcvaas/dcvaas/web"
)

// setting is one configuration value: a flag and its DCVAAS_ variable. The
// table below is the single list of settings; the README's table, the
// commands' -h (grouped) and shell completion follow it.
type setting struct {
	flag, env, def, usage string
	group                 string // a heading of -h: groupHTTP, groupDatabase, …
}

// Setting groups, in the order -h shows them.
const (
	groupHTTP      = "HTTP"
	groupDatabase  = "Database"
	groupSecrets   = "Secrets"
	groupLogging   = "Logging"
	groupDNS       = "DNS"
	groupACME      = "ACME"
	groupJobs      = "Jobs"
	groupRenewal   = "Renewal"
	groupProviders = "Providers"
	// groupSync holds `dcvaas sync`'s own settings (sync.go), which no
	// other command reads.
	groupSync = "Sync"
)

var settingGroups = []string{groupHTTP, groupDatabase, groupSecrets, groupLogging, groupDNS, groupACME, groupJobs, groupRenewal, groupProviders}

// commandGroups are the setting groups a command reads, by its flag set's
// name; its -h shows only their flags. A command not listed reads every
// setting. Settings outside a command's groups still come from the
// environment (and are checked), they just have no flag there.
var commandGroups = map[string][]string{
	"dcvaas migrate":      {groupDatabase, groupLogging, groupSecrets},
	"dcvaas bootstrap":    {groupDatabase, groupLogging, groupSecrets},
	"dcvaas keys rotate":  {groupDatabase, groupLogging, groupSecrets},
	"dcvaas backup":       {groupDatabase, groupLogging, groupSecrets},
	"dcvaas restore":      {groupDatabase, groupLogging, groupSecrets},
	"dcvaas healthcheck":  {groupHTTP},
	"dcvaas dns ds":       {groupDatabase, groupLogging, groupSecrets, groupDNS},
	"dcvaas dns rollover": {groupDatabase, groupLogging, groupSecrets, groupDNS},
	"dcvaas cron run":     {groupDatabase, groupLogging, groupSecrets, groupDNS, groupACME, groupJobs, groupRenewal},
}

var settings = append([]setting{
	{"database-url", "DCVAAS_DATABASE_URL", "./data/dcvaas.db", "postgres:// or postgresql:// URL, else an SQLite file path (sqlite:// prefix allowed)", groupDatabase},
	{"db-max-conns", "DCVAAS_DB_MAX_CONNS", "0", "PostgreSQL connections this process opens at most; 0: 8 per CPU, at least 16", groupDatabase},
	{"http-addr", "DCVAAS_HTTP_ADDR", "127.0.0.1:8080", "address the HTTP API listens on", groupHTTP},
	{"cors-origins", "DCVAAS_CORS_ORIGINS", "", "comma-separated origins allowed to call the API from a browser", groupHTTP},
	{"encryption-key", "DCVAAS_ENCRYPTION_KEY", "", "64 hex characters; unset with SQLite: generated once beside the database file", groupSecrets},
	{"rate-limit", "DCVAAS_RATE_LIMIT", "600", "API requests per minute per organization", groupHTTP},
	{"log-level", "DCVAAS_LOG_LEVEL", "info", "debug, info, warn or error", groupLogging},
	{"log-format", "DCVAAS_LOG_FORMAT", "text", "text or json", groupLogging},
	{"verify-zone", "DCVAAS_VERIFY_ZONE", "dcvaas-verify.localhost", "zone that holds the CNAME targets and challenge TXT records", groupDNS},
	{"allow-tlds", "DCVAAS_ALLOW_TLDS", "", "comma-separated top-level labels (or suffixes) whose domain names are accepted although not public, e.g. test for tests and demos; by default special-use names (localhost, local, internal, test, example, onion, arpa, …) and names outside the ICANN TLDs are refused", groupHTTP},
	{"hard-delete", "DCVAAS_HARD_DELETE", "false", "delete domains for good instead of marking them deleted", groupHTTP},
	{"shutdown-timeout", "DCVAAS_SHUTDOWN_TIMEOUT", "30s", "how long SIGTERM waits for requests and jobs in flight", groupJobs},
	{"dnssec", "DCVAAS_DNSSEC", "false", "sign the verify zone with DNSSEC (ECDSA P-256 keys kept sealed in the database, shared by every node); hand 'dcvaas dns ds' to the parent zone", groupDNS},
	{"shutdown-drain", "DCVAAS_SHUTDOWN_DRAIN", "0s", "after SIGTERM, how long /readyz answers 503 while requests are still served, before the listener closes (a load balancer's health-check interval and threshold)", groupHTTP},
}, slices.Concat(connectionSettings, jobSettings, acmeSettings, renewalSettings, eventSettings, ssoSettings, hardeningSettings, webhookSettings)...) // connections.go, jobs.go, acme.go, cron.go, events.go, sso.go, hardening.go, webhooks.go

// Config is the validated configuration of a dcvaas process.
type Config struct {
	DatabaseURL     string
	Dialect         sqlstore.Dialect
	DBMaxConns      int // 0: sqlstore's default
	HTTPAddr        string
	CORSOrigins     []string
	EncryptionKey   []byte // nil: derive from the key file (SQLite only)
	RateLimit       int
	LogLevel        slog.Level
	LogFormat       string
	VerifyZone      string
	AllowTLDs       []string
	HardDelete      bool
	DNSSEC          bool // sign the verify zone (dnssec.go)
	ShutdownTimeout time.Duration
	ShutdownDrain   time.Duration
	Connections     connectionConfig // connections.go
	Jobs            jobConfig        // jobs.go
	ACME            acmeConfig       // acme.go
	Renewal         renewalConfig    // cron.go
	Events          eventConfig      // events.go
	SSO             *web.SSO         // sso.go; nil: no single sign-on
	Hardening       hardeningConfig  // hardening.go
	Webhooks        webhookConfig    // webhooks.go
	// Metrics is the process's registry, set by serve (metrics.go); not
	// a setting. Nil: nothing is measured.
	Metrics *metrics.Metrics
}

// KeyFile is where the generated encryption key lives for an SQLite database.
func (c *Config) KeyFile() string {
	_, path, _ := sqlstore.ParseURL(c.DatabaseURL)
	return filepath.Join(filepath.Dir(path), "dcvaas.key")
}

// parseConfig reads the settings from flags (which win) and the environment.
// Every error names the setting, so a bad deployment fails at start with a
// message that says what to fix.
func parseConfig(fs *flag.FlagSet, args []string, getenv func(string) string) (*Config, error) {
	values := map[string]*string{}
	groups, only := commandGroups[fs.Name()]
	for _, s := range settings {
		def := s.def
		if v := getenv(s.env); v != "" {
			def = v
		}
		values[s.env] = &def
		if only && !slices.Contains(groups, s.group) {
			continue
		}
		if settingType(s) == "bool" {
			fs.Var(boolFlag{&def}, s.flag, s.usage)
		} else {
			fs.Var(stringFlag{&def}, s.flag, s.usage)
		}
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	get := func(env string) string { return strings.TrimSpace(*values[env]) }
	var errs []error
	bad := func(env, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", env, fmt.Sprintf(format, args...)))
	}

	c := &Config{DatabaseURL: get("DCVAAS_DATABASE_URL"), HTTPAddr: get("DCVAAS_HTTP_ADDR"), LogFormat: get("DCVAAS_LOG_FORMAT")}
	var err error
	if c.Dialect, _, err = sqlstore.ParseURL(c.DatabaseURL); err != nil {
		bad("DCVAAS_DATABASE_URL", "%v", err)
	}
	c.DatabaseURL = absSQLitePath(c.DatabaseURL) // app.go
	if _, port, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		bad("DCVAAS_HTTP_ADDR", "want host:port, got %q", c.HTTPAddr)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		bad("DCVAAS_HTTP_ADDR", "invalid port %q", port)
	}
	for _, o := range strings.Split(get("DCVAAS_CORS_ORIGINS"), ",") {
		if o = strings.TrimSpace(o); o == "" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			bad("DCVAAS_CORS_ORIGINS", "%q is not an origin like https://app.example.com", o)
			continue
		}
		c.CORSOrigins = append(c.CORSOrigins, u.Scheme+"://"+u.Host)
	}
	if k := get("DCVAAS_ENCRYPTION_KEY"); k != "" {
		if c.EncryptionKey, err = crypt.ParseHexKey(k); err != nil {
			bad("DCVAAS_ENCRYPTION_KEY", "must be 64 hex characters (32 bytes)")
		}
	} else if c.Dialect == sqlstore.Postgres {
		bad("DCVAAS_ENCRYPTION_KEY", "required with PostgreSQL (every node must share it); generate one with: openssl rand -hex 32")
	}
	if c.DBMaxConns, err = strconv.Atoi(get("DCVAAS_DB_MAX_CONNS")); err != nil || c.DBMaxConns < 0 || c.DBMaxConns == 1 {
		bad("DCVAAS_DB_MAX_CONNS", "want 0 (automatic) or at least 2 connections, got %q", get("DCVAAS_DB_MAX_CONNS"))
	}
	if c.RateLimit, err = strconv.Atoi(get("DCVAAS_RATE_LIMIT")); err != nil || c.RateLimit < 1 {
		bad("DCVAAS_RATE_LIMIT", "want a positive number of requests per minute, got %q", get("DCVAAS_RATE_LIMIT"))
	}
	if err := c.LogLevel.UnmarshalText([]byte(get("DCVAAS_LOG_LEVEL"))); err != nil {
		bad("DCVAAS_LOG_LEVEL", "want debug, info, warn or error, got %q", get("DCVAAS_LOG_LEVEL"))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("DCVAAS_LOG_FORMAT", "want text or json, got %q", c.LogFormat)
	}
	zone := strings.TrimSuffix(strings.ToLower(get("DCVAAS_VERIFY_ZONE")), ".")
	if _, err := domainname.Normalize("x."+zone, ""); err != nil {
		bad("DCVAAS_VERIFY_ZONE", "%q is not a DNS zone name: %v", zone, err)
	}
	c.VerifyZone = zone
	for _, l := range strings.Split(get("DCVAAS_ALLOW_TLDS"), ",") {
		l = strings.Trim(strings.ToLower(strings.TrimSpace(l)), ".")
		if l == "" {
			continue
		}
		if _, err := domainname.Normalize("x."+l, ""); err != nil && !strings.Contains(err.Error(), "public suffix") {
			bad("DCVAAS_ALLOW_TLDS", "%q is not a DNS label: %v", l, err)
		}
		c.AllowTLDs = append(c.AllowTLDs, l)
	}
	if c.HardDelete, err = strconv.ParseBool(get("DCVAAS_HARD_DELETE")); err != nil {
		bad("DCVAAS_HARD_DELETE", "want true or false, got %q", get("DCVAAS_HARD_DELETE"))
	}
	if c.DNSSEC, err = strconv.ParseBool(get("DCVAAS_DNSSEC")); err != nil {
		bad("DCVAAS_DNSSEC", "want true or false, got %q", get("DCVAAS_DNSSEC"))
	}
	if c.ShutdownTimeout, err = time.ParseDuration(get("DCVAAS_SHUTDOWN_TIMEOUT")); err != nil || c.ShutdownTimeout <= 0 {
		bad("DCVAAS_SHUTDOWN_TIMEOUT", "want a positive duration like 30s, got %q", get("DCVAAS_SHUTDOWN_TIMEOUT"))
	}
	if c.ShutdownDrain, err = time.ParseDuration(get("DCVAAS_SHUTDOWN_DRAIN")); err != nil || c.ShutdownDrain < 0 {
		bad("DCVAAS_SHUTDOWN_DRAIN", "want a duration like 5s (0s: none), got %q", get("DCVAAS_SHUTDOWN_DRAIN"))
	}
	c.Connections = parseConnections(get, bad)
	c.Jobs = parseJobs(get, bad)
	c.ACME = parseACME(get, getenv, zone, bad)
	if c.DNSSEC && c.ACME.Publisher != publisherBuiltin {
		c.ACME.Warnings = append(c.ACME.Warnings, "DCVAAS_DNSSEC signs the built-in DNS server's answers; with DCVAAS_CHALLENGE_PUBLISHER="+
			c.ACME.Publisher+" that server does not run: turn DNSSEC on at the DNS provider instead")
	}
	c.Renewal = parseRenewal(get, bad)
	c.Events = parseEvents(get, bad)
	c.SSO = parseSSO(get, c.Connections.PublicURL, bad)
	c.Hardening = parseHardening(get, bad)
	c.Webhooks = parseWebhooks(get, bad)
	return c, errors.Join(errs...)
}
