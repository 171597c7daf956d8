package acme

import (
	"context"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/cabudget"
	acmeapi "github.com/mholt/acmez/v3/acme"
)

// takeBudget takes, from the cluster-wide budgets, what the new order req
// spends at the session's CA: a new order of the account, a certificate of
// the registered domain, one of the name set. An order that carries ARI's
// replaces is counted but not limited: the CA exempts it (Let's Encrypt
// does, from all its limits), and holding a renewal back for new orders'
// sake would let certificates expire. again says req was already counted
// as exempt and is now an ordinary order.
//
// An empty budget returns a *dcvaas.Error whose Err is the
// *cabudget.Wait: the job is deferred to the refill, not failed.
func (s *session) takeBudget(ctx context.Context, req acmeapi.Order, again bool) error {
	b := s.is.cfg.Budgets
	if b == nil {
		return nil
	}
	names := make([]string, len(req.Identifiers))
	for i, id := range req.Identifiers {
		names[i] = id.Value
	}
	spends := cabudget.OrderSpends(s.ca.Name, s.ca.Limits, s.accountNumber, names)
	exempt := req.Replaces != "" && !again
	w, err := b.TakeBudgets(ctx, spends, s.is.now(), exempt)
	if err != nil {
		return err
	}
	if w != nil {
		return waitError(w)
	}
	return nil
}

func waitError(w *cabudget.Wait) error {
	return &dcvaas.Error{Code: dcvaas.ERATELIMITED, Message: w.Error(), Err: w}
}
