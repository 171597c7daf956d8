package jobs

import (
	"context"

	"github.com/dcvaas/dcvaas"
)

// Issuer obtains a certificate for a domain: the hook through which the
// ACME issue plugs start_issuance and renewal into the engine.
//
// Issue must be idempotent (a crash after the work and before the outcome
// is recorded runs it again): no second order while one is pending, "already
// active" is success. It stores the certificate and moves the domain to
// active itself. The result is kept as the job's result. An error is a
// failed attempt, retried with backoff, or when acme.RetryAt(err) names a
// later time (a CA's Retry-After) then; its message — a *dcvaas.Error's, or
// "internal error" for any other — becomes the job's and domain's
// lastError. A dcvaas.EINVALID error fails the job at once.
type Issuer interface {
	Issue(ctx context.Context, d *dcvaas.Domain, renewal bool) (result any, err error)
}

// errNoIssuer is what start_issuance and renewal report until an Issuer
// exists: a failed attempt like any other, so the jobs run through their
// retries into a dead letter instead of pretending to succeed.
var errNoIssuer = dcvaas.Errorf(dcvaas.ENOTIMPLEMENTED, "certificate issuance is not implemented yet")

func (e *Engine) issue(renewal bool) handler {
	return func(ctx context.Context, r *run) outcome {
		if !renewal && r.domain.Status == dcvaas.DomainActive {
			return succeed(map[string]any{"outcome": "already_active"})
		}
		if e.cfg.Issuer == nil {
			return e.retryErr(ctx, r, errNoIssuer)
		}
		result, err := e.cfg.Issuer.Issue(ctx, r.domain, renewal)
		if err != nil {
			return e.retryErr(ctx, r, err)
		}
		return succeed(result)
	}
}
