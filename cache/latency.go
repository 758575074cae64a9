package cache

import (
	"sync/atomic"
	"time"
)

// The invalidation latency: from when a change happened at its source (a
// CMS event's source time, a flush's time) to when the queue workers had
// its file renamed, purged or rendered again. A histogram of fixed
// buckets with atomic counters, so the workers pay an add per job.

// LatencyBuckets are the upper bounds, in seconds, of the buckets of the
// invalidation latency histogram.
var LatencyBuckets = [...]float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800}

type latencyHistogram struct {
	buckets [len(LatencyBuckets) + 1]atomic.Uint64 // the last: above every bound
	sumUs   atomic.Int64                           // microseconds
}

// observeSince records the latency of a job whose change happened at
// source (Unix ms; 0: unknown, nothing is recorded). A source time in the
// future (another clock) counts as no latency.
func (h *latencyHistogram) observeSince(source int64, now time.Time) {
	if source <= 0 {
		return
	}
	d := max(now.Sub(time.UnixMilli(source)), 0)
	s := d.Seconds()
	i := 0
	for i < len(LatencyBuckets) && s > LatencyBuckets[i] {
		i++
	}
	h.buckets[i].Add(1)
	h.sumUs.Add(d.Microseconds())
}

// LatencySnapshot is the invalidation latency histogram at one moment.
type LatencySnapshot struct {
	// Count is the number of jobs recorded, Sum their latencies in seconds.
	Count uint64
	Sum   float64
	// Cumulative holds, for each bound of LatencyBuckets, the number of
	// jobs at or below it.
	Cumulative [len(LatencyBuckets)]uint64
}

func (h *latencyHistogram) snapshot() LatencySnapshot {
	var s LatencySnapshot
	var n uint64
	for i := range LatencyBuckets {
		n += h.buckets[i].Load()
		s.Cumulative[i] = n
	}
	s.Count = n + h.buckets[len(LatencyBuckets)].Load()
	s.Sum = float64(h.sumUs.Load()) / 1e6
	return s
}
