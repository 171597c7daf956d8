package providertest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"
)

// OAuth fakes an OAuth 2.0 authorization server (RFC 6749) that requires
// PKCE with S256 (RFC 7636), rotates refresh tokens and revokes tokens
// (RFC 7009). Its authorize endpoint consents at once, as a user clicking
// "Allow" would, and redirects back with a code — or with
// error=access_denied when Deny is set.
type OAuth struct {
	srv *httptest.Server

	mu                     sync.Mutex
	ClientID, ClientSecret string
	// OnToken learns every access token issued, so a DNS fake can accept
	// it; OnRevoke every access token revoked or replaced. Set them before
	// the first request.
	OnToken, OnRevoke func(access string)

	deny      bool
	expiresIn int

	codes          map[string]grant
	refresh        map[string]string // refresh token → its current access token
	authorizations []url.Values
	revoked        []string
	refreshes      int
	issued         []string
}

// Authorizations returns the query of every authorize request.
func (f *OAuth) Authorizations() []url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.authorizations)
}

// Revoked returns the tokens sent to the revocation endpoint.
func (f *OAuth) Revoked() []string { f.mu.Lock(); defer f.mu.Unlock(); return slices.Clone(f.revoked) }

// Refreshes counts successful refresh grants.
func (f *OAuth) Refreshes() int { f.mu.Lock(); defer f.mu.Unlock(); return f.refreshes }

// Issued returns every access and refresh token handed out, for tests
// that look for leaks.
func (f *OAuth) Issued() []string { f.mu.Lock(); defer f.mu.Unlock(); return slices.Clone(f.issued) }

type grant struct {
	challenge, redirectURI string
	expires                time.Time
}

// NewOAuth starts a fake with client credentials "dcvaas-client" /
// "dcvaas-client-secret", stopped when the test ends.
func NewOAuth(t testing.TB) *OAuth {
	f := &OAuth{ClientID: "dcvaas-client", ClientSecret: "dcvaas-client-secret", expiresIn: 3600,
		codes: map[string]grant{}, refresh: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /oauth2/auth", f.authorize)
	mux.HandleFunc("POST /oauth2/token", f.token)
	mux.HandleFunc("POST /oauth2/revoke", f.revoke)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// AuthURL, TokenURL and RevokeURL are the endpoints.
func (f *OAuth) AuthURL() string   { return f.srv.URL + "/oauth2/auth" }
func (f *OAuth) TokenURL() string  { return f.srv.URL + "/oauth2/token" }
func (f *OAuth) RevokeURL() string { return f.srv.URL + "/oauth2/revoke" }

// SetDeny makes the authorize endpoint answer as if the user declined.
func (f *OAuth) SetDeny(deny bool) { f.mu.Lock(); f.deny = deny; f.mu.Unlock() }

// SetExpiresIn sets the lifetime of access tokens issued from now on.
func (f *OAuth) SetExpiresIn(seconds int) { f.mu.Lock(); f.expiresIn = seconds; f.mu.Unlock() }

// RevokeRefreshTokens invalidates every refresh token, as a user removing
// the app's access in the provider's dashboard would.
func (f *OAuth) RevokeRefreshTokens() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.refresh)
}

func randomToken(prefix string) string {
	b := make([]byte, 18)
	rand.Read(b)
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

func (f *OAuth) authorize(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := r.URL.Query()
	f.authorizations = append(f.authorizations, q)
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || q.Get("client_id") != f.ClientID || redirect.Host == "" {
		http.Error(w, "unknown client or redirect_uri", http.StatusBadRequest)
		return
	}
	back := url.Values{"state": {q.Get("state")}}
	switch {
	case q.Get("response_type") != "code":
		back.Set("error", "unsupported_response_type")
	case q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "":
		back.Set("error", "invalid_request")
		back.Set("error_description", "PKCE with S256 is required")
	case f.deny:
		back.Set("error", "access_denied")
		back.Set("error_description", "The user denied the request")
	default:
		code := randomToken("code-")
		f.codes[code] = grant{challenge: q.Get("code_challenge"), redirectURI: q.Get("redirect_uri"), expires: time.Now().Add(time.Minute)}
		back.Set("code", code)
	}
	redirect.RawQuery = back.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

func (f *OAuth) tokenError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

// clientOK accepts client_secret_basic and client_secret_post.
func (f *OAuth) clientOK(r *http.Request) bool {
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	return id == f.ClientID && secret == f.ClientSecret
}

func (f *OAuth) token(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := r.ParseForm(); err != nil {
		f.tokenError(w, http.StatusBadRequest, "invalid_request", "bad form")
		return
	}
	if !f.clientOK(r) {
		f.tokenError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		code := r.PostForm.Get("code")
		g, ok := f.codes[code]
		delete(f.codes, code) // single use, even when the exchange fails
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		switch {
		case !ok || time.Now().After(g.expires):
			f.tokenError(w, http.StatusBadRequest, "invalid_grant", "unknown, used or expired code")
		case g.redirectURI != r.PostForm.Get("redirect_uri"):
			f.tokenError(w, http.StatusBadRequest, "invalid_grant", "redirect_uri does not match")
		case base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge:
			f.tokenError(w, http.StatusBadRequest, "invalid_grant", "PKCE verification failed")
		default:
			f.issue(w)
		}
	case "refresh_token":
		old := r.PostForm.Get("refresh_token")
		access, ok := f.refresh[old]
		if !ok {
			f.tokenError(w, http.StatusBadRequest, "invalid_grant", "refresh token is invalid, expired or revoked")
			return
		}
		delete(f.refresh, old) // rotation: a refresh token works once
		if f.OnRevoke != nil {
			f.OnRevoke(access)
		}
		f.refreshes++
		f.issue(w)
	default:
		f.tokenError(w, http.StatusBadRequest, "unsupported_grant_type", "")
	}
}

func (f *OAuth) issue(w http.ResponseWriter) {
	access, refresh := randomToken("at-"), randomToken("rt-")
	f.refresh[refresh] = access
	f.issued = append(f.issued, access, refresh)
	if f.OnToken != nil {
		f.OnToken(access)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(map[string]any{"access_token": access, "token_type": "bearer", "expires_in": f.expiresIn,
		"refresh_token": refresh, "scope": "zone:read dns_records:edit offline_access"})
}

func (f *OAuth) revoke(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := r.ParseForm(); err != nil || !f.clientOK(r) {
		f.tokenError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	tok := r.PostForm.Get("token")
	f.revoked = append(f.revoked, tok)
	// Revoking a refresh token revokes its access token too (RFC 7009 §2.1).
	if access, ok := f.refresh[tok]; ok {
		delete(f.refresh, tok)
		if f.OnRevoke != nil {
			f.OnRevoke(access)
		}
	} else if f.OnRevoke != nil {
		f.OnRevoke(tok)
	}
	w.WriteHeader(http.StatusOK)
}
