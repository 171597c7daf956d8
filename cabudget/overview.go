package cabudget

import (
	"context"
	"strconv"
)

// CAConfig is one configured CA as the overview needs it.
type CAConfig struct {
	Name     string
	Limits   Limits
	Accounts int // at least 1
}

// Overview returns the new-order budget of every account of every
// configured CA with an order limit, as stored (a budget never taken from
// is full). Per-domain and duplicate budgets are left out: they name
// customers' domains, which one organization must not see of another,
// and there is one per registered domain.
func Overview(ctx context.Context, s Store, cas []CAConfig) ([]State, error) {
	stored, err := s.ListBudgets(ctx, Orders)
	if err != nil {
		return nil, err
	}
	byKey := map[string]State{}
	for _, st := range stored {
		byKey[st.Key] = st
	}
	var out []State
	for _, ca := range cas {
		for n := 1; n <= max(ca.Accounts, 1); n++ {
			sp := OrderSpends(ca.Name, Limits{Orders: ca.Limits[Orders]}, n, nil)
			if len(sp) == 0 {
				continue
			}
			st, ok := byKey[sp[0].Key]
			if !ok {
				st = State{Key: sp[0].Key, CA: ca.Name, Kind: Orders, Subject: strconv.Itoa(n)}
			}
			st.Limit = ca.Limits[Orders] // the configured limit is the one in force
			out = append(out, st)
		}
	}
	return out, nil
}
