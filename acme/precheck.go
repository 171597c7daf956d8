package acme

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dcvaas/dcvaas"
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
		return nil
	}
	at := oldest.Add(validationWindow)
	return &dcvaas.Error{Code: dcvaas.ERATELIMITED,
		Message: fmt.Sprintf("validation of %s failed %d times in the last hour; the next attempt can be made after %s",
			d.Name, n, at.UTC().Format(time.RFC3339)),
		Err: &Error{RetryAt: at, Err: errors.New("failed validation limit")}}
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
