// Package session signs browsers in: an API token pasted once is exchanged
// for a server-side session whose random id lives in an HttpOnly cookie
// (only its SHA-256 is stored). The dashboard (web/) and the API's OAuth
// callback (httpapi/) read the same sessions through a Manager.
package session

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/apitoken"
)

// CookieName is the session cookie; BindingCookie holds an OAuth flow's
// binding to the browser that started it (connection.Service.Start).
const (
	CookieName    = "dcvaas_session"
	BindingCookie = "dcvaas_oauth"
)

// Idle and Absolute are a session's limits: it ends after Idle without a
// request, and after Absolute whatever the activity.
const (
	Idle     = 12 * time.Hour
	Absolute = 7 * 24 * time.Hour
)

// Store is what sessions need from the database.
type Store interface {
	dcvaas.SessionStore
	Authenticate(ctx context.Context, hash string, now time.Time) (*dcvaas.Authenticated, error)
}

// Manager creates, reads and ends sessions.
type Manager struct {
	store Store
	// secure marks cookies Secure: the public URL is https.
	secure bool
	now    dcvaas.Clock
}

// NewManager returns a Manager; publicURL decides whether cookies are
// Secure (https) or not (a plain-http development setup would never get
// a Secure cookie back).
func NewManager(store Store, publicURL string, clock dcvaas.Clock) *Manager {
	if clock == nil {
		clock = time.Now
	}
	return &Manager{store: store, secure: strings.HasPrefix(strings.ToLower(publicURL), "https://"), now: clock}
}

// Secure reports whether cookies are marked Secure.
func (m *Manager) Secure() bool { return m.secure }

// Signed is a request's signed-in browser.
type Signed struct {
	Auth *dcvaas.Authenticated
	// id is the cookie's value; the CSRF token is derived from it.
	id string
}

// Actor is who the signed-in browser acts as, for the store and audit.
func (s *Signed) Actor(r *http.Request) dcvaas.Actor {
	return dcvaas.Actor{
		OrgID: s.Auth.Token.OrgID, UserID: s.Auth.Token.UserID, TokenID: s.Auth.Token.ID,
		TokenRole: s.Auth.Token.Role, MemberRole: s.Auth.MemberRole,
		IP: RemoteIP(r.RemoteAddr), UserAgent: r.UserAgent(),
	}
}

// CSRFToken is the token every state-changing form must carry. It is
// derived from the secret session id, so it needs no storage, is unknown
// to other sites, and dies with the session.
func (s *Signed) CSRFToken() string {
	sum := sha256.Sum256([]byte("csrf:" + s.id))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// CheckCSRF reports whether token is this session's CSRF token.
func (s *Signed) CheckCSRF(token string) bool {
	return subtle.ConstantTimeCompare([]byte(token), []byte(s.CSRFToken())) == 1
}

func hashID(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

// SignIn exchanges an API token for a session and sets its cookie.
// EUNAUTHORIZED for a malformed, unknown, expired or revoked token.
func (m *Manager) SignIn(ctx context.Context, w http.ResponseWriter, r *http.Request, token string) (*Signed, error) {
	token = strings.TrimSpace(token)
	if !apitoken.Valid(token) {
		return nil, dcvaas.Errorf(dcvaas.EUNAUTHORIZED, "that is not a valid dcvaas token")
	}
	now := m.now()
	auth, err := m.store.Authenticate(ctx, apitoken.Hash(token), now)
	if err != nil {
		return nil, err
	}
	return m.start(ctx, w, r, auth, now)
}

// SignInMember starts a single sign-on's session: userID, whose identity
// provider vouched for them, in orgID, where they are a member (the
// store's AuthenticateSession gives it that membership's rights).
func (m *Manager) SignInMember(ctx context.Context, w http.ResponseWriter, r *http.Request, userID, orgID string) (*Signed, error) {
	auth := &dcvaas.Authenticated{Token: &dcvaas.Token{UserID: userID, OrgID: orgID}}
	return m.start(ctx, w, r, auth, m.now())
}

func (m *Manager) start(ctx context.Context, w http.ResponseWriter, r *http.Request, auth *dcvaas.Authenticated, now time.Time) (*Signed, error) {
	b := make([]byte, 32)
	rand.Read(b)
	id := base64.RawURLEncoding.EncodeToString(b)
	signed := &Signed{Auth: auth, id: id}
	sess := &dcvaas.Session{Hash: hashID(id), ExpiresAt: now.Add(Absolute).UTC()}
	if err := m.store.CreateSession(ctx, signed.Actor(r), sess); err != nil {
		return nil, err
	}
	http.SetCookie(w, m.cookie(CookieName, id, int(Absolute/time.Second)))
	return signed, nil
}

// SetFlowCookie sets a short-lived cookie of a sign-in flow (single
// sign-on's state), limited to path; SameSite=Lax so that it comes back on
// the identity provider's top-level redirect.
func (m *Manager) SetFlowCookie(w http.ResponseWriter, name, path, value string, ttl time.Duration) {
	c := m.cookie(name, value, int(ttl/time.Second))
	c.Path = path
	http.SetCookie(w, c)
}

// ClearFlowCookie removes a flow cookie: it is single-use.
func (m *Manager) ClearFlowCookie(w http.ResponseWriter, name, path string) {
	c := m.cookie(name, "", -1)
	c.Path = path
	http.SetCookie(w, c)
}

// FromRequest returns the request's signed-in browser; EUNAUTHORIZED when
// it has no live session.
func (m *Manager) FromRequest(r *http.Request) (*Signed, error) {
	c, err := r.Cookie(CookieName)
	if err != nil || c.Value == "" || len(c.Value) > 100 {
		return nil, dcvaas.Errorf(dcvaas.EUNAUTHORIZED, "not signed in")
	}
	auth, err := m.store.AuthenticateSession(r.Context(), hashID(c.Value), m.now(), Idle)
	if err != nil {
		return nil, err
	}
	return &Signed{Auth: auth, id: c.Value}, nil
}

// Switch moves a single sign-on's session to another organization of its
// user (ENOTFOUND when they are no member of it, or the session is a
// token's: a token belongs to one organization).
func (m *Manager) Switch(r *http.Request, s *Signed, orgID string) error {
	return m.store.SwitchSession(r.Context(), s.Actor(r), hashID(s.id), orgID)
}

// SignOut deletes the session and its cookie.
func (m *Manager) SignOut(w http.ResponseWriter, r *http.Request, s *Signed) error {
	http.SetCookie(w, m.cookie(CookieName, "", -1))
	return m.store.DeleteSession(r.Context(), s.Actor(r), hashID(s.id))
}

// SetBinding sets the short-lived cookie tying an OAuth flow to this
// browser. Path / so that it reaches /api/oauth/{provider}/callback;
// SameSite=Lax so that it comes back on the provider's top-level redirect.
func (m *Manager) SetBinding(w http.ResponseWriter, value string, ttl time.Duration) {
	http.SetCookie(w, m.cookie(BindingCookie, value, int(ttl/time.Second)))
}

// ClearBinding removes the binding cookie: it is single-use.
func (m *Manager) ClearBinding(w http.ResponseWriter) {
	http.SetCookie(w, m.cookie(BindingCookie, "", -1))
}

func (m *Manager) cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: m.secure, SameSite: http.SameSiteLaxMode}
}

// RemoteIP is the peer's address; X-Forwarded-For is not trusted here.
func RemoteIP(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}

// SafeNext returns next when it is a path on this site ("/…", not "//…"
// nor "/\…", which browsers read as another host), else "/".
func SafeNext(next string) string {
	if next == "" || next[0] != '/' || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") ||
		strings.ContainsAny(next, "\r\n\t") {
		return "/"
	}
	return next
}
