package cache

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

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
	// MaxRenders bounds the renders that run at once, misses, SSI parts and
	// pre-generation together; pre-generation takes at most half
	// (render_slots.go). Zero means DefaultMaxRenders.
	MaxRenders int
	// MaxFileSize is the largest answer stored, in bytes; a larger one is
	// passed on to the client and not stored. Zero means
	// DefaultMaxFileSize.
	MaxFileSize int64
	// HideCacheStatus leaves the Cache-Status header off the answers
	// (OnCacheStatus still gets it).
	HideCacheStatus bool
	// OnCacheStatus, when set, is told how each answer came about, once per
	// request, before the request's handler returns (in Caddy: it sets the
	// {http.delivery.cache_status} placeholder).
	OnCacheStatus func(r *http.Request, c CacheStatus)

	slotsOnce  sync.Once
	slots      *renderSlots
	busyLogged atomic.Bool
}

// DefaultMaxFileSize is the largest answer stored by default.
const DefaultMaxFileSize = 64 << 20

// ServeHTTP answers a request from the docroot, or renders it through
// render when the file is missing.
func (s *Site) ServeHTTP(w http.ResponseWriter, r *http.Request, render RenderFunc) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return s.passOn(w, r, render, statusMethod)
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
		return s.passOn(w, r, s.ssiRender(render), statusBypass)
	case errors.Is(err, ErrForbidden):
		s.setStatus(w, r, statusRefused)
		return &StatusError{Code: http.StatusNotFound, Err: fmt.Errorf("%s: %w", r.URL.Path, err)}
	case err != nil:
		s.setStatus(w, r, statusRefused)
		return &StatusError{Code: http.StatusBadRequest, Err: fmt.Errorf("%s: %w", r.URL.Path, err)}
	}
	if s.serveFromMemory(w, r, t.File, render) {
		return nil // e.g. a folder index, which the fast path leaves to Map
	}
	if f, info, epoch, ok := s.Store.openServe(t.File); ok {
		defer f.Close()
		s.Store.touch(t.File, time.Now())
		s.serveFile(w, r, f, info, epoch, t, statusHit, render)
		return nil
	}
	s.Store.flights.stats.misses.Add(1)
	aw := s.newAnswer(w, r, statusMiss)
	defer aw.finish()
	return s.miss(aw, r, t, s.ssiRender(render))
}

// passOn sends a request the cache does not keep to the backend; the
// answer reaches the client without the backend's Delivery-* headers.
func (s *Site) passOn(w http.ResponseWriter, r *http.Request, render RenderFunc, c CacheStatus) error {
	aw := s.newAnswer(w, r, c)
	defer aw.finish()
	return render(aw, r)
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
		s.serveAssembledHot(w, r, e, statusHit, render)
	} else {
		s.setStatus(w, r, statusHit)
		serveHot(w, r, e)
	}
	return true
}

// serveFile answers from an open file with Content-Type, ETag,
// Last-Modified, conditional requests, ranges and HEAD: from memory once
// read into the hot set, else through sendfile. A file marked as
// containing SSI directives is assembled instead (ssi.go); render renders
// its missing parts. c says how the file was come by (a ".old" copy when
// c.Stale()).
func (s *Site) serveFile(w http.ResponseWriter, r *http.Request, f *os.File, info fs.FileInfo, epoch uint64, t Target,
	c CacheStatus, render RenderFunc) {
	marked := s.ssiMarked(info)
	stale := c.stale
	if hot := s.Store.hot; hot != nil && !stale && hot.admissible(info) {
		if e, ok := s.Store.readHot(f, info, t); ok {
			hot.fill(t.File, e, epoch)
			if marked {
				s.serveAssembledHot(w, r, e, c, render)
			} else {
				s.setStatus(w, r, c)
				serveHot(w, r, e)
			}
			return
		}
	}
	if marked {
		s.serveAssembled(w, r, f, info, t, c, render)
		return
	}
	s.setStatus(w, r, c)
	s.Store.serveDisk(w, r, f, info, t, stale)
}

// etagOf is a strong validator from modification time and size, the way
// Caddy's file_server makes it. Every write is a rename of a new file, so
// the pair changes whenever the content does.
func etagOf(info fs.FileInfo) string {
	return `"` + strconv.FormatInt(info.ModTime().UnixNano(), 36) + strconv.FormatInt(info.Size(), 36) + `"`
}

// serveOld answers from the ".old" copy, if there is one; c says why
// (one of the stale statuses).
func (s *Site) serveOld(w http.ResponseWriter, r *http.Request, t Target, render RenderFunc, c CacheStatus) bool {
	f, info, ok := s.Store.openRegular(t.File + OldSuffix)
	if !ok {
		return false
	}
	defer f.Close()
	s.serveFile(w, r, f, info, 0, t, c, render)
	return true
}
