package cache

import (
	"bytes"
	"io/fs"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"
)

// Server-side includes.
//
// With SSI on, `<!--#include virtual="/path" -->` in a cached HTML file is
// replaced, when the file is served, by the file /path names in the same
// cache: a hit is copied in, a miss is rendered through the ordinary
// coalesced miss path (and so stored and registered on its own), a file
// with only a ".old" copy is included from that copy while it is rendered
// in the background. Included files may include files, up to a depth
// limit. Every other directive is stripped and never executed.
//
// Files are marked at render time: when a cacheable HTML answer contains
// "<!--#", the temp file gets the user-execute bit before it is renamed into
// place (like Apache's XBitHack), so the hit path tells from the FileInfo
// it already has whether a file needs assembling. The directive offsets of
// a marked file are parsed once per file version and kept in memory. An
// assembled page gets a strong ETag hashed from the identities of all its
// parts and Last-Modified of its newest part, so conditional requests see
// every fragment change; ranges are not offered (Accept-Ranges: none).

// DefaultSSIMaxDepth is how deep includes nest by default.
const DefaultSSIMaxDepth = 8

const (
	// ssiMarkBit marks a cached HTML file that contains SSI directives.
	ssiMarkBit fs.FileMode = 0o100
	// ssiMaxParts bounds the includes resolved for one response.
	ssiMaxParts = 1000
)

// SSIConfig turns on server-side includes for a Site.
type SSIConfig struct {
	// MaxDepth bounds nesting: the includes of a page are at depth 1.
	// Zero means DefaultSSIMaxDepth.
	MaxDepth int

	bodies  ssiBodies // files too large for the hot set, or with it off
	targets ssiTargets

	uncacheable  sync.Map // file -> time.Time: not rendered ahead until then
	uncacheableN atomic.Int64
}

func (c *SSIConfig) maxDepth() int {
	if c.MaxDepth <= 0 {
		return DefaultSSIMaxDepth
	}
	return c.MaxDepth
}

// ssiMarked reports whether a served file must be assembled.
func (s *Site) ssiMarked(info fs.FileInfo) bool {
	return s.SSI != nil && info.Mode()&ssiMarkBit != 0
}

func isHTML(h http.Header) bool {
	ct, _, _ := strings.Cut(h.Get("Content-Type"), ";")
	ct = strings.ToLower(strings.TrimSpace(ct))
	return ct == "text/html" || ct == "application/xhtml+xml"
}

// ---- Marking at render time ------------------------------------------

// ssiMarker follows the body of a render on its way into the temp file.
type ssiMarker struct {
	checked, html, found bool
	held                 int // bytes of ssiOpen matched at the end of the last chunk
}

// scanSSI looks for "<!--#" in a chunk of a cacheable HTML render and, at
// the first one, marks the temp file.
func (tw *teeWriter) scanSSI(p []byte) {
	m := &tw.ssi
	if m.found || tw.tmp == nil || tw.tmpErr != nil {
		return
	}
	if !m.checked {
		m.checked, m.html = true, isHTML(tw.header)
	}
	if !m.html || !findSSIOpen(&m.held, p) {
		return
	}
	m.found = true
	info, err := tw.tmp.Stat()
	if err == nil {
		err = tw.tmp.Chmod(info.Mode().Perm() | ssiMarkBit)
	}
	if err != nil {
		tw.site.Store.log.Warn("cannot mark a file with SSI directives", zap.String("url", tw.t.Key), zap.Error(err))
	}
}

// findSSIOpen reports whether "<!--#" occurs in the stream at p, given how
// much of it the previous chunk ended with (held, updated).
func findSSIOpen(held *int, p []byte) bool {
	if k := *held; k > 0 {
		need := ssiOpen[k:]
		n := min(len(need), len(p))
		if string(p[:n]) == need[:n] {
			if n == len(need) {
				return true
			}
			*held = k + n
			return false
		}
	}
	if bytes.Contains(p, []byte(ssiOpen)) {
		return true
	}
	*held = heldOpenPrefix(p)
	return false
}

// ---- Filtering what the render backend answers -------------------------

// ssiRender wraps a RenderFunc so that an HTML answer that reaches a client
// straight from the render backend (not cacheable, or an error page) is
// assembled on the way, and a cacheable HTML answer is not streamed to the
// client but served from its file, assembled, once it is stored. A render
// never waits for another render that way: a miss's file is in place before
// its includes are looked up.
func (s *Site) ssiRender(next RenderFunc) RenderFunc {
	if s.SSI == nil {
		return next
	}
	x := &ssiRenderer{s: s, next: next}
	return x.render
}

type ssiRenderer struct {
	s    *Site
	next RenderFunc
}

func (x *ssiRenderer) render(w http.ResponseWriter, r *http.Request) error {
	if _, ok := w.(*ssiRenderWriter); ok {
		return x.next(w, r) // wrapped twice: filter once
	}
	rw := &ssiRenderWriter{x: x, w: w, r: r}
	err := x.next(rw, r)
	if rw.filter != nil {
		rw.filter.end()
	}
	return err
}

// ssiRenderWriter sits between the render backend and where its answer
// goes (the cache's teeWriter, or a client directly).
type ssiRenderWriter struct {
	x           *ssiRenderer
	w           http.ResponseWriter
	r           *http.Request
	dst         http.ResponseWriter
	filter      *ssiStreamWriter
	wroteHeader bool
}

func (rw *ssiRenderWriter) Header() http.Header { return rw.w.Header() }

func (rw *ssiRenderWriter) WriteHeader(code int) {
	if code < 200 {
		rw.w.WriteHeader(code)
		return
	}
	if rw.wroteHeader {
		return
	}
	rw.wroteHeader = true
	if tw, ok := rw.w.(*teeWriter); ok {
		if isHTML(tw.header) {
			tw.stream = false // served assembled from the file once stored
		}
		if tw.client != nil {
			rw.filter = &ssiStreamWriter{w: tw.client, x: rw.x, r: rw.r}
			tw.client = rw.filter // what passes straight through
		}
		rw.dst = tw
	} else {
		rw.filter = &ssiStreamWriter{w: rw.w, x: rw.x, r: rw.r}
		rw.dst = rw.filter
	}
	rw.dst.WriteHeader(code)
}

func (rw *ssiRenderWriter) Write(p []byte) (int, error) {
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	return rw.dst.Write(p)
}

// Unwrap lets http.ResponseController reach the writer underneath (an
// upgraded connection of a request that is not cached is hijacked there).
func (rw *ssiRenderWriter) Unwrap() http.ResponseWriter { return rw.w }

// FlushError passes flushes on (reverse_proxy flushes streamed answers).
func (rw *ssiRenderWriter) FlushError() error {
	if rw.dst != nil {
		return http.NewResponseController(rw.dst).Flush()
	}
	return http.NewResponseController(rw.w).Flush()
}

// ssiStreamWriter assembles an HTML answer as it streams through.
type ssiStreamWriter struct {
	w           http.ResponseWriter
	x           *ssiRenderer
	r           *http.Request
	a           *ssiAssembly
	p           ssiParser
	active      bool
	wroteHeader bool
}

func (f *ssiStreamWriter) Header() http.Header { return f.w.Header() }

func (f *ssiStreamWriter) WriteHeader(code int) {
	if code < 200 {
		f.w.WriteHeader(code)
		return
	}
	if f.wroteHeader {
		return
	}
	f.wroteHeader = true
	h := f.w.Header()
	if code != http.StatusNoContent && code != http.StatusNotModified && isHTML(h) {
		f.active = true
		for _, k := range []string{"Content-Length", "Etag", "Last-Modified", "Content-Range"} {
			h.Del(k)
		}
		h.Set("Accept-Ranges", "none")
		f.a = f.x.s.newAssembly(f.r, f.x.render)
		key := f.r.URL.Path
		if t, err := f.x.s.Mapper.Map(f.r.URL); err == nil {
			key = t.Key
		}
		root := f.a.rootPart(Target{Key: key}, nil, nil, false)
		f.p = ssiParser{
			text: f.a.writeText(f.w),
			directive: func(d ssiDirective) {
				if f.a.err == nil { // nobody to assemble for any more
					f.a.writeDirective(f.w, root, d)
					f.a.closeFiles()
				}
			},
		}
	}
	f.w.WriteHeader(code)
}

func (f *ssiStreamWriter) Write(p []byte) (int, error) {
	if !f.wroteHeader {
		f.WriteHeader(http.StatusOK)
	}
	if !f.active {
		return f.w.Write(p)
	}
	if f.a.stopped() { // the client is gone: the backend's answer can stop too
		return 0, f.a.err
	}
	f.p.Write(p)
	if f.a.stopped() {
		return 0, f.a.err
	}
	return len(p), nil
}

func (f *ssiStreamWriter) FlushError() error { return http.NewResponseController(f.w).Flush() }

func (f *ssiStreamWriter) Unwrap() http.ResponseWriter { return f.w }

func (f *ssiStreamWriter) end() {
	if f.active {
		f.p.End()
		f.a.closeFiles()
	}
}
