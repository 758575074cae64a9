package cache

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"
)

// Render slots: at most MaxRenders renders of a Site run at once — the
// renders of readers' misses, of SSI parts and of pre-generation together,
// pre-generation taking at most half of them. Only a render's leader takes
// a slot; requests that join its flight wait for it as before.
//
// A reader's render waits for a slot up to RenderWait. If none comes free,
// the render does not start: its flight ends as rejected (so the next
// request can lead), and the readers waiting for it get the ".old" copy if
// there is one, else 503 with Retry-After. Pre-generation is background
// work: it waits for a slot as long as its context lets it, and holds no
// flight while it waits. Waiting costs a blocked goroutine and a timer,
// nothing that grows with the number of waiters.

// DefaultMaxRenders is how many renders a Site runs at once by default.
const DefaultMaxRenders = 64

// retryAfterBusy is the Retry-After of a 503 for want of a render slot, in
// seconds.
const retryAfterBusy = "2"

// errNoSlot: no render slot came free in time.
var errNoSlot = errors.New("all render slots busy")

// renderSlots are the slots of one Site: a semaphore of MaxRenders, and
// one of half as many that pre-generation takes first.
type renderSlots struct {
	max    int
	all    chan struct{}
	pregen chan struct{}
}

func newRenderSlots(n int) *renderSlots {
	if n <= 0 {
		n = DefaultMaxRenders
	}
	return &renderSlots{max: n, all: make(chan struct{}, n), pregen: make(chan struct{}, max(1, n/2))}
}

// renderSlot is a slot held; release gives it back (once).
type renderSlot struct {
	rs     *renderSlots
	pregen bool
	held   bool
}

func (sl *renderSlot) release() {
	if !sl.held {
		return
	}
	sl.held = false
	<-sl.rs.all
	if sl.pregen {
		<-sl.rs.pregen
	}
}

func (s *Site) renderSlots() *renderSlots {
	s.slotsOnce.Do(func() { s.slots = newRenderSlots(s.MaxRenders) })
	return s.slots
}

// readerSlot takes a slot for a reader's render (or an SSI part), waiting
// up to RenderWait; ok is false when none came free in time.
func (s *Site) readerSlot() (sl renderSlot, ok bool) {
	rs := s.renderSlots()
	select {
	case rs.all <- struct{}{}:
		return renderSlot{rs: rs, held: true}, true
	default:
	}
	if s.RenderWait > 0 {
		t := time.NewTimer(s.RenderWait)
		defer t.Stop()
		select {
		case rs.all <- struct{}{}:
			return renderSlot{rs: rs, held: true}, true
		case <-t.C:
		case <-s.Store.ctx.Done():
		}
	}
	s.noteNoSlot(rs)
	return renderSlot{}, false
}

// pregenSlot takes a slot for a pre-generation, waiting until ctx ends.
func (s *Site) pregenSlot(ctx context.Context) (sl renderSlot, ok bool) {
	rs := s.renderSlots()
	select {
	case rs.pregen <- struct{}{}:
	case <-ctx.Done():
		return renderSlot{}, false
	}
	select {
	case rs.all <- struct{}{}:
		return renderSlot{rs: rs, pregen: true, held: true}, true
	case <-ctx.Done():
		<-rs.pregen
		return renderSlot{}, false
	}
}

// noteNoSlot counts a render not started for want of a slot, and logs the
// first one of the Site.
func (s *Site) noteNoSlot(rs *renderSlots) {
	s.Store.flights.stats.rejectedSlots.Add(1)
	if s.busyLogged.CompareAndSwap(false, true) {
		s.Store.log.Warn("all render slots busy: misses get the .old copy or 503 (logged once per site)",
			zap.Int("max_renders", rs.max), zap.Duration("render_wait", s.RenderWait))
	}
}

// busy answers a reader whose render found no slot in time: the ".old"
// copy if there is one, else 503 with Retry-After.
func (s *Site) busy(w http.ResponseWriter, r *http.Request, t Target, render RenderFunc) error {
	if s.serveOld(w, r, t, render, statusStaleBusy) {
		return nil
	}
	w.Header().Set("Retry-After", retryAfterBusy)
	s.setStatus(w, r, statusBusy)
	return &StatusError{Code: http.StatusServiceUnavailable, Err: fmt.Errorf("%s: %w", t.Key, errNoSlot)}
}

// renderOwn renders a reader's request straight to it, not coalesced and
// not stored (its answer may not be shared), in a render slot like any
// render.
func (s *Site) renderOwn(w http.ResponseWriter, r *http.Request, t Target, render RenderFunc, c CacheStatus) error {
	sl, ok := s.readerSlot()
	if !ok {
		return s.busy(w, r, t, render)
	}
	defer sl.release()
	s.setStatus(w, r, c)
	return render(w, r)
}
