package caddymodule

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/delivery-edge/edge/cache"
)

// collectSpace reports the writes a full disk refused.
func (c *metricsCollector) collectSpace(ch chan<- prometheus.Metric, st cache.SpaceStats) {
	ch <- prometheus.MustNewConstMetric(c.diskFullWrites, prometheus.CounterValue, float64(st.DocrootWrites), "docroot")
	ch <- prometheus.MustNewConstMetric(c.diskFullWrites, prometheus.CounterValue, float64(st.DataWrites), "data")
	ch <- prometheus.MustNewConstMetric(c.diskFullPeriods, prometheus.CounterValue, float64(st.DocrootPeriods), "docroot")
	ch <- prometheus.MustNewConstMetric(c.diskFullPeriods, prometheus.CounterValue, float64(st.DataPeriods), "data")
}
