package cache

import (
	"context"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/delivery-edge/edge/cache/ssi"
)

// Assembly of a page from its parts. A page that is served from its file
// is planned first: every include is looked up (in memory or on disk) and
// its file kept open or its body in hand, so the answer is fixed before the
// first byte — it gets an ETag and a Content-Length. An include that is a
// miss is rendered while streaming, into the answer (and then the answer
// has no validators; ssi_live.go). An answer that streams from the render
// backend (uncacheable) is assembled as it comes, include by include
// (ssi_filter.go). Writing is ssi_write.go.

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
	f      *os.File // nil when body.Data holds the content
	body   *ssi.Body
	parent *ssiPart
	depth  int
	stale  bool
	pieces []ssiPiece
	size   int64 // assembled size, when nothing below is rendered live
	// pending is the render this assembly started for a part it found
	// only as a ".old" copy (ssi_settle.go); rendered is set on the part
	// that replaced such a copy once its render was stored.
	pending  *flight
	rendered bool
}

// ssiPiece is a range of a part's file, or what a directive becomes.
type ssiPiece struct {
	off, n  int64
	comment string
	part    *ssiPart
	live    *ssiLive
	isText  bool
}

// size is the piece's share of its part's assembled size (a live include
// has none: it is rendered into the answer).
func (pc ssiPiece) size() int64 {
	switch {
	case pc.isText:
		return pc.n
	case pc.part != nil:
		return pc.part.size
	case pc.live == nil:
		return int64(len(pc.comment))
	}
	return 0
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
	c CacheStatus, render RenderFunc) {
	a := s.newAssembly(r, s.ssiRender(render))
	defer a.closeFiles()
	s.writeAssembled(w, r, a, a.rootPart(t, f, info, c.stale), t, c)
}

// serveAssembledHot answers a request for a marked file held in memory.
func (s *Site) serveAssembledHot(w http.ResponseWriter, r *http.Request, e *hotEntry, c CacheStatus, render RenderFunc) {
	a := s.newAssembly(r, s.ssiRender(render))
	defer a.closeFiles()
	t, err := s.Mapper.Map(r.URL)
	if err != nil {
		s.setStatus(w, r, c)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	root := &ssiPart{t: t, info: e.info, body: e.part, depth: len(a.chain)}
	if !a.build(root) {
		root = nil
	}
	s.writeAssembled(w, r, a, root, t, c)
}

// writeAssembled writes an assembled answer; c is the status of the page's
// own file, to which the parts are added.
func (s *Site) writeAssembled(w http.ResponseWriter, r *http.Request, a *ssiAssembly, root *ssiPart, t Target, c CacheStatus) {
	if root == nil {
		s.setStatus(w, r, c)
		w.WriteHeader(http.StatusInternalServerError) // the file cannot be read
		return
	}
	a.settle(root)
	var parts partCounts
	countParts(root, &parts)
	s.setStatus(w, r, c.withParts(parts, a.stale))
	h := w.Header()
	ct := mime.TypeByExtension(t.Ext)
	if ct == "" {
		ct = "text/html; charset=utf-8"
	}
	h.Set("Content-Type", ct)
	h.Set("Accept-Ranges", "none")
	if a.live == 0 {
		// Every part is on disk: the answer is fully determined by the
		// files opened, so it gets validators and a length.
		etag := a.etag(root)
		h.Set("Etag", etag)
		h.Set("Last-Modified", a.lastMod.UTC().Format(http.TimeFormat))
		if ssi.Conditions(w, r, etag, a.lastMod) {
			return
		}
		h.Set("Content-Length", strconv.FormatInt(root.size, 10))
	} else if ssi.Conditions(w, r, "", time.Time{}) {
		return
	}
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	// Parts are small: they are gathered into writes of up to 32 KB.
	bw := ssi.GetWriter(w)
	a.writePart(bw, root)
	if a.err == nil {
		if err := bw.Flush(); err != nil {
			a.err = errClientWrite
		}
	}
	ssi.PutWriter(bw)
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
	if p.body.Layout == nil {
		p.pieces = []ssiPiece{{off: 0, n: size, isText: true}}
		p.size = size
		return true
	}
	var pos int64
	for _, d := range p.body.Layout.Dirs {
		if d.Start > pos {
			p.pieces = append(p.pieces, ssiPiece{off: pos, n: d.Start - pos, isText: true})
		}
		pos = d.End
		if d.Kind == ssi.Include {
			for _, ref := range d.Refs {
				p.pieces = append(p.pieces, a.resolve(p, ref))
			}
		} else if c := ssi.DirectiveComment(d.Kind); c != "" {
			p.pieces = append(p.pieces, ssiPiece{comment: c})
		}
	}
	if pos < size {
		p.pieces = append(p.pieces, ssiPiece{off: pos, n: size - pos, isText: true})
	}
	for _, pc := range p.pieces {
		p.size += pc.size()
	}
	return true
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
func (a *ssiAssembly) resolve(p *ssiPart, ref ssi.Ref) ssiPiece {
	u, t, err := a.s.SSI.targets.resolve(&a.s.Mapper, p.t.Key, ref)
	switch {
	case err != nil:
		return ssiPiece{comment: ssi.Comment(ref.Path, "refused")}
	case p.depth+1 > a.s.SSI.maxDepth():
		return ssiPiece{comment: ssi.Comment(ref.Path, "skipped: nested deeper than "+strconv.Itoa(a.s.SSI.maxDepth()))}
	case a.onChain(p, t.Key):
		return ssiPiece{comment: ssi.Comment(ref.Path, "skipped: cycle")}
	case a.budget.Add(1) > ssiMaxParts:
		return ssiPiece{comment: ssi.Comment(ref.Path, "skipped: too many includes")}
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
		var body *ssi.Body
		if store.hot != nil && store.hot.admissible(info) {
			if e, ok := store.readHot(f, info, t); ok {
				store.hot.fill(t.File, e, epoch)
				body = e.part
			}
		}
		if body == nil {
			body, _ = a.s.SSI.bodies.get(f, info, t.File)
		}
		if body != nil && body.Data != nil {
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
		return ssiPiece{comment: ssi.Comment(ref.Path, "failed: unreadable")}
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
