// Package caddymodule adapts the project's domain packages (cache, imaging,
// stagingclient) to Caddy: the `delivery` app, the HTTP handlers and their
// Caddyfile syntax. It holds no product logic of its own.
package caddymodule

import (
	"fmt"
	"path/filepath"
	"sync"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/delivery-edge/edge/cache"
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

	dataDir string
	engine  *engineHandle
	log     *zap.Logger
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
	h, _, err := engines.LoadOrNew(abs, func() (caddy.Destructor, error) {
		return &engineHandle{opts: cache.Options{DataDir: abs, Logger: a.log}}, nil
	})
	if err != nil {
		return err
	}
	a.engine = h.(*engineHandle)
	return nil
}

// Engine returns the opened engine of the app's data folder.
func (a *App) Engine() (*cache.Engine, error) {
	eng, err := a.engine.get()
	if err != nil {
		return nil, fmt.Errorf("delivery data folder %s: %w", a.dataDir, err)
	}
	return eng, nil
}

// Start opens the data folder (if no handler has yet).
func (a *App) Start() error {
	if _, err := a.Engine(); err != nil {
		return err
	}
	a.log.Info("delivery edge started", zap.String("data_dir", a.dataDir))
	return nil
}

// Stop is called when the config is replaced or Caddy stops; the shared
// engine stays open until Cleanup releases the last reference.
func (a *App) Stop() error { return nil }

// Cleanup releases this config's reference to the shared engine.
func (a *App) Cleanup() error {
	_, err := engines.Delete(a.dataDir)
	return err
}

// Interface guards
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
	_ caddy.Destructor   = (*engineHandle)(nil)
)
