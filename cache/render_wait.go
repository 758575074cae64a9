package cache

import (
	"fmt"
	"net/http"
	"time"
)

// The first reader after a removal.
//
// A removed page waits as "page.html.old" until somebody asks for it. The
// request that finds only the copy starts the render and waits for it, up
// to RenderWait, so that a page read once an hour shows its reader the
// newest version and not the one before the last change (the Delivery
// Framework's rule: the request that finds no cache entry waits for it to
// be created; requests arriving meanwhile get the ".old" content). Requests
// that arrive while that render runs get the copy at once, marked stale. A
// render that takes longer than RenderWait goes on in the background
// (bounded by RenderTimeout) while the waiting request gets the copy.

// DefaultRenderWait is how long the first reader of a removed page waits
// for its render when the site sets nothing else.
const DefaultRenderWait = 5 * time.Second

// awaitRender waits for the render f of t that this request started, up
// to RenderWait, and answers from its outcome: the new file, the
// backend's 404/410, or a direct render when the answer may not be
// stored. done is false when the request is to get the ".old" copy (the
// render failed, found no render slot, or has not finished in time), with
// stale saying which.
func (s *Site) awaitRender(w http.ResponseWriter, r *http.Request, t Target, f *flight, render RenderFunc) (done bool,
	stale CacheStatus, err error) {
	timer := time.NewTimer(s.RenderWait)
	defer timer.Stop()
	select {
	case <-f.done:
	case <-timer.C:
		if !f.started.Load() {
			return false, statusStaleBusy, nil // no render slot within render_wait
		}
		return false, statusStaleRender, nil // it goes on in the background
	case <-r.Context().Done():
		return true, stale, r.Context().Err()
	}
	switch f.outcome {
	case outcomeStored:
		if file, info, epoch, ok := s.Store.openServe(t.File); ok {
			defer file.Close()
			s.serveFile(w, r, file, info, epoch, t, statusStored, render)
			return true, stale, nil
		}
		// Invalidated again at once: its newest version is the ".old" copy now.
		return s.serveOld(w, r, t, render, statusStaleRender), stale, nil
	case outcomeGone:
		s.setStatus(w, r, forwarded(f.status, 0))
		return true, stale, &StatusError{Code: f.status, Err: fmt.Errorf("%s: gone at the render backend", t.Key)}
	case outcomePassthrough:
		return true, stale, s.renderOwn(w, r, t, render, statusUncacheable) // no longer cacheable: answered directly
	case outcomeOutdated:
		// Changed while rendering: the result is the ".old" copy now, and
		// newer than the one this request found.
		return s.serveOld(w, r, t, render, statusStaleRender), stale, nil
	case outcomeRejected:
		return false, statusStaleBusy, nil
	}
	timedOut := f.status == http.StatusGatewayTimeout
	return false, renderFailed(f.status, timedOut, true, 0), nil // failed: the ".old" copy
}
