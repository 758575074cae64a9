package cache

import (
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/delivery-edge/edge/cache/registry"
)

// InvalidationConfig says how invalidated files are handled.
type InvalidationConfig struct {
	// Pregenerate enables the pre-generation queue; without it every
	// invalidation renames the file to .old.
	Pregenerate bool
	// Workers is the number of pre-generation workers (default 4).
	Workers int
	// Recent is how recently a file must have been read (and at least
	// once after it was written) to be pre-generated (default 1h).
	Recent time.Duration
	// GenerateNonexistent pre-generates, with priority 50, the page of a
	// published document that is not in the cache at all.
	GenerateNonexistent bool
	// LazyRemoval, when set, makes removal only rename files; a cleanup
	// job runs at this interval and removes dangling registry entries.
	LazyRemoval time.Duration
	// Ephemeral: files that expire sooner than this after they were
	// written are kept out of the registry (held in memory, with a backup
	// file for crash cleanup).
	Ephemeral time.Duration
	// AgeStep raises a waiting job's priority by one per step (default 1s).
	AgeStep time.Duration
}

func (c InvalidationConfig) withDefaults() InvalidationConfig {
	if c.Workers <= 0 {
		c.Workers = 4
	}
	if c.Recent <= 0 {
		c.Recent = time.Hour
	}
	if c.AgeStep <= 0 {
		c.AgeStep = time.Second
	}
	return c
}

// Configure replaces the invalidation settings; it can be called at any
// time (a config reload) and takes effect for the next jobs.
func (e *Engine) Configure(c InvalidationConfig) {
	c = c.withDefaults()
	e.cfg.Store(&c)
	e.pregen.resize(c.Workers)
	e.wakeWorkers()
}

func (e *Engine) config() InvalidationConfig { return *e.cfg.Load() }

// ApplyChanges invalidates what the changes touch: it finds the dependent
// files, builds jobs and queues them, all in one transaction that also
// records upTo as the position named position (the source time of the
// newest change), so a change is applied exactly once across crashes.
func (e *Engine) ApplyChanges(changes []Change, position string, upTo int64) error {
	e.applyMu.Lock()
	defer e.applyMu.Unlock()
	var touched []FileID
	err := e.reg.Update(func(tx *registry.Tx) error {
		touched = touched[:0]
		now := time.Now()
		for _, c := range changes {
			files, err := e.queueChange(tx, c, now)
			if err != nil {
				return fmt.Errorf("apply change of %s %q: %w", c.Kind, c.ID, err)
			}
			touched = append(touched, files...)
		}
		if position == "" {
			return nil
		}
		return tx.SetPosition(position, upTo)
	})
	if err != nil {
		return err
	}
	e.markOutdated(touched)
	e.wakeWorkers()
	if len(touched) > 1000 {
		e.reg.ReleaseMapping()
	}
	return nil
}

// queueChange queues the jobs of one change and returns the files.
func (e *Engine) queueChange(tx *registry.Tx, c Change, now time.Time) ([]FileID, error) {
	files, meta, err := affected(tx, c)
	if err != nil {
		return nil, err
	}
	cfg := e.config()
	if len(files) == 0 {
		if c.Kind == DepDocument && !c.gone() && cfg.Pregenerate && cfg.GenerateNonexistent && !e.documentCached(tx, c) {
			return nil, e.queueResolve(tx, c.ID, now)
		}
		return nil, nil
	}
	for _, job := range SplitJobs(files, c.ID) {
		if err := e.queueFilesMeta(tx, job, c.gone(), now, meta); err != nil {
			return nil, err
		}
	}
	return files, nil
}

// documentCached reports whether any file depends on the document at all
// (a change that hit none of them still means the document is cached).
func (e *Engine) documentCached(tx *registry.Tx, c Change) bool {
	found := false
	for _, name := range c.names() {
		_ = tx.Find(DepDocument, name, func(FileID, Dependency) bool { found = true; return false })
	}
	return found
}

// queueFiles puts every file of a job into the queue its use calls for.
func (e *Engine) queueFiles(tx *registry.Tx, job Job, gone bool, now time.Time) error {
	return e.queueFilesMeta(tx, job, gone, now, nil)
}

// queueFilesMeta is queueFiles with the files' metadata at hand (from the
// reverse index): then only files that go to pre-generation have their
// registry entry read, for the host to render with.
func (e *Engine) queueFilesMeta(tx *registry.Tx, job Job, gone bool, now time.Time, meta map[FileID]registry.Meta) error {
	cfg := e.config()
	for _, id := range job.Files {
		var entry Entry
		m, known := meta[id]
		if known {
			entry.Created, entry.Force = m.Created, m.Force
			entry.Key, _ = KeyForFile(id.File)
		} else {
			var err error
			if entry, _, err = tx.Get(id); err != nil {
				return err
			}
		}
		q := e.chooseQueue(tx, id, entry, cfg, now)
		if known && q == registry.QueuePregen {
			if full, ok, err := tx.Get(id); err != nil {
				return err
			} else if ok {
				entry = full
			}
		}
		j := registry.QueuedJob{Root: id.Root, File: id.File, Priority: job.Priority, Enqueued: now.UnixMilli(),
			Created: entry.Created, Key: entry.Key, Host: entry.Host}
		switch {
		case gone:
			// The content is gone: no reader may get a copy of it, so the
			// file and any .old go at once; a page that is read is rendered
			// again afterwards (it may still exist without the content).
			j.Op, j.Rerender, q = registry.OpPurge, q == registry.QueuePregen, registry.QueueRemoval
		case q == registry.QueuePregen:
			j.Op = registry.OpRender
		default:
			j.Op = registry.OpRename
		}
		if _, err := tx.Enqueue(q, j); err != nil {
			return err
		}
	}
	return nil
}

// chooseQueue decides where an invalidated file goes: pre-generation when
// it is enabled and the file asked for it or was read recently (and at
// least once after it was written), removal otherwise.
func (e *Engine) chooseQueue(tx *registry.Tx, id FileID, entry Entry, cfg InvalidationConfig, now time.Time) registry.QueueKind {
	if !cfg.Pregenerate || entry.Key == "" {
		return registry.QueueRemoval
	}
	if entry.Force {
		return registry.QueuePregen
	}
	last := e.access.LastAccess(tx, id)
	if last > entry.Created && now.Sub(time.UnixMilli(last)) <= cfg.Recent {
		return registry.QueuePregen
	}
	return registry.QueueRemoval
}

// queueResolve queues the pre-generation of a document that is not in the
// cache yet, once per docroot.
func (e *Engine) queueResolve(tx *registry.Tx, doc string, now time.Time) error {
	return tx.Roots(func(_ string, root uint16) error {
		_, err := tx.Enqueue(registry.QueuePregen, registry.QueuedJob{Root: root, Op: registry.OpResolve, Doc: doc,
			Priority: NonexistentPriority, Enqueued: now.UnixMilli()})
		return err
	})
}

// markOutdated tells renders under way for these files that their result
// may predate a change.
func (e *Engine) markOutdated(files []FileID) {
	for _, id := range files {
		if s := e.storeByRoot(id.Root, false); s != nil {
			s.flights.invalidate(id.File)
		}
	}
}

func (e *Engine) logJobError(op string, j registry.QueuedJob, err error) {
	e.log.Warn("queue job failed", zap.String("op", op), zap.String("file", j.File), zap.String("doc", j.Doc), zap.Error(err))
}
