package metrics

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dcvaas/dcvaas/cabudget"
)

// budgetCollector reads the CAs' order budgets from the shared database at
// each scrape: every node reports the same cluster-wide values (take max,
// not sum, across nodes).
type budgetCollector struct {
	list                          func(ctx context.Context) ([]cabudget.State, error)
	now                           func() time.Time
	log                           *slog.Logger
	capacity, remaining, refillAt *prometheus.Desc
}

// WatchBudgets adds dcvaas_ca_budget_capacity, _remaining and
// _next_refill_timestamp_seconds, per CA, kind and account.
func (m *Metrics) WatchBudgets(list func(ctx context.Context) ([]cabudget.State, error), now func() time.Time, log *slog.Logger) {
	labels := []string{"ca", "kind", "account"}
	m.reg.MustRegister(&budgetCollector{list: list, now: now, log: log,
		capacity:  prometheus.NewDesc(namespace+"_ca_budget_capacity", "Tokens a CA rate-limit budget holds when full (the CA's limit per window).", labels, nil),
		remaining: prometheus.NewDesc(namespace+"_ca_budget_remaining", "Tokens left in a CA rate-limit budget (cluster-wide).", labels, nil),
		refillAt: prometheus.NewDesc(namespace+"_ca_budget_next_refill_timestamp_seconds",
			"When the next token of a CA rate-limit budget returns (Unix time); 0 when full.", labels, nil),
	})
}

func (c *budgetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.capacity
	ch <- c.remaining
	ch <- c.refillAt
}

func (c *budgetCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	states, err := c.list(ctx)
	if err != nil {
		c.log.Warn("cannot read CA budgets for metrics", "err", err)
		return
	}
	now := c.now()
	for _, s := range states {
		l := []string{s.CA, string(s.Kind), s.Subject}
		ch <- prometheus.MustNewConstMetric(c.capacity, prometheus.GaugeValue, float64(s.Limit.Count), l...)
		ch <- prometheus.MustNewConstMetric(c.remaining, prometheus.GaugeValue, float64(s.Remaining(now)), l...)
		at := 0.0
		if t := s.NextRefill(now); !t.IsZero() {
			at = float64(t.UnixMilli()) / 1000
		}
		ch <- prometheus.MustNewConstMetric(c.refillAt, prometheus.GaugeValue, at, l...)
	}
}
