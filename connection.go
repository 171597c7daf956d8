package dcvaas

import (
	"context"
	"time"
)

// DNS providers an organization can connect.
const (
	ProviderCloudflare = "cloudflare"
	ProviderGoDaddy    = "godaddy"
	ProviderRoute53    = "route53"
)

// Providers lists every DNS provider, for validation.
var Providers = []string{ProviderCloudflare, ProviderGoDaddy, ProviderRoute53}

// ConnectionKind says how a connection's credential was obtained.
type ConnectionKind string

const (
	// ConnectionOAuth holds tokens from an OAuth authorization-code flow.
	ConnectionOAuth ConnectionKind = "oauth"
	// ConnectionCredential holds a credential the customer pasted in (an
	// API token, a key pair, an IAM role to assume).
	ConnectionCredential ConnectionKind = "credential"
)

// ConnectionStatus says whether a connection can be used.
type ConnectionStatus string

const (
	ConnectionActive ConnectionStatus = "active"
	// ConnectionNeedsReauth: the provider refused to refresh the OAuth
	// tokens (revoked, expired); only a new authorization revives it.
	ConnectionNeedsReauth ConnectionStatus = "needs_reauth"
)

// Connection is an organization's link to its DNS provider, which lets
// dcvaas create the delegation CNAME itself.
type Connection struct {
	ID          string
	OrgID       string
	Provider    string
	Kind        ConnectionKind
	Status      ConnectionStatus
	DisplayName string
	// SecretEnc is the credential sealed by crypt.Keyring with the
	// connection's ID as associated data. It never leaves the service.
	SecretEnc string
	// TokenExpiresAt is when the OAuth access token expires (nil: never,
	// or not OAuth).
	TokenExpiresAt *time.Time
	// LastError is why the connection last failed, for the customer.
	LastError string
	CreatedBy string // user id
	CreatedAt time.Time
	UpdatedAt time.Time
}

// OAuthState is one authorization attempt, waiting for its callback. The
// state parameter itself is never stored, only its SHA-256, so that a
// database reader cannot complete someone else's flow.
type OAuthState struct {
	Hash     string // hex SHA-256 of the state parameter
	OrgID    string
	UserID   string
	Provider string
	// VerifierEnc is the PKCE code verifier, sealed with Hash as
	// associated data.
	VerifierEnc string
	CreatedAt   time.Time
	ExpiresAt   time.Time
	// BindingHash is the SHA-256 of the value the start page put in the
	// browser's cookie; "" until a signed-in browser started the flow.
	BindingHash string
}

// ConnectionStore persists connections and OAuth states. It is separate from
// Store so that packages that do not deal with providers need not fake it.
type ConnectionStore interface {
	// CreateConnection inserts c (ID, timestamps filled in) with the secret
	// that seal returns for the new ID, and writes audit
	// "connection.created", atomically.
	CreateConnection(ctx context.Context, actor Actor, c *Connection, seal func(id string) (string, error)) error
	// FindConnection returns one of the org's connections. ENOTFOUND.
	FindConnection(ctx context.Context, orgID, id string) (*Connection, error)
	// ListConnections returns the org's connections newest first and the total.
	ListConnections(ctx context.Context, orgID string, p Page) ([]*Connection, int, error)
	// UpdateConnectionSecret replaces the sealed secret when it still is
	// oldEnc (another node may have refreshed the tokens meanwhile), sets
	// the status active and writes audit action. ENOTFOUND, ECONFLICT when
	// the secret changed.
	UpdateConnectionSecret(ctx context.Context, actor Actor, id, oldEnc, newEnc string, expiresAt *time.Time, action string) error
	// SetConnectionStatus records status and lastError with audit action
	// (none when the status did not change). ENOTFOUND.
	SetConnectionStatus(ctx context.Context, actor Actor, id string, status ConnectionStatus, lastError, action string) error
	// DeleteConnection erases the connection and its secret; audit
	// "connection.deleted" with details. ENOTFOUND.
	DeleteConnection(ctx context.Context, actor Actor, id string, details map[string]any) error

	// CreateOAuthState stores a pending authorization; expired states are
	// swept on the way.
	CreateOAuthState(ctx context.Context, st *OAuthState) error
	// ConsumeOAuthState marks the state used and returns it, exactly once.
	// ENOTFOUND for an unknown state, ECONFLICT for one already used,
	// EINVALID for an expired one.
	ConsumeOAuthState(ctx context.Context, hash string, now time.Time) (*OAuthState, error)
	// BindOAuthState ties a pending state of orgID to one browser, once:
	// it records bindingHash and returns the state. ENOTFOUND for an
	// unknown or expired state, or one of another org (the caller learns
	// nothing about other orgs' flows); ECONFLICT when it was already
	// started or used.
	BindOAuthState(ctx context.Context, hash, orgID, bindingHash string, now time.Time) (*OAuthState, error)

	// RecordDNSSetup writes audit "domain.dns_setup" with details and, when
	// queueCheck, queues a dns_check for the domain, atomically. ENOTFOUND.
	RecordDNSSetup(ctx context.Context, actor Actor, domainID string, details map[string]any, queueCheck bool) (*Job, error)
	// QueueDNSSetup queues a dns_setup job for the domain with args (audit
	// "job.queued"), or returns the domain's dns_setup that is already
	// queued or running, whatever its args: one at a time per domain.
	// ENOTFOUND.
	QueueDNSSetup(ctx context.Context, actor Actor, domainID string, args DNSSetupArgs) (*Job, error)
}

// DNSSetupArgs is the input of a dns_setup job: what the caller of one-click
// setup asked for, kept with the job so that every attempt (and a retry of
// a dead letter) repeats the same request.
type DNSSetupArgs struct {
	ConnectionID string `json:"connectionId"`
	// Replace allows deleting records in the way.
	Replace bool `json:"replace,omitempty"`
}
