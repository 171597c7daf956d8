// Package web is the dashboard: server-rendered html/template pages,
// embedded in the binary, served by `dcvaas serve` on the API's listener.
// Every page calls the same store and services as the REST API (httpapi),
// so tenant isolation, roles, validation and audit entries are the API's.
//
// Reading works without JavaScript (links and forms); the one small script
// (static/app.js, no library) refreshes status fragments by polling and
// adds copy buttons. Every POST carries the session's CSRF token and must
// come from our own origin.
package web

import (
	"bytes"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/acme"
	"github.com/dcvaas/dcvaas/connection"
	"github.com/dcvaas/dcvaas/secaudit"
	"github.com/dcvaas/dcvaas/session"
	"github.com/dcvaas/dcvaas/webhook"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Store is what the dashboard reads and changes: the API's store.
type Store interface {
	dcvaas.Store
	dcvaas.SessionStore
}

// Deps is everything the dashboard needs.
type Deps struct {
	Store    Store
	Sessions *session.Manager
	// Connections is nil when DNS provider connections are not set up.
	Connections *connection.Service
	VerifyZone  string
	// AllowTLDs lets domain names under these labels through although
	// they are not public (DCVAAS_ALLOW_TLDS; domainname.CheckPublic).
	AllowTLDs  []string
	HardDelete bool
	// PublicURL is where browsers reach dcvaas; its origin is the only one
	// POSTs are accepted from. Empty: the request's own Host.
	PublicURL string
	// Keys opens certificates' private keys for the admins' key download;
	// nil: no key download.
	Keys acme.KeyOpener
	// Limiter and RateLimit are the API's per-organization budget: pages
	// count against it like API requests (nil or 0: no limit).
	Limiter   dcvaas.RateLimiter
	RateLimit int
	// UserRateLimit is the API's per-user budget (0: RateLimit, < 0: none).
	UserRateLimit int
	// SecurityAudit counts failed sign-ins in aggregate; nil: not recorded.
	SecurityAudit *secaudit.Recorder
	Clock         dcvaas.Clock
	Logger        *slog.Logger
	// SSO, when set, offers single sign-on with OpenID Connect.
	SSO *SSO
	// Webhooks is the API's webhook service (the same instance); nil: the
	// webhooks page says they are not configured.
	Webhooks *webhook.Service
}

type server struct {
	Deps
	pages map[string]*template.Template
	// origin is PublicURL's scheme://host, or "" to use the request's.
	origin string
	sso    *sso
}

// New returns the dashboard's handler.
func New(deps Deps) http.Handler {
	s := &server{Deps: deps, pages: parsePages(), sso: newSSO(deps.SSO)}
	if s.Clock == nil {
		s.Clock = time.Now
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	s.VerifyZone = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(s.VerifyZone), "."))
	if u, err := url.Parse(deps.PublicURL); err == nil && u.Scheme != "" && u.Host != "" {
		s.origin = strings.ToLower(u.Scheme + "://" + u.Host)
	}
	mux := http.NewServeMux()
	s.routes(mux)
	return secureHeaders(mux)
}

// routes lists every page of the dashboard.
func (s *server) routes(mux *http.ServeMux) {
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", cacheStatic(http.FileServerFS(static))))

	mux.HandleFunc("GET /signin", s.signInPage)
	mux.HandleFunc("POST /signin", s.signIn)
	mux.HandleFunc("GET "+ssoPath, s.ssoStart)
	mux.HandleFunc("GET "+ssoCallback, s.ssoCallback)
	mux.HandleFunc("POST /signout", s.page(s.signOut))
	mux.HandleFunc("POST /switch", s.page(s.switchOrg))
	mux.HandleFunc("GET /oauth/{provider}/start", s.oauthStart)

	mux.HandleFunc("GET /{$}", s.page(s.overview))
	mux.HandleFunc("GET /domains", s.page(s.domains))
	mux.HandleFunc("POST /domains", s.page(s.addDomain))
	mux.HandleFunc("GET /domains/{id}", s.page(s.domain))
	mux.HandleFunc("GET /domains/{id}/status", s.page(s.domainStatus))
	mux.HandleFunc("GET /domains/{id}/fullchain.pem", s.page(s.downloadPart("fullchain")))
	mux.HandleFunc("GET /domains/{id}/chain.pem", s.page(s.downloadPart("chain")))
	mux.HandleFunc("POST /domains/{id}/key", s.page(s.downloadKey))
	mux.HandleFunc("GET /domains/{id}/delete", s.page(s.confirmDelete))
	mux.HandleFunc("POST /domains/{id}/delete", s.page(s.deleteDomain))
	mux.HandleFunc("POST /domains/{id}/{action}", s.page(s.domainAction))
	mux.HandleFunc("GET /jobs", s.page(s.jobs))
	mux.HandleFunc("POST /jobs/{id}/retry", s.page(s.retryJob))
	mux.HandleFunc("GET /tokens", s.page(s.tokens))
	mux.HandleFunc("POST /tokens", s.page(s.createToken))
	mux.HandleFunc("POST /tokens/{id}/revoke", s.page(s.revokeToken))
	mux.HandleFunc("GET /webhooks", s.page(s.webhooks))
	mux.HandleFunc("POST /webhooks", s.page(s.createWebhook))
	mux.HandleFunc("GET /webhooks/{id}", s.page(s.webhook))
	mux.HandleFunc("POST /webhooks/{id}/enable", s.page(s.setWebhookEnabled(true)))
	mux.HandleFunc("POST /webhooks/{id}/disable", s.page(s.setWebhookEnabled(false)))
	mux.HandleFunc("POST /webhooks/{id}/test", s.page(s.testWebhook))
	mux.HandleFunc("POST /webhooks/{id}/rotate", s.page(s.rotateWebhook))
	mux.HandleFunc("POST /webhooks/{id}/delete", s.page(s.deleteWebhook))
	mux.HandleFunc("POST /webhooks/{id}/deliveries/{delivery}/retry", s.page(s.retryDelivery))
	mux.HandleFunc("GET /audit", s.page(s.audit))
	mux.HandleFunc("GET /members", s.page(s.members))
	mux.HandleFunc("POST /members", s.page(s.addMember))
	mux.HandleFunc("POST /members/{id}/remove", s.page(s.removeMember))
	mux.HandleFunc("GET /settings", s.page(s.settings))
	mux.HandleFunc("POST /settings/organization", s.page(s.updateOrganization))
	mux.HandleFunc("POST /settings/connect/{provider}", s.page(s.connect))
	mux.HandleFunc("POST /settings/credentials/{provider}", s.page(s.createConnection))
	mux.HandleFunc("POST /settings/connections/{id}/test", s.page(s.testConnection))
	mux.HandleFunc("POST /settings/connections/{id}/delete", s.page(s.deleteConnection))
	mux.HandleFunc("POST /domains/{id}/dns-setup", s.page(s.dnsSetup))
	mux.HandleFunc("/", s.page(func(w http.ResponseWriter, r *http.Request, c *call) {
		s.fail(w, r, c, dcvaas.Errorf(dcvaas.ENOTFOUND, "there is no such page"))
	}))
}

// csp allows our own script, styles and fetches, and nothing inline.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'"

func secureHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(w, r)
	})
}

func cacheStatic(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		next.ServeHTTP(w, r)
	})
}

// call is one signed-in request.
type call struct {
	signed *session.Signed
	actor  dcvaas.Actor
}

// page wraps a handler that needs a signed-in browser: without a session
// it sends the browser to the sign-in page and back; a POST must come from
// our origin with the session's CSRF token.
func (s *server) page(h func(http.ResponseWriter, *http.Request, *call)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		signed, err := s.Sessions.FromRequest(r)
		if err != nil {
			if dcvaas.ErrorCode(err) != dcvaas.EUNAUTHORIZED {
				s.fail(w, r, nil, err)
				return
			}
			if r.Method != http.MethodGet {
				s.fail(w, r, nil, dcvaas.Errorf(dcvaas.EUNAUTHORIZED, "sign in first"))
				return
			}
			http.Redirect(w, r, "/signin?"+url.Values{"next": {r.URL.RequestURI()}}.Encode(), http.StatusSeeOther)
			return
		}
		c := &call{signed: signed, actor: signed.Actor(r)}
		if !s.admit(w, r, c) {
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if !s.sameOrigin(r) {
				s.fail(w, r, c, dcvaas.Errorf(dcvaas.EFORBIDDEN, "this form was sent from another site"))
				return
			}
			if !signed.CheckCSRF(r.PostFormValue("csrf")) {
				s.fail(w, r, c, dcvaas.Errorf(dcvaas.EFORBIDDEN, "the form's security token is missing or stale; reload the page and try again"))
				return
			}
		}
		h(w, r, c)
	}
}

// admit counts the request against the organization's budget, as the API
// does; a failing limiter lets the request through, as in the API.
func (s *server) admit(w http.ResponseWriter, r *http.Request, c *call) bool {
	if s.Limiter == nil || s.RateLimit <= 0 {
		return true
	}
	now := s.Clock()
	userLimit := s.UserRateLimit
	if userLimit == 0 {
		userLimit = s.RateLimit
	}
	d, err := dcvaas.TakeRequest(r.Context(), s.Limiter, c.actor.UserID, userLimit, c.actor.OrgID, s.RateLimit, now)
	if err != nil {
		s.Logger.WarnContext(r.Context(), "rate limiter failed; request allowed", "org_id", c.actor.OrgID, "err", err)
		return true
	}
	if d.Allowed {
		return true
	}
	wait := max(int(d.RetryAt.Sub(now).Seconds()+0.999), 1)
	w.Header().Set("Retry-After", strconv.Itoa(wait))
	s.fail(w, r, c, dcvaas.Errorf(dcvaas.ERATELIMITED,
		"rate limit of %d requests per minute exceeded; retry in %d seconds", d.Limit, wait))
	return false
}

// sameOrigin is the Origin check of every POST (also of the sign-in,
// which has no CSRF token yet): browsers send Origin on every POST, so one
// that is missing or foreign is refused.
func (s *server) sameOrigin(r *http.Request) bool {
	origin := strings.ToLower(r.Header.Get("Origin"))
	if origin == "" || origin == "null" {
		return false
	}
	if s.origin != "" {
		return origin == s.origin
	}
	u, err := url.Parse(origin)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

// view is what every page template gets.
type view struct {
	Title     string
	Nav       string
	CSRF      string
	CanChange bool
	SignedIn  bool
	Role      string
	Flash     string
	Error     string
	Fields    map[string]string
	Data      any
	// Orgs are a single sign-on's organizations, for the switcher (shown
	// with two or more); OrgID is the current one.
	Orgs  []*dcvaas.Organization
	OrgID string
}

func (s *server) newView(r *http.Request, c *call, title, nav string) *view {
	v := &view{Title: title, Nav: nav, Flash: r.URL.Query().Get("flash")}
	if c != nil {
		v.SignedIn, v.CSRF, v.CanChange, v.Role = true, c.signed.CSRFToken(), c.actor.CanChange(), string(c.actor.TokenRole)
		v.OrgID = c.actor.OrgID
		if c.actor.TokenID == "" { // single sign-on: the membership's role
			v.Role = string(c.actor.MemberRole)
			orgs, _, err := s.Store.ListOrganizations(r.Context(), c.actor.UserID, dcvaas.Page{Limit: 50})
			if err != nil {
				s.Logger.WarnContext(r.Context(), "list organizations for the switcher", "err", err)
			}
			v.Orgs = orgs
		}
	}
	return v
}

// render writes a whole page (or, with fragment set, one named template
// of it) with status.
func (s *server) render(w http.ResponseWriter, status int, name string, v *view) {
	s.renderTemplate(w, status, name, "layout", v)
}

func (s *server) renderTemplate(w http.ResponseWriter, status int, page, tmpl string, v any) {
	var buf bytes.Buffer
	if err := s.pages[page].ExecuteTemplate(&buf, tmpl, v); err != nil {
		s.Logger.Error("render page", "page", page, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// statusOf maps an error code to HTTP as the API does.
func statusOf(code string) int {
	switch code {
	case dcvaas.ENOTFOUND:
		return http.StatusNotFound
	case dcvaas.EINVALID:
		return http.StatusUnprocessableEntity
	case dcvaas.ECONFLICT:
		return http.StatusConflict
	case dcvaas.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case dcvaas.EFORBIDDEN:
		return http.StatusForbidden
	case dcvaas.ERATELIMITED:
		return http.StatusTooManyRequests
	case dcvaas.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	case dcvaas.ENOTIMPLEMENTED:
		return http.StatusNotImplemented
	}
	return http.StatusInternalServerError
}

// fail shows an error page; internal errors are logged and never shown.
func (s *server) fail(w http.ResponseWriter, r *http.Request, c *call, err error) {
	code := dcvaas.ErrorCode(err)
	status := statusOf(code)
	msg := dcvaas.ErrorMessage(err)
	if status == http.StatusInternalServerError {
		s.Logger.ErrorContext(r.Context(), "dashboard request failed", "path", r.URL.Path, "err", err)
		msg = "Something went wrong on our side. Try again in a moment."
	}
	title := http.StatusText(status)
	if status == http.StatusNotFound {
		title = "Not found"
	}
	v := s.newView(r, c, title, "")
	v.Error = msg
	s.render(w, status, "error.html", v)
}

// fieldErrors returns an EINVALID error's per-field messages.
func fieldErrors(err error) map[string]string {
	var e *dcvaas.Error
	if errors.As(err, &e) && e.Code == dcvaas.EINVALID {
		return e.Fields
	}
	return nil
}

// back redirects after a POST (303), with a message for the next page.
func back(w http.ResponseWriter, r *http.Request, path, flash string) {
	if flash != "" {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		path += sep + url.Values{"flash": {flash}}.Encode()
	}
	http.Redirect(w, r, path, http.StatusSeeOther)
}
