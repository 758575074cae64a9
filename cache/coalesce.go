package cache

import (
	"sync"
	"sync/atomic"
	"time"
)

// failedRenderBackoff is how long a file whose render failed is not
// rendered again in the background (its ".old" copy is served meanwhile).
const failedRenderBackoff = 2 * time.Second

// outcome is how a render ended, as the requests that waited for it see it.
type outcome int

const (
	outcomeStored      outcome = iota // the new file is in place
	outcomePassthrough                // a valid answer that must not be shared (not cacheable)
	outcomeGone                       // 404/410: file and .old deleted
	outcomeFailed                     // 5xx, timeout or an error writing the file
	outcomeOutdated                   // invalidated while rendering: kept as ".old" only
	outcomeCount
	// outcomeRejected: the render did not start, no render slot came free
	// in time (render_slots.go). Not a render: not counted as one.
	outcomeRejected = outcomeCount
)

// String names an outcome for metrics and logs.
func (o outcome) String() string {
	return [...]string{"stored", "passthrough", "gone", "failed", "outdated", "rejected"}[o]
}

// flight is one render in progress for one file.
type flight struct {
	done chan struct{}
	// Set by the leader before done is closed.
	outcome outcome
	status  int
	// took is how long the render ran (from the slot to the end of the
	// answer); zero when none ran.
	took time.Duration
	// started is set once the render has its render slot.
	started atomic.Bool
	// invalidated is set when the file is invalidated while the render
	// runs: its result may predate the change and is kept only as ".old".
	// mu makes "not invalidated, so install" one step: an invalidation
	// either comes before (the result becomes .old) or waits until the
	// file is in place (and then renames it).
	mu          sync.Mutex
	invalidated bool
}

// installUnlessInvalidated runs install unless the file was invalidated
// during the render; it reports whether install ran.
func (f *flight) installUnlessInvalidated(install func()) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.invalidated {
		return false
	}
	install()
	return true
}

// flights coalesces renders: at most one per file at a time.
type flights struct {
	mu      sync.Mutex
	m       map[string]*flight
	retryAt map[string]time.Time // failed renders: no background render before
	counts  [outcomeCount]atomic.Int64
	stats   serveStats // the docroot's serving figures (serve_stats.go)
}

func newFlights() *flights { return &flights{m: map[string]*flight{}, retryAt: map[string]time.Time{}} }

// join returns the flight for file and whether the caller leads it (must
// render and then call finish).
func (g *flights) join(file string) (*flight, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if f, ok := g.m[file]; ok {
		return f, false
	}
	f := &flight{done: make(chan struct{})}
	g.m[file] = f
	return f, true
}

// finish publishes the leader's result and wakes the waiters.
func (g *flights) finish(file string, f *flight, o outcome, status int) {
	f.outcome, f.status = o, status
	if o < outcomeCount {
		g.counts[o].Add(1)
		if f.took > 0 {
			g.stats.durations[o].observe(f.took)
		}
	}
	g.mu.Lock()
	delete(g.m, file)
	switch o {
	case outcomeRejected:
		// Not a failure of the file: the next request may try at once.
	case outcomeFailed:
		now := time.Now()
		if len(g.retryAt) > 10000 {
			for k, t := range g.retryAt {
				if t.Before(now) {
					delete(g.retryAt, k)
				}
			}
		}
		g.retryAt[file] = now.Add(failedRenderBackoff)
	default:
		delete(g.retryAt, file)
	}
	g.mu.Unlock()
	close(f.done)
}

// joinBackground starts a flight for a render in the background unless
// one is running or the last one failed a moment ago.
func (g *flights) joinBackground(file string) (*flight, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.m[file]; ok {
		return nil, false
	}
	if t, ok := g.retryAt[file]; ok && time.Now().Before(t) {
		return nil, false
	}
	f := &flight{done: make(chan struct{})}
	g.m[file] = f
	return f, true
}

// invalidate marks a render in progress for file as outdated. If that
// render is installing its result right now, it waits until the file is
// in place, so that the caller's change on disk comes after it.
func (g *flights) invalidate(file string) {
	g.mu.Lock()
	f, ok := g.m[file]
	g.mu.Unlock()
	if ok {
		f.mu.Lock()
		f.invalidated = true
		f.mu.Unlock()
	}
}
