package caddymodule

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/delivery-edge/edge/cache"
)

// servingOnly is the collector's serving part over fixed figures.
type servingOnly struct {
	c  *metricsCollector
	st cache.ServeStats
}

func (s servingOnly) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{s.c.uncacheable, s.c.misses, s.c.stale, s.c.renderRejected, s.c.renderDuration} {
		ch <- d
	}
}

func (s servingOnly) Collect(ch chan<- prometheus.Metric) { s.c.collectServing(ch, s.st) }

// TestServingMetrics: the serving figures of the cache reach their
// Prometheus metrics, the render durations as a histogram per outcome.
func TestServingMetrics(t *testing.T) {
	var h cache.DurationHistogram
	h.Counts[0], h.Counts[3], h.Counts[len(h.Counts)-1] = 2, 1, 1 // 2 up to 5ms, 1 up to 50ms, 1 over 60s
	h.Count, h.Sum = 4, 61*time.Second
	st := cache.ServeStats{Misses: 7, Stale: 3, RenderRejected: 5, TooLarge: 2, Malformed: 1,
		RenderDurations: map[string]cache.DurationHistogram{"stored": h}}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(servingOnly{newMetricsCollector(nil), st})
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counters := map[string]float64{}
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "{" + l.GetValue() + "}"
			}
			if hist := m.GetHistogram(); hist != nil {
				if key != "delivery_render_duration_seconds{stored}" || hist.GetSampleCount() != 4 || hist.GetSampleSum() != 61 {
					t.Fatalf("histogram %s: count %d sum %v, want stored, 4 and 61", key, hist.GetSampleCount(), hist.GetSampleSum())
				}
				want := map[float64]uint64{0.005: 2, 0.01: 2, 0.025: 2, 0.05: 3, 60: 3}
				for _, b := range hist.GetBucket() {
					if n, ok := want[b.GetUpperBound()]; ok && b.GetCumulativeCount() != n {
						t.Errorf("bucket le=%v: %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), n)
					}
				}
				continue
			}
			counters[key] = m.GetCounter().GetValue()
		}
	}
	want := map[string]float64{
		"delivery_cache_misses_total":                         7,
		"delivery_cache_stale_total":                          3,
		"delivery_render_rejected_total{slots}":               5,
		"delivery_cache_uncacheable_total{file_too_large}":    2,
		"delivery_cache_uncacheable_total{malformed_headers}": 1,
	}
	for k, v := range want {
		if counters[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, counters[k], v, counters)
		}
	}
	if !strings.HasPrefix(families[0].GetName(), "delivery_") {
		t.Errorf("metric %s outside delivery_", families[0].GetName())
	}
}
