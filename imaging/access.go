package imaging

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"
)

// AccessConfig configures the access side of the image service.
type AccessConfig struct {
	// Prefix is the URL path prefix the service is mounted under
	// ("/image"); requests outside it answer 404, and so do those whose
	// segment after it is not as long as a UUID (/image/x/<uuid>/…, an
	// alias that would put one image under endless URLs). Empty = none.
	Prefix string `json:"prefix,omitempty"`
	// Widths lists the ?width= values allowed for aspect-only variants.
	Widths []int `json:"widths,omitempty"`
	// LongMaxAge is the Cache-Control max-age when the server's documents
	// are at least as new as the URL's stamps (0 = 30 days).
	LongMaxAge time.Duration `json:"long_max_age,omitempty"`
	// ShortMaxAge is the max-age when they are older: the replica may be
	// behind, so clients should come back soon (0 = 1 minute). Error
	// answers (404, 410) use it too.
	ShortMaxAge time.Duration `json:"short_max_age,omitempty"`
	// MaxGenerations bounds concurrent variant generations
	// (0 = GOMAXPROCS).
	MaxGenerations int `json:"max_generations,omitempty"`
	// GenerateTimeout bounds one generation, fetching the original
	// included (0 = 60s).
	GenerateTimeout time.Duration `json:"generate_timeout,omitempty"`
	// VariantsTTL is how long variant definitions are cached (0 = 1 min).
	VariantsTTL time.Duration `json:"variants_ttl,omitempty"`
	// RecheckInterval is the least time between two CMS look-ups of one
	// image caused by URLs whose stamp is newer than the stored version
	// (0 = 10s).
	RecheckInterval time.Duration `json:"recheck_interval,omitempty"`
	// NegativeTTL is how long an image the CMS did not know, and an
	// original that was refused (too many pixels or bytes, not
	// decodable), are remembered: requests for them are answered 404 or
	// 422 without asking the CMS again. An event for the image ends it
	// early on the edge that runs the update service. 0 = 30s; negative =
	// not remembered (every request asks the CMS, concurrent ones once).
	NegativeTTL time.Duration `json:"negative_ttl,omitempty"`
	// Generator configures variant generation.
	Generator GeneratorConfig `json:"generator,omitempty"`
}

func (c AccessConfig) withDefaults() AccessConfig {
	c.Prefix = strings.TrimRight(c.Prefix, "/")
	if c.Prefix != "" && !strings.HasPrefix(c.Prefix, "/") {
		c.Prefix = "/" + c.Prefix
	}
	if c.LongMaxAge <= 0 {
		c.LongMaxAge = 30 * 24 * time.Hour
	}
	if c.ShortMaxAge <= 0 {
		c.ShortMaxAge = time.Minute
	}
	if c.MaxGenerations <= 0 {
		c.MaxGenerations = runtime.GOMAXPROCS(0)
	}
	if c.GenerateTimeout <= 0 {
		c.GenerateTimeout = time.Minute
	}
	if c.VariantsTTL <= 0 {
		c.VariantsTTL = time.Minute
	}
	if c.RecheckInterval <= 0 {
		c.RecheckInterval = 10 * time.Second
	}
	if c.NegativeTTL == 0 {
		c.NegativeTTL = DefaultNegativeTTL
	}
	return c
}

// DefaultNegativeTTL is how long unknown images and refused originals are
// remembered unless AccessConfig.NegativeTTL says otherwise.
const DefaultNegativeTTL = 30 * time.Second

// Access serves image variants (docs/image-urls.md): from the store when
// present, else generated from the original fetched from the CMS, stored
// and served. It is an http.Handler and safe for concurrent use.
type Access struct {
	cfg      AccessConfig
	store    Store
	cms      CMS
	gen      *Generator
	log      *zap.Logger
	flights  singleflight.Group
	sem      chan struct{}
	variants *variantCache
	rechecks *recheckLimiter
	negative *NegativeCache
	metrics  *Metrics
	// scope names the generator limits in the negative cache.
	scope string
	// prefix is cfg.Prefix percent-encoded, as request paths are matched.
	prefix string
}

// AccessOption changes how NewAccess sets up the service.
type AccessOption func(*Access)

// WithNegativeCache makes the service remember unknown images and refused
// originals in c, which it may share with other Access values and with an
// Updater (see NegativeCache). Without it the service has a cache of its
// own, of DefaultNegativeMax entries.
func WithNegativeCache(c *NegativeCache) AccessOption {
	return func(a *Access) { a.negative = c }
}

// NewAccess returns the access service. log may be nil.
func NewAccess(cfg AccessConfig, store Store, cms CMS, log *zap.Logger, opts ...AccessOption) *Access {
	cfg = cfg.withDefaults()
	if log == nil {
		log = zap.NewNop()
	}
	a := &Access{
		cfg: cfg, store: store, cms: cms, gen: NewGenerator(cfg.Generator), log: log,
		sem:      make(chan struct{}, cfg.MaxGenerations),
		variants: &variantCache{cms: cms, store: store, ttl: cfg.VariantsTTL, log: log},
		rechecks: &recheckLimiter{interval: cfg.RecheckInterval, max: 100_000, last: map[string]time.Time{}},
	}
	for _, o := range opts {
		o(a)
	}
	if a.negative == nil {
		a.negative = NewNegativeCache(0)
	}
	if a.metrics == nil {
		a.metrics = new(Metrics)
	}
	a.prefix = (&url.URL{Path: cfg.Prefix}).EscapedPath()
	g := a.gen.Config()
	a.scope = strconv.FormatInt(g.MaxPixels, 10) + "/" + strconv.FormatInt(g.MaxBytes, 10)
	return a
}

// Config returns the effective configuration (defaults applied).
func (a *Access) Config() AccessConfig { return a.cfg }

// Served is a variant ready to be sent.
type Served struct {
	// Data is the image.
	Data []byte
	// ContentType is its media type.
	ContentType string
	// ETag identifies Data (unquoted).
	ETag string
	// ModTime is when the variant was stored.
	ModTime time.Time
	// Fresh is true when the documents the server saw are at least as new
	// as the URL's stamps.
	Fresh bool
	// MaxAge is the Cache-Control max-age to send.
	MaxAge time.Duration
	// Generated is true when the variant was not in the store and was
	// made for this request (or for one it waited for).
	Generated bool
}

// ServeHTTP answers GET and HEAD requests for image URLs.
func (a *Access) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !a.directlyUnderPrefix(r.URL.Path) {
		// /image/x/<uuid>/… would otherwise be an alias of
		// /image/<uuid>/…: one image under endless URLs in caches.
		w.Header().Set("Cache-Control", "public, max-age="+strconv.Itoa(int(a.cfg.ShortMaxAge/time.Second)))
		http.Error(w, http.StatusText(http.StatusNotFound), http.StatusNotFound)
		a.metrics.countStatus(http.StatusNotFound, false)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		a.metrics.countStatus(http.StatusMethodNotAllowed, false)
		return
	}
	// The path as sent: the slug is percent-encoded, and may hold an
	// encoded slash.
	path := r.URL.EscapedPath()
	if a.prefix != "" {
		if !strings.HasPrefix(path, a.prefix+"/") {
			a.writeError(w, r, fmt.Errorf("path outside %s: %w", a.cfg.Prefix, ErrNotFound))
			return
		}
		path = path[len(a.prefix):]
	}
	parts, err := Parse(path, r.URL.Query(), a.cfg.Widths)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	v, err := a.Lookup(r.Context(), parts)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.metrics.countStatus(http.StatusOK, v.Generated)
	h := w.Header()
	h.Set("Content-Type", v.ContentType)
	h.Set("ETag", `"`+v.ETag+`"`)
	h.Set("Cache-Control", "public, max-age="+strconv.Itoa(int(v.MaxAge/time.Second)))
	h.Set("X-Content-Type-Options", "nosniff")
	if parts.Format == "svg" {
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; sandbox")
	}
	if hasConditionsOrRange(r) {
		// ServeContent handles If-None-Match (304), If-Modified-Since and
		// Range.
		http.ServeContent(w, r, "", v.ModTime, bytes.NewReader(v.Data))
		return
	}
	// The common case, written in one go: ServeContent would copy the
	// bytes through a freshly allocated 32 KB buffer on every request.
	if !v.ModTime.IsZero() {
		h.Set("Last-Modified", v.ModTime.UTC().Format(http.TimeFormat))
	}
	h.Set("Accept-Ranges", "bytes")
	h.Set("Content-Length", strconv.Itoa(len(v.Data)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(v.Data)
	}
}

// hasConditionsOrRange reports whether the request needs ServeContent.
func hasConditionsOrRange(r *http.Request) bool {
	h := r.Header
	return h.Get("Range") != "" || h.Get("If-None-Match") != "" || h.Get("If-Modified-Since") != "" ||
		h.Get("If-Match") != "" || h.Get("If-Unmodified-Since") != ""
}

// writeError answers err with its status (HTTPStatus); server-side causes
// are logged, client-side ones only at debug level.
func (a *Access) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status := HTTPStatus(err)
	a.metrics.countStatus(status, false)
	h := w.Header()
	switch {
	case status >= 500:
		a.log.Error("image request failed", zap.String("path", r.URL.Path), zap.Int("status", status), zap.Error(err))
		h.Set("Cache-Control", "no-store")
	default:
		a.log.Debug("image request refused", zap.String("path", r.URL.Path), zap.Int("status", status), zap.Error(err))
		h.Set("Cache-Control", "public, max-age="+strconv.Itoa(int(a.cfg.ShortMaxAge/time.Second)))
	}
	msg := http.StatusText(status)
	var ue *URLError
	if errors.As(err, &ue) {
		msg += ": " + ue.Reason
	}
	http.Error(w, msg, status)
}

// Lookup finds or makes the variant p names. Errors map to HTTP answers
// with HTTPStatus.
func (a *Access) Lookup(ctx context.Context, p URLParts) (*Served, error) {
	st, err := loadState(ctx, a.store, p.UUID)
	if err != nil {
		return nil, err
	}
	if err := stateError(st); err != nil {
		return nil, err
	}
	def, err := a.variants.get(ctx, p.Variant, p.VariantModified)
	if err != nil {
		return nil, err
	}
	if st == nil || (p.ImageModified > st.Modified && a.rechecks.allow(p.UUID)) {
		if st, err = a.refreshImage(ctx, p.UUID, st); err != nil {
			return nil, err
		}
	}
	fresh := st.Modified >= p.ImageModified && variantCurrent(def, p.VariantModified)
	key := VariantKey(p.UUID, p.Variant, st.Modified, def.Modified, p.Width, p.Ext())
	obj, err := a.store.Get(ctx, key)
	generated := false
	if errors.Is(err, ErrNotFound) {
		if err = a.remembered(p.UUID, st.Modified); err == nil {
			obj, err = a.generate(ctx, p, key, st, def)
			generated = true
		}
	} else if err != nil {
		err = fmt.Errorf("%w: %w", ErrStoreUnavailable, err)
	}
	if err != nil {
		return nil, err
	}
	v := &Served{Data: obj.Data, ContentType: obj.ContentType, ETag: obj.Meta["etag"], ModTime: obj.ModTime, Fresh: fresh,
		Generated: generated}
	if v.ETag == "" {
		v.ETag = obj.ETag
	}
	if v.ContentType == "" {
		v.ContentType = p.ContentType()
	}
	// A variant made from an original older than the stored state (the
	// CMS replica is behind) is marked by generate as not current.
	if obj.Meta["current"] == "false" {
		v.Fresh = false
	}
	v.MaxAge = a.cfg.ShortMaxAge
	if v.Fresh {
		v.MaxAge = a.cfg.LongMaxAge
	}
	return v, nil
}

// stateError maps an offline/deleted marker to its error.
func stateError(st *imageState) error {
	if st == nil {
		return nil
	}
	switch st.State {
	case StateDeleted:
		return fmt.Errorf("image %s: %w", st.UUID, ErrGone)
	case StateOffline:
		return fmt.Errorf("image %s is offline: %w", st.UUID, ErrNotFound)
	}
	return nil
}

// refreshImage asks the CMS for the image document (once for concurrent
// callers) and records a newer version in the store. st is what the store
// knows (nil = nothing): if the CMS fails or knows nothing newer, st stays
// in use and the answer gets the short max-age.
func (a *Access) refreshImage(ctx context.Context, uuid string, st *imageState) (*imageState, error) {
	if st == nil {
		if err := a.remembered(uuid, 0); err != nil {
			return nil, err
		}
	}
	res, err, _ := a.flights.Do("img:"+uuid, func() (any, error) {
		// Detached from the first caller: its cancellation must not fail
		// the others waiting for the same answer.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.GenerateTimeout)
		defer cancel()
		doc, err := a.cms.Image(fctx, uuid)
		if err != nil {
			return nil, err
		}
		return doc, nil
	})
	if err != nil {
		if st != nil {
			a.log.Info("image: CMS look-up failed, serving the stored version",
				zap.String("uuid", uuid), zap.Error(err))
			return st, nil
		}
		if errors.Is(err, ErrNotFound) {
			a.noteUnknown(uuid)
			return nil, fmt.Errorf("image %s: %w", uuid, err)
		}
		return nil, fmt.Errorf("%w: image %s: %w", ErrCMSUnavailable, uuid, err)
	}
	doc := res.(*ImageDoc)
	switch doc.State {
	case StateDeleted:
		return nil, fmt.Errorf("image %s: %w", uuid, ErrGone)
	case StateOffline:
		return nil, fmt.Errorf("image %s is offline: %w", uuid, ErrNotFound)
	}
	if st != nil && doc.Modified <= st.Modified {
		return st, nil
	}
	ns := imageState{UUID: uuid, State: StatePublished, Modified: doc.Modified}
	if err := saveState(ctx, a.store, ns); err != nil {
		return nil, err
	}
	return &ns, nil
}

// directlyUnderPrefix reports whether the segment after the prefix has
// the length of a UUID (Parse checks the rest). Without a prefix, and for
// paths outside it (which ServeHTTP refuses), it is true.
func (a *Access) directlyUnderPrefix(path string) bool {
	if a.cfg.Prefix == "" {
		return true
	}
	rest, ok := strings.CutPrefix(path, a.cfg.Prefix+"/")
	if !ok {
		return true
	}
	seg, _, _ := strings.Cut(rest, "/")
	return len(seg) == 36
}
