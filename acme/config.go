// Package acme obtains and renews certificates for dcvaas domains over ACME
// (RFC 8555) with DNS-01 challenges answered in dcvaas's own verify zone,
// through mholt/acmez (no global state; EAB, ARI and profiles).
//
// An Issuer tries the configured CAs in order. It skips a CA that CAA
// forbids for the domain (RFC 8659) or that asked everyone to stay away
// (Retry-After, kept in the database for all nodes), and moves on to the
// next CA in the same call when one is rate limited, failing (5xx),
// unreachable or too slow. Its state — account keys, the pending order with
// its CSR key, CA back-offs, failed validations — lives in the database, so
// a job that restarts on any node resumes the order it had begun.
package acme

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/cabudget"
	"github.com/dcvaas/dcvaas/crypt"
	"github.com/dcvaas/dcvaas/resolve"
	"github.com/dcvaas/dcvaas/sqlstore"
)

// CA is one certificate authority to order from.
type CA struct {
	// Name identifies the CA in configuration, the database and audit
	// entries ("letsencrypt", "zerossl").
	Name string
	// Directory is the ACME directory URL (RFC 8555 §7.1.1).
	Directory string
	// EABKeyID and EABHMAC bind the account to an existing account at the
	// CA (RFC 8555 §7.3.4); the HMAC key is base64url, as CAs hand it out.
	EABKeyID string
	EABHMAC  string
	// Profile is the certificate profile to request, if the CA offers
	// profiles (draft-aaron-acme-profiles); empty lets the CA choose.
	Profile string
	// CAAIdentities are the issuer domain names by which CAA records
	// (RFC 8659 §4.2) name this CA, e.g. "letsencrypt.org".
	CAAIdentities []string
	// Accounts is how many accounts dcvaas registers with the CA (default
	// 1); each domain is assigned one for good, and each account has its
	// own new-order budget.
	Accounts int
	// Limits are the CA's rate limits, taken from Config.Budgets before
	// every new order (cabudget.Default when nil).
	Limits cabudget.Limits
}

// Well-known CAs. ZeroSSL requires EAB credentials from its dashboard;
// Sectigo operates it and its CAA records name sectigo.com.
var (
	LetsEncrypt = CA{Name: "letsencrypt", Directory: "https://acme-v02.api.letsencrypt.org/directory",
		CAAIdentities: []string{"letsencrypt.org"}}
	LetsEncryptStaging = CA{Name: "letsencrypt", Directory: "https://acme-staging-v02.api.letsencrypt.org/directory",
		CAAIdentities: []string{"letsencrypt.org"}}
	ZeroSSL = CA{Name: "zerossl", Directory: "https://acme.zerossl.com/v2/DV90",
		CAAIdentities: []string{"sectigo.com", "zerossl.com"}}
)

// Store is the state the Issuer keeps; *sqlstore.DB implements it.
type Store interface {
	CurrentCertificate(ctx context.Context, orgID, domainID string) (*dcvaas.Certificate, error)
	SaveCertificate(ctx context.Context, actor dcvaas.Actor, c *dcvaas.Certificate, details map[string]any) error

	FindACMEAccount(ctx context.Context, caName, directoryURL string) (*sqlstore.ACMEAccount, error)
	CreateACMEAccount(ctx context.Context, caName, directoryURL, keyEnc string) (*sqlstore.ACMEAccount, error)
	SetACMEAccountURL(ctx context.Context, caName, directoryURL, accountURL string) error
	RetireACMEAccount(ctx context.Context, caName, directoryURL, accountURL string) (bool, error)

	FindPendingOrder(ctx context.Context, domainID string) (*sqlstore.PendingOrder, error)
	SavePendingOrder(ctx context.Context, o *sqlstore.PendingOrder) error
	DeletePendingOrder(ctx context.Context, domainID, orderURL string) error

	CABackoffs(ctx context.Context, now time.Time) (map[string]time.Time, error)
	SetCABackoff(ctx context.Context, actor dcvaas.Actor, caName string, until time.Time, reason, action string, details map[string]any) error
	AuditCAEvent(ctx context.Context, actor dcvaas.Actor, action, caName string, details map[string]any) error

	RecordValidationFailure(ctx context.Context, hostname, caName, domainID string) error
	ValidationFailuresSince(ctx context.Context, hostname string, since time.Time) (int, time.Time, error)
}

// AccountStore keeps which of a CA's accounts each domain uses.
type AccountStore interface {
	// DomainACMEAccount returns the domain's account, dealing one of
	// 1..accounts when it has none.
	DomainACMEAccount(ctx context.Context, domainID, caName string, accounts int) (int, error)
	// ReassignDomainACMEAccount deals the domain another of 1..accounts.
	ReassignDomainACMEAccount(ctx context.Context, domainID, caName string, accounts int) (int, error)
}

// Publisher puts DNS-01 TXT values where the CA will look: under the
// domain's CNAME target in the verify zone. The built-in DNS server's
// publisher is the database (*sqlstore.DB via DBPublisher).
type Publisher interface {
	// PublishTXT sets the value at name for key (one key per ACME
	// authorization; apex and wildcard each have one at the same name).
	PublishTXT(ctx context.Context, name, key, value string) error
	// UnpublishTXT removes the value at name for key.
	UnpublishTXT(ctx context.Context, name, key string) error
	// ClearTXT removes every value at name.
	ClearTXT(ctx context.Context, name string) error
}

// Config wires an Issuer. CAs, Store, Keyring, Publisher and Resolver are
// required; the rest has defaults.
type Config struct {
	CAs []CA
	// Email is the account contact (optional; CAs mail expiry notices).
	Email string
	// CABundlePEM holds extra roots to trust for the CAs' HTTPS endpoints
	// (private CAs, tests), beside the system's.
	CABundlePEM []byte
	Store       Store
	Keyring     *crypt.Keyring
	Publisher   Publisher
	// Resolver asks the recursive resolvers a CA would ask: for the CNAME
	// before ordering and for CAA (RFC 8659).
	Resolver *resolve.Resolver
	Clock    dcvaas.Clock
	Logger   *slog.Logger

	// RenewBefore: a certificate is due when less than this remains
	// (default: a third of its lifetime).
	RenewBefore time.Duration
	// Accounts, when set, assigns domains to accounts (*sqlstore.DB);
	// without it every domain uses account 1.
	Accounts AccountStore
	// RenewDedup: a renewal finds the domain's certificate younger than
	// this and not due, and takes it as its own work, done by an earlier
	// run that crashed before recording success (default 10m; negative
	// disables). CAs limit duplicate certificates per week.
	RenewDedup time.Duration
	// HTTPTimeout bounds one HTTP request to a CA (default 15s): a CA
	// that hangs is failed over, not waited for.
	HTTPTimeout time.Duration
	// PollTimeout bounds waiting for validation and for issuance at one CA
	// (default 2m); polls honour the CA's Retry-After (RFC 8555 §7.5.1).
	PollTimeout time.Duration
	// RateLimitBackoff is how long a CA that answered rateLimited without
	// a Retry-After is skipped (default 1h).
	RateLimitBackoff time.Duration
	// UnavailableBackoff is how long a CA that failed (5xx, unreachable)
	// is skipped when it gave no Retry-After (default 1m).
	UnavailableBackoff time.Duration
	// MaxFailedValidations per hostname per hour (default 5, as Let's
	// Encrypt allows): beyond it no order is attempted until the hour has
	// passed.
	MaxFailedValidations int
	// UserAgent is prepended to acmez's.
	UserAgent string

	// Budgets keeps the CAs' rate-limit budgets for the whole cluster
	// (*sqlstore.DB); nil: no budgets are kept (the CA's refusal is then
	// the only limit).
	Budgets cabudget.Store
	// FailoverAfter: when a CA's budget refills later than this, the
	// next CA with budget issues instead (default 1h).
	FailoverAfter time.Duration
	// MaxFailedDays: a domain whose validations have failed for this long
	// without a success is given up (default 7 days), before the CA pauses
	// the account for it.
	MaxFailedDays time.Duration
}

func (c Config) withDefaults() (Config, error) {
	if len(c.CAs) == 0 {
		return c, errors.New("acme: no CA configured")
	}
	if c.Store == nil || c.Keyring == nil || c.Publisher == nil || c.Resolver == nil {
		return c, errors.New("acme: Config.Store, Keyring, Publisher and Resolver are required")
	}
	c.CAs = append([]CA(nil), c.CAs...)
	seen := map[string]bool{}
	for i, ca := range c.CAs {
		ca.Name = strings.ToLower(strings.TrimSpace(ca.Name))
		if ca.Name == "" || ca.Directory == "" {
			return c, fmt.Errorf("acme: CA %d needs a name and a directory URL", i+1)
		}
		if seen[ca.Name] {
			return c, fmt.Errorf("acme: CA %q listed twice", ca.Name)
		}
		if (ca.EABKeyID == "") != (ca.EABHMAC == "") {
			return c, fmt.Errorf("acme: CA %q: EAB needs both key id and HMAC key", ca.Name)
		}
		seen[ca.Name] = true
		c.CAs[i] = ca
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.RenewDedup == 0 {
		c.RenewDedup = 10 * time.Minute
	}
	if c.HTTPTimeout <= 0 {
		c.HTTPTimeout = 15 * time.Second
	}
	if c.PollTimeout <= 0 {
		c.PollTimeout = 2 * time.Minute
	}
	if c.RateLimitBackoff <= 0 {
		c.RateLimitBackoff = time.Hour
	}
	if c.UnavailableBackoff <= 0 {
		c.UnavailableBackoff = time.Minute
	}
	if c.FailoverAfter <= 0 {
		c.FailoverAfter = time.Hour
	}
	if c.MaxFailedDays <= 0 {
		c.MaxFailedDays = 7 * 24 * time.Hour
	}
	for i, ca := range c.CAs {
		if ca.Accounts <= 0 {
			c.CAs[i].Accounts = 1
		}
		if ca.Limits == nil {
			c.CAs[i].Limits = cabudget.Default(ca.Name)
		}
	}
	if l := c.CAs[0].Limits[cabudget.FailedAuthz]; c.MaxFailedValidations <= 0 && !l.Unlimited() {
		c.MaxFailedValidations = l.Count
	}
	if c.MaxFailedValidations <= 0 {
		c.MaxFailedValidations = 5
	}
	if c.UserAgent == "" {
		c.UserAgent = "dcvaas/" + dcvaas.Version
	}
	return c, nil
}
