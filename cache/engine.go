package cache

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/delivery-edge/edge/cache/registry"
)

// Options configure an Engine.
type Options struct {
	// DataDir holds the registry file and the journal.
	DataDir string
	// Logger receives the engine's logs; nil discards them.
	Logger *zap.Logger
	// AccessFlushInterval is how often recorded access times are written
	// to the registry (default 5s).
	AccessFlushInterval time.Duration
	// HotBytes is the memory budget of each docroot's hot set, the hottest
	// small files kept in memory (default 64 MiB; negative: off).
	HotBytes int64
	// HotMaxFile is the largest file the hot set holds (default 1 MiB, at
	// most a tenth of HotBytes).
	HotMaxFile int64
	// HotValid is how long a file held in memory is served before a hit
	// checks, with one stat, that the file on disk is still the same
	// (default 1s; negative: on every hit). See file_ident.go.
	HotValid time.Duration
}

// Defaults of the hot set.
const (
	DefaultHotBytes   = 64 << 20
	DefaultHotMaxFile = 1 << 20
)

// Engine owns one data folder: the registry, the access log and the
// docroot stores. It is shared by every configuration that names the same
// data folder and lives until the last of them is unloaded.
type Engine struct {
	opts   Options
	log    *zap.Logger
	reg    *Registry
	access *AccessLog
	cfg    atomic.Pointer[InvalidationConfig]

	mu     sync.Mutex
	stores map[string]*Store
	byRoot map[uint16]*Store

	applyMu sync.Mutex // one change application at a time
	leases  leases
	wake    *broadcast
	pregen  *pregenPool
	stats   engineStats

	resMu           sync.Mutex
	resources       map[string]string // resource name -> newest hash
	resourceChanges chan Dependency

	ephMu         sync.Mutex
	ephemeral     map[FileID]ephemeralEntry
	ephemeralPath string

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// engineStats counts the engine's work (for metrics and tests).
type engineStats struct {
	removed      atomic.Int64
	pregenerated atomic.Int64
}

// Stats is a snapshot of the engine's counters and queue lengths.
type Stats struct {
	// Hits are requests answered from a cached file.
	Hits int64
	// Renders counts the renders by how they ended ("stored",
	// "passthrough", "gone", "failed", "outdated").
	Renders               map[string]int64
	Removed, Pregenerated int64
	RemovalQueue          int
	PregenQueue           int
	// Retired counts removed files whose reverse-index keys wait for the
	// background sweep (see retire.go).
	Retired int
}

// Stats returns the engine's counters and the lengths of its queues.
func (e *Engine) Stats() Stats {
	st := Stats{Hits: e.access.Hits(), Removed: e.stats.removed.Load(), Pregenerated: e.stats.pregenerated.Load(),
		Renders: map[string]int64{}, Retired: e.reg.Retired()}
	e.mu.Lock()
	for _, s := range e.stores {
		for o := range outcomeCount {
			st.Renders[o.String()] += s.flights.counts[o].Load()
		}
	}
	e.mu.Unlock()
	st.RemovalQueue, st.PregenQueue = e.reg.QueueLengths()
	return st
}

// Open opens the data folder and starts the engine's background work.
func Open(o Options) (*Engine, error) {
	log := o.Logger
	if log == nil {
		log = zap.NewNop()
	}
	if o.AccessFlushInterval <= 0 {
		o.AccessFlushInterval = 5 * time.Second
	}
	if o.HotBytes == 0 {
		o.HotBytes = DefaultHotBytes
	}
	if o.HotMaxFile <= 0 {
		o.HotMaxFile = DefaultHotMaxFile
	}
	o.HotMaxFile = min(o.HotMaxFile, o.HotBytes/10)
	if o.HotValid == 0 {
		o.HotValid = DefaultHotValid
	}
	reg, err := registry.Open(o.DataDir, log)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Engine{opts: o, log: log, reg: reg, access: NewAccessLog(), stores: map[string]*Store{}, byRoot: map[uint16]*Store{},
		wake: newBroadcast(), resources: map[string]string{}, resourceChanges: make(chan Dependency, 256),
		ephemeral: map[FileID]ephemeralEntry{}, ephemeralPath: filepath.Join(o.DataDir, "ephemeral.json"),
		cancel: cancel}
	def := InvalidationConfig{}.withDefaults()
	e.cfg.Store(&def)
	if err := e.loadResources(); err != nil {
		cancel()
		reg.Close()
		return nil, fmt.Errorf("read resource hashes: %w", err)
	}
	e.recoverEphemeral()
	e.pregen = &pregenPool{e: e, ctx: ctx, busy: map[string]bool{}}
	e.wg.Add(5)
	go e.flushAccessLoop(ctx, o.AccessFlushInterval)
	go e.removalLoop(ctx)
	go e.expiryLoop(ctx)
	go e.resourceLoop(ctx)
	go e.cleanupLoop(ctx)
	e.pregen.resize(e.config().Workers)
	return e, nil
}

// Registry is the engine's registry.
func (e *Engine) Registry() *Registry { return e.reg }

// Access is the engine's access log.
func (e *Engine) Access() *AccessLog { return e.access }

// Store returns the store of a docroot, opening it on first use.
func (e *Engine) Store(docroot string) (*Store, error) {
	dir, err := filepath.Abs(docroot)
	if err != nil {
		return nil, fmt.Errorf("docroot %q: %w", docroot, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if s, ok := e.stores[dir]; ok {
		return s, nil
	}
	id, err := e.reg.Root(dir)
	if err != nil {
		return nil, err
	}
	s, err := openStore(dir, id, e, e.log)
	if err != nil {
		return nil, err
	}
	e.stores[dir] = s
	e.byRoot[id] = s
	return s, nil
}

// storeByRoot returns the store of a root id; with open it opens the
// docroot if no handler has yet (e.g. queue work after a restart).
func (e *Engine) storeByRoot(id uint16, open bool) *Store {
	e.mu.Lock()
	s := e.byRoot[id]
	e.mu.Unlock()
	if s != nil || !open {
		return s
	}
	dir := e.reg.RootDir(id)
	if dir == "" {
		return nil
	}
	s, err := e.Store(dir)
	if err != nil {
		e.log.Error("cannot open docroot for queued work", zap.String("docroot", dir), zap.Error(err))
		return nil
	}
	return s
}

// Close stops the background work, writes what is pending and closes the
// data folder.
func (e *Engine) Close() error {
	e.cancel()
	e.wake.notify()
	e.wg.Wait()
	_, aerr := e.access.Flush(e.reg)
	e.mu.Lock()
	var errs []error
	for _, s := range e.stores {
		errs = append(errs, s.close())
	}
	e.mu.Unlock()
	errs = append(errs, aerr, e.reg.Close())
	return errors.Join(errs...)
}

func (e *Engine) flushAccessLoop(ctx context.Context, every time.Duration) {
	defer e.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := e.access.Flush(e.reg); err != nil {
				e.log.Warn("access times not written; will retry", zap.Error(err))
			}
		}
	}
}
