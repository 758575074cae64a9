// Package caddymodule adapts the project's domain packages (cache,
// edgegroup, imaging, stagingclient) to Caddy: the `delivery` app (its
// configuration, provisioning and the lifecycle of its parts), the HTTP
// handlers, their Caddyfile syntax, the metrics and the `delivery-check`
// command. What it does beyond handing configuration and requests on is
// tied to Caddy: sharing the engine and the image stores across config
// reloads, finding the docroots in Caddy's routes at start, rendering
// through Caddy's servers. The product logic is in the domain packages.
package caddymodule

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/delivery-edge/edge/cache"
	"github.com/delivery-edge/edge/edgegroup"
)

func init() {
	caddy.RegisterModule(App{})
}

// DefaultDataDir is the data folder when none is configured.
const DefaultDataDir = "./data"

// App is the `delivery` app: it owns the data folder (registry, queues,
// flush log) and the background work of the edge. Handlers find it with
// ctx.App("delivery"); without a `delivery` global option it runs with
// its defaults.
type App struct {
	// DataDir is the folder for the registry and the queues. Relative
	// paths are taken from the working directory. Default: ./data.
	DataDir string `json:"data_dir,omitempty"`
	// Staging is how the edge learns of content changes; without it the
	// edge still caches and serves, and learns of changes only through
	// the cache servlet and expiry.
	Staging *StagingConfig `json:"staging,omitempty"`
	// Pregenerate enables re-rendering of recently read pages when they
	// are invalidated; without it every invalidation renames to .old.
	Pregenerate *PregenerateConfig `json:"pregenerate,omitempty"`
	// LazyRemoval makes removal only rename files; a cleanup job at this
	// interval removes the registry entries of files that are gone.
	LazyRemoval caddy.Duration `json:"lazy_removal,omitempty"`
	// Ephemeral: renders that expire (max-age/Expires) sooner than this are
	// kept out of the registry, in memory with a backup file.
	Ephemeral caddy.Duration `json:"ephemeral,omitempty"`
	// ServletPassword protects the cache servlet; it must be equal on all
	// peers and is sent with forwarded flushes and start-up syncs.
	ServletPassword string `json:"servlet_password,omitempty"`
	// Groups are the groups of edges that share flushes, by name.
	Groups map[string]GroupConfig `json:"groups,omitempty"`
	// FlushLogRetention is how long the flush log keeps entries for
	// catch-up syncs (default 7 days).
	FlushLogRetention caddy.Duration `json:"flush_log_retention,omitempty"`
	// FlushLogMaxSize caps the flush log in bytes besides the retention:
	// past it the oldest flushes are pruned (default 64 MiB).
	FlushLogMaxSize int64 `json:"flush_log_max_size,omitempty"`
	// OutboxMaxSize caps each peer's outbox of flushes to forward, in
	// bytes: past it the peer's oldest undelivered flushes are dropped,
	// and the peer gets them only from its next catch-up sync (default
	// 64 MiB per peer).
	OutboxMaxSize int64 `json:"outbox_max_size,omitempty"`
	// ImageStore is where image variants are kept (default: a folder
	// under the data folder).
	ImageStore *ImageStoreConfig `json:"image_store,omitempty"`
	// ImageUpdates makes this edge run the image update service. Without
	// URLs it reads the events of Staging.
	ImageUpdates *StagingConfig `json:"image_updates,omitempty"`
	// HotCacheBytes is the memory each docroot may use to hold its hottest
	// small files (default 64 MiB; negative: off). Taken when the data
	// folder is opened; a reload that changes it needs a restart.
	HotCacheBytes int64 `json:"hot_cache_bytes,omitempty"`
	// HotMaxFile is the largest file held in memory (default 1 MiB).
	HotMaxFile int64 `json:"hot_max_file,omitempty"`
	// HotCacheValid is how long a file held in memory is served before a
	// hit checks, with one stat, that the file on disk is still the same
	// one; a file replaced, edited, renamed or deleted by another process is
	// seen within this time. Default 1s; 0 checks on every hit. Taken when
	// the data folder is opened.
	HotCacheValid *caddy.Duration `json:"hot_cache_valid,omitempty"`
	// MaxSize is the most bytes each docroot's files (pages, ".old" and
	// precompressed copies together) may take: past it the least recently
	// read pages are evicted until the docroot is 5 % under it. 0 or
	// absent: no limit.
	MaxSize int64 `json:"max_size,omitempty"`
	// MinFree is the free space to keep on each docroot's file system, in
	// bytes ("10GB") or as a percentage of its size ("5%"): below it the
	// least recently read pages are evicted until the docroot is 5 % under
	// what it may hold. "0" turns the check off. Default: 5%.
	MinFree string `json:"min_free,omitempty"`

	dataDir string
	limits  cache.SizeLimits // MaxSize and MinFree
	engine  *engineHandle
	log     *zap.Logger
	ctx     caddy.Context

	// The parts of the app with a lifecycle of their own, provisioned with
	// it, started by Start in this order and stopped by Stop in reverse.
	groups       *edgegroup.Groups    // always: it also prunes the flush log
	imageUpdates *imageUpdatesFeature // with image_updates only
	staging      *stagingFeature      // with staging only
	status       *statusSampler       // with a delivery_status handler only

	// rendersReleased is set when the app stops; guarded by renderers.mu.
	rendersReleased bool
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "delivery",
		New: func() caddy.Module { return new(App) },
	}
}

// engines holds one engine per data folder across config reloads: the old
// and the new config share it while they overlap, and it is closed when
// the last config that uses it is unloaded.
var engines = caddy.NewUsagePool()

// engineHandle opens its engine on first use, so that provisioning (which
// also runs for `caddy validate`) never touches the data folder.
type engineHandle struct {
	opts cache.Options

	mu  sync.Mutex
	eng *cache.Engine
}

func (h *engineHandle) get() (*cache.Engine, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.eng != nil {
		return h.eng, nil
	}
	eng, err := cache.Open(h.opts)
	if err != nil {
		return nil, err
	}
	h.eng = eng
	return eng, nil
}

// opened returns the engine if it is open, without opening it.
func (h *engineHandle) opened() *cache.Engine {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.eng
}

// Destruct closes the engine when the last config using it is gone.
func (h *engineHandle) Destruct() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.eng == nil {
		return nil
	}
	err := h.eng.Close()
	h.eng = nil
	return err
}

// Provision resolves the data folder and joins (or creates) its shared
// engine handle. It opens nothing.
func (a *App) Provision(ctx caddy.Context) error {
	a.log = ctx.Logger()
	a.ctx = ctx
	dir := a.DataDir
	if dir == "" {
		dir = DefaultDataDir
	}
	dir = caddy.NewReplacer().ReplaceKnown(dir, "")
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("data_dir %q: %w", dir, err)
	}
	a.dataDir = abs
	if a.limits, err = sizeLimits(a.MaxSize, a.MinFree); err != nil {
		return err
	}
	h, _, err := engines.LoadOrNew(abs, func() (caddy.Destructor, error) {
		return &engineHandle{opts: cache.Options{DataDir: abs, Logger: a.log, HotBytes: a.HotCacheBytes,
			HotMaxFile: a.HotMaxFile, HotValid: a.hotValid()}}, nil
	})
	if err != nil {
		return err
	}
	a.engine = h.(*engineHandle)
	if err := registerMetrics(ctx.GetMetricsRegistry(), newMetricsCollector(a)); err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	if err := registerMetrics(ctx.GetMetricsRegistry(), imageMetricsCollector{a}); err != nil {
		return fmt.Errorf("registering image metrics: %w", err)
	}
	if a.groups, err = provisionGroups(a); err != nil {
		return err
	}
	if a.ImageUpdates != nil {
		if a.imageUpdates, err = provisionImageUpdates(a, ctx); err != nil {
			return err
		}
	}
	if a.Staging != nil {
		if a.staging, err = provisionStaging(a); err != nil {
			return err
		}
	}
	return nil
}

// hotValid is HotCacheValid as the engine takes it (0: its default,
// negative: every hit).
func (a *App) hotValid() time.Duration {
	switch {
	case a.HotCacheValid == nil:
		return 0
	case *a.HotCacheValid <= 0:
		return -1
	}
	return timeDuration(*a.HotCacheValid)
}

// invalidationConfig is the engine configuration of this app.
func (a *App) invalidationConfig() cache.InvalidationConfig {
	c := cache.InvalidationConfig{
		LazyRemoval: timeDuration(a.LazyRemoval),
		Ephemeral:   timeDuration(a.Ephemeral),
	}
	if p := a.Pregenerate; p != nil {
		c.Pregenerate = true
		c.Workers = p.Workers
		c.Recent = timeDuration(p.Recent)
		c.GenerateNonexistent = p.GenerateNonexistent
	}
	return c
}

// Engine returns the opened engine of the app's data folder.
func (a *App) Engine() (*cache.Engine, error) {
	eng, err := a.engine.get()
	if err != nil {
		return nil, fmt.Errorf("delivery data folder %s: %w", a.dataDir, err)
	}
	return eng, nil
}

// Start opens the data folder (if no handler has yet), applies this
// config's invalidation settings, starts the app's parts and gives the
// docroots it knows without a request their renderer for pre-generation.
func (a *App) Start() error {
	eng, err := a.Engine()
	if err != nil {
		return err
	}
	eng.Configure(a.invalidationConfig())
	eng.SetSizeLimits(a.limits)
	a.groups.Start(a.ctx, eng)
	if a.imageUpdates != nil {
		a.imageUpdates.start(a.ctx, eng)
	}
	if a.staging != nil {
		a.staging.start(a.ctx, eng)
	}
	a.claimStartRenderers(eng)
	a.startStatus()
	adminSites.started(a)
	a.log.Info("delivery edge started", zap.String("data_dir", a.dataDir))
	return nil
}

// Stop hands pre-generation back to the previous config (if one still
// runs) and stops this config's parts, in the reverse order of Start; the
// shared engine stays open until Cleanup releases the last reference to
// it.
func (a *App) Stop() error {
	renderers.release(a)
	a.stopStatus()
	adminSites.stopped(a)
	if a.staging != nil {
		a.staging.stop()
	}
	if a.imageUpdates != nil {
		a.imageUpdates.stop()
	}
	if a.groups != nil {
		a.groups.Stop()
	}
	return nil
}

// Cleanup releases this config's reference to the shared engine.
func (a *App) Cleanup() error {
	_, err := engines.Delete(a.dataDir)
	return errors.Join(err, a.releaseStatus())
}

// Interface guards
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
	_ caddy.Destructor   = (*engineHandle)(nil)
)
