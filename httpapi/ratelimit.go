package httpapi

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/ratelimit"
)

// limitRate counts every authenticated request against its user's and its
// organization's per-minute budgets (GCRA, dcvaas.TakeRequest) and reports
// the tighter one in the RateLimit-* headers
// (draft-ietf-httpapi-ratelimit-headers); over budget is 429 with
// Retry-After.
func (s *server) limitRate(hctx huma.Context, next func(huma.Context)) {
	if len(hctx.Operation().Security) == 0 || s.limiter == nil || s.rateLimit <= 0 {
		next(hctx)
		return
	}
	ctx := hctx.Context()
	actor := actorFrom(ctx)
	now := s.now()
	var d dcvaas.RateDecision
	var err error
	if a, ok := ctx.Value(admissionKey{}).(*dcvaas.Admission); ok {
		d, err = a.Rate, a.RateErr // counted by authenticate
	} else {
		d, err = dcvaas.TakeRequest(ctx, s.limiter, actor.UserID, s.userRateLimit, actor.OrgID, s.rateLimit, now)
	}
	if err != nil {
		// Fail open. The limit protects capacity and fairness, it is not an
		// access control: refusing every request because the counter (a
		// table in the shared database) hiccupped would turn a degraded
		// limiter into a full outage. Authentication already succeeded.
		s.log.WarnContext(ctx, "rate limiter failed; request allowed", "organizationId", actor.OrgID, "err", err)
		next(hctx)
		return
	}
	setRateHeaders(hctx.SetHeader, d, now)
	if !d.Allowed {
		s.writeProblem(hctx, rateLimited(d, now))
		return
	}
	next(hctx)
}

// setRateHeaders reports d in the RateLimit-* headers, and Retry-After
// when it refused.
func setRateHeaders(set func(k, v string), d dcvaas.RateDecision, now time.Time) {
	set("RateLimit-Limit", strconv.Itoa(d.Limit))
	set("RateLimit-Remaining", strconv.Itoa(max(d.Remaining, 0)))
	set("RateLimit-Reset", strconv.Itoa(max(secondsUntil(d.Reset, now), 1)))
	if !d.Allowed {
		set("Retry-After", strconv.Itoa(retryAfter(d, now)))
	}
}

func retryAfter(d dcvaas.RateDecision, now time.Time) int {
	return max(secondsUntil(d.RetryAt, now), 1)
}

func rateLimited(d dcvaas.RateDecision, now time.Time) error {
	return dcvaas.Errorf(dcvaas.ERATELIMITED,
		"rate limit of %d requests per minute exceeded; retry in %d seconds", d.Limit, retryAfter(d, now))
}

// secondsUntil rounds up, so that a client waiting that long finds the
// budget there.
func secondsUntil(t, now time.Time) int {
	return max(int(math.Ceil(t.Sub(now).Seconds())), 0)
}

// clientIP is the address the request came from (ratelimit.ClientIP).
func (s *server) clientIP(hctx huma.Context) string {
	if ip := clientIPFrom(hctx.Context()); ip != "" {
		return ip
	}
	r, _ := humago.Unwrap(hctx)
	return ratelimit.ClientIP(r, s.proxies)
}

func clientIPFrom(ctx context.Context) string { return ratelimit.ClientIPFrom(ctx) }

// keyReadDenied puts a refused private-key read on the security audit.
func (s *server) keyReadDenied(ctx context.Context, orgID string) {
	s.secAudit.Add(dcvaas.SecurityKeyReadDenied, orgID, clientIPFrom(ctx))
}

// refuse answers a request whose authentication failed (err). Failed
// authentications count against the client address's budget for
// unauthenticated traffic: past it the answer is 429, which a client
// guessing tokens, or looping on a revoked one, cannot tell from anything
// else. Valid tokens never spend that budget.
func (s *server) refuse(hctx huma.Context, err error) {
	if dcvaas.ErrorCode(err) != dcvaas.EUNAUTHORIZED {
		s.writeProblem(hctx, err)
		return
	}
	ip := s.clientIP(hctx)
	s.secAudit.Add(dcvaas.SecurityAuthFailed, "", ip) // in aggregate
	if s.ipLimiter != nil {
		now := s.now()
		if d, _ := s.ipLimiter.Take(hctx.Context(), dcvaas.IPRateKey(ratelimit.Key(ip)), s.ipRateLimit, now); !d.Allowed {
			hctx.SetHeader("Retry-After", strconv.Itoa(retryAfter(d, now)))
			s.writeProblem(hctx, rateLimited(d, now))
			return
		}
	}
	s.writeProblem(hctx, err)
}

// unauthenticatedPaths are the endpoints anyone may call without a token,
// whose every request counts against its client address's budget: the
// dashboard's sign-in and the OAuth callbacks.
func unauthenticatedPath(r *http.Request) bool {
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/signin":
		return true
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/api/oauth/") && strings.HasSuffix(r.URL.Path, "/callback"):
		return true
	}
	return false
}

// clientAddress notes the request's client address in its context and
// limits the unauthenticated endpoints per client address (in this
// process: a flood must not turn into database writes).
func (s *server) clientAddress(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip := ratelimit.ClientIP(r, s.proxies)
		orig := r
		r = r.WithContext(ratelimit.WithClientIP(r.Context(), ip))
		if s.ipLimiter == nil || !unauthenticatedPath(r) {
			next.ServeHTTP(w, r)
			orig.Pattern = r.Pattern // the mux's route, for the access log
			return
		}
		now := s.now()
		d, _ := s.ipLimiter.Take(r.Context(), dcvaas.IPRateKey(ratelimit.Key(ip)), s.ipRateLimit, now)
		if d.Allowed {
			next.ServeHTTP(w, r)
			return
		}
		setRateHeaders(w.Header().Set, d, now)
		writeProblemHTTP(w, http.StatusTooManyRequests, dcvaas.ErrorMessage(rateLimited(d, now)))
	})
}

// writeProblemHTTP writes a problem outside huma (plain net/http
// middleware), in the same shape fillProblem gives huma's.
func writeProblemHTTP(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(&huma.ErrorModel{Type: problemType(status), Title: http.StatusText(status), Status: status, Detail: detail})
}

// documentHeaders adds the headers the middleware sets to the OpenAPI
// description of every authenticated operation; huma only knows the ones
// declared on output structs.
func documentHeaders(_ *huma.OpenAPI, op *huma.Operation) {
	if len(op.Security) == 0 {
		return
	}
	integer := func(doc string) *huma.Header {
		return &huma.Header{Description: doc, Schema: &huma.Schema{Type: huma.TypeInteger}}
	}
	limits := map[string]*huma.Header{
		"RateLimit-Limit":     integer("Requests per minute allowed: of the user's or the organization's budget, whichever has less left."),
		"RateLimit-Remaining": integer("Requests that may be made at once now; one comes back every minute/limit."),
		"RateLimit-Reset":     integer("Seconds until the whole budget is back."),
	}
	for status, r := range op.Responses {
		if status == "401" {
			if r.Headers == nil {
				r.Headers = map[string]*huma.Header{}
			}
			r.Headers["WWW-Authenticate"] = &huma.Header{Description: "The scheme to authenticate with: Bearer.", Schema: &huma.Schema{Type: huma.TypeString}}
			continue
		}
		if r.Headers == nil {
			r.Headers = map[string]*huma.Header{}
		}
		for k, v := range limits {
			r.Headers[k] = v
		}
		if status == "429" {
			r.Headers["Retry-After"] = integer("Seconds to wait before the next request.")
		}
	}
}
