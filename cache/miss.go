package cache

import (
	"context"
	"errors"
	"fmt"
	"net/http"
)

// Misses: one render per file at a time (coalesce.go), with the ".old"
// copy served meanwhile where there is one (render_wait.go), and the
// pre-generation queue's renders in place (Regenerate).

// miss coalesces the renders of one file. When a ".old" copy exists, the
// request that starts the render waits for it up to RenderWait and the
// others get the copy at once (render_wait.go); otherwise the first
// request renders and the others wait for that render. A render that
// finds no render slot in time does not start (render_slots.go).
func (s *Site) miss(w http.ResponseWriter, r *http.Request, t Target, render RenderFunc) error {
	switch s.Store.checkMiss(t.File) {
	case missRefused:
		s.setStatus(w, r, statusRefused)
		return &StatusError{Code: http.StatusNotFound, Err: fmt.Errorf("%s: link to an %w", t.Key, ErrForbidden)}
	case missPassThrough:
		// No file can be kept under this name (a file is in the way, or a
		// link): nothing to render for, to record or to remove.
		s.setStatus(w, r, statusBypass)
		return render(w, r)
	}
	for attempt := 0; ; attempt++ {
		if old, info, ok := s.Store.openRegular(t.File + OldSuffix); ok {
			defer old.Close()
			why := statusStaleRender
			if f := s.renderInBackground(r, t, render); f != nil && s.RenderWait > 0 {
				done, stale, err := s.awaitRender(w, r, t, f, render)
				if done {
					return err
				}
				why = stale
			}
			s.serveFile(w, r, old, info, 0, t, why, render)
			return nil
		}
		f, leader := s.Store.flights.join(t.File)
		if leader {
			err := s.lead(w, r, t, f, render, false)
			if errors.Is(err, errNoSlot) {
				return s.busy(w, r, t, render)
			}
			return err
		}
		select {
		case <-f.done:
		case <-r.Context().Done():
			return r.Context().Err()
		}
		switch f.outcome {
		case outcomeStored:
			if file, info, epoch, ok := s.Store.openServe(t.File); ok {
				defer file.Close()
				s.serveFile(w, r, file, info, epoch, t, statusCollapsed, render)
				return nil
			}
			if attempt < 2 {
				continue // invalidated again at once: join the next render
			}
			return s.renderOwn(w, r, t, render, collapsedNot(statusOutdated))
		case outcomeOutdated:
			if attempt < 2 {
				continue
			}
			return s.renderOwn(w, r, t, render, collapsedNot(statusOutdated))
		case outcomePassthrough:
			return s.renderOwn(w, r, t, render, collapsedNot(statusUncacheable))
		case outcomeGone:
			s.setStatus(w, r, forwarded(f.status, 1))
			return &StatusError{Code: f.status, Err: fmt.Errorf("%s: gone at the render backend", t.Key)}
		case outcomeRejected:
			return s.busy(w, r, t, render)
		default:
			if s.serveOld(w, r, t, render, renderFailed(f.status, f.status == http.StatusGatewayTimeout, true, 0)) {
				return nil
			}
			s.setStatus(w, r, renderFailed(f.status, f.status == http.StatusGatewayTimeout, false, 1))
			return &StatusError{Code: f.status, Err: fmt.Errorf("render of %s failed", t.Key)}
		}
	}
}

// renderInBackground starts a render of t on a goroutine of its own,
// unless one is under way or the last one failed a moment ago; it returns
// the flight it started (nil if none).
func (s *Site) renderInBackground(r *http.Request, t Target, render RenderFunc) *flight {
	f, ok := s.Store.flights.joinBackground(t.File)
	if !ok {
		return nil
	}
	rr := s.detachedRequest(r)
	s.Store.goBackground(func() { _ = s.lead(nil, rr, t, f, render, true) })
	return f
}

// Outcomes of Regenerate, as HTTP statuses for the synthetic request that
// carries a pre-generation through the server's handlers.
const (
	RegenStored   = http.StatusOK
	RegenGone     = http.StatusNotFound
	RegenFailed   = http.StatusBadGateway
	RegenSkipped  = http.StatusNoContent // not cacheable: nothing to pre-generate
	RegenConflict = http.StatusConflict  // outdated while rendering: run again
)

// Regenerate renders the request's file in place for the pre-generation
// queue: the current file is served until the new one replaces it. A
// render already under way for the file (a reader's miss) is joined. It
// answers w with one of the Regen* statuses and no body.
func (s *Site) Regenerate(w http.ResponseWriter, r *http.Request, render RenderFunc) {
	t, err := s.Mapper.Map(r.URL)
	if err != nil {
		w.WriteHeader(RegenSkipped)
		return
	}
	for attempt := 0; attempt < 3; attempt++ {
		// Background work waits for a slot of its own class (at most half
		// of them), before it leads a flight that readers might join.
		sl, ok := s.pregenSlot(r.Context())
		if !ok {
			w.WriteHeader(RegenFailed)
			return
		}
		f, leader := s.Store.flights.join(t.File)
		if leader {
			_ = s.leadWith(&sl, nil, r, t, f, render, true)
		} else {
			sl.release() // a reader's render is under way: wait for it
			select {
			case <-f.done:
			case <-r.Context().Done():
				w.WriteHeader(RegenFailed)
				return
			}
		}
		switch f.outcome {
		case outcomeStored:
			w.WriteHeader(RegenStored)
			return
		case outcomeGone:
			w.WriteHeader(RegenGone)
			return
		case outcomePassthrough:
			w.WriteHeader(RegenSkipped)
			return
		case outcomeFailed:
			w.WriteHeader(RegenFailed)
			return
		}
		// outcomeOutdated: the content changed while rendering; again.
		// outcomeRejected: a reader's render found no slot; this one leads.
	}
	w.WriteHeader(RegenConflict)
}

// detachedRequest is a copy of r for a render that runs on its own
// goroutine and may outlive r.
func (s *Site) detachedRequest(r *http.Request) *http.Request {
	rr := r.Clone(context.WithoutCancel(r.Context()))
	if s.Detach != nil {
		rr = s.Detach(rr)
	}
	return rr
}
