package main

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/mail"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/acme"
	"github.com/dcvaas/dcvaas/cabudget"
	"github.com/dcvaas/dcvaas/crypt"
	"github.com/dcvaas/dcvaas/dnsserver"
	"github.com/dcvaas/dcvaas/propagate"
	"github.com/dcvaas/dcvaas/provider/cloudflare"
	"github.com/dcvaas/dcvaas/resolve"
	"github.com/dcvaas/dcvaas/sqlstore"
)

// acmeSettings configure issuance (issue 4): the built-in DNS server for
// the verify zone, the CAs, and where challenge values are published.
// Each CA named in DCVAAS_ACME_CAS also reads DCVAAS_ACME_<NAME>_DIRECTORY,
// _EAB_KID, _EAB_HMAC, _PROFILE and _CAA_IDENTITIES (environment only: the
// names are not known before the list is read).
var acmeSettings = []setting{
	{"dns-addr", "DCVAAS_DNS_ADDR", "127.0.0.1:8053", "UDP and TCP address of the built-in DNS server for the verify zone (:53 in production)", groupDNS},
	{"dns-ns", "DCVAAS_DNS_NS", "", "comma-separated nameservers of the verify zone, as its NS records, each name or name=ip[,ip] (required for names inside the zone); default ns1.<verify zone> at the DNS address's IP", groupDNS},
	{"dns-rrl", "DCVAAS_DNS_RRL", "200", "DNS responses per second over UDP to one client network (/24 IPv4, /56 IPv6); past it every second answer is truncated, the others dropped; 0 turns rate limiting off", groupDNS},
	{"dns-soa-email", "DCVAAS_DNS_SOA_EMAIL", "", "contact of the verify zone's SOA record (default hostmaster.<verify zone>)", groupDNS},
	{"acme-cas", "DCVAAS_ACME_CAS", "letsencrypt,zerossl", "comma-separated ACME CAs, tried in order; each NAME reads DCVAAS_ACME_<NAME>_{DIRECTORY,EAB_KID,EAB_HMAC,PROFILE,CAA_IDENTITIES,LIMITS,ACCOUNTS}", groupACME},
	{"failover-after", "DCVAAS_FAILOVER_AFTER", "1h", "when a CA's rate-limit budget refills later than this, the next CA with budget issues instead", groupACME},
	{"max-failed-days", "DCVAAS_MAX_FAILED_DAYS", "7", "days of failing validations (without a certificate) after which a domain is given up, before the CA pauses it", groupACME},
	{"acme-email", "DCVAAS_ACME_EMAIL", "", "contact address of the ACME accounts (CAs send expiry and policy notices)", groupACME},
	{"acme-ca-bundle", "DCVAAS_ACME_CA_BUNDLE", "", "PEM file of extra root certificates trusted for the ACME servers' HTTPS (private CAs, tests)", groupACME},
	{"staging", "DCVAAS_ACME_STAGING", "false", "use Let's Encrypt's staging directory for the letsencrypt CA (untrusted test certificates)", groupACME},
	{"renew-before", "DCVAAS_RENEW_BEFORE", "", "renew a certificate when less than this remains, e.g. 720h (default: a third of its lifetime)", groupACME},
	{"challenge-publisher", "DCVAAS_CHALLENGE_PUBLISHER", "builtin", "where DNS-01 values are published: builtin (dcvaas's own DNS server) or cloudflare (a Cloudflare-hosted verify zone)", groupACME},
	{"cloudflare-api-token", "DCVAAS_CLOUDFLARE_API_TOKEN", "", "with the cloudflare publisher: API token with DNS:Edit on the verify zone", groupACME},
	{"cloudflare-zone-id", "DCVAAS_CLOUDFLARE_ZONE_ID", "", "with the cloudflare publisher: the verify zone's Cloudflare zone id", groupACME},
	{"cloudflare-nameservers", "DCVAAS_CLOUDFLARE_NAMESERVERS", "", "with the cloudflare publisher: host:port of the verify zone's authoritative servers to poll until a value is served (default: its NS records, port 53)", groupACME},
	{"propagation-timeout", "DCVAAS_PROPAGATION_TIMEOUT", "2m", "with the cloudflare publisher: how long to wait for every authoritative server to serve a new value", groupACME},
}

// boolFlag is a flag that reads as a string (parsed, with the variable's
// name in any error, by the setting's parser) but may be given bare.
type boolFlag struct{ v *string }

func (b boolFlag) String() string {
	if b.v == nil {
		return ""
	}
	return *b.v
}
func (b boolFlag) Set(s string) error { *b.v = s; return nil }
func (b boolFlag) IsBoolFlag() bool   { return true }

// stringFlag is a setting's flag: a string that the setting's parser
// checks, naming the variable in any error.
type stringFlag struct{ v *string }

func (f stringFlag) String() string {
	if f.v == nil {
		return ""
	}
	return *f.v
}
func (f stringFlag) Set(s string) error { *f.v = s; return nil }

// Publishers of challenge values.
const (
	publisherBuiltin    = "builtin"
	publisherCloudflare = "cloudflare"
)

// acmeConfig is the validated part of Config for issuance.
type acmeConfig struct {
	DNSAddr  string
	NS       []string
	NSAddrs  map[string][]net.IP // in-zone nameservers' addresses
	RRL      int                 // DNS responses/s per client network; 0: off
	SOAEmail string
	CAs      []acme.CA
	Email    string
	// CABundle is the content of DCVAAS_ACME_CA_BUNDLE.
	CABundle    []byte
	Staging     bool
	RenewBefore time.Duration // 0: a third of the lifetime
	// FailoverAfter and MaxFailedDays: cabudget waits and give-ups.
	FailoverAfter time.Duration
	MaxFailedDays int
	Publisher     string
	Cloudflare    cloudflareConfig
	// Warnings are logged at start: settings that work but may surprise.
	Warnings []string
}

type cloudflareConfig struct {
	Token, ZoneID      string
	Nameservers        []string
	PropagationTimeout time.Duration
}

// caName is what DCVAAS_ACME_CAS accepts: it becomes part of variable
// names, so letters, digits and underscores.
var caName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)

// wellKnownCAs are the CAs whose directory and CAA identities need no
// configuration.
func wellKnownCAs(staging bool) map[string]acme.CA {
	le := acme.LetsEncrypt
	if staging {
		le = acme.LetsEncryptStaging
	}
	return map[string]acme.CA{le.Name: le, acme.ZeroSSL.Name: acme.ZeroSSL}
}

// parseACME reads acmeSettings, and through getenv the per-CA variables;
// bad reports a setting's error.
func parseACME(get, getenv func(string) string, zone string, bad func(env, format string, args ...any)) acmeConfig {
	var c acmeConfig
	c.DNSAddr = get("DCVAAS_DNS_ADDR")
	if _, port, err := net.SplitHostPort(c.DNSAddr); err != nil {
		bad("DCVAAS_DNS_ADDR", "want host:port like 0.0.0.0:53, got %q", c.DNSAddr)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		bad("DCVAAS_DNS_ADDR", "invalid port %q", port)
	}
	c.NS, c.NSAddrs = parseNameservers(get("DCVAAS_DNS_NS"), c.DNSAddr, zone, bad, &c.Warnings) // dnsconfig.go
	c.RRL = parseRRL(get("DCVAAS_DNS_RRL"), bad)
	c.SOAEmail = get("DCVAAS_DNS_SOA_EMAIL")
	if c.SOAEmail == "" {
		c.SOAEmail = "hostmaster." + zone
	} else if local, domain, ok := strings.Cut(c.SOAEmail, "@"); (ok && (local == "" || !validName(domain))) || (!ok && !validName(c.SOAEmail)) {
		bad("DCVAAS_DNS_SOA_EMAIL", "want an address like hostmaster@example.com, got %q", c.SOAEmail)
	}

	var err error
	if c.Staging, err = strconv.ParseBool(get("DCVAAS_ACME_STAGING")); err != nil {
		bad("DCVAAS_ACME_STAGING", "want true or false, got %q", get("DCVAAS_ACME_STAGING"))
	}
	c.CAs = parseCAs(get("DCVAAS_ACME_CAS"), getenv, c.Staging, bad, &c.Warnings)
	if c.Email = get("DCVAAS_ACME_EMAIL"); c.Email != "" {
		if a, err := mail.ParseAddress(c.Email); err != nil || a.Address != c.Email {
			bad("DCVAAS_ACME_EMAIL", "want a plain address like ops@example.com, got %q", c.Email)
		}
	}
	if path := get("DCVAAS_ACME_CA_BUNDLE"); path != "" {
		raw, err := os.ReadFile(path)
		if err != nil {
			bad("DCVAAS_ACME_CA_BUNDLE", "cannot read: %v", err)
		} else if !x509.NewCertPool().AppendCertsFromPEM(raw) {
			bad("DCVAAS_ACME_CA_BUNDLE", "%s holds no PEM certificate", path)
		} else {
			c.CABundle = raw
		}
	}
	if v := get("DCVAAS_RENEW_BEFORE"); v != "" && v != "0" {
		if c.RenewBefore, err = time.ParseDuration(v); err != nil || c.RenewBefore < 0 {
			bad("DCVAAS_RENEW_BEFORE", "want a duration like 720h (or 0 for a third of the lifetime), got %q", v)
		}
	}

	if c.FailoverAfter, err = time.ParseDuration(get("DCVAAS_FAILOVER_AFTER")); err != nil || c.FailoverAfter < time.Second {
		bad("DCVAAS_FAILOVER_AFTER", "want a duration of at least 1s, like 1h, got %q", get("DCVAAS_FAILOVER_AFTER"))
	}
	if c.MaxFailedDays, err = strconv.Atoi(get("DCVAAS_MAX_FAILED_DAYS")); err != nil || c.MaxFailedDays < 1 || c.MaxFailedDays > 365 {
		bad("DCVAAS_MAX_FAILED_DAYS", "want a whole number of days from 1 to 365, got %q", get("DCVAAS_MAX_FAILED_DAYS"))
	}

	switch c.Publisher = strings.ToLower(get("DCVAAS_CHALLENGE_PUBLISHER")); c.Publisher {
	case publisherBuiltin:
	case publisherCloudflare:
		cf := &c.Cloudflare
		if cf.Token = get("DCVAAS_CLOUDFLARE_API_TOKEN"); cf.Token == "" {
			bad("DCVAAS_CLOUDFLARE_API_TOKEN", "required with DCVAAS_CHALLENGE_PUBLISHER=cloudflare (a token with DNS:Edit on the verify zone)")
		}
		if cf.ZoneID = get("DCVAAS_CLOUDFLARE_ZONE_ID"); cf.ZoneID == "" {
			bad("DCVAAS_CLOUDFLARE_ZONE_ID", "required with DCVAAS_CHALLENGE_PUBLISHER=cloudflare (the verify zone's id, on its Overview page)")
		} else if strings.ContainsAny(cf.ZoneID, "/?#% ") {
			bad("DCVAAS_CLOUDFLARE_ZONE_ID", "%q is not a zone id", cf.ZoneID)
		}
		for _, ns := range splitList(get("DCVAAS_CLOUDFLARE_NAMESERVERS")) {
			host, port, err := net.SplitHostPort(ns)
			if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
				bad("DCVAAS_CLOUDFLARE_NAMESERVERS", "want host:port entries like ns1.cloudflare.com:53, got %q", ns)
				continue
			}
			cf.Nameservers = append(cf.Nameservers, ns)
		}
		if cf.PropagationTimeout, err = time.ParseDuration(get("DCVAAS_PROPAGATION_TIMEOUT")); err != nil || cf.PropagationTimeout < time.Second {
			bad("DCVAAS_PROPAGATION_TIMEOUT", "want a duration of at least 1s, like 2m, got %q", get("DCVAAS_PROPAGATION_TIMEOUT"))
		}
	default:
		bad("DCVAAS_CHALLENGE_PUBLISHER", "want builtin or cloudflare, got %q", c.Publisher)
	}
	return c
}

// parseCAs reads DCVAAS_ACME_CAS and each CA's own variables.
func parseCAs(list string, getenv func(string) string, staging bool, bad func(env, format string, args ...any), warnings *[]string) []acme.CA {
	known := wellKnownCAs(staging)
	names := splitList(strings.ToLower(list))
	isDefault := slices.Equal(names, []string{"letsencrypt", "zerossl"})
	if len(names) == 0 {
		bad("DCVAAS_ACME_CAS", "name at least one CA, e.g. letsencrypt")
	}
	var out []acme.CA
	seen := map[string]bool{}
	for _, name := range names {
		if !caName.MatchString(name) {
			bad("DCVAAS_ACME_CAS", "%q is not a CA name (a letter, then letters, digits or _)", name)
			continue
		}
		if seen[name] {
			bad("DCVAAS_ACME_CAS", "%q is listed twice", name)
			continue
		}
		seen[name] = true
		prefix := "DCVAAS_ACME_" + strings.ToUpper(name) + "_"
		env := func(k string) string { return strings.TrimSpace(getenv(prefix + k)) }
		ca, wellKnown := known[name]
		ca.Name = name
		if dir := env("DIRECTORY"); dir != "" {
			if u, err := url.Parse(dir); err != nil || u.Scheme != "https" || u.Host == "" {
				// RFC 8555 §6.1: ACME runs over HTTPS only.
				bad(prefix+"DIRECTORY", "want an https:// ACME directory URL, got %q", dir)
				continue
			}
			ca.Directory = dir
		} else if !wellKnown {
			bad(prefix+"DIRECTORY", "required for CA %q (named in DCVAAS_ACME_CAS): its ACME directory URL", name)
			continue
		}
		ca.EABKeyID, ca.EABHMAC = env("EAB_KID"), env("EAB_HMAC")
		switch {
		case ca.EABKeyID != "" && ca.EABHMAC == "":
			bad(prefix+"EAB_HMAC", "required with %sEAB_KID", prefix)
		case ca.EABKeyID == "" && ca.EABHMAC != "":
			bad(prefix+"EAB_KID", "required with %sEAB_HMAC", prefix)
		case ca.EABHMAC != "":
			if _, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(ca.EABHMAC, "=")); err != nil {
				bad(prefix+"EAB_HMAC", "want the base64url HMAC key the CA handed out")
			}
		}
		if ca.Profile = env("PROFILE"); strings.ContainsAny(ca.Profile, " \t,;") {
			bad(prefix+"PROFILE", "%q is not a profile name", ca.Profile)
		}
		if ids := env("CAA_IDENTITIES"); ids != "" {
			ca.CAAIdentities = nil
			for _, id := range splitList(strings.ToLower(ids)) {
				if !validName(id) {
					bad(prefix+"CAA_IDENTITIES", "%q is not an issuer domain name like letsencrypt.org", id)
				}
				ca.CAAIdentities = append(ca.CAAIdentities, strings.TrimSuffix(id, "."))
			}
		}
		ca.Accounts = 1
		if v, set := getenvSet(getenv, prefix+"ACCOUNTS"); set {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 1000 {
				bad(prefix+"ACCOUNTS", "want a number of accounts from 1 to 1000, got %q", v)
			}
			ca.Accounts = n
		}
		if v, set := getenvSet(getenv, prefix+"LIMITS"); set {
			lim, err := cabudget.Parse(v)
			if err != nil {
				bad(prefix+"LIMITS", "%v (want e.g. orders=300/3h,per-domain=50/168h,duplicate=5/168h,failed-authz=5/1h, or none)", err)
			}
			ca.Limits = lim
		} else {
			ca.Limits = cabudget.Default(name)
		}
		// ZeroSSL refuses accounts without EAB. In the default list that is
		// a CA nobody configured: leave it out and say so; named on
		// purpose, it is a mistake to fix before start.
		if name == acme.ZeroSSL.Name && ca.Directory == acme.ZeroSSL.Directory && ca.EABKeyID == "" {
			if isDefault {
				*warnings = append(*warnings, "zerossl is left out of DCVAAS_ACME_CAS: it needs DCVAAS_ACME_ZEROSSL_EAB_KID and DCVAAS_ACME_ZEROSSL_EAB_HMAC (from the ZeroSSL dashboard's Developer section)")
				continue
			}
			bad(prefix+"EAB_KID", "required for zerossl, which refuses accounts without external account binding: copy the EAB credentials from the ZeroSSL dashboard's Developer section")
			continue
		}
		out = append(out, ca)
	}
	return out
}

// budgetCAs are the configured CAs as the budget overview (API and
// metrics) shows them.
func budgetCAs(cfg *Config) []cabudget.CAConfig {
	var out []cabudget.CAConfig
	for _, ca := range cfg.ACME.CAs {
		out = append(out, cabudget.CAConfig{Name: ca.Name, Limits: ca.Limits, Accounts: ca.Accounts})
	}
	return out
}

// getenvSet reads an environment variable and whether it is set at all;
// getenv cannot tell empty from unset, so an empty value counts as unset.
func getenvSet(getenv func(string) string, k string) (string, bool) {
	v := strings.TrimSpace(getenv(k))
	return v, v != ""
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// validName reports whether s is a DNS name with at least two labels.
func validName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	_, ok := dns.IsDomainName(s)
	return ok && strings.Contains(s, ".") && !strings.ContainsAny(s, " @")
}

// newIssuer builds the ACME issuer that start_issuance and renewal jobs
// run, with the configured publisher of challenge values.
func newIssuer(cfg *Config, db *sqlstore.DB, kr *crypt.Keyring, log *slog.Logger) (*jobIssuer, error) {
	for _, w := range cfg.ACME.Warnings {
		log.Warn(w)
	}
	res, err := resolve.New(cfg.Jobs.Resolvers)
	if err != nil {
		return nil, fmt.Errorf("DCVAAS_RESOLVERS: %w", err)
	}
	var pub acme.Publisher = acme.DBPublisher{Store: db}
	if cfg.ACME.Publisher == publisherCloudflare {
		cf := cfg.ACME.Cloudflare
		checker := &propagate.Checker{Zone: cfg.VerifyZone, Servers: cf.Nameservers, Resolvers: res.Servers(), Timeout: cf.PropagationTimeout}
		pub = &cloudflare.ChallengePublisher{
			Client: cloudflare.New(cfg.Connections.CloudflareURL, cf.Token, &http.Client{Timeout: 30 * time.Second}),
			ZoneID: cf.ZoneID,
			Wait:   checker.WaitTXT,
		}
	}
	is, err := acme.New(acme.Config{
		CAs:         cfg.ACME.CAs,
		Email:       cfg.ACME.Email,
		CABundlePEM: cfg.ACME.CABundle,
		Store:       observeACMEStore(db, cfg.Metrics), // metrics.go
		Keyring:     kr,
		Publisher:   pub,
		Resolver:    res,
		Clock:       time.Now,
		Logger:      log,
		RenewBefore: cfg.ACME.RenewBefore,
		// jobIssuer knows which renewal a certificate belongs to; the
		// issuer's own guess (any certificate younger than 10 minutes)
		// would turn a customer's "renew now" into a no-op.
		RenewDedup:    -1,
		Budgets:       db,
		Accounts:      db,
		FailoverAfter: cfg.ACME.FailoverAfter,
		MaxFailedDays: time.Duration(cfg.ACME.MaxFailedDays) * 24 * time.Hour,
	})
	if err != nil {
		return nil, err
	}
	var names []string
	for _, ca := range cfg.ACME.CAs {
		names = append(names, ca.Name+"="+ca.Directory+" limits="+ca.Limits.String())
	}
	log.Info("acme issuer ready", "cas", strings.Join(names, " "), "publisher", cfg.ACME.Publisher)
	return &jobIssuer{is: is, db: db}, nil
}

// jobIssuer is the Issuer as the job engine runs it. A renewal that runs
// again after a crash may find its work done: the certificate stored, the
// crash before the job recorded success. A certificate created after the
// renewal job was queued is that job's own; ordering another would spend
// the CA's duplicate-certificate limit for nothing. A certificate from
// before it is the one to replace, however young: "renew now" renews.
type jobIssuer struct {
	is *acme.Issuer
	db *sqlstore.DB
}

// Issue implements jobs.Issuer.
func (j *jobIssuer) Issue(ctx context.Context, d *dcvaas.Domain, renewal bool) (any, error) {
	if renewal {
		if res := j.renewedByThisJob(ctx, d); res != nil {
			return res, nil
		}
	}
	return j.is.Issue(ctx, d, renewal)
}

// renewedByThisJob returns the result of an earlier run of the domain's
// running renewal job that stored a certificate, or nil.
func (j *jobIssuer) renewedByThisJob(ctx context.Context, d *dcvaas.Domain) *acme.Result {
	list, _, err := j.db.ListJobs(ctx, d.OrgID, dcvaas.JobFilter{DomainID: d.ID, Type: dcvaas.JobRenewal, Status: dcvaas.JobRunning, Page: dcvaas.Page{Limit: 1}})
	if err != nil || len(list) == 0 || list[0].Attempts < 2 {
		return nil // a first attempt has no earlier run
	}
	cur, err := j.db.CurrentCertificate(ctx, d.OrgID, d.ID)
	if err != nil || !cur.CreatedAt.After(list[0].CreatedAt) {
		return nil
	}
	return &acme.Result{Outcome: "recently_renewed", CertificateID: cur.ID, CAName: cur.CAName,
		SerialNumber: cur.SerialNumber, NotAfter: cur.NotAfter, OrderURL: cur.OrderURL}
}

// startDNS starts the built-in DNS server for the verify zone when it
// answers the challenges (DCVAAS_CHALLENGE_PUBLISHER=builtin); nil
// otherwise.
func startDNS(cfg *Config, db *sqlstore.DB, kr *crypt.Keyring, log *slog.Logger) (*dnsserver.Server, error) {
	if cfg.ACME.Publisher != publisherBuiltin {
		return nil, nil
	}
	dc := dnsserver.Config{Zone: cfg.VerifyZone, Store: db, NS: cfg.ACME.NS, NSAddrs: cfg.ACME.NSAddrs,
		RRL: cfg.ACME.RRL, SOAEmail: cfg.ACME.SOAEmail, Logger: log,
		OnQuery: dnsQueryHook(cfg.Metrics)} // metrics.go
	if cfg.DNSSEC {
		var err error
		if dc.DNSSEC, dc.DNSSECKeys, err = signerFor(cfg, db, kr); err != nil { // dnssec.go
			return nil, err
		}
		for _, k := range dc.DNSSEC.Keys() {
			log.Info("dnssec key", "zone", cfg.VerifyZone, "tag", k.Tag, "ksk", k.KSK(),
				"published", k.Published(time.Now()), "signs", k.Signs(time.Now()))
		}
	}
	srv, err := dnsserver.New(dc)
	if err != nil {
		return nil, err
	}
	if err := srv.Start(cfg.ACME.DNSAddr); err != nil {
		return nil, bindError("DCVAAS_DNS_ADDR", err) // serve.go
	}
	log.Info("dns listening", "addr", srv.Addr(), "zone", cfg.VerifyZone, "proto", "udp+tcp")
	if onDNSListen != nil {
		onDNSListen(srv.Addr())
	}
	return srv, nil
}

// stopDNS stops the DNS server, if any, once nothing can publish any more.
func stopDNS(srv *dnsserver.Server, timeout time.Duration, log *slog.Logger) {
	if srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Warn("dns server shutdown", "err", err)
	}
}
