package cache

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"strconv"
	"time"
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

// Site serves one docroot for one handler configuration.
type Site struct {
	Store  *Store
	Mapper Mapper
	// RenderTimeout bounds one render; a render that takes longer counts as
	// failed (the ".old" copy is served if there is one).
	RenderTimeout time.Duration
	// RenderWait is how long the request that finds only a ".old" copy and
	// starts the render waits for it before it gets the copy (see
	// render_wait.go). Zero or negative: it gets the copy at once, and so
	// does every request while the render runs.
	RenderWait time.Duration
	// SSI, when set, assembles files with server-side includes (ssi.go).
	SSI *SSIConfig
	// Detach, when set, gives a copy of a request its own per-request
	// state before it is rendered on a goroutine of its own, alongside the
	// request's handlers (in Caddy: the vars map, which handlers write
	// without a lock).
	Detach func(*http.Request) *http.Request
	// Precompress writes gzip and brotli copies next to every compressible
	// page it stores (served by Accept-Encoding, like nginx's gzip_static);
	// the Mapper should then reserve ".gz" and ".br".
	Precompress bool
}

// ServeHTTP answers a request from the docroot, or renders it through
// render when the file is missing.
func (s *Site) ServeHTTP(w http.ResponseWriter, r *http.Request, render RenderFunc) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return render(w, r)
	}
	if s.Precompress && !s.Store.precompressed.Load() {
		// Its ".gz"/".br" files are copies, never served through a link.
		s.Store.precompressed.Store(true)
	}
	// The fast path: a plain path whose file is in memory.
	if file, ok := fastFile(r.URL); ok && s.serveFromMemory(w, r, file, render) {
		return nil
	}
	t, err := s.Mapper.Map(r.URL)
	switch {
	case errors.Is(err, ErrNotCacheable):
		return s.ssiRender(render)(w, r)
	case errors.Is(err, ErrForbidden):
		return &StatusError{Code: http.StatusNotFound, Err: fmt.Errorf("%s: %w", r.URL.Path, err)}
	case err != nil:
		return &StatusError{Code: http.StatusBadRequest, Err: fmt.Errorf("%s: %w", r.URL.Path, err)}
	}
	if s.serveFromMemory(w, r, t.File, render) {
		return nil // e.g. a folder index, which the fast path leaves to Map
	}
	if f, info, epoch, ok := s.Store.openServe(t.File); ok {
		defer f.Close()
		s.Store.touch(t.File, time.Now())
		s.serveFile(w, r, f, info, epoch, t, false, render)
		return nil
	}
	return s.miss(w, r, t, s.ssiRender(render))
}

// serveFromMemory answers from the hot set if it holds the file.
func (s *Site) serveFromMemory(w http.ResponseWriter, r *http.Request, file string, render RenderFunc) bool {
	hot := s.Store.hot
	if hot == nil {
		return false
	}
	e := s.Store.hotGet(file)
	if e == nil {
		return false
	}
	s.Store.touch(file, time.Now())
	if e.ssi && s.SSI != nil {
		s.serveAssembledHot(w, r, e, render)
	} else {
		serveHot(w, r, e)
	}
	return true
}

// openServe opens a docroot file for serving. The hot set's epoch is read
// first: a copy made from this file is kept only if nothing changed the
// file since.
func (s *Store) openServe(name string) (*os.File, fs.FileInfo, uint64, bool) {
	var epoch uint64
	if s.hot != nil {
		epoch = s.hot.epoch(name)
	}
	f, info, ok := s.openRegular(name)
	return f, info, epoch, ok
}

// serveFile answers from an open file with Content-Type, ETag,
// Last-Modified, conditional requests, ranges and HEAD: from memory once
// read into the hot set, else through sendfile. A file marked as
// containing SSI directives is assembled instead (ssi.go); render renders
// its missing parts.
func (s *Site) serveFile(w http.ResponseWriter, r *http.Request, f *os.File, info fs.FileInfo, epoch uint64, t Target,
	stale bool, render RenderFunc) {
	marked := s.ssiMarked(info)
	if hot := s.Store.hot; hot != nil && !stale && hot.admissible(info) {
		if e, ok := s.Store.readHot(f, info, t); ok {
			hot.fill(t.File, e, epoch)
			if marked {
				s.serveAssembledHot(w, r, e, render)
			} else {
				serveHot(w, r, e)
			}
			return
		}
	}
	if marked {
		s.serveAssembled(w, r, f, info, t, stale, render)
		return
	}
	s.Store.serveDisk(w, r, f, info, t, stale)
}

// etagOf is a strong validator from modification time and size, the way
// Caddy's file_server makes it. Every write is a rename of a new file, so
// the pair changes whenever the content does.
func etagOf(info fs.FileInfo) string {
	return `"` + strconv.FormatInt(info.ModTime().UnixNano(), 36) + strconv.FormatInt(info.Size(), 36) + `"`
}

// serveOld answers from the ".old" copy, if there is one.
func (s *Site) serveOld(w http.ResponseWriter, r *http.Request, t Target, render RenderFunc) bool {
	f, info, ok := s.Store.openRegular(t.File + OldSuffix)
	if !ok {
		return false
	}
	defer f.Close()
	s.serveFile(w, r, f, info, 0, t, true, render)
	return true
}

// miss coalesces the renders of one file. When a ".old" copy exists, the
// request that starts the render waits for it up to RenderWait and the
// others get the copy at once (render_wait.go); otherwise the first
// request renders and the others wait for that render.
func (s *Site) miss(w http.ResponseWriter, r *http.Request, t Target, render RenderFunc) error {
	switch s.Store.checkMiss(t.File) {
	case missRefused:
		return &StatusError{Code: http.StatusNotFound, Err: fmt.Errorf("%s: link to an %w", t.Key, ErrForbidden)}
	case missPassThrough:
		// No file can be kept under this name (a file is in the way, or a
		// link): nothing to render for, to record or to remove.
		return render(w, r)
	}
	for attempt := 0; ; attempt++ {
		if old, info, ok := s.Store.openRegular(t.File + OldSuffix); ok {
			defer old.Close()
			if f := s.renderInBackground(r, t, render); f != nil && s.RenderWait > 0 {
				if done, err := s.awaitRender(w, r, t, f, render); done {
					return err
				}
			}
			s.serveFile(w, r, old, info, 0, t, true, render)
			return nil
		}
		f, leader := s.Store.flights.join(t.File)
		if leader {
			return s.lead(w, r, t, f, render, false)
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
				s.serveFile(w, r, file, info, epoch, t, false, render)
				return nil
			}
			if attempt < 2 {
				continue // invalidated again at once: join the next render
			}
			return render(w, r)
		case outcomeOutdated:
			if attempt < 2 {
				continue
			}
			return render(w, r)
		case outcomePassthrough:
			return render(w, r)
		case outcomeGone:
			return &StatusError{Code: f.status, Err: fmt.Errorf("%s: gone at the render backend", t.Key)}
		default:
			if s.serveOld(w, r, t, render) {
				return nil
			}
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
		f, leader := s.Store.flights.join(t.File)
		if leader {
			_ = s.lead(nil, r, t, f, render, true)
		} else {
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
