package cache

import (
	"context"
	"sync"
)

// Pre-generation's renders at the backend. `workers` bounds how many
// renders the pool has at the render backend at once. A job also spends
// time at the edge after the backend has answered (the file closed, put
// in place, recorded); the pool runs a few more goroutines than workers,
// so that one job is put in place while the next is already at the
// backend. A job takes a place at the backend (backendGate) before it
// starts and gives it back as soon as the backend's part is over: the
// render calls the hook its context carries (renderedAtBackend), or, if
// the job never reached the backend, the worker does when it is done.

// pregenExtra is how many goroutines the pool runs beyond n workers: a
// job's time at the edge is a fraction of its round trip, so a third more
// (at least one) keeps every place at the backend taken.
func pregenExtra(n int) int { return max(1, n/3) }

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

// inUse is how many places are taken.
func (g *backendGate) inUse() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.used
}

// backendPlace is one job's place at the backend.
type backendPlace struct {
	g    *backendGate
	mu   sync.Mutex
	held bool
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

// again takes the place once more for a render that is redone (its
// content changed while it rendered), waiting until ctx ends.
func (bp *backendPlace) again(ctx context.Context) bool {
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

// backendPlaceKey carries a pre-generation's place at the backend in the
// context of its render.
type backendPlaceKey struct{}

// takeBackendPlace waits for a place at g; ctx2 carries it to the render.
func takeBackendPlace(ctx context.Context, g *backendGate) (ctx2 context.Context, bp *backendPlace, ok bool) {
	if !g.acquire(ctx) {
		return ctx, nil, false
	}
	bp = &backendPlace{g: g, held: true}
	return context.WithValue(ctx, backendPlaceKey{}, bp), bp, true
}

// renderedAtBackend gives back the place at the backend of the
// pre-generation that ctx belongs to, if any: its render's answer is in.
func renderedAtBackend(ctx context.Context) {
	if bp, ok := ctx.Value(backendPlaceKey{}).(*backendPlace); ok {
		bp.release()
	}
}

// backendAgain takes the place at the backend once more for a
// pre-generation whose render is redone; true when ctx carries none.
func backendAgain(ctx context.Context) bool {
	if bp, ok := ctx.Value(backendPlaceKey{}).(*backendPlace); ok {
		return bp.again(ctx)
	}
	return true
}
