package cache

import (
	"context"
	"sync"
)

// Pre-generation's renders at the backend. `workers` bounds how many
// renders the pool has at the render backend at once: a place at the
// backend (backendGate) is taken just before a render's request goes out
// and given back as soon as its answer is in (enterBackend and
// leftBackend, called by the render through the place its context
// carries). Everything else a job does happens outside the place: taking
// the job off the queue, the route, the flight before the request, and
// closing the file, putting it in place and recording it after. The pool
// runs half as many goroutines again as workers, so that this edge work
// of some jobs overlaps the backend's work on others, and the backend
// does not wait for the edge.

// pregenExtra is how many goroutines the pool runs beyond n workers.
func pregenExtra(n int) int { return max(1, n/2) }

// backendGate is a counting semaphore whose size can change.
type backendGate struct {
	mu   sync.Mutex
	max  int
	used int
	free chan struct{} // closed (and replaced) when a place may have come free
}

func newBackendGate() *backendGate { return &backendGate{free: make(chan struct{})} }

// setMax changes the number of places; places taken beyond it are given
// back as their renders end.
func (g *backendGate) setMax(n int) {
	g.mu.Lock()
	g.max = n
	g.wakeLocked()
	g.mu.Unlock()
}

// acquire takes a place, waiting until one is free or ctx ends.
func (g *backendGate) acquire(ctx context.Context) bool {
	for {
		g.mu.Lock()
		if g.used < g.max {
			g.used++
			g.mu.Unlock()
			return true
		}
		free := g.free
		g.mu.Unlock()
		select {
		case <-free:
		case <-ctx.Done():
			return false
		}
	}
}

func (g *backendGate) release() {
	g.mu.Lock()
	g.used--
	g.wakeLocked()
	g.mu.Unlock()
}

func (g *backendGate) wakeLocked() {
	close(g.free)
	g.free = make(chan struct{})
}

// size is how many places there are.
func (g *backendGate) size() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.max
}

// backendPlace is one job's place at the backend, taken while its render
// is there.
type backendPlace struct {
	g    *backendGate
	mu   sync.Mutex
	held bool
}

// take waits for the place until ctx ends; true when it is held.
func (bp *backendPlace) take(ctx context.Context) bool {
	bp.mu.Lock()
	held := bp.held
	bp.mu.Unlock()
	if held {
		return true
	}
	if !bp.g.acquire(ctx) {
		return false
	}
	bp.mu.Lock()
	bp.held = true
	bp.mu.Unlock()
	return true
}

// release gives the place back, if it is held.
func (bp *backendPlace) release() {
	bp.mu.Lock()
	defer bp.mu.Unlock()
	if bp.held {
		bp.held = false
		bp.g.release()
	}
}

// backendPlaceKey carries a pre-generation's place at the backend in the
// context of its render.
type backendPlaceKey struct{}

// withBackendPlace returns ctx carrying a place at g for a job's renders
// (not taken yet), and the place.
func withBackendPlace(ctx context.Context, g *backendGate) (context.Context, *backendPlace) {
	bp := &backendPlace{g: g}
	return context.WithValue(ctx, backendPlaceKey{}, bp), bp
}

// enterBackend takes the place at the backend of the pre-generation that
// ctx belongs to, waiting until ctx ends; true at once when ctx carries
// none (a reader's render).
func enterBackend(ctx context.Context) bool {
	if bp, ok := ctx.Value(backendPlaceKey{}).(*backendPlace); ok {
		return bp.take(ctx)
	}
	return true
}

// leftBackend gives back the place at the backend of the pre-generation
// that ctx belongs to, if any: its render's answer is in.
func leftBackend(ctx context.Context) {
	if bp, ok := ctx.Value(backendPlaceKey{}).(*backendPlace); ok {
		bp.release()
	}
}
