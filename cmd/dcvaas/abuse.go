package main

import (
	"net/netip"
	"strconv"

	"github.com/dcvaas/dcvaas/ratelimit"
)

// abuseSettings limit what one user or one client address can make the
// service do (issue 13).
var abuseSettings = []setting{
	{"rate-limit-user", "DCVAAS_RATE_LIMIT_USER", "0", "API requests per minute per user, all of the user's tokens in every organization together; 0: DCVAAS_RATE_LIMIT, -1: none", groupHTTP},
	{"rate-limit-ip", "DCVAAS_RATE_LIMIT_IP", "60", "unauthenticated requests (failed authentications, OAuth callbacks, dashboard sign-ins) per minute per client address (IPv6: per /64), counted per node; 0: none", groupHTTP},
	{"trusted-proxies", "DCVAAS_TRUSTED_PROXIES", "", "comma-separated CIDRs of reverse proxies whose X-Forwarded-For names the client; empty: the peer is the client", groupHTTP},
}

// abuseConfig is the validated part of Config for abuse limits.
type abuseConfig struct {
	UserRateLimit  int
	IPRateLimit    int
	TrustedProxies []netip.Prefix
}

func parseAbuse(get func(string) string, bad func(env, format string, args ...any)) abuseConfig {
	var c abuseConfig
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
	return c
}
