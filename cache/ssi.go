package cache

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash/fnv"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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
	// ssiMaxLayouts bounds the parsed layouts kept in memory.
	ssiMaxLayouts = 20000
)

// SSIConfig turns on server-side includes for a Site.
type SSIConfig struct {
	// MaxDepth bounds nesting: the includes of a page are at depth 1.
	// Zero means DefaultSSIMaxDepth.
	MaxDepth int

	layouts ssiLayouts
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
				f.a.writeDirective(f.w, root, d)
				f.a.closeFiles()
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
	f.p.Write(p)
	if f.a.err != nil {
		return 0, f.a.err
	}
	return len(p), nil
}

func (f *ssiStreamWriter) FlushError() error { return http.NewResponseController(f.w).Flush() }

func (f *ssiStreamWriter) end() {
	if f.active {
		f.p.End()
		f.a.closeFiles()
	}
}

// ---- Assembly ----------------------------------------------------------

// ssiState travels with the requests of includes rendered while a page is
// assembled, so nested assemblies see the chain above them.
type ssiState struct {
	chain  []string // keys of the documents being assembled, outermost first
	budget *atomic.Int32
}

type ssiStateKey struct{}

// ssiAssembly is one response being assembled: a tree of parts, opened
// before the first byte is sent.
type ssiAssembly struct {
	s      *Site
	r      *http.Request
	render RenderFunc
	chain  []string
	budget *atomic.Int32
	now    int64

	files   []*os.File // opened here, closed by closeFiles
	live    int        // includes rendered while streaming (no validator)
	stale   bool
	lastMod time.Time
	err     error // writing to the client failed
}

// ssiPart is one file of an assembly.
type ssiPart struct {
	t      Target
	info   fs.FileInfo
	f      *os.File
	parent *ssiPart
	depth  int
	stale  bool
	pieces []ssiPiece
	size   int64 // assembled size, when nothing below is rendered live
}

// ssiPiece is a range of a part's file, or what a directive becomes.
type ssiPiece struct {
	off, n  int64
	comment string
	part    *ssiPart
	live    *ssiLive
	isText  bool
}

// ssiLive is an include that was a miss: rendered while streaming.
type ssiLive struct {
	t      Target
	u      *url.URL
	parent *ssiPart
}

func (s *Site) newAssembly(r *http.Request, render RenderFunc) *ssiAssembly {
	a := &ssiAssembly{s: s, r: r, render: render, now: time.Now().UnixMilli()}
	if st, ok := r.Context().Value(ssiStateKey{}).(*ssiState); ok {
		a.chain, a.budget = st.chain, st.budget
	} else {
		a.budget = new(atomic.Int32)
	}
	return a
}

// serveAssembled answers a request for a marked file.
func (s *Site) serveAssembled(w http.ResponseWriter, r *http.Request, f *os.File, info fs.FileInfo, t Target,
	stale bool, render RenderFunc) {
	a := s.newAssembly(r, s.ssiRender(render))
	defer a.closeFiles()
	root := a.rootPart(t, f, info, stale)
	if root == nil {
		w.WriteHeader(http.StatusInternalServerError) // the file cannot be read
		return
	}
	h := w.Header()
	ct := mime.TypeByExtension(t.Ext)
	if ct == "" {
		ct = "text/html; charset=utf-8"
	}
	h.Set("Content-Type", ct)
	h.Set("Accept-Ranges", "none")
	if a.stale {
		h.Set(HeaderStale, "1")
	}
	if a.live == 0 {
		// Every part is on disk: the answer is fully determined by the
		// files opened, so it gets validators and a length.
		etag := a.etag(root)
		h.Set("Etag", etag)
		h.Set("Last-Modified", a.lastMod.UTC().Format(http.TimeFormat))
		if ssiConditions(w, r, etag, a.lastMod) {
			return
		}
		h.Set("Content-Length", strconv.FormatInt(root.size, 10))
	} else if ssiConditions(w, r, "", time.Time{}) {
		return
	}
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	a.writePart(w, root)
	if a.err != nil && a.live == 0 && !errors.Is(a.err, errClientWrite) {
		// A part changed under us: the length promised is wrong, so the
		// answer must not look complete.
		panic(http.ErrAbortHandler)
	}
}

// rootPart builds the tree of a document. f is nil for a streamed answer
// (its includes are resolved one by one as they come).
func (a *ssiAssembly) rootPart(t Target, f *os.File, info fs.FileInfo, stale bool) *ssiPart {
	p := &ssiPart{t: t, f: f, info: info, depth: len(a.chain), stale: stale}
	if f == nil {
		return p
	}
	if !a.build(p) {
		return nil
	}
	return p
}

// build opens the includes of a part, recursively, and works out its size.
func (a *ssiAssembly) build(p *ssiPart) bool {
	if p.stale {
		a.stale = true
	}
	if mt := p.info.ModTime(); mt.After(a.lastMod) {
		a.lastMod = mt
	}
	size := p.info.Size()
	if p.info.Mode()&ssiMarkBit == 0 {
		p.pieces = []ssiPiece{{off: 0, n: size, isText: true}}
		p.size = size
		return true
	}
	lay, err := a.s.SSI.layouts.get(p.f, p.info, p.t.File)
	if err != nil {
		a.s.Store.log.Warn("cannot read file for SSI", zap.String("url", p.t.Key), zap.Error(err))
		return false
	}
	var pos int64
	for _, d := range lay.dirs {
		if d.Start > pos {
			p.pieces = append(p.pieces, ssiPiece{off: pos, n: d.Start - pos, isText: true})
		}
		pos = d.End
		switch d.Kind {
		case ssiInclude:
			for _, ref := range d.Refs {
				p.pieces = append(p.pieces, a.resolve(p, ref))
			}
		case ssiMalformed:
			p.pieces = append(p.pieces, ssiPiece{comment: "<!-- ssi: malformed include -->"})
		case ssiTooLong:
			p.pieces = append(p.pieces, ssiPiece{comment: "<!-- ssi: directive too long -->"})
		}
	}
	if pos < size {
		p.pieces = append(p.pieces, ssiPiece{off: pos, n: size - pos, isText: true})
	}
	for _, pc := range p.pieces {
		switch {
		case pc.isText:
			p.size += pc.n
		case pc.part != nil:
			p.size += pc.part.size
		default:
			p.size += int64(len(pc.comment))
		}
	}
	return true
}

var errSSIRefused = errors.New("not a local path of this site")

// includeURL is the URL an include names, relative to the document key.
func includeURL(key string, ref ssiRef) (*url.URL, error) {
	p := ref.Path
	if ref.File {
		// Apache's file=: a path relative to the including document's
		// folder, never absolute and never upwards.
		if p == "" || p[0] == '/' || strings.ContainsAny(p, "\\?#") || strings.IndexByte(p, 0) >= 0 {
			return nil, errSSIRefused
		}
		for _, seg := range strings.Split(p, "/") {
			if seg == ".." || seg == "." {
				return nil, errSSIRefused
			}
		}
		base, _, _ := strings.Cut(key, "?")
		return &url.URL{Path: base[:strings.LastIndexByte(base, '/')+1] + p}, nil
	}
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") {
		return nil, errSSIRefused
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" || u.Opaque != "" || u.User != nil {
		return nil, errSSIRefused
	}
	u.Fragment, u.RawFragment = "", ""
	return u, nil
}

// onChain reports whether key is being assembled above p (a cycle).
func (a *ssiAssembly) onChain(p *ssiPart, key string) bool {
	for q := p; q != nil; q = q.parent {
		if q.t.Key == key {
			return true
		}
	}
	for _, k := range a.chain {
		if k == key {
			return true
		}
	}
	return false
}

// resolve turns one include of p into a piece: an opened part, a live
// render or a comment.
func (a *ssiAssembly) resolve(p *ssiPart, ref ssiRef) ssiPiece {
	u, err := includeURL(p.t.Key, ref)
	var t Target
	if err == nil {
		t, err = a.s.Mapper.Map(u)
	}
	switch {
	case err != nil:
		return ssiPiece{comment: ssiComment(ref.Path, "refused")}
	case p.depth+1 > a.s.SSI.maxDepth():
		return ssiPiece{comment: ssiComment(ref.Path, "skipped: nested deeper than "+strconv.Itoa(a.s.SSI.maxDepth()))}
	case a.onChain(p, t.Key):
		return ssiPiece{comment: ssiComment(ref.Path, "skipped: cycle")}
	case a.budget.Add(1) > ssiMaxParts:
		return ssiPiece{comment: ssiComment(ref.Path, "skipped: too many includes")}
	}
	store := a.s.Store
	f, info, ok := store.openRegular(t.File)
	stale := false
	if ok {
		store.access.Touch(store.ID(t.File), a.now)
	} else if f, info, ok = store.openRegular(t.File + OldSuffix); ok {
		// Stale while it renders, as for any request.
		stale = true
		a.s.renderInBackground(a.subRequest(p, u), t, a.render)
	} else {
		a.live++
		return ssiPiece{live: &ssiLive{t: t, u: u, parent: p}}
	}
	a.files = append(a.files, f)
	child := &ssiPart{t: t, f: f, info: info, parent: p, depth: p.depth + 1, stale: stale}
	if !a.build(child) {
		return ssiPiece{comment: ssiComment(ref.Path, "failed: unreadable")}
	}
	return ssiPiece{part: child}
}

// subRequest is the request for an include below p: a plain GET that
// carries the chain of documents above it.
func (a *ssiAssembly) subRequest(p *ssiPart, u *url.URL) *http.Request {
	chain := append([]string(nil), a.chain...)
	n := len(chain)
	for q := p; q != nil; q = q.parent {
		chain = append(chain, q.t.Key)
	}
	for i, j := n, len(chain)-1; i < j; i, j = i+1, j-1 {
		chain[i], chain[j] = chain[j], chain[i]
	}
	ctx := context.WithValue(a.r.Context(), ssiStateKey{}, &ssiState{chain: chain, budget: a.budget})
	sub := a.r.Clone(ctx)
	uu := *u
	sub.Method, sub.URL, sub.RequestURI = http.MethodGet, &uu, uu.RequestURI()
	sub.Body, sub.GetBody, sub.ContentLength, sub.TransferEncoding = http.NoBody, nil, 0, nil
	for _, h := range []string{"Range", "If-Range", "If-None-Match", "If-Modified-Since", "If-Match",
		"If-Unmodified-Since", "Content-Length", "Content-Type", "Expect"} {
		sub.Header.Del(h)
	}
	return sub
}

func (a *ssiAssembly) closeFiles() {
	for _, f := range a.files {
		f.Close()
	}
	a.files = a.files[:0]
}

// etag hashes the identities of every part, in order, and what each
// directive became.
func (a *ssiAssembly) etag(root *ssiPart) string {
	h := fnv.New128a()
	var b [8]byte
	num := func(n uint64) { binary.BigEndian.PutUint64(b[:], n); h.Write(b[:]) }
	num(uint64(a.s.SSI.maxDepth()))
	var walk func(p *ssiPart)
	walk = func(p *ssiPart) {
		dev, ino := ssiFileID(p.info)
		num(dev)
		num(ino)
		num(uint64(p.info.ModTime().UnixNano()))
		num(uint64(p.info.Size()))
		io.WriteString(h, p.t.Key)
		if p.stale {
			h.Write([]byte{1})
		}
		h.Write([]byte{0})
		for _, pc := range p.pieces {
			switch {
			case pc.part != nil:
				h.Write([]byte{'{'})
				walk(pc.part)
				h.Write([]byte{'}'})
			case !pc.isText:
				io.WriteString(h, pc.comment)
			}
		}
	}
	walk(root)
	return `"ssi-` + hex.EncodeToString(h.Sum(nil)) + `"`
}

// ---- Writing -----------------------------------------------------------

var errClientWrite = errors.New("client write failed")

var ssiBufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (a *ssiAssembly) write(w io.Writer, b []byte) {
	if a.err != nil || len(b) == 0 {
		return
	}
	if _, err := w.Write(b); err != nil {
		a.err = errClientWrite
	}
}

func (a *ssiAssembly) writeText(w io.Writer) func([]byte) {
	return func(b []byte) { a.write(w, b) }
}

func (a *ssiAssembly) writePart(w io.Writer, p *ssiPart) {
	for _, pc := range p.pieces {
		if a.err != nil {
			return
		}
		switch {
		case pc.isText:
			a.copyRange(w, p.f, pc.off, pc.n)
		case pc.part != nil:
			a.writePart(w, pc.part)
		case pc.live != nil:
			a.writeLive(w, pc.live)
		default:
			a.write(w, []byte(pc.comment))
		}
	}
}

func (a *ssiAssembly) copyRange(w io.Writer, f *os.File, off, n int64) {
	bp := ssiBufPool.Get().(*[]byte)
	defer ssiBufPool.Put(bp)
	buf := *bp
	for n > 0 && a.err == nil {
		m := int(min(n, int64(len(buf))))
		k, err := f.ReadAt(buf[:m], off)
		a.write(w, buf[:k])
		if k < m {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			if a.err == nil {
				a.err = err
			}
			return
		}
		off += int64(k)
		n -= int64(k)
	}
}

// writeDirective writes what a directive of a streamed document becomes.
func (a *ssiAssembly) writeDirective(w io.Writer, p *ssiPart, d ssiDirective) {
	switch d.Kind {
	case ssiInclude:
		for _, ref := range d.Refs {
			pc := a.resolve(p, ref)
			switch {
			case pc.part != nil:
				a.writePart(w, pc.part)
			case pc.live != nil:
				a.writeLive(w, pc.live)
			default:
				a.write(w, []byte(pc.comment))
			}
		}
	case ssiMalformed:
		a.write(w, []byte("<!-- ssi: malformed include -->"))
	case ssiTooLong:
		a.write(w, []byte("<!-- ssi: directive too long -->"))
	}
}

// writeLive renders a missing include through the cache's miss path (one
// coalesced render, stored and registered on its own) straight into w.
func (a *ssiAssembly) writeLive(w io.Writer, l *ssiLive) {
	if a.err != nil {
		return
	}
	cw := &ssiCapture{a: a, out: w}
	err := a.missInto(cw, l)
	if a.err != nil || err == nil && (cw.ok() || cw.status == 0) {
		return
	}
	status := cw.status
	if err != nil {
		status = statusOf(err)
	}
	if status == 0 {
		status = http.StatusBadGateway
	}
	a.s.Store.log.Debug("SSI include failed", zap.String("url", l.t.Key), zap.Int("status", status), zap.Error(err))
	if !cw.wrote {
		a.write(w, []byte(ssiComment(l.t.Key, "failed: "+strconv.Itoa(status))))
	}
}

func (a *ssiAssembly) missInto(cw *ssiCapture, l *ssiLive) (err error) {
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler { //nolint:errorlint // sentinel panic value
				panic(v)
			}
			err = &StatusError{Code: http.StatusBadGateway, Err: errors.New("render broke off")}
		}
	}()
	return a.s.miss(cw, a.subRequest(l.parent, l.u), l.t, a.render)
}

// ssiCapture is the response writer of an include rendered live: headers
// are dropped, a successful body goes into the assembly.
type ssiCapture struct {
	a      *ssiAssembly
	out    io.Writer
	header http.Header
	status int
	wrote  bool
}

func (c *ssiCapture) Header() http.Header {
	if c.header == nil {
		c.header = http.Header{}
	}
	return c.header
}

func (c *ssiCapture) WriteHeader(code int) {
	if code >= 200 && c.status == 0 {
		c.status = code
	}
}

func (c *ssiCapture) ok() bool { return c.status >= 200 && c.status < 300 }

func (c *ssiCapture) Write(p []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	if !c.ok() {
		return len(p), nil
	}
	c.wrote = true
	c.a.write(c.out, p)
	if c.a.err != nil {
		return 0, c.a.err
	}
	return len(p), nil
}

// ssiComment is the HTML comment that stands for an include that was not
// made. The path is escaped so that it cannot end the comment.
func ssiComment(path, why string) string {
	var b strings.Builder
	b.WriteString(`<!-- ssi: include "`)
	prev := byte(0)
	for i := 0; i < len(path) && i < 256; i++ {
		c := path[i]
		switch {
		case c == '-' && prev == '-',
			c == '>' || c == '<' || c == '"' || c == '%' || c < 0x21 || c > 0x7e:
			prev = '%'
			b.WriteByte('%')
			b.WriteByte(upperHex[c>>4])
			b.WriteByte(upperHex[c&15])
		default:
			prev = c
			b.WriteByte(c)
		}
	}
	b.WriteString(`" `)
	b.WriteString(why)
	b.WriteString(" -->")
	return b.String()
}

// ---- Conditional requests ------------------------------------------------

// ssiConditions answers the preconditions of a request for an assembled
// page (RFC 9110 §13.2.2); it reports whether it answered.
func ssiConditions(w http.ResponseWriter, r *http.Request, etag string, mod time.Time) bool {
	h := r.Header
	mod = mod.Truncate(time.Second)
	if im := h.Get("If-Match"); im != "" {
		if !etagMatches(im, etag, true) {
			w.WriteHeader(http.StatusPreconditionFailed)
			return true
		}
	} else if ius := h.Get("If-Unmodified-Since"); ius != "" && !mod.IsZero() {
		if t, err := http.ParseTime(ius); err == nil && mod.After(t) {
			w.WriteHeader(http.StatusPreconditionFailed)
			return true
		}
	}
	notModified := false
	if inm := h.Get("If-None-Match"); inm != "" {
		notModified = etagMatches(inm, etag, false)
	} else if ims := h.Get("If-Modified-Since"); ims != "" && !mod.IsZero() {
		t, err := http.ParseTime(ims)
		notModified = err == nil && !mod.After(t)
	}
	if !notModified {
		return false
	}
	hdr := w.Header()
	hdr.Del("Content-Type")
	hdr.Del("Content-Length")
	w.WriteHeader(http.StatusNotModified)
	return true
}

// etagMatches compares an If-Match / If-None-Match list with etag.
func etagMatches(list, etag string, strong bool) bool {
	for _, tag := range strings.Split(list, ",") {
		tag = strings.TrimSpace(tag)
		if tag == "*" {
			return true // the page exists
		}
		if etag == "" {
			continue
		}
		if strings.HasPrefix(tag, "W/") {
			if strong {
				continue
			}
			tag = tag[2:]
		}
		if tag == etag {
			return true
		}
	}
	return false
}

// ---- Layouts -------------------------------------------------------------

// ssiLayout is where the directives of one file version are.
type ssiLayout struct {
	dirs []ssiDirective
}

// ssiLayouts keeps the layouts of file versions (by device, inode,
// modification time and size), parsed once each.
type ssiLayouts struct {
	m sync.Map // ssiFileKey -> *ssiLayout
	n atomic.Int64
}

type ssiFileKey struct {
	dev, ino    uint64
	mtime, size int64
	name        string // only where there are no inode numbers
}

func (c *ssiLayouts) get(f *os.File, info fs.FileInfo, name string) (*ssiLayout, error) {
	k := ssiFileKey{mtime: info.ModTime().UnixNano(), size: info.Size()}
	k.dev, k.ino = ssiFileID(info)
	if k.ino == 0 {
		k.name = name
	}
	if v, ok := c.m.Load(k); ok {
		return v.(*ssiLayout), nil
	}
	lay, err := parseLayout(f, info.Size())
	if err != nil {
		return nil, err
	}
	if c.n.Add(1) > ssiMaxLayouts {
		c.evict()
	}
	c.m.Store(k, lay)
	return lay, nil
}

// evict drops about half of the layouts (the map's order is random).
func (c *ssiLayouts) evict() {
	dropped := int64(0)
	c.m.Range(func(k, _ any) bool {
		c.m.Delete(k)
		dropped++
		return dropped < ssiMaxLayouts/2
	})
	c.n.Add(-dropped)
}

// parseLayout reads a file once, in chunks, for its directives.
func parseLayout(f *os.File, size int64) (*ssiLayout, error) {
	lay := &ssiLayout{}
	p := ssiParser{directive: func(d ssiDirective) { lay.dirs = append(lay.dirs, d) }}
	bp := ssiBufPool.Get().(*[]byte)
	defer ssiBufPool.Put(bp)
	buf := *bp
	for off := int64(0); off < size; {
		m := int(min(size-off, int64(len(buf))))
		k, err := f.ReadAt(buf[:m], off)
		p.Write(buf[:k])
		off += int64(k)
		if k < m {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	p.End()
	return lay, nil
}
