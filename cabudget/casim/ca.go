package casim

import (
	"time"

	"github.com/dcvaas/dcvaas/cabudget"
)

// simCA enforces the new-orders-per-account limit the way Let's Encrypt
// describes it ("up to 300 … every 3 hours … refills at a rate of 1 order
// every 36 seconds"): a continuous token bucket in floating point, written
// apart from cabudget's integer GCRA so that a mistake in one is not
// repeated in the other. ARI renewals are exempt. (Per-domain and
// duplicate limits cannot bind here: every customer is its own registered
// domain and orders once per lifetime.)
type simCA struct {
	capacity, perSecond float64
	tokens              []float64
	last                []time.Time
}

func newCA(lim cabudget.Limits, accounts int) *simCA {
	o := lim[cabudget.Orders]
	c := &simCA{capacity: float64(o.Count), perSecond: float64(o.Count) / o.Window.Seconds(),
		tokens: make([]float64, accounts+1), last: make([]time.Time, accounts+1)}
	for i := range c.tokens {
		c.tokens[i] = c.capacity
	}
	return c
}

// order reports whether the CA accepts a new order of account at now.
func (c *simCA) order(now time.Time, account int, exempt bool) bool {
	if exempt {
		return true
	}
	if !c.last[account].IsZero() {
		c.tokens[account] = min(c.capacity, c.tokens[account]+now.Sub(c.last[account]).Seconds()*c.perSecond)
	}
	c.last[account] = now
	if c.tokens[account] < 1-1e-9 {
		return false
	}
	c.tokens[account]--
	return true
}
