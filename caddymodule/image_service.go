package caddymodule

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/delivery-edge/edge/imaging"
	"github.com/delivery-edge/edge/stagingclient"
)

func init() {
	caddy.RegisterModule(ImageService{})
}

// ImageService is the `image_service` handler: it answers image URLs
// /<prefix>/<uuid>/<imageStamp>/<variantStamp>/<variant>[/<slug>].<format>
// (docs/image-urls.md)
// from the delivery app's image store, generating missing variants from
// the original that it fetches from the CMS staging servers. It always
// answers; it never calls the next handler.
//
// The store is the app's `image_store` (default: the folder
// <data_dir>/images); the CMS is the app's `staging` block, or, without
// one, the servers of `image_updates` (a preview edge reading the primary).
type ImageService struct {
	// Prefix is the URL path prefix of the service ("/image"). With the
	// Caddyfile it defaults to the directive's path matcher (`/image/*` →
	// "/image"). Requests outside it answer 404; empty accepts any prefix.
	Prefix string `json:"prefix,omitempty"`
	// Widths lists the ?width= values allowed for variants defined by
	// their aspect ratio alone; other widths answer 400.
	Widths []int `json:"widths,omitempty"`
	// LongMaxAge is the Cache-Control max-age when the documents the
	// server saw are at least as new as the URL's stamps (default 30d).
	LongMaxAge caddy.Duration `json:"long_max_age,omitempty"`
	// ShortMaxAge is the max-age when they are older, and of 404/410
	// answers (default 1m).
	ShortMaxAge caddy.Duration `json:"short_max_age,omitempty"`
	// MaxGenerations bounds concurrent variant generations (default: the
	// number of CPUs).
	MaxGenerations int `json:"max_generations,omitempty"`
	// GenerateTimeout bounds one generation, fetching the original
	// included (default 60s).
	GenerateTimeout caddy.Duration `json:"generate_timeout,omitempty"`
	// VariantsTTL is how long variant definitions are cached (default 1m).
	VariantsTTL caddy.Duration `json:"variants_ttl,omitempty"`
	// RecheckInterval is the least time between two CMS look-ups of one
	// image caused by URLs newer than the stored version (default 10s).
	RecheckInterval caddy.Duration `json:"recheck_interval,omitempty"`
	// NegativeTTL is how long an image the CMS does not know (404) and an
	// original that was refused (422: more than max_pixels or max_bytes,
	// or not decodable) are remembered, so that requests for them do not
	// ask the CMS again (default 30s; negative: not remembered). An event
	// for the image, applied by `image_updates` in this process, ends it
	// at once; other edges see a newly published image within NegativeTTL.
	// At most 100,000 images are remembered per image store; beyond that
	// the oldest entries are dropped.
	NegativeTTL caddy.Duration `json:"negative_ttl,omitempty"`
	// MaxPixels refuses originals with more pixels, read from the header
	// before decoding (default 50,000,000).
	MaxPixels int64 `json:"max_pixels,omitempty"`
	// MaxBytes refuses larger originals (default 64 MiB).
	MaxBytes int64 `json:"max_bytes,omitempty"`
	// JPEGQuality (default 82) and WebPQuality (default 80) are the
	// encoder qualities, 1–100.
	JPEGQuality int `json:"jpeg_quality,omitempty"`
	WebPQuality int `json:"webp_quality,omitempty"`
	// MemoryCache is how many bytes of stored variants are kept in memory
	// (LRU), so that hits need no store round trip; variant objects never
	// change under their key. Default 64 MiB; negative turns it off.
	MemoryCache int64 `json:"memory_cache,omitempty"`
	// StateTTL is how long an image's state record read from the store
	// is trusted (default 1s; negative: always read). An offline/deleted
	// marker or a new version is seen at most this much later.
	StateTTL caddy.Duration `json:"state_ttl,omitempty"`

	access *imaging.Access
	store  *imageStoreRef
	client *stagingclient.Client
}

// CaddyModule returns the Caddy module information.
func (ImageService) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.image_service",
		New: func() caddy.Module { return new(ImageService) },
	}
}

// Provision joins the app's shared image store and makes the staging
// client and the access service. It connects to nothing and creates
// nothing on disk: that happens on the first request.
func (h *ImageService) Provision(ctx caddy.Context) error {
	log := ctx.Logger()
	appIface, err := ctx.App("delivery")
	if err != nil {
		return fmt.Errorf("loading delivery app: %w", err)
	}
	app := appIface.(*App)
	sc, option := app.Staging, "staging"
	if sc == nil && app.ImageUpdates != nil && len(app.ImageUpdates.URLs) > 0 {
		sc, option = app.ImageUpdates, "image_updates"
	}
	if sc == nil {
		return errors.New("image_service: the delivery app needs a `staging` block (the CMS to fetch originals from)")
	}
	client, _, err := newStagingClient(sc, option, log.Named("staging"))
	if err != nil {
		return fmt.Errorf("image_service: %w", err)
	}
	store, err := acquireImageStore(app)
	if err != nil {
		client.Close()
		return err
	}
	h.client, h.store = client, store
	var st imaging.Store = store
	if mem, ttl := h.memoryCache(); mem > 0 {
		st = imaging.NewMemoryCache(store, mem, ttl, log).CountIn(imageMetrics)
	}
	h.access = imaging.NewAccess(h.accessConfig(), st, imaging.NewStagingCMS(client), log,
		imaging.WithNegativeCache(store.negative), imaging.WithMetrics(imageMetrics))
	return nil
}

// Defaults of the memory cache.
const (
	defaultImageMemoryCache = 64 << 20
	defaultImageStateTTL    = time.Second
)

// memoryCache returns the memory cache's size (0 = off) and state TTL.
func (h *ImageService) memoryCache() (int64, time.Duration) {
	size, ttl := h.MemoryCache, timeDuration(h.StateTTL)
	switch {
	case size < 0:
		return 0, 0
	case size == 0:
		size = defaultImageMemoryCache
	}
	switch {
	case ttl < 0:
		ttl = 0
	case ttl == 0:
		ttl = defaultImageStateTTL
	}
	return size, ttl
}

// accessConfig is the imaging configuration of the handler.
func (h *ImageService) accessConfig() imaging.AccessConfig {
	return imaging.AccessConfig{
		Prefix:          h.Prefix,
		Widths:          slices.Clone(h.Widths),
		LongMaxAge:      timeDuration(h.LongMaxAge),
		ShortMaxAge:     timeDuration(h.ShortMaxAge),
		MaxGenerations:  h.MaxGenerations,
		GenerateTimeout: timeDuration(h.GenerateTimeout),
		VariantsTTL:     timeDuration(h.VariantsTTL),
		RecheckInterval: timeDuration(h.RecheckInterval),
		NegativeTTL:     timeDuration(h.NegativeTTL),
		Generator: imaging.GeneratorConfig{
			MaxPixels: h.MaxPixels,
			MaxBytes:  h.MaxBytes,
			Encode:    imaging.EncodeOptions{JPEGQuality: h.JPEGQuality, WebPQuality: h.WebPQuality},
		},
	}
}

// Validate checks the configuration (also when it comes as JSON).
func (h *ImageService) Validate() error {
	if h.Prefix != "" && (!strings.HasPrefix(h.Prefix, "/") || strings.ContainsAny(h.Prefix, "*?{} ")) {
		return fmt.Errorf("image_service prefix: %q must be a plain path starting with /", h.Prefix)
	}
	if err := checkWidths(h.Widths); err != nil {
		return fmt.Errorf("image_service widths: %w", err)
	}
	for _, d := range []struct {
		name string
		v    caddy.Duration
	}{
		{"long_max_age", h.LongMaxAge}, {"short_max_age", h.ShortMaxAge}, {"generate_timeout", h.GenerateTimeout},
		{"variants_ttl", h.VariantsTTL}, {"recheck_interval", h.RecheckInterval},
	} {
		if d.v < 0 {
			return fmt.Errorf("image_service %s: must not be negative", d.name)
		}
	}
	if h.LongMaxAge > 0 && h.ShortMaxAge > h.LongMaxAge {
		return errors.New("image_service short_max_age: must not be longer than long_max_age")
	}
	if h.MaxGenerations < 0 || h.MaxPixels < 0 || h.MaxBytes < 0 {
		return errors.New("image_service max_generations, max_pixels, max_bytes: must not be negative")
	}
	for _, q := range []struct {
		name string
		v    int
	}{{"jpeg_quality", h.JPEGQuality}, {"webp_quality", h.WebPQuality}} {
		if q.v < 0 || q.v > 100 {
			return fmt.Errorf("image_service %s: %d is not in 1..100", q.name, q.v)
		}
	}
	return nil
}

// checkWidths checks a list of allowed widths: each in 1..imaging.MaxWidth,
// no duplicates.
func checkWidths(ws []int) error {
	seen := map[int]bool{}
	for _, w := range ws {
		if w < 1 || w > imaging.MaxWidth {
			return fmt.Errorf("%d is not in 1..%d", w, imaging.MaxWidth)
		}
		if seen[w] {
			return fmt.Errorf("%d is listed twice", w)
		}
		seen[w] = true
	}
	return nil
}

// ServeHTTP answers the image request. Errors are answered by the access
// service itself with their status and a body free of internals (400 with
// the reason the URL was refused), and server-side causes are logged once,
// by this handler's logger; nothing is passed on to Caddy's error handling.
func (h *ImageService) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	h.access.ServeHTTP(w, r)
	return nil
}

// Cleanup releases the shared store and the staging client's connections.
func (h *ImageService) Cleanup() error {
	releaseImageDeps(h.store, h.client)
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*ImageService)(nil)
	_ caddy.Validator             = (*ImageService)(nil)
	_ caddy.CleanerUpper          = (*ImageService)(nil)
	_ caddyhttp.MiddlewareHandler = (*ImageService)(nil)
)
