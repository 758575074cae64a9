package caddymodule

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/delivery-edge/edge/cache"
	"github.com/delivery-edge/edge/stagingclient"
)

// metricsCollector exposes the edge's counters on Caddy's metrics
// endpoint. It reads them when scraped, so nothing is counted twice and
// the hit path pays nothing for metrics beyond the access log it keeps
// anyway.
type metricsCollector struct {
	app *App

	hits, renders, removed, pregenerated, queue, retired *prometheus.Desc
	uncacheable, journalRejected, changesDropped         *prometheus.Desc
	connected, sourceTime, lag, events                   *prometheus.Desc
	unknownEvents                                        *prometheus.Desc
	imageNegativeHits, imageNegativeEvicted              *prometheus.Desc

	// The cache servlet and the edge groups (groupMetrics).
	servletRefused, flushLogPruned, flushLogBytes *prometheus.Desc
	outboxDropped, outboxLength, outboxBytes      *prometheus.Desc

	// Serving (collectServing).
	misses, stale, renderRejected, renderDuration *prometheus.Desc

	// Queues.
	invalidationLatency *prometheus.Desc

	// Docroot sizes and eviction.
	docrootBytes, docrootFiles, evicted *prometheus.Desc

	// Full disks (metrics_space.go).
	diskFullWrites, diskFullPeriods *prometheus.Desc
}

func newMetricsCollector(a *App) *metricsCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("delivery_"+name, help, labels, nil)
	}
	return &metricsCollector{
		app:          a,
		hits:         d("cache_hits_total", "Requests answered from a cached file."),
		renders:      d("cache_renders_total", "Renders through the render backend, by outcome.", "outcome"),
		removed:      d("removal_jobs_total", "Jobs of the removal queue done."),
		pregenerated: d("pregenerated_total", "Files pre-generated."),
		queue:        d("queue_length", "Jobs waiting in a queue.", "queue"),
		retired:      d("registry_retired", "Removed files whose reverse-index keys wait for the background sweep."),
		uncacheable: d("cache_uncacheable_total",
			"Render answers not cached although cacheable by status and headers, by reason (record_over_limits: "+
				"the Delivery-* headers or the registry record are beyond a limit; file_too_large: over max_file_size; "+
				"malformed_headers: a Delivery-* header could not be read).", "reason"),
		misses: d("cache_misses_total", "Requests that found no cached file of their own."),
		stale:  d("cache_stale_total", "Answers from .old copies (or with an SSI part from one)."),
		renderRejected: d("render_rejected_total",
			"Renders not started, by reason (slots: no render slot free within render_wait, max_renders).", "reason"),
		renderDuration: d("render_duration_seconds", "Durations of renders, by outcome.", "outcome"),
		changesDropped: d("changes_dropped_total",
			"Changes dropped from the in-memory log of changes applied while renders were under way, at its bound "+
				"(65,536); a render that began before a dropped change keeps its answer as the .old copy only."),
		journalRejected: d("registry_journal_rejected_total",
			"Registry journal records the database refused, moved aside to journal.rejected."),
		connected:  d("staging_connected", "1 when the last poll of the staging servers succeeded."),
		sourceTime: d("staging_applied_source_time_ms", "Source time of the newest applied event (Unix ms)."),
		lag:        d("staging_lag_seconds", "How far the applied events are behind the staging servers."),
		events:     d("staging_events_total", "Events applied."),
		unknownEvents: d("staging_events_unknown_total",
			"Events of a kind or state the edge does not know (unknown kind: skipped; unknown state: every property changed).", "kind", "state"),
		imageNegativeHits: d("image_negative_hits_total",
			"Image requests answered 404/422 from the negative cache, without asking the CMS."),
		imageNegativeEvicted: d("image_negative_evicted_total",
			"Entries dropped from the full image negative cache before their time."),
		servletRefused: d("servlet_refused_total",
			"Cache servlet requests refused, by reason (password: missing or wrong; rate_limited: answered 429; other).", "reason"),
		flushLogPruned: d("flush_log_pruned_total",
			"Flushes pruned from the flush log, by reason (size: flush_log_max_size; age: flush_log_retention).", "reason"),
		flushLogBytes: d("flush_log_bytes", "Bytes the flush log holds (keys, values and per-entry overhead)."),
		outboxDropped: d("outbox_dropped_total",
			"Flushes dropped undelivered from a peer's outbox, by reason (size: outbox_max_size; age: the maximum age).",
			"peer", "reason"),
		outboxLength: d("outbox_length", "Flushes waiting in the outbox to be forwarded to a peer.", "peer"),
		outboxBytes:  d("outbox_bytes", "Bytes a peer's outbox holds.", "peer"),
		invalidationLatency: d("invalidation_latency_seconds",
			"From a change's source time (a CMS event's sourceTime, a flush's time) to its file renamed, purged or rendered again."),
		docrootBytes: d("docroot_bytes", "Bytes of a docroot's files (pages, .old and precompressed copies).", "docroot"),
		docrootFiles: d("docroot_files", "Files of a docroot (pages, .old and precompressed copies).", "docroot"),
		evicted: d("evicted_total",
			"Pages evicted (with their copies) to keep a docroot under max_size or its file system above min_free.", "docroot"),
		diskFullWrites: d("disk_full_writes_total",
			"Writes that failed for want of space, by folder (docroot: renders passed on uncached; data: registry records).", "folder"),
		diskFullPeriods: d("disk_full_total", "Times a folder was found full (logged once each), by folder.", "folder"),
	}
}

// registerMetrics adds the collector to the config's metrics registry; a
// collector already there (a second app in one config) is left alone.
func registerMetrics(reg *prometheus.Registry, c prometheus.Collector) error {
	if reg == nil {
		return nil
	}
	err := reg.Register(c)
	var already prometheus.AlreadyRegisteredError
	if errors.As(err, &already) {
		return nil
	}
	return err
}

// Describe implements prometheus.Collector.
func (c *metricsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.hits, c.renders, c.removed, c.pregenerated, c.queue, c.retired,
		c.uncacheable, c.journalRejected, c.changesDropped, c.connected, c.sourceTime, c.lag, c.events, c.unknownEvents,
		c.imageNegativeHits, c.imageNegativeEvicted, c.servletRefused, c.flushLogPruned, c.flushLogBytes,
		c.outboxDropped, c.outboxLength, c.outboxBytes, c.misses, c.stale, c.renderRejected, c.renderDuration,
		c.invalidationLatency, c.docrootBytes, c.docrootFiles, c.evicted, c.diskFullWrites, c.diskFullPeriods} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *metricsCollector) Collect(ch chan<- prometheus.Metric) {
	if eng := c.app.engine.opened(); eng != nil {
		st := eng.Stats()
		ch <- prometheus.MustNewConstMetric(c.hits, prometheus.CounterValue, float64(st.Hits))
		for outcome, n := range st.Renders {
			ch <- prometheus.MustNewConstMetric(c.renders, prometheus.CounterValue, float64(n), outcome)
		}
		ch <- prometheus.MustNewConstMetric(c.removed, prometheus.CounterValue, float64(st.Removed))
		ch <- prometheus.MustNewConstMetric(c.pregenerated, prometheus.CounterValue, float64(st.Pregenerated))
		ch <- prometheus.MustNewConstMetric(c.queue, prometheus.GaugeValue, float64(st.RemovalQueue), "removal")
		ch <- prometheus.MustNewConstMetric(c.queue, prometheus.GaugeValue, float64(st.PregenQueue), "pregeneration")
		ch <- prometheus.MustNewConstMetric(c.retired, prometheus.GaugeValue, float64(st.Retired))
		ch <- prometheus.MustNewConstMetric(c.changesDropped, prometheus.CounterValue, float64(st.ChangesDropped))
		reg := eng.Registry()
		ch <- prometheus.MustNewConstMetric(c.uncacheable, prometheus.CounterValue, float64(reg.OverLimits()),
			"record_over_limits")
		ch <- prometheus.MustNewConstMetric(c.journalRejected, prometheus.CounterValue, float64(reg.JournalRejected()))
		c.groupMetrics(ch, eng)
		c.collectServing(ch, st.ServeStats)
		c.collectSpace(ch, eng.SpaceStats())
		buckets := make(map[float64]uint64, len(cache.LatencyBuckets))
		for i, le := range cache.LatencyBuckets {
			buckets[le] = st.Latency.Cumulative[i]
		}
		ch <- prometheus.MustNewConstHistogram(c.invalidationLatency, st.Latency.Count, st.Latency.Sum, buckets)
		for _, d := range st.Docroots {
			ch <- prometheus.MustNewConstMetric(c.docrootBytes, prometheus.GaugeValue, float64(d.Bytes), d.Dir)
			ch <- prometheus.MustNewConstMetric(c.docrootFiles, prometheus.GaugeValue, float64(d.Files), d.Dir)
			ch <- prometheus.MustNewConstMetric(c.evicted, prometheus.CounterValue, float64(d.Evicted), d.Dir)
		}
	}
	c.servletMetrics(ch)
	if ps, ok := c.app.stagingStats(); ok {
		connected := 0.0
		if ps.Connected {
			connected = 1
		}
		ch <- prometheus.MustNewConstMetric(c.connected, prometheus.GaugeValue, connected)
		ch <- prometheus.MustNewConstMetric(c.sourceTime, prometheus.GaugeValue, float64(ps.Applied))
		ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, ps.Lag.Seconds())
		ch <- prometheus.MustNewConstMetric(c.events, prometheus.CounterValue, float64(ps.Events))
	}
	for p, n := range c.app.unknownEventCounts() {
		ch <- prometheus.MustNewConstMetric(c.unknownEvents, prometheus.CounterValue, float64(n), p.Kind, p.State)
	}
	if ns, ok := imageNegativeStats(); ok {
		ch <- prometheus.MustNewConstMetric(c.imageNegativeHits, prometheus.CounterValue, float64(ns.Hits))
		ch <- prometheus.MustNewConstMetric(c.imageNegativeEvicted, prometheus.CounterValue, float64(ns.Evicted))
	}
}

// collectServing sends the serving path's figures.
func (c *metricsCollector) collectServing(ch chan<- prometheus.Metric, st cache.ServeStats) {
	ch <- prometheus.MustNewConstMetric(c.uncacheable, prometheus.CounterValue, float64(st.TooLarge), "file_too_large")
	ch <- prometheus.MustNewConstMetric(c.uncacheable, prometheus.CounterValue, float64(st.Malformed), "malformed_headers")
	ch <- prometheus.MustNewConstMetric(c.misses, prometheus.CounterValue, float64(st.Misses))
	ch <- prometheus.MustNewConstMetric(c.stale, prometheus.CounterValue, float64(st.Stale))
	ch <- prometheus.MustNewConstMetric(c.renderRejected, prometheus.CounterValue, float64(st.RenderRejected), "slots")
	for outcome, h := range st.RenderDurations {
		ch <- prometheus.MustNewConstHistogram(c.renderDuration, h.Count, h.Sum.Seconds(), h.Cumulative(), outcome)
	}
}

// stagingStats returns the staging poller's figures, if it runs.
func (a *App) stagingStats() (stagingclient.PollerStats, bool) {
	if a.staging != nil {
		if p := a.staging.poller.Load(); p != nil {
			return p.Stats(), true
		}
	}
	return stagingclient.PollerStats{}, false
}

// unknownEventCounts sums the unknown events of the staging poller and the
// image update service by kind/state pair (an event both read is counted
// by each).
func (a *App) unknownEventCounts() map[stagingclient.EventPair]int64 {
	out := map[stagingclient.EventPair]int64{}
	var counts []map[stagingclient.EventPair]int64
	if a.staging != nil {
		counts = append(counts, a.staging.unknown.Counts())
	}
	if a.imageUpdates != nil {
		counts = append(counts, a.imageUpdates.unknown.Counts())
	}
	for _, c := range counts {
		for p, n := range c {
			out[p] += n
		}
	}
	return out
}

var _ prometheus.Collector = (*metricsCollector)(nil)
