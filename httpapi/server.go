// Package httpapi is the REST API of dcvaas: huma v2 on net/http, bearer
// token auth, per-organization rate limits, CORS and RFC 9457 problem
// details. NewServer returns the whole thing as one http.Handler; every
// route is listed in routes.go.
package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/dcvaas/dcvaas/cabudget"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/acme"
	"github.com/dcvaas/dcvaas/connection"
	"github.com/dcvaas/dcvaas/crypt"
	"github.com/dcvaas/dcvaas/delivery"
	"github.com/dcvaas/dcvaas/event"
	"github.com/dcvaas/dcvaas/gencache"
	"github.com/dcvaas/dcvaas/logsample"
	"github.com/dcvaas/dcvaas/ratelimit"
	"github.com/dcvaas/dcvaas/secaudit"
	"github.com/dcvaas/dcvaas/session"
	"github.com/dcvaas/dcvaas/webhook"
)

// apiVersion is the version of the API contract in the OpenAPI document.
// It is not dcvaas.Version: the committed OPENAPI.json must not change with
// every build.
const apiVersion = "1.0.0"

// maxBodyBytes is the largest request body accepted; larger ones get 413.
const maxBodyBytes = 1 << 20

// Deps is everything the API needs from the rest of the program.
type Deps struct {
	Store dcvaas.Store
	// Limiter counts requests. One that is also a dcvaas.Admitter (the
	// PostgreSQL store) authenticates and counts each request in one step.
	Limiter dcvaas.RateLimiter
	// RateLimit is the number of requests per minute per organization;
	// zero or less (or a nil Limiter) disables the limit.
	RateLimit int
	// UserRateLimit is the number of requests per minute per user, all of
	// the user's tokens in every organization together; zero: RateLimit,
	// less than zero: none.
	UserRateLimit int
	// IPRateLimit is the number of unauthenticated requests (failed
	// authentications, OAuth callbacks, dashboard sign-ins) per minute per
	// client address, counted in this process; zero or less: none.
	IPRateLimit int
	// TrustedProxies are the peers whose X-Forwarded-For names the client
	// (ratelimit.ClientIP); empty: the peer is the client.
	TrustedProxies []netip.Prefix
	// StoreTimeout bounds how long a request's work may take (its context
	// deadline), except for the event stream and the operations that call
	// DNS providers; past it the request answers 503 with Retry-After. 0:
	// DefaultStoreTimeout.
	StoreTimeout time.Duration
	// Unavailable reports whether an error means the store could not do
	// the work in time (sqlstore.IsUnavailable): 503 with Retry-After
	// instead of 500. nil: only a passed deadline.
	Unavailable func(error) bool
	// SecurityAudit counts failed authentications and denied private-key
	// reads in aggregate; nil: not recorded.
	SecurityAudit *secaudit.Recorder
	// VerifyZone is our delegation zone; CNAME targets are <label>.<zone>.
	VerifyZone string
	// AllowTLDs lets domain names under these labels through although
	// they are not public (DCVAAS_ALLOW_TLDS; domainname.CheckPublic).
	AllowTLDs   []string
	CORSOrigins []string
	// HardDelete removes deleted domains instead of marking them.
	HardDelete bool
	Clock      dcvaas.Clock
	Logger     *slog.Logger
	// Ready reports whether the service can take traffic (GET /readyz).
	Ready func(context.Context) error
	// Connections serves DNS provider connections, OAuth and one-click
	// setup; nil answers those routes with 501.
	Connections *connection.Service
	// Keyring opens certificates' private keys for the key endpoint
	// (certkey.go); nil answers it with 501.
	Keyring *crypt.Keyring
	// Events serves GET /api/events and, with Hub, the SSE stream; nil
	// answers them with 501.
	Events dcvaas.EventStore
	// Hub fans new events out to the SSE streams of this node.
	Hub *event.Hub
	// StreamHeartbeat is the SSE idle interval (event.DefaultHeartbeat when 0).
	StreamHeartbeat time.Duration
	// Sessions reads browsers' sign-ins for the OAuth callback; nil: no
	// browser is ever signed in, so no callback completes.
	Sessions *session.Manager
	// UI, when set, serves every path the API does not (the dashboard).
	UI http.Handler
	// Metrics, when set, is served at GET /metrics (Prometheus text
	// format, no token: it holds no secret and no per-organization data).
	Metrics http.Handler
	// Budgets and BudgetCAs serve GET /api/ca-budgets; nil Budgets
	// answers it with 501.
	Budgets   cabudget.Store
	BudgetCAs []cabudget.CAConfig
	// Webhooks serves /api/webhooks; nil answers those routes with 501.
	Webhooks *webhook.Service
}

// server holds the dependencies the handlers share.
type server struct {
	store   dcvaas.Store
	limiter dcvaas.RateLimiter
	// admitter is limiter when it is a dcvaas.Admitter and the limit is on.
	admitter  dcvaas.Admitter
	rateLimit int
	// userRateLimit is Deps.UserRateLimit resolved (≤ 0: none).
	userRateLimit int
	// ipLimiter counts unauthenticated requests per client address; nil
	// when IPRateLimit is off.
	ipLimiter   *ratelimit.Memory
	ipRateLimit int
	proxies     []netip.Prefix
	secAudit    *secaudit.Recorder
	// storeTimeout and unavailable are Deps' (overload.go).
	storeTimeout time.Duration
	unavailable  func(error) bool
	// quiet is log sampled per message, route and status: what
	// unauthenticated requests make the server write is bounded.
	quiet      *slog.Logger
	verifyZone string
	allowTLDs  []string
	hardDelete bool
	now        dcvaas.Clock
	log        *slog.Logger
	ready      func(context.Context) error
	// connections is nil when not configured (connectionsService).
	connections *connection.Service
	keyring     *crypt.Keyring
	metrics     http.Handler
	events      dcvaas.EventStore
	hub         *event.Hub
	heartbeat   time.Duration
	sessions    *session.Manager
	ui          http.Handler
	budgets     cabudget.Store
	budgetCAs   []cabudget.CAConfig
	webhooks    *webhook.Service

	api     huma.API
	touches touchThrottle
	// bundles answers the Caddy endpoint from memory (tls.go); nil when
	// the store or the keyring cannot serve keys.
	bundles  *delivery.Bundles
	keyReads keyReadLog
	// lists keeps encoded domain list pages while the store is unchanged.
	lists *gencache.Cache[listKey, []byte]
	// openapi is the 3.0.3 document served at /openapi.json.
	openapi []byte
}

// NewServer returns the HTTP API.
func NewServer(deps Deps) http.Handler {
	s := &server{
		store:         deps.Store,
		budgets:       deps.Budgets,
		budgetCAs:     deps.BudgetCAs,
		limiter:       deps.Limiter,
		rateLimit:     deps.RateLimit,
		userRateLimit: deps.UserRateLimit,
		ipRateLimit:   deps.IPRateLimit,
		proxies:       deps.TrustedProxies,
		secAudit:      deps.SecurityAudit,
		storeTimeout:  deps.StoreTimeout,
		unavailable:   deps.Unavailable,
		verifyZone:    strings.ToLower(strings.TrimSuffix(strings.TrimSpace(deps.VerifyZone), ".")),
		allowTLDs:     deps.AllowTLDs,
		hardDelete:    deps.HardDelete,
		now:           deps.Clock,
		log:           deps.Logger,
		ready:         deps.Ready,

		connections: deps.Connections,
		keyring:     deps.Keyring,
		metrics:     deps.Metrics,
		events:      deps.Events,
		hub:         deps.Hub,
		heartbeat:   deps.StreamHeartbeat,
		sessions:    deps.Sessions,
		ui:          deps.UI,
		lists:       newListCache(),
		webhooks:    deps.Webhooks,
	}
	if src, ok := deps.Store.(delivery.Source); ok && deps.Keyring != nil {
		s.bundles = delivery.NewBundles(src, func(c *dcvaas.Certificate) ([]byte, error) {
			k, err := deps.Keyring.Decrypt(c.PrivateKeyEnc, acme.CertificateKeyAD(c.ID))
			if err != nil {
				return nil, fmt.Errorf("open private key of certificate %s: %w", c.ID, err)
			}
			return k, nil
		}, deps.Clock)
	}
	if ks, ok := deps.Store.(keyReadStore); ok {
		s.keyReads.store = ks
	}
	s.keyReads.log = s.log.WarnContext
	if s.storeTimeout <= 0 {
		s.storeTimeout = DefaultStoreTimeout
	}
	if s.unavailable == nil {
		s.unavailable = func(err error) bool { return errors.Is(err, context.DeadlineExceeded) }
	}
	if s.userRateLimit == 0 {
		s.userRateLimit = s.rateLimit
	}
	if s.ipRateLimit > 0 {
		s.ipLimiter = ratelimit.NewMemory()
	}
	if a, ok := deps.Limiter.(dcvaas.Admitter); ok && deps.RateLimit > 0 {
		s.admitter = a
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = WithRequestID(s.log) // requestid.go
	s.quiet = logsample.Logger(s.log, 20, "route", "status")
	mux := http.NewServeMux()
	s.api = newAPI(mux)
	s.api.UseMiddleware(s.noStore, s.bound, s.authenticate, s.limitRate, s.authorize)
	addRoutes(mux, s.api, s)
	doc, err := document(s.api)
	if err != nil {
		// The document is built from static Go types; failing here is a
		// programming error that every test would hit, like a bad route.
		panic(fmt.Sprintf("httpapi: openapi document: %v", err))
	}
	s.openapi = doc
	return accessLog(s.log, s.quiet, cors(deps.CORSOrigins, s.clientAddress(mux)))
}

// OpenAPI returns the API's OpenAPI 3.0.3 document as indented JSON; the
// output is deterministic, so the committed OPENAPI.json can be compared.
func OpenAPI() ([]byte, error) {
	mux := http.NewServeMux()
	api := newAPI(mux)
	addRoutes(mux, api, &server{now: time.Now, log: slog.New(slog.DiscardHandler)})
	return document(api)
}

// newAPI configures huma: no default docs, schema or spec routes (we serve
// the 3.0.3 document ourselves), no $schema links in bodies, unknown query
// parameters refused, and problem details completed by fillProblem.
func newAPI(mux *http.ServeMux) huma.API {
	// Property names are matched case-exactly, by validation as by the
	// decoder (decode.go): "Role" is not "role".
	huma.ValidateStrictCasing = true
	cfg := huma.DefaultConfig("dcvaas", apiVersion)
	cfg.OpenAPIPath, cfg.DocsPath, cfg.SchemasPath = "", "", ""
	cfg.CreateHooks = nil
	cfg.Formats = map[string]huma.Format{"application/json": jsonFormat, "json": jsonFormat}
	cfg.RejectUnknownQueryParameters = true
	cfg.Transformers = []huma.Transformer{fillProblem}
	cfg.OnAddOperation = append(cfg.OnAddOperation, documentHeaders)
	cfg.Info.Description = "Delegated Domain Control Validation as a Service. Add a domain, create the one " +
		"CNAME record its `cnameRecord` names, and dcvaas obtains and renews its certificates.\n\n" +
		"Errors are RFC 9457 problem details (`application/problem+json`). List endpoints take " +
		"`limit` (1-200, default 50) and `offset`, and return `items`, `total`, `limit` and `offset`. " +
		"Every `/api` request counts against the organization's per-minute budget, reported in the " +
		"`RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` headers."
	cfg.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		bearerScheme: {
			Type:        "http",
			Scheme:      "bearer",
			Description: "An API token (`dcv_…`) in `Authorization: Bearer <token>`.",
		},
	}
	return humago.New(mux, cfg)
}

// document renders api's OpenAPI 3.1 description as indented 3.0.3 JSON.
func document(api huma.API) ([]byte, error) {
	raw, err := api.OpenAPI().Downgrade()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return nil, err
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

// serveOpenAPI serves the 3.0.3 document.
func (s *server) serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(s.openapi)
}
