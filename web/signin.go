package web

import (
	"net/http"
	"net/url"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/ratelimit"
	"github.com/dcvaas/dcvaas/session"
)

type signInData struct {
	Next string
	// SSO is the single sign-on link, when it is set up.
	SSO string
}

func (s *server) signInData(next string) signInData {
	d := signInData{Next: next}
	if s.sso != nil {
		d.SSO = ssoPath
		if next != "/" {
			d.SSO += "?" + url.Values{"next": {next}}.Encode()
		}
	}
	return d
}

func (s *server) signInPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	v := s.newView(r, nil, "Sign in", "")
	v.Data = s.signInData(session.SafeNext(r.URL.Query().Get("next")))
	s.render(w, http.StatusOK, "signin.html", v)
}

// signIn exchanges a pasted API token for a session and answers 303 to
// next, a path on this site (anything else goes to /). There is no session
// yet to take a CSRF token from, so the Origin check guards it (a forged
// sign-in would sign the victim in as the attacker).
func (s *server) signIn(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	next := session.SafeNext(r.PostFormValue("next"))
	if !s.sameOrigin(r) {
		s.fail(w, r, nil, dcvaas.Errorf(dcvaas.EFORBIDDEN, "this form was sent from another site"))
		return
	}
	if _, err := s.Sessions.SignIn(r.Context(), w, r, r.PostFormValue("token")); err != nil {
		status := statusOf(dcvaas.ErrorCode(err))
		v := s.newView(r, nil, "Sign in", "")
		v.Data = s.signInData(next)
		if status == http.StatusInternalServerError {
			s.Logger.ErrorContext(r.Context(), "sign-in failed", "err", err)
			v.Error = "Something went wrong on our side. Try again in a moment."
		} else {
			if dcvaas.ErrorCode(err) == dcvaas.EUNAUTHORIZED {
				s.SecurityAudit.Add(dcvaas.SecurityAuthFailed, "", ratelimit.ClientIPFrom(r.Context()))
			}
			v.Error = "That token is not valid, has expired or was revoked."
			v.Fields = map[string]string{"token": v.Error}
		}
		s.render(w, status, "signin.html", v)
		return
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *server) signOut(w http.ResponseWriter, r *http.Request, c *call) {
	if err := s.Sessions.SignOut(w, r, c.signed); err != nil {
		s.fail(w, r, c, err)
		return
	}
	back(w, r, "/signin", "Signed out.")
}

// switchOrg moves a single sign-on to another of its user's organizations.
func (s *server) switchOrg(w http.ResponseWriter, r *http.Request, c *call) {
	if err := s.Sessions.Switch(r, c.signed, r.PostFormValue("org")); err != nil {
		s.fail(w, r, c, err)
		return
	}
	back(w, r, "/", "Switched organization.")
}

// oauthStart is where a DNS provider authorization begins (the API's
// authorizeUrl): it binds the flow to this browser, signed in as an admin
// of the organization that started it, then sends it to the provider.
func (s *server) oauthStart(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	// The URL holds the state: keep it out of the provider's Referer.
	w.Header().Set("Referrer-Policy", "no-referrer")
	signed, err := s.Sessions.FromRequest(r)
	if err != nil {
		if dcvaas.ErrorCode(err) == dcvaas.EUNAUTHORIZED {
			http.Redirect(w, r, "/signin?"+url.Values{"next": {r.URL.RequestURI()}}.Encode(), http.StatusSeeOther)
			return
		}
		s.fail(w, r, nil, err)
		return
	}
	c := &call{signed: signed, actor: signed.Actor(r)}
	if s.Connections == nil {
		s.fail(w, r, c, dcvaas.Errorf(dcvaas.ENOTIMPLEMENTED, "DNS provider connections are not set up on this server"))
		return
	}
	consent, binding, err := s.Connections.Start(r.Context(), c.actor, r.PathValue("provider"), r.URL.Query().Get("state"))
	if err != nil {
		if dcvaas.ErrorCode(err) == dcvaas.ENOTFOUND {
			err = dcvaas.Errorf(dcvaas.ENOTFOUND, "this authorization link is unknown, expired, or belongs to another organization; start again from Settings")
		}
		s.fail(w, r, c, err)
		return
	}
	s.Sessions.SetBinding(w, binding, connectionBindingTTL)
	http.Redirect(w, r, consent, http.StatusFound)
}
