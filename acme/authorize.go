package acme

import (
	"context"
	"errors"
	"fmt"

	"github.com/dcvaas/dcvaas"
	acmeapi "github.com/mholt/acmez/v3/acme"
)

// authorize completes the order's pending authorizations with DNS-01
// (RFC 8555 §8.4): every TXT value is published first — apex and wildcard
// share the name _acme-challenge.<domain>, so both values must be there
// before the CA looks at either — then each challenge is started and its
// authorization polled (acmez honours Retry-After between polls).
//
// The values go under the domain's CNAME target: the customer's
// _acme-challenge CNAME leads the CA's resolver there. They are keyed by
// authorization URL, which makes publishing again on a resumed order a
// no-op and keeps the two values of one name apart.
func (s *session) authorize(ctx context.Context, d *dcvaas.Domain, order acmeapi.Order) error {
	type work struct {
		authz acmeapi.Authorization
		chal  acmeapi.Challenge
	}
	var todo []work
	for _, u := range order.Authorizations {
		authz, err := s.client.GetAuthorization(ctx, s.acct, u)
		if err != nil {
			return err
		}
		switch authz.Status {
		case acmeapi.StatusValid:
			continue // reused by the CA, or done before a restart
		case acmeapi.StatusPending:
		case acmeapi.StatusInvalid:
			return s.validationFailed(ctx, d, order.Location, authz)
		default:
			return fmt.Errorf("authorization %s for %s is %s", u, authz.IdentifierValue(), authz.Status)
		}
		i := -1
		for j, c := range authz.Challenges {
			if c.Type == acmeapi.ChallengeTypeDNS01 {
				i = j
			}
		}
		if i < 0 {
			return dcvaas.Errorf(dcvaas.EINVALID, "%s offers no dns-01 challenge for %s", s.ca.Name, authz.IdentifierValue())
		}
		chal := authz.Challenges[i]
		if err := s.is.cfg.Publisher.PublishTXT(ctx, d.CNAMETarget, u, chal.DNS01KeyAuthorization()); err != nil {
			return &dcvaas.Error{Code: dcvaas.EUNAVAILABLE, Message: "cannot publish the challenge record", Err: err}
		}
		todo = append(todo, work{authz, chal})
	}
	for _, w := range todo {
		// A challenge already processing was started by a run before a
		// restart; starting it again is at best useless.
		if w.chal.Status != acmeapi.StatusPending {
			continue
		}
		if _, err := s.client.InitiateChallenge(ctx, s.acct, w.chal); err != nil {
			return err
		}
	}
	for _, w := range todo {
		authz, err := s.client.PollAuthorization(ctx, s.acct, w.authz)
		if err != nil {
			if authz.Status == acmeapi.StatusInvalid {
				return s.validationFailed(ctx, d, order.Location, authz)
			}
			return err
		}
	}
	return nil
}

// validationFailed counts the failure against the hostname's hourly budget,
// forgets the order (one invalid authorization makes it invalid, RFC 8555
// §7.1.6) and explains the failure in the customer's terms.
func (s *session) validationFailed(ctx context.Context, d *dcvaas.Domain, orderURL string, authz acmeapi.Authorization) error {
	if err := s.is.cfg.Store.RecordValidationFailure(ctx, authz.Identifier.Value, s.ca.Name, d.ID); err != nil {
		s.is.log.WarnContext(ctx, "cannot count failed validation", "domain", d.Name, "err", err)
	}
	if err := s.is.cfg.Store.DeletePendingOrder(ctx, d.ID, orderURL); err != nil {
		return err
	}
	detail := "no reason given"
	for _, c := range authz.Challenges {
		if c.Error != nil {
			detail = problemDetail(*c.Error)
		}
	}
	return &dcvaas.Error{Code: dcvaas.ECONFLICT,
		Message: fmt.Sprintf("%s could not validate %s: %s; check that _acme-challenge.%s is a CNAME to %s",
			s.ca.Name, authz.IdentifierValue(), detail, d.Name, d.CNAMETarget),
		Err: errors.New("authorization invalid: " + authz.Location)}
}
