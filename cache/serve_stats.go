package cache

import (
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// The serving path's figures: plain atomic counters and fixed-bucket
// histograms, read when the metrics are scraped (the Caddy module turns
// them into Prometheus metrics; this package imports no Prometheus).

// serveStats are the counters of one docroot.
type serveStats struct {
	misses        atomic.Int64 // requests that found no file of their own
	stale         atomic.Int64 // answers (or assembled pages) from ".old" copies
	rejectedSlots atomic.Int64 // renders not started: no slot in time
	tooLarge      atomic.Int64 // answers over max_file_size, passed on
	malformed     atomic.Int64 // answers with malformed Delivery-* headers
	durations     [outcomeCount]durationHistogram

	// URLs already logged for a bound they hit.
	tooLargeLogged, malformedLogged logOnce
}

// ServeStats are the serving path's counters, summed over the docroots.
type ServeStats struct {
	// Misses are requests that found no file of their own (they led a
	// render, waited for one or got the ".old" copy).
	Misses int64
	// Stale are answers from ".old" copies (or with a part from one).
	Stale int64
	// RenderRejected are renders not started because no render slot came
	// free within render_wait (max_renders).
	RenderRejected int64
	// TooLarge are render answers over max_file_size: passed on, not stored.
	TooLarge int64
	// Malformed are render answers not stored for malformed Delivery-*
	// headers.
	Malformed int64
	// RenderDurations are the durations of renders by outcome.
	RenderDurations map[string]DurationHistogram
	// Hot is the hot set of every docroot together.
	Hot HotStats
}

// servingStats sums the serving figures of the stores.
func servingStats(stores []*Store) ServeStats {
	st := ServeStats{RenderDurations: map[string]DurationHistogram{}}
	for _, s := range stores {
		c := &s.flights.stats
		st.Misses += c.misses.Load()
		st.Stale += c.stale.Load()
		st.RenderRejected += c.rejectedSlots.Load()
		st.TooLarge += c.tooLarge.Load()
		st.Malformed += c.malformed.Load()
		for o := range outcomeCount {
			h := st.RenderDurations[o.String()]
			h.add(&c.durations[o])
			st.RenderDurations[o.String()] = h
		}
		if s.hot != nil {
			hs := s.hot.Stats()
			st.Hot.Entries += hs.Entries
			st.Hot.Bytes += hs.Bytes
			st.Hot.Hits += hs.Hits
			st.Hot.Fills += hs.Fills
			st.Hot.Rejected += hs.Rejected
		}
	}
	return st
}

// RenderDurationBuckets are the upper bounds, in seconds, of the render
// duration histogram's buckets.
var RenderDurationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// durationHistogram counts durations into RenderDurationBuckets (and one
// more for longer ones).
type durationHistogram struct {
	buckets [14]atomic.Int64
	sumNs   atomic.Int64
}

func (h *durationHistogram) observe(d time.Duration) {
	sec := d.Seconds()
	i := 0
	for i < len(RenderDurationBuckets) && sec > RenderDurationBuckets[i] {
		i++
	}
	h.buckets[i].Add(1)
	h.sumNs.Add(int64(d))
}

// DurationHistogram is a snapshot of a duration histogram: Counts[i] is
// the number of durations up to RenderDurationBuckets[i] seconds (not
// cumulative); the last holds the longer ones.
type DurationHistogram struct {
	Counts [14]uint64
	Count  uint64
	Sum    time.Duration
}

func (s *DurationHistogram) add(h *durationHistogram) {
	for i := range h.buckets {
		n := uint64(h.buckets[i].Load())
		s.Counts[i] += n
		s.Count += n
	}
	s.Sum += time.Duration(h.sumNs.Load())
}

// Cumulative returns the histogram as Prometheus wants it: upper bound ->
// count of durations up to it.
func (s DurationHistogram) Cumulative() map[float64]uint64 {
	out := make(map[float64]uint64, len(RenderDurationBuckets))
	var n uint64
	for i, le := range RenderDurationBuckets {
		n += s.Counts[i]
		out[le] = n
	}
	return out
}

// logOnceCap bounds the keys remembered as already logged, so a backend
// (or a crawler) producing endless distinct URLs cannot grow the set; past
// the cap, further keys are logged at debug level.
const logOnceCap = 4096

// logOnce logs a bound hit once per key (a URL).
type logOnce struct {
	mu   sync.Mutex
	seen map[string]struct{}
}

// log writes msg at warn level the first time key hits the bound, at
// debug level once the set is full, and not at all after that.
func (l *logOnce) log(log *zap.Logger, key, msg string, fields ...zap.Field) {
	l.mu.Lock()
	_, seen := l.seen[key]
	full := !seen && len(l.seen) >= logOnceCap
	if !seen && !full {
		if l.seen == nil {
			l.seen = map[string]struct{}{}
		}
		l.seen[key] = struct{}{}
	}
	l.mu.Unlock()
	switch {
	case seen:
	case full:
		log.Debug(msg, append(fields, zap.String("url", key))...)
	default:
		log.Warn(msg, append(fields, zap.String("url", key))...)
	}
}
