package httpapi

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/apitoken"
)

// bearerScheme names the security scheme in the OpenAPI document.
const bearerScheme = "bearer"

// bearer is the security requirement of every /api operation; the
// middleware below authenticates exactly the operations that carry it.
var bearer = []map[string][]string{{bearerScheme: {}}}

type actorKey struct{}

// orgSettingsKey holds the dcvaas.OrgSettings of the actor's organization,
// read with the token.
type orgSettingsKey struct{}

// admissionKey holds the *dcvaas.Admission of a request admitted in one
// step (Deps.Limiter), for limitRate.
type admissionKey struct{}

// orgSettingsFrom returns the defaults of the authenticated organization.
func orgSettingsFrom(ctx context.Context) dcvaas.OrgSettings {
	s, _ := ctx.Value(orgSettingsKey{}).(dcvaas.OrgSettings)
	return s
}

// actorFrom returns the authenticated actor of the request. Operations with
// the bearer requirement always have one; a zero Actor (no organization)
// would only ever find nothing.
func actorFrom(ctx context.Context) dcvaas.Actor {
	a, _ := ctx.Value(actorKey{}).(dcvaas.Actor)
	return a
}

// authenticate resolves the bearer token into the request's Actor.
func (s *server) authenticate(hctx huma.Context, next func(huma.Context)) {
	if len(hctx.Operation().Security) == 0 {
		next(hctx)
		return
	}
	tok, ok := bearerToken(hctx.Header("Authorization"))
	if !ok {
		s.refuse(hctx, dcvaas.Errorf(dcvaas.EUNAUTHORIZED, "missing bearer token"))
		return
	}
	// The checksum rejects garbage and typos before they cost a query.
	if !apitoken.Valid(tok) {
		s.refuse(hctx, dcvaas.Errorf(dcvaas.EUNAUTHORIZED, "invalid, expired or revoked token"))
		return
	}
	ctx := hctx.Context()
	now := s.now()
	var auth *dcvaas.Authenticated
	var admission *dcvaas.Admission
	if s.admitter != nil {
		// The rate-limit count is taken here too; limitRate applies it.
		a, err := s.admitter.Admit(ctx, apitoken.Hash(tok), s.rateLimit, s.userRateLimit, now)
		if err != nil {
			s.refuse(hctx, err)
			return
		}
		auth, admission = a.Auth, &a
	} else {
		var err error
		if auth, err = s.store.Authenticate(ctx, apitoken.Hash(tok), now); err != nil {
			s.refuse(hctx, err)
			return
		}
	}
	s.touch(ctx, auth.Token.ID, now)
	if ri := infoFrom(ctx); ri != nil {
		ri.orgID = auth.Token.OrgID // for the access log (requestid.go)
	}
	actor := dcvaas.Actor{
		OrgID:      auth.Token.OrgID,
		UserID:     auth.Token.UserID,
		TokenID:    auth.Token.ID,
		TokenRole:  auth.Token.Role,
		Scope:      auth.Token.Scope,
		MemberRole: auth.MemberRole,
		IP:         s.clientIP(hctx),
		UserAgent:  hctx.Header("User-Agent"),
	}
	hctx = huma.WithValue(huma.WithValue(hctx, actorKey{}, actor), orgSettingsKey{}, auth.OrgSettings)
	if admission != nil {
		hctx = huma.WithValue(hctx, admissionKey{}, admission)
	}
	next(hctx)
}

// authorize refuses every mutation to read-only tokens. It runs after the
// rate limit so that refused requests count against the budget too.
// Delivery tokens are held by servers, not people: they get their few
// operations (deliveryOperations) and 403 for everything else, reads too.
func (s *server) authorize(hctx huma.Context, next func(huma.Context)) {
	if len(hctx.Operation().Security) > 0 {
		role := actorFrom(hctx.Context()).TokenRole
		if role == dcvaas.TokenDelivery && !deliveryOperations[hctx.Operation().OperationID] {
			s.writeProblem(hctx, dcvaas.Errorf(dcvaas.EFORBIDDEN, "a delivery token only lists domains and reads their certificates and keys"))
			return
		}
		if isMutation(hctx.Method()) && !readOperations[hctx.Operation().OperationID] && !actorFrom(hctx.Context()).CanChange() &&
			!(role == dcvaas.TokenDelivery && deliveryMutations[hctx.Operation().OperationID]) {
			s.writeProblem(hctx, dcvaas.Errorf(dcvaas.EFORBIDDEN, "this token is read-only"))
			return
		}
	}
	next(hctx)
}

// readOperations are POSTs that change nothing: the PKCS #12 download
// takes its password in the body. Their handlers check who may read.
var readOperations = map[string]bool{"getCertificatePKCS12": true}

func isMutation(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// bearerToken extracts the token of an "Authorization: Bearer <token>"
// header; the scheme name is case-insensitive (RFC 9110 §11.1).
func bearerToken(header string) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// remoteIP is the peer's address. X-Forwarded-For is deliberately ignored:
// any client can send it, and the audit log must not record a forged IP.
func remoteIP(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}

// touchInterval is how stale a token's last_used_at may get: recording
// every request would turn each read into a write.
const touchInterval = time.Minute

// touchThrottle remembers when each token's use was last recorded.
type touchThrottle struct {
	mu   sync.Mutex
	last map[string]time.Time
}

// due reports whether the use of token id at now should be recorded, and
// if so counts it as recorded.
func (t *touchThrottle) due(id string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.last == nil {
		t.last = map[string]time.Time{}
	}
	if last, ok := t.last[id]; ok && now.Sub(last) < touchInterval {
		return false
	}
	// Forget tokens idle for a while so the map stays as small as the set
	// of tokens in active use.
	if len(t.last) >= 10000 {
		for k, v := range t.last {
			if now.Sub(v) >= touchInterval {
				delete(t.last, k)
			}
		}
	}
	t.last[id] = now
	return true
}

// touch records a token's use at most once per touchInterval. A failure is
// logged, never the request's problem: last_used_at is a convenience.
func (s *server) touch(ctx context.Context, id string, now time.Time) {
	if !s.touches.due(id, now) {
		return
	}
	if err := s.store.TouchToken(context.WithoutCancel(ctx), id, now); err != nil {
		s.log.WarnContext(ctx, "record token use", "tokenId", id, "err", err)
	}
}

// secretOperations answer with a secret: a new token's plaintext, a
// private key, or an authorization URL or redirect whose state lets a
// browser finish an OAuth flow. Their responses, problems included, must
// never be kept by a browser or a shared cache (RFC 9111 §5.2.2.5).
var secretOperations = map[string]bool{
	"createToken":          true,
	"getCertificateKey":    true,
	"getCertificatePKCS12": true,
	"authorizeProvider":    true,
	"oauthCallback":        true,
	"createWebhook":        true, // webhook signing secrets
	"rotateWebhookSecret":  true,
}

// noStore marks the responses of secretOperations no-store before the
// handler runs, so that every answer carries it, errors too.
func (s *server) noStore(hctx huma.Context, next func(huma.Context)) {
	if secretOperations[hctx.Operation().OperationID] {
		hctx.SetHeader("Cache-Control", "no-store")
	}
	next(hctx)
}
