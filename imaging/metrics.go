package imaging

import (
	"net/http"
	"sync/atomic"
	"time"
)

// The access side's figures: plain atomic counters and a fixed-bucket
// histogram, read when metrics are scraped (the Caddy module turns them
// into Prometheus metrics; this package imports no Prometheus).

// Outcomes of an image request, the label values of Metrics' request
// counts.
const (
	// OutcomeStored: the variant was in the store (or its memory cache).
	OutcomeStored = "stored"
	// OutcomeGenerated: the variant was not stored; the request got it
	// from a generation (its own, or one it waited for).
	OutcomeGenerated = "generated"
	// OutcomeBadRequest: a malformed or not allowed URL (400), or a
	// method other than GET and HEAD (405).
	OutcomeBadRequest = "bad_request"
	// OutcomeNotFound: no such image or variant (404), the negative
	// cache's answers included.
	OutcomeNotFound = "not_found"
	// OutcomeGone: the image was deleted in the CMS (410).
	OutcomeGone = "gone"
	// OutcomeRefused: the original is beyond the limits or not decodable
	// (422).
	OutcomeRefused = "refused"
	// OutcomeUnavailable: the store or the CMS failed, or no generation
	// slot came free (503).
	OutcomeUnavailable = "unavailable"
	// OutcomeError: anything else (500).
	OutcomeError = "error"
)

// Outcomes lists every outcome, in a stable order.
var Outcomes = [...]string{OutcomeStored, OutcomeGenerated, OutcomeBadRequest, OutcomeNotFound, OutcomeGone,
	OutcomeRefused, OutcomeUnavailable, OutcomeError}

// GenerationBuckets are the upper bounds, in seconds, of the buckets of
// the generation duration histogram.
var GenerationBuckets = [...]float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// Metrics counts the image requests of one or more Access values by
// outcome and times their generations. The zero value is ready to use; it
// is safe for concurrent use, and sharing one between the Access values of
// successive configurations keeps the counts across reloads.
type Metrics struct {
	requests [len(Outcomes)]atomic.Uint64
	// generation[i] counts generations up to GenerationBuckets[i]; the
	// last, the longer ones.
	generation [len(GenerationBuckets) + 1]atomic.Uint64
	genSumUs   atomic.Int64
	// Variants a MemoryCache answered from memory and read from its store
	// (MemoryCache.CountIn).
	fromMemory, fromStore atomic.Uint64
}

// MetricsSnapshot is Metrics at one moment.
type MetricsSnapshot struct {
	// Requests holds the number of requests by outcome (every outcome of
	// Outcomes, zeros included).
	Requests map[string]uint64
	// Generations is the number of variants generated, GenerationSeconds
	// the time they took together.
	Generations       uint64
	GenerationSeconds float64
	// GenerationCumulative holds, for each bound of GenerationBuckets, the
	// number of generations that took at most that long.
	GenerationCumulative [len(GenerationBuckets)]uint64
	// FromMemory and FromStore count the variants the memory caches
	// counting here answered from memory and read from the image store.
	FromMemory, FromStore uint64
}

// Snapshot returns the figures.
func (m *Metrics) Snapshot() MetricsSnapshot {
	s := MetricsSnapshot{Requests: make(map[string]uint64, len(Outcomes))}
	for i, o := range Outcomes {
		s.Requests[o] = m.requests[i].Load()
	}
	var n uint64
	for i := range GenerationBuckets {
		n += m.generation[i].Load()
		s.GenerationCumulative[i] = n
	}
	s.Generations = n + m.generation[len(GenerationBuckets)].Load()
	s.GenerationSeconds = float64(m.genSumUs.Load()) / 1e6
	s.FromMemory, s.FromStore = m.fromMemory.Load(), m.fromStore.Load()
	return s
}

// countStatus counts a request by the status it was answered with;
// generated tells the two kinds of 200 apart.
func (m *Metrics) countStatus(status int, generated bool) {
	m.requests[outcomeIndex(status, generated)].Add(1)
}

// outcomeIndex maps an answer to its index in Outcomes.
func outcomeIndex(status int, generated bool) int {
	switch {
	case status < 400 && generated:
		return 1
	case status < 400:
		return 0
	case status == http.StatusBadRequest, status == http.StatusMethodNotAllowed:
		return 2
	case status == http.StatusNotFound:
		return 3
	case status == http.StatusGone:
		return 4
	case status == http.StatusUnprocessableEntity:
		return 5
	case status == http.StatusServiceUnavailable:
		return 6
	default:
		return 7
	}
}

// observeGeneration records one generation that took d.
func (m *Metrics) observeGeneration(d time.Duration) {
	d = max(d, 0)
	s := d.Seconds()
	i := 0
	for i < len(GenerationBuckets) && s > GenerationBuckets[i] {
		i++
	}
	m.generation[i].Add(1)
	m.genSumUs.Add(d.Microseconds())
}

// WithMetrics makes the service count its requests and time its
// generations in m, which it may share with other Access values. Without
// it the service keeps figures of its own (Access.Metrics).
func WithMetrics(m *Metrics) AccessOption {
	return func(a *Access) { a.metrics = m }
}

// Metrics returns the figures the service counts into.
func (a *Access) Metrics() *Metrics { return a.metrics }
