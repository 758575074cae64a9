package cache

import (
	"context"
	"os"
	"path"
	"time"

	"go.uber.org/zap"

	"github.com/delivery-edge/edge/cache/registry"
)

const removalBatch = 1000

// removalLoop runs the removal queue: one worker takes the jobs in order
// of priority, renames (or purges) their files, and takes the jobs off the
// queue in one transaction per batch. The transaction of one batch is
// committed while the files of the next are renamed, so the disk's two
// kinds of work overlap.
func (e *Engine) removalLoop(ctx context.Context) {
	defer e.wg.Done()
	var committing chan error // the previous batch's commit, if any
	busy := map[string]bool{}
	wait := func() {
		if committing != nil {
			if err := <-committing; err != nil {
				e.log.Error("removal queue", zap.Error(err))
			}
			committing = nil
		}
	}
	defer wait()
	for e.sleep(ctx, time.Second) {
		for ctx.Err() == nil {
			b, err := e.prepareRemoval(busy)
			if err != nil {
				e.log.Error("removal queue", zap.Error(err))
				break
			}
			if b == nil {
				if committing == nil {
					e.sweepWhileIdle(ctx)
					break
				}
				wait() // the queue may hold more once the last batch is off it
				clear(busy)
				continue
			}
			wait()
			clear(busy)
			if e.reg.Retired() > retiredHighWater {
				e.sweepOnce() // a queue that never idles must not grow the backlog forever
			}
			for _, j := range b.jobs {
				busy[j.Order()] = true
			}
			committing = make(chan error, 1)
			go func(ch chan error) { ch <- e.commitRemoval(b) }(committing)
		}
	}
}

// sweepBatch is how many retired entries one sweep transaction handles.
const sweepBatch = 32

// retiredHighWater is the tombstone backlog above which the removal queue
// sweeps one batch between its own batches even when it is never idle.
const retiredHighWater = 100_000

// sweepWhileIdle deletes the entries and index keys of eagerly removed
// files while the removal queue has nothing to do; new removal work
// interrupts it.
func (e *Engine) sweepWhileIdle(ctx context.Context) {
	for ctx.Err() == nil && e.reg.Retired() > 0 {
		if e.sweepOnce() == 0 || e.reg.QueueWaiting(registry.QueueRemoval) {
			return
		}
	}
}

// sweepOnce sweeps one batch and reports how many tombstones it took.
func (e *Engine) sweepOnce() int {
	n, err := e.reg.SweepRetired(sweepBatch)
	if err != nil {
		e.log.Error("removal queue", zap.Error(err))
		return 0
	}
	e.reg.ReleaseMapping()
	return n
}

// removalBatchWork is one batch of the removal queue between its file
// operations and its commit.
type removalBatchWork struct {
	jobs     []registry.QueuedJob
	rerender []registry.QueuedJob
	forget   map[FileID]int64 // entries to remove, with the Created they must still have
}

// prepareRemoval takes the next batch (skipping jobs still being
// committed) and does its file operations.
func (e *Engine) prepareRemoval(busy map[string]bool) (*removalBatchWork, error) {
	var jobs []registry.QueuedJob
	err := e.reg.View(func(tx *registry.Tx) error {
		var err error
		jobs, err = tx.NextJobs(registry.QueueRemoval, removalBatch, busy, time.Now(), e.config().AgeStep)
		return err
	})
	if err != nil || len(jobs) == 0 {
		return nil, err
	}
	lazy := e.config().LazyRemoval > 0
	b := &removalBatchWork{jobs: jobs, forget: map[FileID]int64{}}
	dirs := map[string]*os.Root{} // folders of this batch, opened once
	defer func() {
		for _, d := range dirs {
			d.Close()
		}
	}()
	for _, j := range jobs {
		store := e.storeByRoot(j.Root, true)
		if store == nil {
			continue
		}
		id := j.ID()
		switch j.Op {
		case registry.OpPurge:
			if store.writtenSince(j.File, j.Enqueued) {
				continue // rendered again since the job was queued
			}
			store.Purge(j.File)
			b.forget[id] = j.Created
			if j.Rerender {
				b.rerender = append(b.rerender, j)
			}
		default:
			if e.renameOld(store, dirs, j) && !lazy {
				b.forget[id] = j.Created
			}
		}
	}
	return b, nil
}

// renameOld renames a job's file to .old unless it was rendered again
// since the job was queued. It reports whether the file's registry entry
// is to go (renamed, or no file any more).
func (e *Engine) renameOld(store *Store, dirs map[string]*os.Root, j registry.QueuedJob) bool {
	dir, base := path.Split(j.File)
	d, ok := dirs[dir]
	if !ok {
		var err error
		if dir == "" {
			d, err = store.root.OpenRoot(".")
		} else {
			d, err = store.root.OpenRoot(path.Clean(dir))
		}
		if err != nil {
			d = nil // the folder is gone: so is the file
		}
		dirs[dir] = d
	}
	if d == nil {
		return true
	}
	info, err := d.Lstat(base)
	if err != nil {
		return true // no file (e.g. renamed before a crash)
	}
	if info.ModTime().UnixMilli() > j.Enqueued {
		return false // rendered again since the job was queued
	}
	store.flights.invalidate(j.File)
	err = d.Rename(base, base+OldSuffix)
	store.dropHot(j.File)
	if err != nil {
		if _, err := store.Invalidate(j.File); err != nil { // the slow path sorts out odd cases
			e.logJobError(j.Op, j, err)
			return false
		}
	}
	return true
}

// commitRemoval takes a batch's jobs off the queue and retires the
// registry entries of its files in the same transaction (unless lazy
// removal leaves them to the cleanup job); the idle-time sweep deletes
// retired entries and their index keys (registry/retire.go). A crash before the
// commit repeats some renames, which is harmless.
func (e *Engine) commitRemoval(b *removalBatchWork) error {
	var ret registry.Retirement
	err := e.reg.Update(func(tx *registry.Tx) error {
		for _, j := range b.jobs {
			if err := tx.Complete(registry.QueueRemoval, j); err != nil {
				return err
			}
		}
		for _, j := range b.rerender {
			j.Op, j.Rerender, j.Enqueued, j.Created = registry.OpRender, false, time.Now().UnixMilli(), 0
			if _, err := tx.Enqueue(registry.QueuePregen, j); err != nil {
				return err
			}
		}
		return tx.RetireFiles(b.forget, &ret)
	})
	if err != nil {
		e.reg.Unretire(&ret)
		return err
	}
	for _, id := range ret.ViaJournal {
		if err := e.reg.Remove(id); err != nil {
			e.log.Warn("removing registry entry", zap.String("file", id.File), zap.Error(err))
		}
	}
	if len(b.rerender) > 0 {
		e.wakeWorkers()
	}
	e.reg.ReleaseMapping() // the queue's pages lie all over the file
	e.stats.removed.Add(int64(len(b.jobs)))
	return nil
}
