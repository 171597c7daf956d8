package web

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/session"
)

// SSO configures single sign-on with OpenID Connect: authorization code
// flow with PKCE (S256), state and nonce, the ID token verified with
// go-oidc (issuer, audience, expiry, signature from the provider's keys).
type SSO struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	// AutoJoinOrg, when set, is the organization an unknown verified
	// e-mail joins, with AutoJoinRole; unset: unknown e-mails are refused.
	AutoJoinOrg  string
	AutoJoinRole dcvaas.MemberRole
	// HTTPClient reaches the identity provider; nil: a client with a
	// 10-second timeout.
	HTTPClient *http.Client
}

// ssoCookie holds a sign-in's state, nonce and PKCE verifier between the
// redirect to the identity provider and its answer: HttpOnly, only sent to
// the callback's path, single-use, 10 minutes.
const (
	ssoCookie     = "dcvaas_sso"
	ssoPath       = "/signin/sso"
	ssoCallback   = ssoPath + "/callback"
	ssoFlowMaxAge = 10 * time.Minute
)

type ssoFlow struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Next     string `json:"next"`
}

// sso is the configured provider, discovered on first use (and again after
// a failure), so that serve starts while the provider is unreachable.
type sso struct {
	cfg      SSO
	client   *http.Client
	mu       sync.Mutex
	provider *oidc.Provider
	verifier *oidc.IDTokenVerifier
}

func newSSO(cfg *SSO) *sso {
	if cfg == nil || cfg.Issuer == "" {
		return nil
	}
	c := &sso{cfg: *cfg, client: cfg.HTTPClient}
	if c.client == nil {
		c.client = &http.Client{Timeout: 10 * time.Second}
	}
	return c
}

func (c *sso) discover(ctx context.Context) (*oidc.Provider, *oidc.IDTokenVerifier, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.provider != nil {
		return c.provider, c.verifier, nil
	}
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, c.client), c.cfg.Issuer)
	if err != nil {
		return nil, nil, err
	}
	c.provider = p
	c.verifier = p.VerifierContext(oidc.ClientContext(context.Background(), c.client), &oidc.Config{ClientID: c.cfg.ClientID})
	return c.provider, c.verifier, nil
}

func (s *server) oauth2Config(r *http.Request, p *oidc.Provider) *oauth2.Config {
	return &oauth2.Config{
		ClientID: s.sso.cfg.ClientID, ClientSecret: s.sso.cfg.ClientSecret,
		Endpoint: p.Endpoint(), RedirectURL: s.originOf(r) + ssoCallback,
		Scopes: []string{oidc.ScopeOpenID, "email"},
	}
}

// originOf is the public URL's origin, or the request's own.
func (s *server) originOf(r *http.Request) string {
	if s.origin != "" {
		return s.origin
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func random() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// ssoStart sends the browser to the identity provider.
func (s *server) ssoStart(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if s.sso == nil {
		s.fail(w, r, nil, dcvaas.Errorf(dcvaas.ENOTFOUND, "single sign-on is not set up on this server"))
		return
	}
	p, _, err := s.sso.discover(r.Context())
	if err != nil {
		s.Logger.WarnContext(r.Context(), "OIDC discovery failed", "issuer", s.sso.cfg.Issuer, "err", err)
		s.ssoRefused(w, r, http.StatusServiceUnavailable, "The identity provider cannot be reached right now. Try again in a moment, or sign in with an API token.")
		return
	}
	flow := ssoFlow{State: random(), Nonce: random(), Verifier: oauth2.GenerateVerifier(), Next: session.SafeNext(r.URL.Query().Get("next"))}
	raw, _ := json.Marshal(flow)
	s.Sessions.SetFlowCookie(w, ssoCookie, ssoPath, base64.RawURLEncoding.EncodeToString(raw), ssoFlowMaxAge)
	// The provider's URL carries the state: keep our pages out of its Referer.
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, s.oauth2Config(r, p).AuthCodeURL(flow.State, oidc.Nonce(flow.Nonce), oauth2.S256ChallengeOption(flow.Verifier)), http.StatusFound)
}

func readFlow(r *http.Request) (*ssoFlow, bool) {
	c, err := r.Cookie(ssoCookie)
	if err != nil || len(c.Value) > 1000 {
		return nil, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil {
		return nil, false
	}
	var f ssoFlow
	if json.Unmarshal(raw, &f) != nil || f.State == "" || f.Nonce == "" || f.Verifier == "" {
		return nil, false
	}
	return &f, true
}

// ssoCallback finishes the sign-in: the state must be the one this browser
// was sent with, the code is exchanged with the PKCE verifier, the ID
// token must verify and carry this browser's nonce and a verified e-mail
// that is a member of an organization here (or joins the one configured).
func (s *server) ssoCallback(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	if s.sso == nil {
		s.fail(w, r, nil, dcvaas.Errorf(dcvaas.ENOTFOUND, "single sign-on is not set up on this server"))
		return
	}
	flow, ok := readFlow(r)
	s.Sessions.ClearFlowCookie(w, ssoCookie, ssoPath)
	if !ok {
		s.ssoRefused(w, r, http.StatusBadRequest, "This sign-in was not started in this browser, or took longer than 10 minutes. Start again.")
		return
	}
	q := r.URL.Query()
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(flow.State)) != 1 {
		s.ssoRefused(w, r, http.StatusBadRequest, "This sign-in's state does not match the one this browser started. Start again.")
		return
	}
	if e := q.Get("error"); e != "" {
		msg := "The identity provider refused the sign-in (" + e + ")."
		if d := q.Get("error_description"); d != "" {
			msg = "The identity provider refused the sign-in: " + d
		}
		s.ssoRefused(w, r, http.StatusForbidden, msg)
		return
	}
	ctx := r.Context()
	p, verifier, err := s.sso.discover(ctx)
	if err != nil {
		s.Logger.WarnContext(ctx, "OIDC discovery failed", "issuer", s.sso.cfg.Issuer, "err", err)
		s.ssoRefused(w, r, http.StatusServiceUnavailable, "The identity provider cannot be reached right now. Try again in a moment.")
		return
	}
	email, err := s.ssoIdentity(oidc.ClientContext(ctx, s.sso.client), p, verifier, r, flow, q.Get("code"))
	if err != nil {
		var refused *refusal
		if errors.As(err, &refused) {
			s.ssoRefused(w, r, refused.status, refused.msg)
			return
		}
		s.Logger.WarnContext(ctx, "OIDC sign-in failed", "err", err)
		s.ssoRefused(w, r, http.StatusBadGateway, "The identity provider's answer could not be verified. Start again.")
		return
	}
	user, orgs, err := s.Store.MembershipsByEmail(ctx, email)
	if err != nil && dcvaas.ErrorCode(err) != dcvaas.ENOTFOUND {
		s.fail(w, r, nil, err)
		return
	}
	if len(orgs) == 0 && s.sso.cfg.AutoJoinOrg != "" {
		actor := dcvaas.Actor{IP: session.RemoteIP(r.RemoteAddr), UserAgent: r.UserAgent()}
		if err := s.Store.JoinByEmail(ctx, actor, s.sso.cfg.AutoJoinOrg, email, s.sso.cfg.AutoJoinRole); err != nil {
			s.fail(w, r, nil, err)
			return
		}
		if user, orgs, err = s.Store.MembershipsByEmail(ctx, email); err != nil {
			s.fail(w, r, nil, err)
			return
		}
	}
	if len(orgs) == 0 {
		s.ssoRefused(w, r, http.StatusForbidden, fmt.Sprintf("%s is not a member of any organization on this dcvaas. "+
			"Ask an admin of your organization to add this address on its Members page, then sign in again.", email))
		return
	}
	// The oldest membership first; the header's switcher reaches the others.
	if _, err := s.Sessions.SignInMember(ctx, w, r, user.ID, orgs[0].ID); err != nil {
		s.fail(w, r, nil, err)
		return
	}
	http.Redirect(w, r, session.SafeNext(flow.Next), http.StatusSeeOther)
}

// refusal is a sign-in refused for a reason the person should read.
type refusal struct {
	status int
	msg    string
}

func (e *refusal) Error() string { return e.msg }

// ssoIdentity exchanges the code and returns the ID token's verified e-mail.
func (s *server) ssoIdentity(ctx context.Context, p *oidc.Provider, verifier *oidc.IDTokenVerifier, r *http.Request, flow *ssoFlow, code string) (string, error) {
	if code == "" {
		return "", &refusal{http.StatusBadRequest, "The identity provider sent no authorization code. Start again."}
	}
	tok, err := s.oauth2Config(r, p).Exchange(ctx, code, oauth2.VerifierOption(flow.Verifier))
	if err != nil {
		return "", fmt.Errorf("code exchange: %w", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return "", errors.New("the token response has no id_token")
	}
	idt, err := verifier.Verify(ctx, raw)
	if err != nil {
		return "", fmt.Errorf("id token: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(flow.Nonce)) != 1 {
		return "", &refusal{http.StatusBadRequest, "The identity provider's answer is not for this sign-in (its nonce differs). Start again."}
	}
	var claims struct {
		Email         string `json:"email"`
		EmailVerified any    `json:"email_verified"`
	}
	if err := idt.Claims(&claims); err != nil {
		return "", fmt.Errorf("id token claims: %w", err)
	}
	if claims.Email == "" {
		return "", &refusal{http.StatusForbidden, "The identity provider did not tell us your e-mail address, which dcvaas signs you in by."}
	}
	// Some providers send the boolean as a string.
	verified := false
	switch v := claims.EmailVerified.(type) {
	case bool:
		verified = v
	case string:
		verified, _ = strconv.ParseBool(v)
	}
	if !verified {
		return "", &refusal{http.StatusForbidden, fmt.Sprintf("The identity provider has not verified %s. Verify the address there, then sign in again.", claims.Email)}
	}
	return strings.TrimSpace(claims.Email), nil
}

// ssoRefused shows the sign-in page with why single sign-on did not sign
// the browser in.
func (s *server) ssoRefused(w http.ResponseWriter, r *http.Request, status int, msg string) {
	v := s.newView(r, nil, "Sign in", "")
	v.Error = msg
	v.Data = s.signInData("/")
	s.render(w, status, "signin.html", v)
}
