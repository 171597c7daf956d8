package metrics

import "github.com/prometheus/client_golang/prometheus"

// DNSLimitSource reports how many UDP responses the DNS server's response
// rate limiting dropped and how many it sent empty and truncated instead;
// *dnsserver.Server's Limited is one.
type DNSLimitSource func() (dropped, truncated uint64)

// dnsLimitCollector reads the DNS server's own counters at scrape time:
// the server counts with atomics on its hot path, and the metric is never
// a second count that could disagree with it.
type dnsLimitCollector struct {
	src  DNSLimitSource
	desc *prometheus.Desc
}

// WatchDNSRateLimit registers dcvaas_dns_rate_limited_total{action}, the
// responses rate limiting held back from one client network: "dropped"
// (not sent at all) and "truncated" (sent empty with TC, so that a real
// resolver retries over TCP). Truncated ones are also among
// dcvaas_dns_queries_total, as the answers they are; dropped ones are not.
// Both series exist, at 0, from the start.
func (m *Metrics) WatchDNSRateLimit(src DNSLimitSource) {
	m.reg.MustRegister(&dnsLimitCollector{src: src, desc: prometheus.NewDesc(namespace+"_dns_rate_limited_total",
		"UDP responses held back by DNS response rate limiting (DCVAAS_DNS_RRL), by action: dropped, or truncated (sent empty with TC).",
		[]string{"action"}, nil)})
}

func (c *dnsLimitCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *dnsLimitCollector) Collect(ch chan<- prometheus.Metric) {
	dropped, truncated := c.src()
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(dropped), "dropped")
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(truncated), "truncated")
}
