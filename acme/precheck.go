package acme

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/cabudget"
	"github.com/dcvaas/dcvaas/resolve"
)

// validationWindow is the hour over which failed validations count.
const validationWindow = time.Hour

// checkFailedValidations refuses to order when the hostname failed
// validation MaxFailedValidations times in the last hour. Let's Encrypt
// enforces the same limit per account and hostname; staying under it
// keeps one broken customer from locking dcvaas's account out for others,
// and another failure now would most likely fail the same way.
func (is *Issuer) checkFailedValidations(ctx context.Context, d *dcvaas.Domain, now time.Time) error {
	n, oldest, err := is.cfg.Store.ValidationFailuresSince(ctx, d.Name, now.Add(-validationWindow))
	if err != nil {
		return err
	}
	if n < is.cfg.MaxFailedValidations {
		return is.checkFailingDays(ctx, d, now)
	}
	// The hour is waited out (a deferral, no attempt used), as the CA
	// would refuse the order until then.
	at := oldest.Add(validationWindow)
	return waitError(&cabudget.Wait{For: "failed-authorization budget of " + d.Name, Until: at})
}

// checkFailingDays gives a domain up when its validations have failed for
// MaxFailedDays without a certificate since: Let's Encrypt pauses an
// account+hostname pair after long runs of failures ("zombie clients"),
// which would hold back every other customer's renewal of that name.
// The error is EINVALID, which fails the job for good and a
// start_issuance's domain with it.
func (is *Issuer) checkFailingDays(ctx context.Context, d *dcvaas.Domain, now time.Time) error {
	since := d.CreatedAt
	if d.LastIssuedAt != nil && d.LastIssuedAt.After(since) {
		since = *d.LastIssuedAt
	}
	n, first, err := is.cfg.Store.ValidationFailuresSince(ctx, d.Name, since)
	if err != nil || n == 0 || now.Sub(first) < is.cfg.MaxFailedDays {
		return err
	}
	// A run of failures that ended long ago (the customer fixed it and
	// nothing was ordered since) is not a live run.
	recent, _, err := is.cfg.Store.ValidationFailuresSince(ctx, d.Name, now.Add(-24*time.Hour))
	if err != nil || recent == 0 {
		return err
	}
	// certificate.failed events belong here (issue 7's outbox, written by
	// the jobs engine when it records this failure).
	return dcvaas.Errorf(dcvaas.EINVALID, "validation of %s has failed %d times over %d days since %s; dcvaas stopped trying before the CA pauses it: fix the delegation and verify the domain again",
		d.Name, n, int(now.Sub(first).Hours()/24), first.UTC().Format(time.RFC3339))
}

// checkDelegation looks for the customer's CNAME the way the CA will,
// before ordering: without it every validation fails and counts against
// the hourly limit. This is what tells a renewal whose customer removed
// the record, while the old certificate stays served.
func (is *Issuer) checkDelegation(ctx context.Context, d *dcvaas.Domain) error {
	name := "_acme-challenge." + d.Name
	c, err := is.cfg.Resolver.FollowCNAME(ctx, name, d.CNAMETarget)
	if err != nil {
		var re *resolve.Error
		reason := "lookup failed"
		if errors.As(err, &re) {
			reason = re.Reason()
		}
		return &dcvaas.Error{Code: dcvaas.EUNAVAILABLE, Message: fmt.Sprintf("DNS lookup of %s failed (%s); it will be tried again", name, reason), Err: err}
	}
	if c.Reaches(d.CNAMETarget) {
		return nil
	}
	var found string
	switch {
	case len(c.Targets) > 0:
		found = "it points to " + strings.Join(c.Targets, " → ")
	case len(c.TXT) > 0:
		found = "it has a TXT record instead (left by another ACME client?)"
	default:
		found = "it has no CNAME record"
	}
	return dcvaas.Errorf(dcvaas.ECONFLICT, "the delegation is missing: %s must be a CNAME to %s, but %s", name, d.CNAMETarget, found)
}
