package connection

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/dcvaas/dcvaas"
)

// StateTTL is how long an authorization may take from redirect to callback.
// A short life and single use keep a leaked state worthless (RFC 9700 §4.7).
const StateTTL = 10 * time.Minute

// refreshMargin: an access token this close to expiry is refreshed before
// use, so that a provider call never starts with a token about to die.
const refreshMargin = 2 * time.Minute

// OAuthConfig is one provider's OAuth client registration.
type OAuthConfig struct {
	ClientID     string
	ClientSecret string
	AuthURL      string
	TokenURL     string
	// RevokeURL is the RFC 7009 revocation endpoint; "" when there is none.
	RevokeURL string
	// Scopes are the least the one-click setup needs: read zones, edit
	// DNS records, and a refresh token.
	Scopes []string
}

// Reasons a callback failed, passed to the UI as ?oauth=error&reason=….
const (
	ReasonAccessDenied    = "access_denied"      // the user declined consent
	ReasonProviderError   = "provider_error"     // the provider sent another error
	ReasonInvalidState    = "invalid_state"      // unknown state, or for another provider
	ReasonExpiredState    = "expired_state"      // older than StateTTL
	ReasonReplayedState   = "state_already_used" // the callback ran before
	ReasonExchangeFailed  = "exchange_failed"    // code refused (PKCE mismatch, expired code)
	ReasonRejected        = "credential_rejected"
	ReasonUnavailable     = "provider_unavailable"
	ReasonUnknownProvider = "unknown_provider"
	ReasonInternal        = "internal_error"
	// ReasonOtherBrowser: the callback came to a browser that did not
	// start the flow (no or another binding cookie).
	ReasonOtherBrowser = "browser_mismatch"
	// ReasonNotSignedIn: the browser is not signed in as an admin of the
	// organization that started the flow (any more).
	ReasonNotSignedIn = "not_signed_in"
)

func (s *Service) oauth2Config(p *Provider) *oauth2.Config {
	o := p.OAuth
	return &oauth2.Config{
		ClientID: o.ClientID, ClientSecret: o.ClientSecret, Scopes: o.Scopes,
		Endpoint:    oauth2.Endpoint{AuthURL: o.AuthURL, TokenURL: o.TokenURL},
		RedirectURL: s.CallbackURL(p.Name),
	}
}

// CallbackURL is the redirect URI registered with the provider.
func (s *Service) CallbackURL(providerName string) string {
	return strings.TrimSuffix(s.cfg.PublicURL, "/") + "/api/oauth/" + url.PathEscape(providerName) + "/callback"
}

// httpContext makes x/oauth2 use the configured HTTP client.
func (s *Service) httpContext(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, s.cfg.HTTPClient)
}

func hashState(state string) string {
	sum := sha256.Sum256([]byte(state))
	return hex.EncodeToString(sum[:])
}

// Authorize starts the authorization-code flow for the actor's org and
// returns the provider URL to send the browser to. The state (256 random
// bits) is bound to org, user and provider, and only its hash is stored;
// the PKCE verifier is stored sealed. EINVALID when the provider offers no
// OAuth here, EFORBIDDEN for read-only tokens.
func (s *Service) Authorize(ctx context.Context, actor dcvaas.Actor, providerName string) (string, error) {
	p, err := s.provider(providerName)
	if err != nil {
		return "", err
	}
	if p.OAuth == nil {
		return "", dcvaas.Errorf(dcvaas.EINVALID, "%s is not set up for OAuth here; connect it with a credential (POST /api/connections)", p.Title)
	}
	if actor.TokenRole != dcvaas.TokenAdmin {
		return "", dcvaas.Errorf(dcvaas.EFORBIDDEN, "only an admin token can connect a DNS provider")
	}
	b := make([]byte, 32)
	rand.Read(b)
	state := base64.RawURLEncoding.EncodeToString(b)
	verifier := oauth2.GenerateVerifier()
	now := s.now().UTC()
	st := &dcvaas.OAuthState{Hash: hashState(state), OrgID: actor.OrgID, UserID: actor.UserID, Provider: p.Name,
		CreatedAt: now, ExpiresAt: now.Add(StateTTL)}
	if st.VerifierEnc, err = s.cfg.Keys.Encrypt([]byte(verifier), VerifierAD(st.Hash)); err != nil {
		return "", err
	}
	if err := s.cfg.Store.CreateOAuthState(ctx, st); err != nil {
		return "", err
	}
	return s.StartURL(p.Name, state), nil
}

// StartURL is the dcvaas page an authorization begins at: it binds the
// flow to the signed-in browser that opens it, then sends it to the
// provider (Start). Handing out the provider's URL directly would let
// anyone holding it complete the flow in their own browser.
func (s *Service) StartURL(providerName, state string) string {
	return strings.TrimSuffix(s.cfg.PublicURL, "/") + "/oauth/" + url.PathEscape(providerName) + "/start?" +
		url.Values{"state": {state}}.Encode()
}

// BindingTTL is how long the start page's cookie lives: as long as the
// state it is tied to.
const BindingTTL = StateTTL

// Start binds the pending authorization with that state to the browser of
// the signed-in actor, once, and returns the provider's consent URL and
// the value the browser must keep in its binding cookie (Callback checks
// it). The actor must be an admin of the organization that began the flow:
// ENOTFOUND for any other organization's flow (nothing is learned about
// it), EFORBIDDEN for read-only sign-ins, ECONFLICT when already started.
func (s *Service) Start(ctx context.Context, actor dcvaas.Actor, providerName, state string) (consentURL, binding string, err error) {
	p, err := s.provider(providerName)
	if err != nil {
		return "", "", err
	}
	if p.OAuth == nil {
		return "", "", dcvaas.Errorf(dcvaas.EINVALID, "%s is not set up for OAuth here", p.Title)
	}
	if !actor.CanChange() {
		return "", "", dcvaas.Errorf(dcvaas.EFORBIDDEN, "a read-only sign-in cannot connect a DNS provider")
	}
	if state == "" {
		return "", "", dcvaas.Errorf(dcvaas.ENOTFOUND, "unknown authorization state")
	}
	b := make([]byte, 32)
	rand.Read(b)
	binding = base64.RawURLEncoding.EncodeToString(b)
	st, err := s.cfg.Store.BindOAuthState(ctx, hashState(state), actor.OrgID, hashState(binding), s.now())
	if err != nil {
		return "", "", err
	}
	if st.Provider != p.Name {
		return "", "", dcvaas.Errorf(dcvaas.ENOTFOUND, "unknown authorization state")
	}
	verifier, err := s.cfg.Keys.Decrypt(st.VerifierEnc, VerifierAD(st.Hash))
	if err != nil {
		return "", "", err
	}
	return s.oauth2Config(p).AuthCodeURL(state, oauth2.S256ChallengeOption(string(verifier))), binding, nil
}

// CallbackParams is what the provider's redirect brought back, and which
// browser it came back to.
type CallbackParams struct {
	Code, State             string
	Error, ErrorDescription string
	IP, UserAgent           string
	// Binding is the value of the browser's binding cookie (Start).
	Binding string
	// Session is the actor the browser is signed in as; nil when it is not.
	Session *dcvaas.Actor
}

// Callback completes the flow: it consumes the state, exchanges the code
// with the PKCE verifier, tests the tokens, and stores the connection. It
// always returns where to send the browser: the settings page with
// oauth=success, or oauth=error and a reason. err, when set, is for the log.
func (s *Service) Callback(ctx context.Context, providerName string, cb CallbackParams) (redirect string, conn *dcvaas.Connection, err error) {
	conn, reason, err := s.callback(ctx, providerName, cb)
	q := url.Values{}
	if err != nil {
		q.Set("oauth", "error")
		q.Set("reason", reason)
		s.log.WarnContext(ctx, "oauth callback failed", "provider", providerName, "reason", reason, "err", err)
	} else {
		q.Set("oauth", "success")
		q.Set("connectionId", conn.ID)
		q.Set("provider", conn.Provider)
	}
	return s.SettingsURL(q), conn, err
}

// SettingsURL is the UI page the callback returns the browser to.
func (s *Service) SettingsURL(q url.Values) string {
	// oauth first, so that "?oauth=success" reads as the page's subject.
	enc := "oauth=" + url.QueryEscape(q.Get("oauth"))
	q.Del("oauth")
	if rest := q.Encode(); rest != "" {
		enc += "&" + rest
	}
	return strings.TrimSuffix(s.cfg.PublicURL, "/") + "/settings?" + enc
}

func (s *Service) callback(ctx context.Context, providerName string, cb CallbackParams) (*dcvaas.Connection, string, error) {
	p, ok := s.providers[providerName]
	if !ok || p.OAuth == nil {
		return nil, ReasonUnknownProvider, dcvaas.Errorf(dcvaas.EINVALID, "no OAuth provider %q", providerName)
	}
	if cb.State == "" {
		return nil, ReasonInvalidState, dcvaas.Errorf(dcvaas.EINVALID, "callback without state")
	}
	// The state is consumed before anything else, also when the provider
	// reports an error: every state works once.
	st, err := s.cfg.Store.ConsumeOAuthState(ctx, hashState(cb.State), s.now())
	switch dcvaas.ErrorCode(err) {
	case "":
	case dcvaas.ENOTFOUND:
		return nil, ReasonInvalidState, err
	case dcvaas.ECONFLICT:
		return nil, ReasonReplayedState, err
	case dcvaas.EINVALID:
		return nil, ReasonExpiredState, err
	default:
		return nil, ReasonInternal, err
	}
	if st.Provider != p.Name {
		return nil, ReasonInvalidState, dcvaas.Errorf(dcvaas.EINVALID, "state was issued for %s", st.Provider)
	}
	// RFC 9700 §4.7.1: only the browser that started the flow may finish
	// it, and only while signed in as an admin of the flow's organization.
	if st.BindingHash == "" || cb.Binding == "" ||
		subtle.ConstantTimeCompare([]byte(hashState(cb.Binding)), []byte(st.BindingHash)) != 1 {
		return nil, ReasonOtherBrowser, dcvaas.Errorf(dcvaas.EFORBIDDEN, "callback in a browser that did not start the flow")
	}
	if cb.Session == nil || cb.Session.OrgID != st.OrgID || !cb.Session.CanChange() {
		return nil, ReasonNotSignedIn, dcvaas.Errorf(dcvaas.EFORBIDDEN, "callback without a signed-in admin of the flow's organization")
	}
	if cb.Error != "" {
		reason := ReasonProviderError
		if cb.Error == "access_denied" {
			reason = ReasonAccessDenied
		}
		return nil, reason, dcvaas.Errorf(dcvaas.EINVALID, "provider answered %s: %s", cb.Error, cb.ErrorDescription)
	}
	// The user may have left the organization while at the provider.
	org, err := s.cfg.Store.FindMembership(ctx, cb.Session.UserID, st.OrgID)
	if err != nil {
		return nil, ReasonInvalidState, err
	}
	verifier, err := s.cfg.Keys.Decrypt(st.VerifierEnc, VerifierAD(st.Hash))
	if err != nil {
		return nil, ReasonInternal, err
	}
	tok, err := s.oauth2Config(p).Exchange(s.httpContext(ctx), cb.Code, oauth2.VerifierOption(string(verifier)))
	if err != nil {
		if isRefusal(err) {
			return nil, ReasonExchangeFailed, err
		}
		return nil, ReasonUnavailable, err
	}
	cred := Credential{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, Expiry: tok.Expiry}
	zones, err := s.zones(ctx, p, cred)
	if err != nil {
		if dcvaas.ErrorCode(err) == dcvaas.EUNAVAILABLE {
			return nil, ReasonUnavailable, err
		}
		return nil, ReasonRejected, err
	}
	actor := *cb.Session
	actor.OrgID, actor.MemberRole, actor.IP, actor.UserAgent = org.ID, org.Role, cb.IP, cb.UserAgent
	conn := &dcvaas.Connection{Provider: p.Name, Kind: dcvaas.ConnectionOAuth, Status: dcvaas.ConnectionActive,
		DisplayName: fmt.Sprintf("%s (%d zones)", p.Title, len(zones))}
	if !tok.Expiry.IsZero() {
		exp := tok.Expiry.UTC()
		conn.TokenExpiresAt = &exp
	}
	if err := s.cfg.Store.CreateConnection(ctx, actor, conn, func(id string) (string, error) { return s.seal(id, cred) }); err != nil {
		return nil, ReasonInternal, err
	}
	s.log.InfoContext(ctx, "connection created", "connection", conn.ID, "org", conn.OrgID, "provider", p.Name, "kind", conn.Kind)
	return redact(conn), "", nil
}

// isRefusal reports whether the token endpoint answered with an OAuth
// error (4xx): the grant is bad, and asking again will not help.
func isRefusal(err error) bool {
	var re *oauth2.RetrieveError
	return errors.As(err, &re) && re.Response != nil && re.Response.StatusCode >= 400 && re.Response.StatusCode < 500
}

// refresh trades the refresh token for new tokens and stores them. A
// refusal marks the connection needs_reauth; an outage is EUNAVAILABLE.
func (s *Service) refresh(ctx context.Context, p *Provider, conn *dcvaas.Connection, cred Credential) (*dcvaas.Connection, Credential, error) {
	sys := dcvaas.SystemActor(conn.OrgID)
	if p.OAuth == nil {
		// The operator removed the client registration; the tokens may
		// still be good once it is back, so the connection is left as is.
		return conn, cred, dcvaas.Errorf(dcvaas.EUNAVAILABLE, "OAuth for %s is not configured on this server any more", p.Title)
	}
	if cred.RefreshToken == "" {
		return conn, cred, s.markReauth(ctx, p, conn, "the provider gave no refresh token and the access token expired")
	}
	// A token with only the refresh token is invalid, so the source refreshes.
	tok, err := s.oauth2Config(p).TokenSource(s.httpContext(ctx), &oauth2.Token{RefreshToken: cred.RefreshToken}).Token()
	if err != nil {
		if !isRefusal(err) {
			return conn, cred, &dcvaas.Error{Code: dcvaas.EUNAVAILABLE, Message: p.Title + " could not refresh the access token; try again", Err: err}
		}
		// Another node may have refreshed first and so retired our
		// refresh token (rotation): then its tokens are in the store.
		if fresh, fcred, ok := s.reread(ctx, conn); ok {
			return fresh, fcred, nil
		}
		return conn, cred, s.markReauth(ctx, p, conn, "the provider refused to refresh the access token")
	}
	next := cred
	next.AccessToken, next.Expiry = tok.AccessToken, tok.Expiry
	if tok.RefreshToken != "" {
		next.RefreshToken = tok.RefreshToken
	}
	env, err := s.seal(conn.ID, next)
	if err != nil {
		return conn, cred, err
	}
	var exp *time.Time
	if !tok.Expiry.IsZero() {
		e := tok.Expiry.UTC()
		exp = &e
	}
	err = s.cfg.Store.UpdateConnectionSecret(ctx, sys, conn.ID, conn.SecretEnc, env, exp, "connection.token_refreshed")
	if dcvaas.ErrorCode(err) == dcvaas.ECONFLICT {
		if fresh, fcred, ok := s.reread(ctx, conn); ok {
			return fresh, fcred, nil
		}
	}
	if err != nil {
		return conn, cred, err
	}
	updated := *conn
	updated.SecretEnc, updated.TokenExpiresAt, updated.Status, updated.LastError = env, exp, dcvaas.ConnectionActive, ""
	s.log.InfoContext(ctx, "oauth token refreshed", "connection", conn.ID, "provider", p.Name)
	return &updated, next, nil
}

// reread returns the stored connection when its secret changed since conn
// was read, i.e. when another request refreshed the tokens meanwhile.
func (s *Service) reread(ctx context.Context, conn *dcvaas.Connection) (*dcvaas.Connection, Credential, bool) {
	fresh, err := s.cfg.Store.FindConnection(ctx, conn.OrgID, conn.ID)
	if err != nil || fresh.SecretEnc == conn.SecretEnc || fresh.Status != dcvaas.ConnectionActive {
		return nil, Credential{}, false
	}
	cred, err := s.open(fresh)
	if err != nil {
		return nil, Credential{}, false
	}
	return fresh, cred, true
}

func (s *Service) markReauth(ctx context.Context, p *Provider, conn *dcvaas.Connection, why string) error {
	if err := s.cfg.Store.SetConnectionStatus(ctx, dcvaas.SystemActor(conn.OrgID), conn.ID, dcvaas.ConnectionNeedsReauth,
		why, "connection.needs_reauth"); err != nil {
		return err
	}
	s.log.WarnContext(ctx, "connection needs re-authorization", "connection", conn.ID, "provider", p.Name, "reason", why)
	return needsReauth(p)
}

func needsReauth(p *Provider) error {
	return &dcvaas.Error{Code: dcvaas.EINVALID,
		Message: fmt.Sprintf("the %s connection must be authorized again: %s no longer accepts its tokens", p.Title, p.Title),
		Fields:  map[string]string{"connectionId": "needs re-authorization"}}
}

// revoke asks the provider to invalidate the connection's tokens (RFC
// 7009). The refresh token goes first: revoking it ends its access tokens
// too on servers that link them, and the access token follows for the rest.
func (s *Service) revoke(ctx context.Context, p *Provider, cred Credential) error {
	if p.OAuth == nil || p.OAuth.RevokeURL == "" {
		return errNoRevocation
	}
	for _, t := range []struct{ token, hint string }{{cred.RefreshToken, "refresh_token"}, {cred.AccessToken, "access_token"}} {
		if t.token == "" {
			continue
		}
		form := url.Values{"token": {t.token}, "token_type_hint": {t.hint}}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.OAuth.RevokeURL, strings.NewReader(form.Encode()))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(url.QueryEscape(p.OAuth.ClientID), url.QueryEscape(p.OAuth.ClientSecret))
		resp, err := s.cfg.HTTPClient.Do(req)
		if err != nil {
			return fmt.Errorf("revoke %s: %w", t.hint, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("revoke %s: HTTP %d", t.hint, resp.StatusCode)
		}
	}
	return nil
}

var errNoRevocation = errors.New("provider has no revocation endpoint")
