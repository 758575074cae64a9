package caddymodule

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/delivery-edge/edge/imaging"
)

// imageMetrics are the figures of every image_service handler of this
// process. They live as long as the process, so a reload does not reset
// the counters (as Prometheus expects of a counter).
var imageMetrics = new(imaging.Metrics)

// Descriptions of the image metrics, made once: a collector is registered
// with every config's registry.
var (
	imageRequestsDesc = prometheus.NewDesc("delivery_image_requests_total",
		"Image requests answered by image_service, by outcome (stored, generated, bad_request, not_found, gone, "+
			"refused, unavailable, error).", []string{"outcome"}, nil)
	imageGenerationDesc = prometheus.NewDesc("delivery_image_generation_duration_seconds",
		"Time of the variant generations that succeeded: fetching the original, decoding, resizing, encoding "+
			"and storing (not the wait for a generation slot).", nil, nil)
	imageUpdatesLagDesc = prometheus.NewDesc("delivery_image_updates_lag_seconds",
		"How far the image events the update service applied are behind the staging servers.", nil, nil)
)

// imageMetricsCollector exposes the image service's metrics. Like
// metricsCollector it reads the figures when scraped.
type imageMetricsCollector struct {
	app *App
}

// Describe implements prometheus.Collector.
func (c imageMetricsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- imageRequestsDesc
	ch <- imageGenerationDesc
	ch <- imageUpdatesLagDesc
}

// Collect implements prometheus.Collector. The request and generation
// figures appear once an image store is in use in this process (an
// image_service or image_updates is configured), the lag while the update
// service follows the events.
func (c imageMetricsCollector) Collect(ch chan<- prometheus.Metric) {
	if _, ok := imageNegativeStats(); ok {
		s := imageMetrics.Snapshot()
		for _, o := range imaging.Outcomes {
			ch <- prometheus.MustNewConstMetric(imageRequestsDesc, prometheus.CounterValue, float64(s.Requests[o]), o)
		}
		buckets := make(map[float64]uint64, len(imaging.GenerationBuckets))
		for i, le := range imaging.GenerationBuckets {
			buckets[le] = s.GenerationCumulative[i]
		}
		ch <- prometheus.MustNewConstHistogram(imageGenerationDesc, s.Generations, s.GenerationSeconds, buckets)
	}
	if f := c.app.imageUpdates; f != nil {
		if p := f.poller.Load(); p != nil {
			ch <- prometheus.MustNewConstMetric(imageUpdatesLagDesc, prometheus.GaugeValue, p.Stats().Lag.Seconds())
		}
	}
}

var _ prometheus.Collector = imageMetricsCollector{}
