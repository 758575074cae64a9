package cache

import (
	"errors"
	"net/http"
	"os"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/delivery-edge/edge/cache/registry"
)

// teeWriter receives the render backend's answer, writes a cacheable one
// to a temp file and, when streaming, to the client at the same time. A
// client that goes away does not stop the render.
type teeWriter struct {
	site   *Site
	t      Target
	host   string
	header http.Header
	now    time.Time
	// changeMark is where the changes applied during the render begin
	// (recent_changes.go).
	changeMark uint64
	client     http.ResponseWriter // nil for pre-generation
	r          *http.Request       // the client's request
	stream     bool                // copy to the client while rendering

	wroteHeader bool
	wroteClient bool // the client has got (part of) this answer
	clientDead  bool
	status      int
	info        RenderInfo
	tmp         *os.File
	tmpName     string
	tmpErr      error
	written     int64
	tooLarge    bool      // over MaxFileSize: passed on, not stored
	ssi         ssiMarker // marks the file at the body's first SSI directive (ssi.go)
	flushes     flushHold // render_tee_flush.go
}

func (tw *teeWriter) Header() http.Header { return tw.header }

func (tw *teeWriter) WriteHeader(code int) {
	if tw.wroteHeader || code < 200 {
		return // informational answers are not part of the cached page
	}
	tw.wroteHeader, tw.status = true, code
	info, perr := ParseRenderInfo(tw.header, tw.now)
	tw.info = info
	store := tw.site.Store
	if perr == nil && code == http.StatusOK {
		// Refused now, before a file is written, rather than by the
		// registry after it is in place.
		e := tw.entry()
		perr = registry.CheckEntry(store.ID(tw.t.File), &e)
	}
	cacheable := code == http.StatusOK && perr == nil && !info.Uncacheable && identityEncoded(tw.header)
	var limit *LimitError
	switch {
	case errors.As(perr, &limit):
		if code == http.StatusOK {
			store.reg.NoteOverLimits(store.log, tw.t.Key, perr)
		}
	case perr != nil:
		store.flights.stats.malformed.Add(1)
		store.flights.stats.malformedLogged.log(store.log, tw.t.Key,
			"render reported malformed headers; not cached (logged once per URL)", zap.Error(perr))
	}
	if cacheable && tw.overMaxSize(0) {
		cacheable = false // known from Content-Length: no temp file at all
	}
	if cacheable {
		tw.tmp, tw.tmpName, tw.tmpErr = store.createTemp()
		if tw.tmpErr != nil && !store.space.Failed(tw.tmpErr) { // a full disk is logged once
			store.log.Error("cannot cache render", zap.String("url", tw.t.Key), zap.Error(tw.tmpErr))
		}
	}
	StripRenderHeaders(tw.header, tw.tmp != nil)
	// A failed render with a stale copy at hand, and any answer to a
	// client that asked for a range or a condition, are answered after
	// the render instead; everything else streams.
	passOn := tw.client != nil && (tw.stream || tw.tmp == nil) &&
		!(code >= 500 && tw.hasOld())
	if !passOn {
		return
	}
	dst := tw.client.Header()
	for k, v := range tw.header {
		dst[k] = v
	}
	tw.wroteClient = true
	tw.flushes.headers = time.Now()
	tw.site.setStatus(tw.client, tw.r, tw.clientStatus())
	tw.client.WriteHeader(code)
}

// overMaxSize reports whether the answer is larger than the site stores,
// by its Content-Length or by the bytes written so far and n more; the
// first time, it counts the answer and logs its URL (once per URL).
func (tw *teeWriter) overMaxSize(n int) bool {
	if tw.tooLarge {
		return true
	}
	limit := tw.site.MaxFileSize
	if limit <= 0 {
		limit = DefaultMaxFileSize
	}
	size := tw.written + int64(n)
	if cl, err := strconv.ParseInt(tw.header.Get("Content-Length"), 10, 64); err == nil && cl > size {
		size = cl
	}
	if size <= limit {
		return false
	}
	tw.tooLarge = true
	stats := &tw.site.Store.flights.stats
	stats.tooLarge.Add(1)
	stats.tooLargeLogged.log(tw.site.Store.log, tw.t.Key, "render answer larger than max_file_size; passed on, not stored (logged once per URL)",
		zap.Int64("max_file_size", limit), zap.Int64("bytes", size))
	return true
}

// clientStatus is the status of a render's answer as it is passed on to
// the client that started it, before its body.
func (tw *teeWriter) clientStatus() CacheStatus {
	switch {
	case tw.tmp != nil:
		return statusStored // being stored; finalStatus says if it was
	case tw.tooLarge:
		return statusTooLarge
	case tw.status == http.StatusOK:
		return statusUncacheable
	}
	return forwarded(tw.status, 0)
}

// finalStatus is the status of a render's answer once it is over.
func (tw *teeWriter) finalStatus(o outcome) CacheStatus {
	switch o {
	case outcomeStored:
		return statusStored
	case outcomeOutdated:
		return statusOutdated
	case outcomeFailed:
		if tw.status == http.StatusOK {
			return renderFailed(0, false, false, 0) // the body broke off or could not be written
		}
	}
	return tw.clientStatus()
}

func (tw *teeWriter) hasOld() bool {
	f, _, ok := tw.site.Store.openRegular(tw.t.File + OldSuffix)
	if ok {
		f.Close()
	}
	return ok
}

func identityEncoded(h http.Header) bool {
	ce := h.Get("Content-Encoding")
	return ce == "" || ce == "identity"
}

func (tw *teeWriter) Write(p []byte) (int, error) {
	if !tw.wroteHeader {
		tw.WriteHeader(http.StatusOK)
	}
	if tw.tmp != nil && tw.tmpErr == nil && tw.overMaxSize(len(p)) {
		tw.discardTemp() // the client still gets the whole answer
	}
	if tw.tmp != nil && tw.tmpErr == nil {
		if tw.ssi.first(tw.header, p) {
			tw.markSSI()
		}
		n, err := tw.tmp.Write(p)
		tw.written += int64(n)
		if err != nil {
			tw.tmpErr = err
			if tw.site.Store.space.Failed(err) {
				// The disk is full: the render goes on to its clients,
				// uncached, and the part written goes at once.
				tw.discardTemp()
			}
		}
	}
	if tw.wroteClient && !tw.clientDead {
		tw.writeClient(p)
	}
	return len(p), nil
}

// markSSI marks the temp file as a page with SSI directives.
func (tw *teeWriter) markSSI() {
	if err := markSSI(tw.tmp); err != nil && !tw.site.Store.space.Failed(err) {
		tw.site.Store.log.Warn("cannot mark a file with SSI directives", zap.String("url", tw.t.Key), zap.Error(err))
	}
}

// finish installs a complete cacheable render, or cleans up after any
// other answer, and says how the render ended.
func (tw *teeWriter) finish(renderErr error, f *flight) (outcome, int) {
	store := tw.site.Store
	switch {
	case tw.status == http.StatusNotFound || tw.status == http.StatusGone:
		// Only the edge's own files for exactly this name go; a name that
		// cannot be a file (a file is in the way) has nothing to record.
		if store.purge(tw.t.File) {
			if err := store.reg.Remove(store.ID(tw.t.File)); err != nil && !registry.IsNoSpace(err) {
				// (a full data folder is logged once, by the registry)
				store.log.Error("cannot record removal", zap.String("url", tw.t.Key), zap.Error(err))
			}
		}
		return outcomeGone, tw.status
	case tw.status >= 500:
		return outcomeFailed, tw.status
	case tw.tmp == nil:
		return outcomePassthrough, tw.status
	}
	if cl := tw.header.Get("Content-Length"); renderErr == nil && cl != "" && cl != itoa(tw.written) {
		renderErr = errors.New("short body: " + itoa(tw.written) + " of " + cl + " bytes")
	}
	closeErr := tw.tmp.Close()
	tw.tmp = nil
	if renderErr == nil && store.space.Failed(errors.Join(tw.tmpErr, closeErr)) {
		// Known only at close (some file systems): passed on, uncached.
		store.removeQuiet(tw.tmpName)
		return outcomePassthrough, tw.status
	}
	err := errors.Join(renderErr, tw.tmpErr, closeErr)
	if err != nil {
		store.log.Error("render not cached", zap.String("url", tw.t.Key), zap.Error(err))
		store.removeQuiet(tw.tmpName)
		return outcomeFailed, http.StatusBadGateway
	}
	store.space.Wrote() // the whole answer is on disk
	variants := tw.precompress()
	o, status := outcomeOutdated, tw.status
	f.installUnlessInvalidated(func() { o, status = tw.install(variants) })
	if o == outcomeOutdated {
		// A change arrived while rendering; this result may predate it.
		store.discardPrecompressed(variants)
		store.keepAsOld(tw.tmpName, tw.t.File)
	}
	return o, status
}

// install records and puts a finished render in place.
func (tw *teeWriter) install(variants precompressed) (outcome, int) {
	store := tw.site.Store
	id := store.ID(tw.t.File)
	entry := tw.entry()
	if store.ephemeral.holds(entry) {
		if store.changes.touched(tw.changeMark, &entry) {
			return outcomeOutdated, tw.status
		}
		// Too short-lived for the registry: held in memory (with a backup
		// file for crash cleanup) until it expires.
		if err := store.install(tw.tmpName, tw.t.File, variants); err != nil {
			store.removeQuiet(tw.tmpName)
			return outcomePassthrough, tw.status
		}
		store.ephemeral.keep(id, entry)
		return outcomeStored, tw.status
	}
	if store.resources.note(entry.Deps, tw.now) {
		return outcomeOutdated, tw.status // rendered with a resource as it was before a deploy
	}
	outdated, err := store.changes.record(tw.changeMark, &entry, func() error { return store.reg.Put(id, entry) })
	if outdated {
		return outcomeOutdated, tw.status
	}
	if err != nil {
		if !registry.IsNoSpace(err) { // a full data folder is logged once, by the registry
			store.log.Error("cannot record render; not cached", zap.String("url", tw.t.Key), zap.Error(err))
		}
		store.removeQuiet(tw.tmpName)
		store.discardPrecompressed(variants)
		return outcomePassthrough, tw.status
	}
	if err := store.install(tw.tmpName, tw.t.File, variants); err != nil {
		if !errors.Is(err, errConflict) && !store.space.Failed(err) {
			store.log.Error("cannot install render", zap.String("url", tw.t.Key), zap.Error(err))
		}
		store.removeQuiet(tw.tmpName)
		_ = store.reg.Remove(id)
		return outcomePassthrough, tw.status
	}
	return outcomeStored, tw.status
}

// entry is the registry entry of the render.
func (tw *teeWriter) entry() Entry {
	e := Entry{Key: tw.t.Key, Host: tw.host, Created: tw.now.UnixMilli(), Deps: tw.info.Deps, Keys: tw.info.Keys,
		Force: tw.info.Pregenerate}
	if !tw.info.Expires.IsZero() {
		e.Expires = tw.info.Expires.UnixMilli()
	}
	return e
}

// precompress writes the gzip and brotli copies of a finished render when
// the site asks for them and the answer is worth compressing.
func (tw *teeWriter) precompress() precompressed {
	store := tw.site.Store
	if !tw.site.Precompress || !compressible(tw.header.Get("Content-Type"), tw.t.Ext) {
		return precompressed{}
	}
	store.precompressed.Store(true)
	v, err := store.precompress(tw.tmpName)
	if err != nil && !store.space.Failed(err) {
		store.log.Warn("page not precompressed", zap.String("url", tw.t.Key), zap.Error(err))
	}
	return v
}

// discardTemp removes a temp file that was not installed.
func (tw *teeWriter) discardTemp() {
	if tw.tmp != nil {
		tw.tmp.Close()
		tw.site.Store.removeQuiet(tw.tmpName)
		tw.tmp = nil
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
