package benchkit

import (
	"math"
	"sync/atomic"
	"time"
)

// Histogram counts durations in logarithmic buckets (2 % wide, from 10 µs
// to about 2 minutes) without a lock, so many load workers can record into
// one. Quantiles are exact to the bucket width.
type Histogram struct {
	buckets [histBuckets]atomic.Int64
	count   atomic.Int64
	max     atomic.Int64
}

const (
	histMin     = 10 * time.Microsecond
	histGrowth  = 1.02
	histBuckets = 850 // histMin × 1.02^850 ≈ 200 s
)

var histLogGrowth = math.Log(histGrowth)

func histBucket(d time.Duration) int {
	if d <= histMin {
		return 0
	}
	i := int(math.Log(float64(d)/float64(histMin))/histLogGrowth) + 1
	return min(i, histBuckets-1)
}

// histUpper is the upper bound of bucket i.
func histUpper(i int) time.Duration {
	return time.Duration(float64(histMin) * math.Pow(histGrowth, float64(i)))
}

// Record adds one duration.
func (h *Histogram) Record(d time.Duration) {
	h.buckets[histBucket(d)].Add(1)
	h.count.Add(1)
	for {
		m := h.max.Load()
		if int64(d) <= m || h.max.CompareAndSwap(m, int64(d)) {
			break
		}
	}
}

// Count is how many durations were recorded.
func (h *Histogram) Count() int64 { return h.count.Load() }

// Max is the longest duration recorded.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max.Load()) }

// Quantile returns the q-quantile (0 < q ≤ 1) as the upper bound of its
// bucket (never more than the maximum); 0 when nothing was recorded.
func (h *Histogram) Quantile(q float64) time.Duration {
	n := h.count.Load()
	if n == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(n)))
	var seen int64
	for i := range h.buckets {
		seen += h.buckets[i].Load()
		if seen >= rank {
			return min(histUpper(i), h.Max())
		}
	}
	return h.Max()
}

// Swap returns the counts so far as a new histogram and starts this one
// afresh (for per-interval figures). Records that race with Swap land in
// either interval, none is lost.
func (h *Histogram) Swap() *Histogram {
	out := &Histogram{}
	for i := range h.buckets {
		if v := h.buckets[i].Swap(0); v != 0 {
			out.buckets[i].Store(v)
			out.count.Add(v)
		}
	}
	h.count.Add(-out.count.Load())
	out.max.Store(h.max.Swap(0))
	return out
}

// Merge adds the counts of o.
func (h *Histogram) Merge(o *Histogram) {
	for i := range o.buckets {
		if v := o.buckets[i].Load(); v != 0 {
			h.buckets[i].Add(v)
		}
	}
	h.count.Add(o.count.Load())
	for {
		m := h.max.Load()
		om := o.max.Load()
		if om <= m || h.max.CompareAndSwap(m, om) {
			break
		}
	}
}
