package httpapi

import (
	"context"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/cabudget"
)

type caBudget struct {
	CA         string     `json:"ca" example:"letsencrypt"`
	Kind       string     `json:"kind" enum:"orders" doc:"New orders per ACME account."`
	Account    string     `json:"account" example:"1" doc:"Which of dcvaas's accounts at the CA (1-based)."`
	Capacity   int        `json:"capacity" doc:"Tokens the budget holds when full (the CA's limit)."`
	Window     string     `json:"window" example:"3h" doc:"The limit's window: one token returns every window/capacity."`
	Remaining  int        `json:"remaining" doc:"Tokens left now."`
	NextRefill *time.Time `json:"nextRefill,omitempty" doc:"When the next token returns; absent when full."`
	Taken      int64      `json:"taken" doc:"Orders counted against the budget so far."`
	Exempt     int64      `json:"exempt" doc:"ARI renewals (replaces) counted but not limited: the CA exempts them."`
}

type caBudgetList struct {
	Items []caBudget `json:"items" nullable:"false"`
}

type caBudgetsOutput struct {
	Body caBudgetList
}

// listCABudgets shows the cluster's CA order budgets: the service's own
// state, so admin tokens only; per-domain budgets, which name customers'
// domains, are not shown.
func (s *server) listCABudgets(ctx context.Context, _ *struct{}) (*caBudgetsOutput, error) {
	if actorFrom(ctx).TokenRole != dcvaas.TokenAdmin {
		return nil, dcvaas.Errorf(dcvaas.EFORBIDDEN, "CA budgets are shown to admin tokens only")
	}
	if s.budgets == nil {
		return nil, dcvaas.Errorf(dcvaas.ENOTIMPLEMENTED, "CA budgets are not kept on this server")
	}
	states, err := cabudget.Overview(ctx, s.budgets, s.budgetCAs)
	if err != nil {
		return nil, err
	}
	now := s.now()
	out := &caBudgetsOutput{Body: caBudgetList{Items: []caBudget{}}}
	for _, st := range states {
		b := caBudget{CA: st.CA, Kind: string(st.Kind), Account: st.Subject, Capacity: st.Limit.Count,
			Window: st.Limit.WindowString(), Remaining: st.Remaining(now),
			Taken: st.Taken, Exempt: st.Exempt}
		if t := st.NextRefill(now); !t.IsZero() {
			t = t.UTC()
			b.NextRefill = &t
		}
		out.Body.Items = append(out.Body.Items, b)
	}
	return out, nil
}
