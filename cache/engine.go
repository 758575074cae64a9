package cache

import (
	"context"
	"errors"
	"sync"
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

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
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
	return o
}

// Engine owns one data folder: the registry, the access log and the
// docroot stores. It is shared by every configuration that names the same
// data folder and lives until the last of them is unloaded.
//
// It is the composition of parts that each hold one concern: the
// docroots; the invalidator, which turns changes, flushes, expiry and
// changed resources into queued jobs (invalidate.go, flush.go); the queue
// workers (removal.go, pregen.go); the scheduled work (expiry.go,
// resources.go, ephemeral.go, cleanup.go); the evictor that keeps the
// docroots under their size limits (evict.go); the consistency check
// (check.go). Its own methods are the API of the Caddy module.
type Engine struct {
	log    *zap.Logger
	reg    *registry.Registry
	access *AccessLog
	cfg    *settings
	wake   *broadcast // the queue workers

	docroots  *docroots
	inval     *invalidator
	removal   *removalWorker
	pregen    *pregenPool
	ephemeral *ephemeralFiles
	resources *resourceHashes
	cleaner   *cleaner
	evictor   *evictor
	leases    leases
	latency   *latencyHistogram

	cancel context.CancelFunc
	wg     sync.WaitGroup
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
	// background sweep (see registry/retire.go).
	Retired int
	// ServeStats are the serving path's figures (serve_stats.go).
	ServeStats
	// RemovalOldest and PregenOldest are when the oldest job of each
	// queue was queued (zero: the queue is empty).
	RemovalOldest, PregenOldest time.Time
	// Latency is the invalidation latency histogram: from a change's
	// source time to its file renamed, purged or rendered again.
	Latency LatencySnapshot
	// Docroots are the sizes of the open docroots and their evictions, in
	// the order of their root ids.
	Docroots []DocrootStats
	// ChangesDropped counts changes the log of changes applied during
	// renders under way dropped at its bound (recent_changes.go).
	ChangesDropped int64
}

// Stats returns the engine's counters and the lengths of its queues.
func (e *Engine) Stats() Stats {
	st := Stats{Hits: e.access.Hits(), Removed: e.removal.removed.Load(), Pregenerated: e.pregen.done.Load(),
		Renders: map[string]int64{}, Retired: e.reg.Retired(), ChangesDropped: e.inval.changes.overflowed()}
	for _, s := range e.docroots.all() {
		for o := range outcomeCount {
			st.Renders[o.String()] += s.flights.counts[o].Load()
		}
	}
	st.RemovalQueue, st.PregenQueue = e.reg.QueueLengths()
	st.ServeStats = servingStats(e.docroots.all())
	if st.RemovalQueue > 0 {
		st.RemovalOldest = e.reg.OldestJob(registry.QueueRemoval)
	}
	if st.PregenQueue > 0 {
		st.PregenOldest = e.reg.OldestJob(registry.QueuePregen)
	}
	st.Latency = e.latency.snapshot()
	for _, s := range e.docroots.all() {
		st.Docroots = append(st.Docroots, s.DocrootSize())
	}
	return st
}

// Open opens the data folder and starts the engine's background work.
func Open(o Options) (*Engine, error) {
	o = o.withDefaults()
	log := o.Logger
	reg, err := registry.Open(o.DataDir, log)
	if err != nil {
		return nil, err
	}
	resources, err := loadResourceHashes(reg, log)
	if err != nil {
		reg.Close()
		return nil, err
	}
	cfg, wake, access, changes := newSettings(), newBroadcast(), NewAccessLog(), newRecentChanges(log)
	ephemeral := newEphemeralFiles(o.DataDir, cfg, log)
	evict := newEvictor(reg, access, log)
	docroots := newDocroots(reg, log, storeDeps{reg: reg, access: access, ephemeral: ephemeral, resources: resources, changes: changes,
		workers: wake, sizeWake: evict.notify, log: log, hotBytes: o.HotBytes, hotMaxFile: o.HotMaxFile,
		hotValid: o.HotValid})
	evict.docroots = docroots
	ctx, cancel := context.WithCancel(context.Background())
	latency := &latencyHistogram{}
	e := &Engine{log: log, reg: reg, access: access, cfg: cfg, wake: wake, docroots: docroots,
		ephemeral: ephemeral, resources: resources, cancel: cancel, latency: latency,
		inval:   &invalidator{reg: reg, access: access, cfg: cfg, docroots: docroots, wake: wake, log: log, changes: changes},
		removal: &removalWorker{reg: reg, docroots: docroots, cfg: cfg, wake: wake, log: log, latency: latency},
		cleaner: &cleaner{reg: reg, docroots: docroots, cfg: cfg, log: log, minAge: cleanupMinAge},
		evictor: evict,
	}
	e.pregen = newPregenPool(&pregenPool{reg: reg, docroots: docroots, cfg: cfg, wake: wake, log: log, latency: latency,
		ctx: ctx, wg: &e.wg})
	ephemeral.recover(docroots)
	expiry := &expiry{reg: reg, inval: e.inval, ephemeral: ephemeral, docroots: docroots, log: log}
	e.wg.Go(func() { access.run(ctx, reg, o.AccessFlushInterval, log) })
	e.wg.Go(func() { e.removal.run(ctx) })
	e.wg.Go(func() { expiry.run(ctx) })
	e.wg.Go(func() { resources.run(ctx, e.inval) })
	e.wg.Go(func() { e.cleaner.run(ctx) })
	e.wg.Go(func() { e.evictor.run(ctx) })
	e.wg.Go(e.pregen.commitLoop)
	e.pregen.resize(cfg.get().Workers)
	return e, nil
}

// Registry is the engine's registry.
func (e *Engine) Registry() *Registry { return e.reg }

// Access is the engine's access log.
func (e *Engine) Access() *AccessLog { return e.access }

// Store returns the store of a docroot, opening it on first use.
func (e *Engine) Store(docroot string) (*Store, error) { return e.docroots.open(docroot) }

// Close stops the background work, writes what is pending and closes the
// data folder.
func (e *Engine) Close() error {
	e.cancel()
	e.wake.notify()
	e.wg.Wait()
	_, aerr := e.access.Flush(e.reg)
	errs := e.docroots.closeAll()
	errs = append(errs, aerr, e.reg.Close())
	return errors.Join(errs...)
}
