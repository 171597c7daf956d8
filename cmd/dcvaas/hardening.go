package main

import (
	"net/netip"
	"strconv"
	"time"

	"github.com/dcvaas/dcvaas/ratelimit"
	"github.com/dcvaas/dcvaas/sqlstore"
)

// hardeningSettings limit what one user or one client address can make the
// service do, and how durable SQLite's commits are (issue 13).
var hardeningSettings = []setting{
	{"rate-limit-user", "DCVAAS_RATE_LIMIT_USER", "0", "API requests per minute per user, all of the user's tokens in every organization together; 0: DCVAAS_RATE_LIMIT, -1: none", groupHTTP},
	{"rate-limit-ip", "DCVAAS_RATE_LIMIT_IP", "60", "unauthenticated requests (failed authentications, OAuth callbacks, dashboard sign-ins) per minute per client address (IPv6: per /64), counted per node; 0: none", groupHTTP},
	{"sqlite-synchronous", "DCVAAS_SQLITE_SYNCHRONOUS", "full", "SQLite: full (a commit is synced to disk before it is acknowledged) or normal (faster; an OS crash or power loss can roll back acknowledged commits)", groupDatabase},
	{"db-timeout", "DCVAAS_DB_TIMEOUT", "5s", "how long an API request may wait for a locked or overloaded database before it answers 503 with Retry-After (SQLite's lock wait is 4s at most)", groupDatabase},
	{"trusted-proxies", "DCVAAS_TRUSTED_PROXIES", "", "comma-separated CIDRs of reverse proxies whose X-Forwarded-For names the client; empty: the peer is the client", groupHTTP},
}

// hardeningConfig is the validated part of Config for abuse limits and SQLite durability.
type hardeningConfig struct {
	UserRateLimit  int
	IPRateLimit    int
	TrustedProxies []netip.Prefix
	// DBTimeout is httpapi.Deps.StoreTimeout.
	DBTimeout time.Duration
	// SQLiteSynchronous is sqlstore.Options.Synchronous.
	SQLiteSynchronous string
}

func parseHardening(get func(string) string, bad func(env, format string, args ...any)) hardeningConfig {
	var c hardeningConfig
	var err error
	if c.UserRateLimit, err = strconv.Atoi(get("DCVAAS_RATE_LIMIT_USER")); err != nil || c.UserRateLimit < -1 {
		bad("DCVAAS_RATE_LIMIT_USER", "want a number of requests per minute (0: DCVAAS_RATE_LIMIT, -1: none), got %q", get("DCVAAS_RATE_LIMIT_USER"))
	}
	if c.IPRateLimit, err = strconv.Atoi(get("DCVAAS_RATE_LIMIT_IP")); err != nil || c.IPRateLimit < 0 {
		bad("DCVAAS_RATE_LIMIT_IP", "want a number of requests per minute (0: none), got %q", get("DCVAAS_RATE_LIMIT_IP"))
	}
	if c.TrustedProxies, err = ratelimit.ParseProxies(get("DCVAAS_TRUSTED_PROXIES")); err != nil {
		bad("DCVAAS_TRUSTED_PROXIES", "want comma-separated CIDRs like 10.0.0.0/8: %v", err)
	}
	if c.DBTimeout, err = time.ParseDuration(get("DCVAAS_DB_TIMEOUT")); err != nil || c.DBTimeout < 100*time.Millisecond {
		bad("DCVAAS_DB_TIMEOUT", "want a duration of at least 100ms, like 5s, got %q", get("DCVAAS_DB_TIMEOUT"))
	}
	c.SQLiteSynchronous = get("DCVAAS_SQLITE_SYNCHRONOUS")
	if _, err := sqlstore.SQLiteSynchronous(c.SQLiteSynchronous); err != nil {
		bad("DCVAAS_SQLITE_SYNCHRONOUS", "want full or normal, got %q", c.SQLiteSynchronous)
	}
	return c
}
