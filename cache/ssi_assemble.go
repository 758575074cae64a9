package cache

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
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

// Assembly of a page from its parts. A page that is served from its file
// is planned first: every include is looked up (in memory or on disk) and
// its file kept open or its body in hand, so the answer is fixed before the
// first byte — it gets an ETag and a Content-Length. An include that is a
// miss is rendered while streaming, into the answer (and then the answer
// has no validators). An answer that streams from the render backend
// (uncacheable) is assembled as it comes, include by include.

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
	now    time.Time

	files   []*os.File    // opened here, closed by closeFiles
	live    int           // includes rendered while streaming (no validator)
	ahead   chan struct{} // bounds the renders started ahead
	stale   bool
	lastMod time.Time
	err     error // writing to the client failed
}

// ssiPart is one file of an assembly.
type ssiPart struct {
	t      Target
	info   fs.FileInfo
	f      *os.File // nil when body.data holds the content
	body   *ssiBody
	parent *ssiPart
	depth  int
	stale  bool
	pieces []ssiPiece
	size   int64 // assembled size, when nothing below is rendered live
	// pending is the render this assembly started for a part it found
	// only as a ".old" copy (ssi_settle.go).
	pending *flight
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
	flight *flight // its render, started ahead; nil: rendered by the writer
}

func (s *Site) newAssembly(r *http.Request, render RenderFunc) *ssiAssembly {
	a := &ssiAssembly{s: s, r: r, render: render, now: time.Now()}
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
	s.writeAssembled(w, r, a, a.rootPart(t, f, info, stale), t)
}

// serveAssembledHot answers a request for a marked file held in memory.
func (s *Site) serveAssembledHot(w http.ResponseWriter, r *http.Request, e *hotEntry, render RenderFunc) {
	a := s.newAssembly(r, s.ssiRender(render))
	defer a.closeFiles()
	t, err := s.Mapper.Map(r.URL)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	root := &ssiPart{t: t, info: e.info, body: e.part, depth: len(a.chain)}
	if !a.build(root) {
		root = nil
	}
	s.writeAssembled(w, r, a, root, t)
}

// writeAssembled writes an assembled answer.
func (s *Site) writeAssembled(w http.ResponseWriter, r *http.Request, a *ssiAssembly, root *ssiPart, t Target) {
	if root == nil {
		w.WriteHeader(http.StatusInternalServerError) // the file cannot be read
		return
	}
	a.settle(root)
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
	// Parts are small: they are gathered into writes of up to 32 KB.
	bw := ssiWriters.Get().(*bufio.Writer)
	bw.Reset(w)
	a.writePart(bw, root)
	if a.err == nil {
		if err := bw.Flush(); err != nil {
			a.err = errClientWrite
		}
	}
	bw.Reset(nil)
	ssiWriters.Put(bw)
	if a.err != nil && a.live == 0 && !a.clientFailed() {
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

// build looks up the includes of a part, recursively, and works out its
// size.
func (a *ssiAssembly) build(p *ssiPart) bool {
	if p.stale {
		a.stale = true
	}
	if mt := p.info.ModTime(); mt.After(a.lastMod) {
		a.lastMod = mt
	}
	if p.body == nil {
		b, err := a.s.SSI.bodies.get(p.f, p.info, p.t.File)
		if err != nil {
			a.s.Store.log.Warn("cannot read file for SSI", zap.String("url", p.t.Key), zap.Error(err))
			return false
		}
		p.body = b
	}
	size := p.info.Size()
	if p.body.lay == nil {
		p.pieces = []ssiPiece{{off: 0, n: size, isText: true}}
		p.size = size
		return true
	}
	var pos int64
	for _, d := range p.body.lay.dirs {
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
			p.pieces = append(p.pieces, ssiPiece{comment: ssiMalformedComment})
		case ssiTooLong:
			p.pieces = append(p.pieces, ssiPiece{comment: ssiTooLongComment})
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

const (
	ssiMalformedComment = "<!-- ssi: malformed include -->"
	ssiTooLongComment   = "<!-- ssi: directive too long -->"
)

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

// ssiTargets keeps what include paths map to (the mapping is fixed for a
// Site), so a page's includes are not parsed and mapped on every hit.
type ssiTargets struct {
	m sync.Map // ssiTargetKey -> *ssiTarget
	n atomic.Int64
}

type ssiTargetKey struct {
	dir  string // the including document's folder, for file="…"
	path string
}

type ssiTarget struct {
	u   *url.URL
	t   Target
	err error
}

const ssiMaxTargets = 100000

func (c *ssiTargets) resolve(m *Mapper, key string, ref ssiRef) (*url.URL, Target, error) {
	k := ssiTargetKey{path: ref.Path}
	if ref.File {
		base, _, _ := strings.Cut(key, "?")
		k.dir = base[:strings.LastIndexByte(base, '/')+1]
	}
	if v, ok := c.m.Load(k); ok {
		r := v.(*ssiTarget)
		return r.u, r.t, r.err
	}
	r := &ssiTarget{}
	r.u, r.err = includeURL(key, ref)
	if r.err == nil {
		r.t, r.err = m.Map(r.u)
	}
	if c.n.Add(1) > ssiMaxTargets {
		c.m.Range(func(k, _ any) bool { c.m.Delete(k); return true })
		c.n.Store(0)
	}
	c.m.Store(k, r)
	return r.u, r.t, r.err
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
	u, t, err := a.s.SSI.targets.resolve(&a.s.Mapper, p.t.Key, ref)
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
	if store.hot != nil {
		if e := store.hotGet(t.File); e != nil {
			store.touch(t.File, a.now)
			child := &ssiPart{t: t, info: e.info, body: e.part, parent: p, depth: p.depth + 1}
			a.build(child) // cannot fail: the body is in hand
			return ssiPiece{part: child}
		}
	}
	f, info, epoch, ok := store.openServe(t.File)
	stale := false
	var pending *flight
	if ok {
		store.touch(t.File, a.now)
		var body *ssiBody
		if store.hot != nil && store.hot.admissible(info) {
			if e, ok := store.readHot(f, info, t); ok {
				store.hot.fill(t.File, e, epoch)
				body = e.part
			}
		}
		if body == nil {
			body, _ = a.s.SSI.bodies.get(f, info, t.File)
		}
		if body != nil && body.data != nil {
			f.Close() // everything needed is in memory
			child := &ssiPart{t: t, info: info, body: body, parent: p, depth: p.depth + 1}
			a.build(child)
			return ssiPiece{part: child}
		}
		// Too large to keep (or unreadable, which build reports): copied
		// from the open file.
	} else if f, info, ok = store.openRegular(t.File + OldSuffix); ok {
		// Stale while it renders, as for any request; the assembly that
		// started the render waits for it before it answers (ssi_settle.go).
		stale = true
		pending = a.s.renderInBackground(a.subRequest(p, u), t, a.render)
	} else {
		a.live++
		l := &ssiLive{t: t, u: u, parent: p}
		if a.r.Method == http.MethodGet {
			l.flight = a.prefetch(a.subRequest(p, u), t)
		}
		return ssiPiece{live: l}
	}
	a.files = append(a.files, f)
	child := &ssiPart{t: t, f: f, info: info, parent: p, depth: p.depth + 1, stale: stale, pending: pending}
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
	th := ssiTagHashes.get()
	defer ssiTagHashes.put(th)
	th.b = binary.BigEndian.AppendUint64(th.b, uint64(a.s.SSI.maxDepth()))
	th.part(root)
	th.flush(true)
	return `"ssi-` + hex.EncodeToString(th.h.Sum(th.sum[:0])[:16]) + `"`
}

// part adds the identity of p and of everything below it.
func (th *ssiTagHash) part(p *ssiPart) {
	dev, ino := ssiFileID(p.info)
	b := th.b
	b = binary.BigEndian.AppendUint64(b, dev)
	b = binary.BigEndian.AppendUint64(b, ino)
	b = binary.BigEndian.AppendUint64(b, uint64(p.info.ModTime().UnixNano()))
	b = binary.BigEndian.AppendUint64(b, uint64(p.info.Size()))
	b = append(b, p.t.Key...)
	if p.stale {
		b = append(b, 1)
	}
	th.b = append(b, 0)
	for _, pc := range p.pieces {
		switch {
		case pc.part != nil:
			th.b = append(th.b, '{')
			th.part(pc.part)
			th.b = append(th.b, '}')
		case !pc.isText:
			th.b = append(th.b, pc.comment...)
		}
		th.flush(false)
	}
}

// ---- Writing -----------------------------------------------------------

var (
	errClientWrite = errors.New("client write failed")
	errClientGone  = errors.New("client gone")
)

// stopped reports whether the answer is over: writing to the client
// failed, a part could not be read, or the client went away (the
// request's context is done).
func (a *ssiAssembly) stopped() bool {
	if a.err == nil {
		if err := a.r.Context().Err(); err != nil {
			a.err = fmt.Errorf("%w: %w", errClientGone, err)
		}
	}
	return a.err != nil
}

// clientFailed reports whether the answer stopped because of the client.
func (a *ssiAssembly) clientFailed() bool {
	return errors.Is(a.err, errClientWrite) || errors.Is(a.err, errClientGone)
}

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
		if a.stopped() {
			return
		}
		switch {
		case pc.isText && p.body != nil && p.body.data != nil:
			a.write(w, p.body.data[pc.off:pc.off+pc.n])
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

// copyRange copies n bytes of f from off to w, a chunk at a time, until
// the client goes away.
func (a *ssiAssembly) copyRange(w io.Writer, f *os.File, off, n int64) {
	err := readChunks(f, off, n, func(b []byte) error {
		a.write(w, b)
		if a.stopped() {
			return a.err
		}
		return nil
	})
	if err != nil && a.err == nil {
		a.err = fmt.Errorf("%s: %w", f.Name(), err)
	}
}

// writeDirective writes what a directive of a streamed document becomes.
func (a *ssiAssembly) writeDirective(w io.Writer, p *ssiPart, d ssiDirective) {
	switch d.Kind {
	case ssiInclude:
		for _, ref := range d.Refs {
			pc := a.settled(a.resolve(p, ref))
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
		a.write(w, []byte(ssiMalformedComment))
	case ssiTooLong:
		a.write(w, []byte(ssiTooLongComment))
	}
}

// writeLive renders a missing include through the cache's miss path (one
// coalesced render, stored and registered on its own) straight into w.
func (a *ssiAssembly) writeLive(w io.Writer, l *ssiLive) {
	if a.stopped() {
		return
	}
	if bw, ok := w.(*bufio.Writer); ok {
		if err := bw.Flush(); err != nil { // what is ready goes out while the part renders
			a.err = errClientWrite
			return
		}
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
	r := a.subRequest(l.parent, l.u)
	if l.flight != nil {
		if done, err := a.awaitAhead(cw, r, l); done {
			return err
		}
	}
	return a.s.miss(cw, r, l.t, a.render)
}

// ssiAhead is how many missing parts of one answer render at the same
// time, ahead of the writer that needs them.
const ssiAhead = 8

// prefetch starts the render of a missing part ahead of the writer, as a
// flight of the cache like any miss (or finds the flight that renders it
// already), so the missing parts of a page render in parallel and each
// once. A part that turned out not to be cacheable is not rendered ahead
// for a minute: the writer renders it itself, into the answer.
func (a *ssiAssembly) prefetch(r *http.Request, t Target) *flight {
	s := a.s
	if until, ok := s.SSI.uncacheable.Load(t.File); ok && time.Now().Before(until.(time.Time)) {
		return nil
	}
	f, leader := s.Store.flights.join(t.File)
	if !leader {
		return f
	}
	if s.Store.exists(t.File) {
		// Rendered and stored since it was looked up: nothing to do.
		s.Store.flights.finish(t.File, f, outcomeStored, http.StatusOK)
		return f
	}
	if a.ahead == nil {
		a.ahead = make(chan struct{}, ssiAhead)
	}
	ahead, render := a.ahead, a.render
	rr := s.detachedRequest(r)
	s.Store.goBackground(func() {
		ahead <- struct{}{}
		defer func() { <-ahead }()
		_ = s.lead(nil, rr, t, f, render, true)
		if f.outcome == outcomePassthrough {
			if s.SSI.uncacheableN.Add(1) > 10000 {
				s.SSI.uncacheable.Range(func(k, _ any) bool { s.SSI.uncacheable.Delete(k); return true })
				s.SSI.uncacheableN.Store(0)
			}
			s.SSI.uncacheable.Store(t.File, time.Now().Add(time.Minute))
		}
	})
	return f
}

// awaitAhead waits for the render started ahead and answers from it as
// the cache's miss path answers a request that waited for a render; done
// is false when the part must go through the miss path after all.
func (a *ssiAssembly) awaitAhead(cw *ssiCapture, r *http.Request, l *ssiLive) (done bool, err error) {
	f := l.flight
	select {
	case <-f.done:
	case <-r.Context().Done():
		return true, r.Context().Err()
	}
	switch f.outcome {
	case outcomeStored:
		file, info, epoch, ok := a.s.Store.openServe(l.t.File)
		if !ok {
			return false, nil // invalidated again at once
		}
		defer file.Close()
		a.s.serveFile(cw, r, file, info, epoch, l.t, false, a.render)
		return true, nil
	case outcomeGone:
		return true, &StatusError{Code: f.status, Err: errors.New("gone at the render backend")}
	case outcomeFailed:
		if a.s.serveOld(cw, r, l.t, a.render) {
			return true, nil
		}
		return true, &StatusError{Code: f.status, Err: errors.New("render failed")}
	}
	return false, nil // not cacheable, or outdated: rendered for this answer
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
	if c.a.stopped() {
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
