package httpapi

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
	"github.com/danielgtaylor/huma/v2/negotiation"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/connection"
	"github.com/dcvaas/dcvaas/session"
)

// The OAuth authorization-code flow with a DNS provider. authorize needs
// the bearer token like any API call and hands out the URL of dcvaas's
// start page (web/), which binds the flow to a signed-in browser. The
// callback is reached by that browser coming back from the provider, so
// it carries no token: the single-use state, the binding cookie and the
// browser's session authenticate it.

type oauthAuthorizeInput struct {
	Provider string `path:"provider" enum:"cloudflare,godaddy,route53"`
	Accept   string `header:"Accept" hidden:"true"`
}

type authorizeURL struct {
	AuthorizeURL string `json:"authorizeUrl" doc:"Send the user's browser here; it returns to the callback."`
}

type oauthAuthorizeOutput struct {
	Status   int
	Location string `header:"Location"`
	// Body is an authorizeURL, or empty with the redirect.
	Body any
}

// oauthAuthorize redirects to the provider's consent screen, or, for a
// browser UI that must attach the bearer token and so calls with fetch,
// returns the URL as JSON when Accept prefers application/json.
func (s *server) oauthAuthorize(ctx context.Context, in *oauthAuthorizeInput) (*oauthAuthorizeOutput, error) {
	svc, err := s.connectionsService()
	if err != nil {
		return nil, err
	}
	u, err := svc.Authorize(ctx, actorFrom(ctx), in.Provider)
	if err != nil {
		return nil, err
	}
	if negotiation.SelectQValue(in.Accept, []string{"text/html", "application/json"}) == "application/json" {
		return &oauthAuthorizeOutput{Status: http.StatusOK, Body: authorizeURL{AuthorizeURL: u}}, nil
	}
	return &oauthAuthorizeOutput{Status: http.StatusFound, Location: u, Body: []byte{}}, nil
}

type oauthCallbackInput struct {
	Provider         string `path:"provider"`
	Code             string `query:"code"`
	State            string `query:"state"`
	Error            string `query:"error"`
	ErrorDescription string `query:"error_description"`
	UserAgent        string `header:"User-Agent" hidden:"true"`
}

type redirectOutput struct {
	Location     string `header:"Location"`
	CacheControl string `header:"Cache-Control"`
	// The callback URL held the code: keep it out of the Referer of the
	// next page (RFC 9700 §4.2.4).
	ReferrerPolicy string `header:"Referrer-Policy"`
	// SetCookie removes the single-use binding cookie.
	SetCookie http.Cookie `header:"Set-Cookie"`
}

// oauthCallback always redirects to the settings page, with oauth=success
// or oauth=error&reason=…: a browser is on the other end, not an API client.
// It completes only in the browser that started the flow (its binding
// cookie) while signed in as an admin of the flow's organization.
func (s *server) oauthCallback(ctx context.Context, in *oauthCallbackInput) (*redirectOutput, error) {
	svc, err := s.connectionsService()
	if err != nil {
		return nil, err
	}
	b, _ := ctx.Value(browserKey{}).(browser)
	redirect, _, _ := svc.Callback(ctx, in.Provider, connection.CallbackParams{
		Code: in.Code, State: in.State, Error: in.Error, ErrorDescription: in.ErrorDescription,
		IP: b.ip, UserAgent: in.UserAgent, Binding: b.binding, Session: b.session,
	})
	out := &redirectOutput{Location: redirect, CacheControl: "no-store", ReferrerPolicy: "no-referrer"}
	out.SetCookie = http.Cookie{Name: session.BindingCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: s.sessions != nil && s.sessions.Secure()}
	return out, nil
}

type browserKey struct{}

// browser is what the callback knows of the browser that came back: its
// address (for the audit entry), its binding cookie, and who it is signed
// in as (nil when not).
type browser struct {
	ip      string
	binding string
	session *dcvaas.Actor
}

// withBrowser reads the browser of an operation without bearer token.
func (s *server) withBrowser(hctx huma.Context, next func(huma.Context)) {
	r, _ := humago.Unwrap(hctx)
	b := browser{ip: remoteIP(hctx.RemoteAddr())}
	if r != nil {
		if c, err := r.Cookie(session.BindingCookie); err == nil {
			b.binding = c.Value
		}
		if s.sessions != nil {
			if signed, err := s.sessions.FromRequest(r); err == nil {
				a := signed.Actor(r)
				b.session = &a
			}
		}
	}
	next(huma.WithValue(hctx, browserKey{}, b))
}

type peerKey struct{}

// withPeer makes the client's address available to a handler of an
// operation without bearer token (which gets it from the actor otherwise),
// for the audit entry.
func withPeer(hctx huma.Context, next func(huma.Context)) {
	next(huma.WithValue(hctx, peerKey{}, remoteIP(hctx.RemoteAddr())))
}
