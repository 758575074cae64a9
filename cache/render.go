package cache

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"
)

// RenderFunc renders a request through the next handler (in Caddy: the
// rest of the route, normally reverse_proxy to the render backend). An
// error that carries an HTTP status implements StatusCoder.
type RenderFunc func(w http.ResponseWriter, r *http.Request) error

// StatusCoder is implemented by errors that carry an HTTP status.
type StatusCoder interface{ HTTPStatus() int }

// StatusError is an error with the HTTP status the client should get.
type StatusError struct {
	Code int
	Err  error
}

func (e *StatusError) Error() string {
	if e.Err == nil {
		return http.StatusText(e.Code)
	}
	return e.Err.Error()
}
func (e *StatusError) Unwrap() error   { return e.Err }
func (e *StatusError) HTTPStatus() int { return e.Code }

func statusOf(err error) int {
	var sc StatusCoder
	if errors.As(err, &sc) {
		return sc.HTTPStatus()
	}
	if errors.Is(err, errRenderTimeout) {
		return http.StatusGatewayTimeout
	}
	return http.StatusBadGateway
}

var errRenderTimeout = errors.New("render timed out")

// DefaultRenderTimeout bounds a render when the site sets no timeout.
const DefaultRenderTimeout = 30 * time.Second

// lead renders t for everyone waiting on f, in a reader's render slot
// (render_slots.go); it returns errNoSlot, with the flight ended as
// rejected, when none came free in time.
func (s *Site) lead(w http.ResponseWriter, r *http.Request, t Target, f *flight, render RenderFunc, background bool) error {
	sl, ok := s.readerSlot()
	if !ok {
		s.Store.flights.finish(t.File, f, outcomeRejected, http.StatusServiceUnavailable)
		return errNoSlot
	}
	return s.leadWith(&sl, w, r, t, f, render, background)
}

// leadWith renders t for everyone waiting on f in the render slot sl,
// which it gives back as soon as the render is over. The client's request
// is answered as the render streams when it can be (a plain GET);
// otherwise (HEAD, ranges, conditions) the file is rendered first and then
// served. background renders with no client waiting (pre-generation, or a
// stale copy was served); the current file stays in place until the new
// one replaces it.
func (s *Site) leadWith(sl *renderSlot, w http.ResponseWriter, r *http.Request, t Target, f *flight, render RenderFunc,
	background bool) (err error) {
	o, status := outcomeFailed, http.StatusBadGateway
	defer func() { s.Store.flights.finish(t.File, f, o, status) }()
	// Given back before the answer is served from the file: an SSI page
	// renders its parts then, each in a slot of its own.
	defer sl.release()

	// A pre-generation waits here for its place at the backend
	// (pregen_gate.go), before its render's time starts; a reader's
	// render has none to wait for.
	if background && !enterBackend(r.Context()) {
		return context.Cause(r.Context()) // shutting down
	}
	timeout := s.RenderTimeout
	if timeout <= 0 {
		timeout = DefaultRenderTimeout
	}
	// The render outlives the client that started it: others wait for it.
	ctx, cancel := context.WithTimeoutCause(context.WithoutCancel(r.Context()), timeout, errRenderTimeout)
	defer cancel()
	stop := context.AfterFunc(s.Store.ctx, cancel) // the store is closing
	defer stop()

	f.started.Store(true)
	start := time.Now()
	tw := &teeWriter{site: s, t: t, host: r.Host, header: http.Header{}, now: start, r: r,
		changeMark: s.Store.changes.begin()}
	defer s.Store.changes.end(tw.changeMark)
	if !background {
		tw.client = w
		tw.stream = r.Method == http.MethodGet && !hasConditionsOrRange(r)
	}
	defer tw.discardTemp()
	defer tw.endFlushes() // a render that panics, too
	renderErr, aborted := callRender(render, tw, renderRequest(r, ctx))
	tw.endFlushes() // from here on, only this goroutine writes to w
	if background {
		leftBackend(r.Context()) // a pre-generation's next job may go to the backend
	}
	if aborted {
		// The backend's answer broke off mid-stream: nothing is kept, and a
		// client that got part of it must see the connection abort too.
		s.Store.log.Warn("render aborted mid-response", zap.String("url", t.Key))
		if tw.wroteClient {
			f.took = time.Since(start)
			s.setStatus(w, r, renderFailed(tw.status, false, false, 0))
			panic(http.ErrAbortHandler)
		}
		renderErr = errors.New("render aborted mid-response")
	}
	if renderErr != nil && !tw.wroteHeader {
		f.took = time.Since(start)
		sl.release()
		timedOut := context.Cause(ctx) == errRenderTimeout //nolint:errorlint // our own sentinel cause
		if timedOut {
			renderErr = &StatusError{Code: http.StatusGatewayTimeout, Err: fmt.Errorf("render of %s: %w", t.Key, errRenderTimeout)}
		}
		status = statusOf(renderErr)
		if !background && s.serveOld(w, r, t, render, renderFailed(0, timedOut, true, 0)) {
			return nil
		}
		if !background {
			s.setStatus(w, r, renderFailed(0, timedOut, false, 0))
		}
		return renderErr
	}
	o, status = tw.finish(renderErr, f)
	f.took = time.Since(start)
	sl.release()
	switch {
	case background:
		return nil
	case tw.wroteClient:
		s.setStatus(w, r, tw.finalStatus(o)) // the header went out already: for the report
		return nil
	case o == outcomeStored:
		if file, info, epoch, ok := s.Store.openServe(t.File); ok {
			defer file.Close()
			s.serveFile(w, r, file, info, epoch, t, statusStored, render)
			return nil
		}
		// Invalidated at once: answer this one directly.
		return s.renderOwn(w, r, t, render, statusOutdated)
	case status >= 500 && s.serveOld(w, r, t, render, renderFailed(status, false, true, 0)):
		return nil
	case o == outcomePassthrough || o == outcomeOutdated:
		// Rendered for the file, which was not kept: answer this one directly.
		return s.renderOwn(w, r, t, render, tw.finalStatus(o))
	}
	s.setStatus(w, r, tw.finalStatus(o))
	return &StatusError{Code: status, Err: errors.New("render failed")}
}

// callRender runs the render and turns the abort panic reverse_proxy uses
// for a broken stream into a result.
func callRender(render RenderFunc, w http.ResponseWriter, r *http.Request) (err error, aborted bool) {
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler { //nolint:errorlint // sentinel panic value
				panic(v)
			}
			aborted = true
		}
	}()
	return render(w, r), false
}

// renderRequest is the request sent to the render backend: a plain GET for
// the whole, unencoded representation.
func renderRequest(r *http.Request, ctx context.Context) *http.Request {
	rr := r.Clone(ctx)
	rr.Method = http.MethodGet
	for _, h := range []string{"Accept-Encoding", "Range", "If-Range", "If-None-Match", "If-Modified-Since",
		"If-Match", "If-Unmodified-Since"} {
		rr.Header.Del(h)
	}
	return rr
}

func hasConditionsOrRange(r *http.Request) bool {
	h := r.Header
	return h.Get("Range") != "" || h.Get("If-None-Match") != "" || h.Get("If-Modified-Since") != "" ||
		h.Get("If-Match") != "" || h.Get("If-Unmodified-Since") != ""
}
