package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"sync"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/delivery-edge/edge/cache"
)

func init() {
	caddy.RegisterModule(Cache{})
}

// Cache is the `delivery_cache` handler: it serves rendered pages as plain
// files from the docroot and sends misses through the rest of the route
// (normally reverse_proxy to the render backend), storing what comes back.
type Cache struct {
	// Root is the docroot. Default: the site root ({http.vars.root}, set by
	// the `root` directive), else the current directory.
	Root string `json:"root,omitempty"`
	// QueryParams is the allow-list of query parameters that are part of
	// the cache key; a request with any other parameter is passed on
	// uncached.
	QueryParams []string `json:"query_params,omitempty"`
	// RenderTimeout bounds one render; when it passes, the ".old" copy is
	// served if there is one, else 504. Default: 30s.
	RenderTimeout caddy.Duration `json:"render_timeout,omitempty"`
	// RenderWait is how long the request that finds only the ".old" copy
	// of a page (it was removed) and starts its render waits for it; if the
	// render takes longer, that request gets the copy (marked
	// Delivery-Stale) and the render goes on. Requests arriving while the
	// render runs get the copy at once. Default 5s; 0 answers every request
	// from the copy at once.
	RenderWait *caddy.Duration `json:"render_wait,omitempty"`
	// SSI, when present, resolves `<!--#include virtual="/path" -->` in
	// cached HTML from the same cache when it is served; every other SSI
	// directive is stripped.
	SSI *SSIOptions `json:"ssi,omitempty"`
	// Precompress writes gzip and brotli copies next to every compressible
	// page when it is stored and serves them by Accept-Encoding (with
	// Vary), like nginx's gzip_static; requests for "*.gz" and "*.br" are
	// then internal and answer 404.
	Precompress bool `json:"precompress,omitempty"`
	// MaxRenders bounds the renders of a docroot that run at once: readers'
	// misses, SSI parts and pre-generation together, pre-generation taking
	// at most half. A miss that finds no free slot within render_wait gets
	// the ".old" copy if there is one, else 503 with Retry-After;
	// pre-generation waits. Default: 64.
	MaxRenders int `json:"max_renders,omitempty"`
	// MaxFileSize is the largest render answer stored, in bytes; a larger
	// one is passed on to the client and not stored. Default: 64 MiB.
	MaxFileSize int64 `json:"max_file_size,omitempty"`
	// CacheStatus, when false, leaves the RFC 9211 Cache-Status header off
	// the answers; the {http.delivery.cache_status} placeholder is set
	// either way. Default: on.
	CacheStatus *bool `json:"cache_status,omitempty"`

	app   *App
	log   *zap.Logger
	srv   *caddyhttp.Server // the server this handler is part of
	sites *sync.Map         // resolved docroot -> *cache.Site
	// rootVar is set when Root is exactly one variable placeholder
	// ({http.vars.NAME}, the default): the docroot is then read from the
	// request's vars without running the replacer.
	rootVar string
}

// SSIOptions configure server-side includes.
type SSIOptions struct {
	// MaxDepth bounds how deeply includes nest (a page's own includes are
	// at depth 1). Default: 8.
	MaxDepth int `json:"max_depth,omitempty"`
}

// maxSSIDepth is the largest max_depth accepted.
const maxSSIDepth = 64

// CaddyModule returns the Caddy module information.
func (Cache) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.delivery_cache",
		New: func() caddy.Module { return new(Cache) },
	}
}

// Provision finds the delivery app; nothing on disk is touched here. The
// docroot is opened when the app starts if it is the same for every
// request (see startSites), else at the first request.
func (h *Cache) Provision(ctx caddy.Context) error {
	h.log = ctx.Logger()
	h.sites = new(sync.Map)
	if h.Root == "" {
		h.Root = "{http.vars.root}"
	}
	h.rootVar = varPlaceholder(h.Root)
	app, err := ctx.App("delivery")
	if err != nil {
		return fmt.Errorf("loading delivery app: %w", err)
	}
	h.app = app.(*App)
	h.srv, _ = ctx.Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	return nil
}

// varPlaceholder returns NAME when s is exactly the placeholder
// {http.vars.NAME}, else "".
func varPlaceholder(s string) string {
	name, ok := strings.CutPrefix(s, "{http.vars.")
	if !ok || !strings.HasSuffix(name, "}") {
		return ""
	}
	name = name[:len(name)-1]
	if name == "" || strings.ContainsAny(name, "{}") {
		return ""
	}
	return name
}

// Validate checks the configuration.
func (h *Cache) Validate() error {
	if h.RenderTimeout < 0 {
		return errors.New("render_timeout must not be negative")
	}
	if h.RenderWait != nil && *h.RenderWait < 0 {
		return errors.New("render_wait must not be negative")
	}
	if h.MaxRenders < 0 {
		return errors.New("max_renders must not be negative")
	}
	if h.MaxFileSize < 0 {
		return errors.New("max_file_size must not be negative")
	}
	if h.SSI != nil && (h.SSI.MaxDepth < 0 || h.SSI.MaxDepth > maxSSIDepth) {
		return fmt.Errorf("ssi max_depth must be between 1 and %d", maxSSIDepth)
	}
	return nil
}

// ServeHTTP serves hits from the docroot and renders misses.
func (h *Cache) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if r.Context().Value(resolveKey{}) != nil {
		return next.ServeHTTP(w, r) // the edge's own question, not a reader's
	}
	site, err := h.site(r)
	if err != nil {
		return caddyhttp.Error(http.StatusServiceUnavailable, err)
	}
	render := func(w http.ResponseWriter, r *http.Request) error {
		if err := next.ServeHTTP(w, r); err != nil {
			var he caddyhttp.HandlerError
			if errors.As(err, &he) {
				return &cache.StatusError{Code: he.StatusCode, Err: err}
			}
			return err
		}
		return nil
	}
	if r.Context().Value(pregenKey{}) != nil {
		site.Regenerate(w, r, render)
		return nil
	}
	return handlerError(site.ServeHTTP(w, r, render))
}

// handlerError turns the cache's errors into Caddy's.
func handlerError(err error) error {
	if err == nil {
		return nil
	}
	var he caddyhttp.HandlerError
	if errors.As(err, &he) {
		return err
	}
	var se *cache.StatusError
	if errors.As(err, &se) {
		return caddyhttp.Error(se.Code, se)
	}
	return err
}

// site returns the cache site of the request's docroot.
func (h *Cache) site(r *http.Request) (*cache.Site, error) {
	var root string
	if h.rootVar != "" {
		// The vars handler expanded the value's placeholders already.
		root, _ = caddyhttp.GetVar(r.Context(), h.rootVar).(string)
		if root == "" {
			root = "."
		}
	} else if repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); repl != nil {
		root = repl.ReplaceAll(h.Root, ".")
	} else {
		root = h.Root
	}
	return h.siteFor(root, r.Host)
}

// siteFor returns the cache site of a resolved docroot; host is the host
// of the request that asks (its pre-generation's host when it is new).
func (h *Cache) siteFor(root, host string) (*cache.Site, error) {
	if s, ok := h.sites.Load(root); ok {
		return s.(*cache.Site), nil
	}
	eng, err := h.app.Engine()
	if err != nil {
		h.log.Error("delivery cache unavailable", zap.Error(err))
		return nil, err
	}
	store, err := eng.Store(root)
	if err != nil {
		h.log.Error("docroot unavailable", zap.String("root", root), zap.Error(err))
		return nil, err
	}
	actual, loaded := h.sites.LoadOrStore(root, h.newSite(store))
	if !loaded && h.srv != nil {
		// This config's server carries pre-generation for the docroot from
		// now on (the newest config to serve it wins), with this request's
		// host for work that has none. The app did so at start already
		// when the docroot does not depend on the request.
		renderers.claim(store, h.app, h.app.renderer(h.srv), host)
	}
	adminSites.note(h.app, host, actual.(*cache.Site))
	return actual.(*cache.Site), nil
}

// newSite is the cache site of this handler's configuration for a docroot.
func (h *Cache) newSite(store *cache.Store) *cache.Site {
	s := &cache.Site{
		Store:         store,
		Mapper:        cache.Mapper{QueryParams: h.QueryParams},
		RenderTimeout: timeDuration(h.RenderTimeout),
		RenderWait:    cache.DefaultRenderWait,
		MaxRenders:    h.MaxRenders,
		MaxFileSize:   h.MaxFileSize,
		OnCacheStatus: setCacheStatusPlaceholder,
	}
	if h.CacheStatus != nil && !*h.CacheStatus {
		s.HideCacheStatus = true
	}
	if h.RenderWait != nil {
		s.RenderWait = timeDuration(*h.RenderWait)
	}
	s.Detach = detachRequest
	if h.Precompress {
		s.Precompress = true
		s.Mapper.ReservedSuffixes = []string{cache.GzipSuffix, cache.BrotliSuffix}
	}
	if h.SSI != nil {
		s.SSI = &cache.SSIConfig{MaxDepth: h.SSI.MaxDepth}
	}
	return s
}

// CacheStatusPlaceholder is set on every request delivery_cache answers to
// its RFC 9211 Cache-Status member (e.g. `delivery;hit`), for access logs
// (log_append) and header directives.
const CacheStatusPlaceholder = "http.delivery.cache_status"

// setCacheStatusPlaceholder sets CacheStatusPlaceholder on the request's
// replacer. The value of a constant outcome is an interface value made
// once, so a hit costs no allocation for it beyond what the replacer's map
// costs.
func setCacheStatusPlaceholder(r *http.Request, c cache.CacheStatus) {
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Set(CacheStatusPlaceholder, c.Value())
	}
}

// detachRequest gives a request that is rendered on its own goroutine its
// own copy of Caddy's vars map: handlers such as reverse_proxy write to it
// without a lock, and the original request's handlers go on using theirs.
func detachRequest(r *http.Request) *http.Request {
	vars, _ := r.Context().Value(caddyhttp.VarsCtxKey).(map[string]any)
	return r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, maps.Clone(vars)))
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Cache)(nil)
	_ caddy.Validator             = (*Cache)(nil)
	_ caddyhttp.MiddlewareHandler = (*Cache)(nil)
)
