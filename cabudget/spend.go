package cabudget

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/publicsuffix"
)

// Spend is one token an order takes from one budget.
type Spend struct {
	// Key identifies the budget across the cluster:
	// "<ca>/<kind>/<subject>".
	Key     string
	CA      string
	Kind    Kind
	Subject string // account number, registered domain or name set
	Limit   Limit
}

// Name is how people see the budget: "letsencrypt orders budget",
// "letsencrypt per-domain budget of example.com".
func (s Spend) Name() string { return budgetName(s.CA, s.Kind, s.Subject) }

func budgetName(ca string, k Kind, subject string) string {
	switch k {
	case Orders:
		if subject == "" || subject == "1" {
			return ca + " orders budget"
		}
		return ca + " orders budget of account " + subject
	case PerDomain:
		return ca + " per-domain budget of " + subject
	case Duplicate:
		return ca + " duplicate-certificate budget of " + subject
	}
	return ca + " " + string(k) + " budget of " + subject
}

// RegisteredDomain is the name a CA counts certificates under: the public
// suffix plus one label (shop.example.co.uk → example.co.uk). A name that
// is itself a public suffix, or unlisted, counts as itself.
func RegisteredDomain(name string) string {
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	name = strings.TrimPrefix(name, "*.")
	r, err := publicsuffix.EffectiveTLDPlusOne(name)
	if err != nil {
		return name
	}
	return r
}

// OrderSpends lists the budgets a new order of ca with names (apex first,
// wildcard maybe) on account (1-based) takes from: the account's orders,
// the registered domain's certificates, the name set's duplicates.
// Unlimited budgets are left out.
func OrderSpends(ca string, lim Limits, account int, names []string) []Spend {
	set := slices.Clone(names)
	slices.Sort(set)
	set = slices.Compact(set)
	acct := strconv.Itoa(max(account, 1))
	var out []Spend
	add := func(k Kind, subject string) {
		l := lim[k]
		if l.Unlimited() {
			return
		}
		out = append(out, Spend{Key: ca + "/" + string(k) + "/" + subject, CA: ca, Kind: k, Subject: subject, Limit: l})
	}
	add(Orders, acct)
	if len(set) > 0 {
		add(PerDomain, RegisteredDomain(set[0]))
		add(Duplicate, strings.Join(set, ","))
	}
	// Taken in key order, so that nodes taking overlapping budgets lock
	// their rows in the same order and never deadlock.
	slices.SortFunc(out, func(a, b Spend) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// Wait says that an order must wait for a budget to refill: the job is
// deferred to Until, not failed.
type Wait struct {
	// For names the empty budget: "letsencrypt orders budget".
	For   string
	Until time.Time
}

func (w *Wait) Error() string {
	return fmt.Sprintf("waiting for %s until %s", w.For, w.Until.UTC().Format(time.RFC3339))
}

// FailOver reports whether a wait is long enough to try the next CA
// instead: longer than after.
func FailOver(w *Wait, now time.Time, after time.Duration) bool {
	return w.Until.Sub(now) > after
}

// State is one budget as stored.
type State struct {
	Key     string
	CA      string
	Kind    Kind
	Subject string
	Limit   Limit
	TAT     time.Time
	// Taken counts tokens taken; Exempt counts orders the CA exempts
	// (ARI renewals), counted but not limited.
	Taken  int64
	Exempt int64
}

// Remaining is the tokens the budget holds at now.
func (s State) Remaining(now time.Time) int { return Remaining(s.Limit, s.TAT, now) }

// NextRefill is when the next token returns; zero when full.
func (s State) NextRefill(now time.Time) time.Time { return NextRefill(s.Limit, s.TAT, now) }

// Name is the budget's display name.
func (s State) Name() string { return budgetName(s.CA, s.Kind, s.Subject) }

// Store keeps budgets where every node sees them.
type Store interface {
	// TakeBudgets takes one token from each of spends at now, all or
	// none. When one is empty it takes none and returns the Wait until
	// all of them have a token. exempt counts the order on each budget
	// without taking a token (the CA exempts it).
	TakeBudgets(ctx context.Context, spends []Spend, now time.Time, exempt bool) (*Wait, error)
	// ListBudgets returns every stored budget of the kinds given (all
	// when none), ordered by key.
	ListBudgets(ctx context.Context, kinds ...Kind) ([]State, error)
}
