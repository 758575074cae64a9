package cache

import (
	"net/http"

	"github.com/delivery-edge/edge/cache/ssi"
)

// Filtering what the render backend answers.

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
		if ssi.IsHTML(tw.header) {
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
	p           ssi.Parser
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
	if code != http.StatusNoContent && code != http.StatusNotModified && ssi.IsHTML(h) {
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
		f.p = ssi.Parser{
			Text: f.a.writeText(f.w),
			Directive: func(d ssi.Directive) {
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
