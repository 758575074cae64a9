package cache

import (
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/delivery-edge/edge/cache/registry"
)

// invalidator turns what invalidates files — content changes, flushes
// (flush.go), expiry (expiry.go), changed resources — into queued jobs,
// and chooses each file's queue: pre-generation or removal. Finding the
// files and queueing their jobs happen in one registry transaction, with
// the stream's position where there is one, so a change takes effect
// exactly once across crashes.
type invalidator struct {
	reg      *registry.Registry
	access   *AccessLog
	cfg      *settings
	docroots *docroots
	wake     *broadcast
	log      *zap.Logger
	record   invalidationLog // the last invalidations (invalidation_log.go)
	changes  *recentChanges  // for the renders under way (recent_changes.go)

	mu sync.Mutex // one change application at a time
}

// ApplyChanges invalidates what the changes touch: it finds the dependent
// files, builds jobs and queues them, all in one transaction that also
// records upTo as the position named position (the source time of the
// newest change), so a change is applied exactly once across crashes.
func (e *Engine) ApplyChanges(changes []Change, position string, upTo int64) error {
	return e.inval.applyChanges(changes, position, upTo)
}

func (v *invalidator) applyChanges(changes []Change, position string, upTo int64) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	var touched []FileID
	err := v.reg.Update(func(tx *registry.Tx) error {
		touched = touched[:0]
		now := time.Now()
		for _, c := range changes {
			m := v.record.mark()
			files, err := v.queueChange(tx, c, now)
			if err != nil {
				return fmt.Errorf("apply change of %s %q: %w", c.Kind, c.ID, err)
			}
			v.record.note(tx, m, changeRecord(position, c, len(files)))
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
	v.docroots.markOutdated(touched)
	v.wake.notify()
	if len(touched) > 1000 {
		v.reg.ReleaseMapping()
	}
	return nil
}

// queued tells renders under way for the files that their result may
// predate a change, and wakes the workers.
func (v *invalidator) queued(files []FileID) {
	if len(files) == 0 {
		return
	}
	v.docroots.markOutdated(files)
	v.wake.notify()
}

// affected notes a change for the renders under way, then finds the
// files it invalidates (in this order: see recent_changes.go).
func (v *invalidator) affected(tx *registry.Tx, c Change) ([]FileID, map[FileID]registry.Meta, error) {
	v.changes.note(c)
	return affected(tx, c)
}

// queueChange queues the jobs of one change and returns the files.
func (v *invalidator) queueChange(tx *registry.Tx, c Change, now time.Time) ([]FileID, error) {
	files, meta, err := v.affected(tx, c)
	if err != nil {
		return nil, err
	}
	cfg := v.cfg.get()
	if len(files) == 0 {
		if c.Kind == DepDocument && !c.gone() && cfg.Pregenerate && cfg.GenerateNonexistent && !documentCached(tx, c) {
			return nil, v.queueResolve(tx, c.ID, c.SourceTime, now)
		}
		return nil, nil
	}
	for _, job := range SplitJobs(files, c.ID) {
		job.Source = c.SourceTime
		if err := v.queueFilesMeta(tx, job, c.gone(), now, meta); err != nil {
			return nil, err
		}
	}
	return files, nil
}

// resourceChanged queues the files rendered with another hash of a
// resource than d's.
func (v *invalidator) resourceChanged(d Dependency) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	var files []FileID
	err := v.reg.Update(func(tx *registry.Tx) error {
		files = files[:0]
		err := tx.Find(DepResource, d.Name, func(id FileID, dep Dependency) bool {
			if dep.Hash != d.Hash {
				files = append(files, id)
			}
			return true
		})
		if err != nil || len(files) == 0 {
			return err
		}
		defer v.record.note(tx, v.record.mark(), Invalidation{Source: SourceResource, Kind: DepResource.String(), ID: d.Name, Detail: d.Hash, Files: len(files)})
		return v.queueFiles(tx, Job{Files: files, Priority: PriorityFor(len(files))}, false, time.Now())
	})
	if err == nil && len(files) > 0 {
		v.log.Info("resource changed", zap.String("resource", d.Name), zap.String("hash", d.Hash), zap.Int("files", len(files)))
		v.queued(files)
	}
	return err
}

// documentCached reports whether any file depends on the document at all
// (a change that hit none of them still means the document is cached).
func documentCached(tx *registry.Tx, c Change) bool {
	found := false
	for _, name := range c.names() {
		_ = tx.Find(DepDocument, name, func(FileID, Dependency) bool { found = true; return false })
	}
	return found
}

// queueFiles puts every file of a job into the queue its use calls for.
func (v *invalidator) queueFiles(tx *registry.Tx, job Job, gone bool, now time.Time) error {
	return v.queueFilesMeta(tx, job, gone, now, nil)
}

// queueFilesMeta is queueFiles with the files' metadata at hand (from the
// reverse index): then only files that go to pre-generation have their
// registry entry read, for the host to render with.
func (v *invalidator) queueFilesMeta(tx *registry.Tx, job Job, gone bool, now time.Time, meta map[FileID]registry.Meta) error {
	cfg := v.cfg.get()
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
		q := v.chooseQueue(tx, id, entry, cfg, now)
		if known && q == registry.QueuePregen {
			if full, ok, err := tx.Get(id); err != nil {
				return err
			} else if ok {
				entry = full
			}
		}
		j := registry.QueuedJob{Root: id.Root, File: id.File, Priority: job.Priority, Enqueued: now.UnixMilli(),
			Created: entry.Created, Key: entry.Key, Host: entry.Host, Source: job.Source}
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
		v.record.queued(q)
		if _, err := tx.Enqueue(q, j); err != nil {
			return err
		}
	}
	return nil
}

// chooseQueue decides where an invalidated file goes: pre-generation when
// it is enabled and the file asked for it or was read recently (and at
// least once after it was written), removal otherwise.
func (v *invalidator) chooseQueue(tx *registry.Tx, id FileID, entry Entry, cfg InvalidationConfig, now time.Time) registry.QueueKind {
	if !cfg.Pregenerate || entry.Key == "" {
		return registry.QueueRemoval
	}
	if entry.Force {
		return registry.QueuePregen
	}
	last := v.access.LastAccess(tx, id)
	if last > entry.Created && now.Sub(time.UnixMilli(last)) <= cfg.Recent {
		return registry.QueuePregen
	}
	return registry.QueueRemoval
}

// queueResolve queues the pre-generation of a document that is not in the
// cache yet, once per docroot.
func (v *invalidator) queueResolve(tx *registry.Tx, doc string, source int64, now time.Time) error {
	return tx.Roots(func(_ string, root uint16) error {
		v.record.queued(registry.QueuePregen)
		_, err := tx.Enqueue(registry.QueuePregen, registry.QueuedJob{Root: root, Op: registry.OpResolve, Doc: doc,
			Priority: NonexistentPriority, Enqueued: now.UnixMilli(), Source: source})
		return err
	})
}
