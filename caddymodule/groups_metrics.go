package caddymodule

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/delivery-edge/edge/cache"
)

// servletMetrics reports the refusals of the process's cache servlets.
func (c *metricsCollector) servletMetrics(ch chan<- prometheus.Metric) {
	for reason, n := range map[string]int64{
		"password":     servletRefusals.Password.Load(),
		"rate_limited": servletRefusals.RateLimited.Load(),
		"other":        servletRefusals.Other.Load(),
	} {
		ch <- prometheus.MustNewConstMetric(c.servletRefused, prometheus.CounterValue, float64(n), reason)
	}
}

// groupMetrics reports the flush log and the outboxes: their sizes (every
// configured peer, and any other that still has entries) and what left
// them undelivered.
func (c *metricsCollector) groupMetrics(ch chan<- prometheus.Metric, eng *cache.Engine) {
	counts := eng.FlushCounters()
	for _, reason := range []string{cache.ReasonSize, cache.ReasonAge} {
		ch <- prometheus.MustNewConstMetric(c.flushLogPruned, prometheus.CounterValue, float64(counts.LogPruned[reason]), reason)
	}
	peers := map[string]bool{}
	if c.app.groups != nil {
		for _, p := range c.app.groups.Peers() {
			peers[p] = true
		}
	}
	for pr := range counts.OutboxDropped {
		peers[pr.Peer] = true
	}
	sizes, err := eng.FlushSizes()
	if err == nil {
		ch <- prometheus.MustNewConstMetric(c.flushLogBytes, prometheus.GaugeValue, float64(sizes.Log.Bytes))
		for p := range sizes.Outbox {
			peers[p] = true
		}
	}
	for p := range peers {
		for _, reason := range []string{cache.ReasonSize, cache.ReasonAge} {
			ch <- prometheus.MustNewConstMetric(c.outboxDropped, prometheus.CounterValue,
				float64(counts.OutboxDropped[cache.PeerReason{Peer: p, Reason: reason}]), p, reason)
		}
		if err == nil {
			s := sizes.Outbox[p]
			ch <- prometheus.MustNewConstMetric(c.outboxLength, prometheus.GaugeValue, float64(s.Entries), p)
			ch <- prometheus.MustNewConstMetric(c.outboxBytes, prometheus.GaugeValue, float64(s.Bytes), p)
		}
	}
}
