// Package connection links organizations to their DNS providers and uses
// those links to create the delegation CNAME for them ("one-click setup").
//
// A connection holds a credential sealed with crypt: an OAuth token pair
// obtained through the authorization-code flow with PKCE, or a credential
// the customer pasted in (API token, key pair, IAM role). Plaintext exists
// only in memory while a provider call needs it; it is never returned,
// logged or audited.
package connection

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/provider"
)

// Store is what the service needs from the database.
type Store interface {
	dcvaas.ConnectionStore
	FindDomain(ctx context.Context, orgID, id string) (*dcvaas.Domain, error)
	FindMembership(ctx context.Context, userID, orgID string) (*dcvaas.Organization, error)
}

// Keyring seals and opens secrets; *crypt.Keyring is one.
type Keyring interface {
	Encrypt(plaintext, associatedData []byte) (string, error)
	Decrypt(envelope string, associatedData []byte) ([]byte, error)
}

// SecretAD is the associated data of a connection's sealed credential: it
// binds the envelope to its row (sqlstore's key rotation repeats it).
func SecretAD(connectionID string) []byte { return []byte("connection:" + connectionID) }

// VerifierAD is the associated data of an OAuth state's sealed PKCE verifier.
func VerifierAD(stateHash string) []byte { return []byte("oauth-state:" + stateHash) }

// Credential is what a connection holds, sealed. Only the fields of its
// provider and kind are set. It never prints or logs its contents.
type Credential struct {
	APIToken string `json:"apiToken,omitempty"` // Cloudflare API token

	APIKey    string `json:"apiKey,omitempty"` // GoDaddy key and secret
	APISecret string `json:"apiSecret,omitempty"`

	AccessKeyID     string `json:"accessKeyId,omitempty"` // Route 53: an IAM user's key pair …
	SecretAccessKey string `json:"secretAccessKey,omitempty"`
	RoleARN         string `json:"roleArn,omitempty"` // … or a role to assume
	ExternalID      string `json:"externalId,omitempty"`

	AccessToken  string    `json:"accessToken,omitempty"` // OAuth
	RefreshToken string    `json:"refreshToken,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
}

// String keeps credentials out of anything formatted with %v.
func (Credential) String() string { return "connection.Credential{redacted}" }

// GoString keeps credentials out of %#v.
func (Credential) GoString() string { return "connection.Credential{redacted}" }

// LogValue keeps credentials out of slog output.
func (Credential) LogValue() slog.Value { return slog.StringValue("redacted") }

// Provider is one DNS provider as the service uses it; Cloudflare, GoDaddy
// and Route53 build the real ones.
type Provider struct {
	Name  string
	Title string // for people: "Cloudflare"
	// OAuth is nil when the provider offers credential connections only.
	OAuth *OAuthConfig
	// Prepare checks a pasted credential and fills in defaults; its errors
	// are dcvaas.EINVALID with the fields named. It returns a display name.
	Prepare func(orgID string, c *Credential) (string, error)
	// Open returns a client for a credential (pasted, or OAuth tokens).
	Open func(ctx context.Context, c Credential) (provider.DNS, error)
}

// Config wires a Service.
type Config struct {
	Store     Store
	Keys      Keyring
	Providers []Provider
	// PublicURL is where browsers reach dcvaas: the OAuth callback is
	// PublicURL/api/oauth/{provider}/callback and the UI PublicURL/settings.
	PublicURL string
	Clock     dcvaas.Clock
	Logger    *slog.Logger
	// HTTPClient talks to the OAuth token endpoints (nil: http.DefaultClient).
	HTTPClient *http.Client
}

// Service manages connections and performs one-click setup.
type Service struct {
	cfg       Config
	providers map[string]*Provider
	now       dcvaas.Clock
	log       *slog.Logger
}

// New returns a service.
func New(cfg Config) *Service {
	s := &Service{cfg: cfg, providers: map[string]*Provider{}, now: cfg.Clock, log: cfg.Logger}
	for i := range cfg.Providers {
		s.providers[cfg.Providers[i].Name] = &cfg.Providers[i]
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.cfg.HTTPClient == nil {
		s.cfg.HTTPClient = http.DefaultClient
	}
	return s
}

// ProviderInfo says what a provider offers, for a settings page.
type ProviderInfo struct {
	Name  string
	Title string
	OAuth bool
}

// Providers lists the configured providers.
func (s *Service) Providers() []ProviderInfo {
	var out []ProviderInfo
	for _, p := range s.cfg.Providers {
		out = append(out, ProviderInfo{Name: p.Name, Title: p.Title, OAuth: p.OAuth != nil})
	}
	return out
}

func (s *Service) provider(name string) (*Provider, error) {
	p, ok := s.providers[name]
	if !ok {
		return nil, &dcvaas.Error{Code: dcvaas.EINVALID, Message: fmt.Sprintf("unknown DNS provider %q", name),
			Fields: map[string]string{"provider": "must be one of " + fmt.Sprint(slices.Sorted(maps.Keys(s.providers)))}}
	}
	return p, nil
}

// seal and open convert a credential to and from its envelope.
func (s *Service) seal(id string, c Credential) (string, error) {
	raw, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	defer clear(raw)
	return s.cfg.Keys.Encrypt(raw, SecretAD(id))
}

func (s *Service) open(conn *dcvaas.Connection) (Credential, error) {
	var c Credential
	raw, err := s.cfg.Keys.Decrypt(conn.SecretEnc, SecretAD(conn.ID))
	if err != nil {
		// The wrapped crypt error names the key id at most: safe to log.
		return c, &dcvaas.Error{Code: dcvaas.EINTERNAL, Message: "connection secret cannot be opened", Err: err}
	}
	defer clear(raw)
	if err := json.Unmarshal(raw, &c); err != nil {
		return c, &dcvaas.Error{Code: dcvaas.EINTERNAL, Message: "connection secret is damaged", Err: errors.New("secret is not JSON")}
	}
	return c, nil
}

// redact returns a copy without the sealed secret: what leaves the service.
func redact(c *dcvaas.Connection) *dcvaas.Connection {
	out := *c
	out.SecretEnc = ""
	return &out
}

// Get returns one connection without its secret. ENOTFOUND.
func (s *Service) Get(ctx context.Context, orgID, id string) (*dcvaas.Connection, error) {
	c, err := s.cfg.Store.FindConnection(ctx, orgID, id)
	if err != nil {
		return nil, err
	}
	return redact(c), nil
}

// List returns the org's connections, without secrets, and the total.
func (s *Service) List(ctx context.Context, orgID string, p dcvaas.Page) ([]*dcvaas.Connection, int, error) {
	cs, total, err := s.cfg.Store.ListConnections(ctx, orgID, p)
	if err != nil {
		return nil, 0, err
	}
	for i, c := range cs {
		cs[i] = redact(c)
	}
	return cs, total, nil
}

// CreateInput is a credential connection to create.
type CreateInput struct {
	Provider    string
	DisplayName string
	Credential  Credential
}

// Create tests a pasted credential against the provider and, when it works,
// stores it. EINVALID for a missing field or a credential the provider
// refuses (with the provider's reason), EUNAVAILABLE when the provider
// cannot be reached.
func (s *Service) Create(ctx context.Context, actor dcvaas.Actor, in CreateInput) (*dcvaas.Connection, error) {
	p, err := s.provider(in.Provider)
	if err != nil {
		return nil, err
	}
	cred := in.Credential
	// Tokens come only from the OAuth flow, never from a client.
	cred.AccessToken, cred.RefreshToken, cred.Expiry = "", "", time.Time{}
	display, err := p.Prepare(actor.OrgID, &cred)
	if err != nil {
		return nil, err
	}
	if in.DisplayName != "" {
		display = in.DisplayName
	}
	if _, err := s.zones(ctx, p, cred); err != nil {
		return nil, err
	}
	conn := &dcvaas.Connection{Provider: p.Name, Kind: dcvaas.ConnectionCredential, Status: dcvaas.ConnectionActive, DisplayName: display}
	if err := s.cfg.Store.CreateConnection(ctx, actor, conn, func(id string) (string, error) { return s.seal(id, cred) }); err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "connection created", "connection", conn.ID, "org", conn.OrgID, "provider", p.Name, "kind", conn.Kind)
	return redact(conn), nil
}

// zones lists the zones a fresh credential sees: the test before saving.
func (s *Service) zones(ctx context.Context, p *Provider, cred Credential) ([]provider.Zone, error) {
	dns, err := p.Open(ctx, cred)
	if err != nil {
		return nil, err
	}
	zones, err := dns.Zones(ctx)
	if err != nil {
		return nil, providerError(p, err)
	}
	return zones, nil
}

// TestResult is what a connection test found.
type TestResult struct {
	Zones []string
}

// Test lists the zones the connection can manage, refreshing OAuth tokens
// as needed, and records the outcome on the connection. ENOTFOUND; EINVALID
// with the provider's reason when it refuses; EUNAVAILABLE.
func (s *Service) Test(ctx context.Context, actor dcvaas.Actor, id string) (*TestResult, error) {
	conn, err := s.cfg.Store.FindConnection(ctx, actor.OrgID, id)
	if err != nil {
		return nil, err
	}
	var zones []provider.Zone
	err = s.withDNS(ctx, conn, func(dns provider.DNS) (err error) {
		zones, err = dns.Zones(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	res := &TestResult{Zones: []string{}}
	for _, z := range zones {
		res.Zones = append(res.Zones, z.Name)
	}
	return res, nil
}

// Delete revokes OAuth tokens at the provider where it has a revocation
// endpoint, then erases the connection; audit "connection.deleted". A
// revocation that fails does not stop the erasure: keeping a secret the
// customer asked us to drop is the worse outcome. (Pasted credentials are
// the customer's to revoke: an API token cannot, as a rule, delete itself.)
// ENOTFOUND.
func (s *Service) Delete(ctx context.Context, actor dcvaas.Actor, id string) error {
	conn, err := s.cfg.Store.FindConnection(ctx, actor.OrgID, id)
	if err != nil {
		return err
	}
	revoked := false
	if p, ok := s.providers[conn.Provider]; ok && conn.Kind == dcvaas.ConnectionOAuth {
		if cred, err := s.open(conn); err != nil {
			s.log.WarnContext(ctx, "connection secret unreadable; erasing without revoking", "connection", id, "err", err)
		} else if err := s.revoke(ctx, p, cred); err != nil && !errors.Is(err, errNoRevocation) {
			s.log.WarnContext(ctx, "revocation at provider failed; erasing anyway", "connection", id, "provider", p.Name, "err", err)
		} else {
			revoked = err == nil
		}
	}
	if err := s.cfg.Store.DeleteConnection(ctx, actor, id, map[string]any{"revokedAtProvider": revoked}); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "connection deleted", "connection", id, "org", actor.OrgID, "revoked", revoked)
	return nil
}
