package httpapi

import (
	"math"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/dcvaas/dcvaas"
)

// limitRate counts every authenticated request against its organization's
// per-minute budget and reports the budget in the RateLimit-* headers
// (draft-ietf-httpapi-ratelimit-headers); over budget is 429 with
// Retry-After.
func (s *server) limitRate(hctx huma.Context, next func(huma.Context)) {
	if len(hctx.Operation().Security) == 0 || s.limiter == nil || s.rateLimit <= 0 {
		next(hctx)
		return
	}
	ctx := hctx.Context()
	orgID := actorFrom(ctx).OrgID
	now := s.now()
	var d dcvaas.RateDecision
	var err error
	if a, ok := ctx.Value(admissionKey{}).(*dcvaas.Admission); ok {
		d, err = a.Rate, a.RateErr // counted by authenticate
	} else {
		d, err = s.limiter.Take(ctx, orgID, s.rateLimit, now)
	}
	if err != nil {
		// Fail open. The limit protects capacity and fairness, it is not an
		// access control: refusing every request because the counter (a
		// table in the shared database) hiccupped would turn a degraded
		// limiter into a full outage. Authentication already succeeded.
		s.log.WarnContext(ctx, "rate limiter failed; request allowed", "organizationId", orgID, "err", err)
		next(hctx)
		return
	}
	reset := secondsUntil(d.Reset, now)
	hctx.SetHeader("RateLimit-Limit", strconv.Itoa(d.Limit))
	hctx.SetHeader("RateLimit-Remaining", strconv.Itoa(max(d.Remaining, 0)))
	hctx.SetHeader("RateLimit-Reset", strconv.Itoa(reset))
	if !d.Allowed {
		hctx.SetHeader("Retry-After", strconv.Itoa(max(reset, 1)))
		s.writeProblem(hctx, dcvaas.Errorf(dcvaas.ERATELIMITED,
			"rate limit of %d requests per minute exceeded; retry in %d seconds", d.Limit, max(reset, 1)))
		return
	}
	next(hctx)
}

// secondsUntil rounds up, so that a client waiting that long finds the
// window over.
func secondsUntil(t, now time.Time) int {
	return max(int(math.Ceil(t.Sub(now).Seconds())), 0)
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
		"RateLimit-Limit":     integer("Requests per minute allowed for the organization."),
		"RateLimit-Remaining": integer("Requests left in the current window."),
		"RateLimit-Reset":     integer("Seconds until the window ends and the budget refills."),
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
