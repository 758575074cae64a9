package cache

import (
	"context"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/delivery-edge/edge/cache/registry"
)

const removalBatch = 1000

// removalWorker runs the removal queue: one worker takes the jobs in order
// of priority, renames (or purges) their files, and takes the jobs off the
// queue in one transaction per batch. The transaction of one batch is
// committed while the files of the next are renamed, so the disk's two
// kinds of work overlap. While the queue is idle it sweeps the registry's
// tombstones (registry/retire.go).
type removalWorker struct {
	reg      *registry.Registry
	docroots *docroots
	cfg      *settings
	wake     *broadcast
	log      *zap.Logger
	latency  *latencyHistogram
	removed  atomic.Int64 // jobs done
}

func (w *removalWorker) run(ctx context.Context) {
	var committing chan error // the previous batch's commit, if any
	busy := map[string]bool{}
	wait := func() {
		if committing != nil {
			if err := <-committing; err != nil {
				w.log.Error("removal queue", zap.Error(err))
			}
			committing = nil
		}
	}
	defer wait()
	for w.wake.sleep(ctx, time.Second) {
		for ctx.Err() == nil {
			b, err := w.prepare(busy)
			if err != nil {
				w.log.Error("removal queue", zap.Error(err))
				break
			}
			if b == nil {
				if committing == nil {
					w.sweepWhileIdle(ctx)
					break
				}
				wait() // the queue may hold more once the last batch is off it
				clear(busy)
				continue
			}
			wait()
			clear(busy)
			if w.reg.Retired() > retiredHighWater {
				w.sweepOnce() // a queue that never idles must not grow the backlog forever
			}
			for _, j := range b.jobs {
				busy[j.Order()] = true
			}
			committing = make(chan error, 1)
			go func(ch chan error) { ch <- w.commit(b) }(committing)
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
func (w *removalWorker) sweepWhileIdle(ctx context.Context) {
	for ctx.Err() == nil && w.reg.Retired() > 0 {
		if w.sweepOnce() == 0 || w.reg.QueueWaiting(registry.QueueRemoval) {
			return
		}
	}
}

// sweepOnce sweeps one batch and reports how many tombstones it took.
func (w *removalWorker) sweepOnce() int {
	n, err := w.reg.SweepRetired(sweepBatch)
	if err != nil {
		w.log.Error("removal queue", zap.Error(err))
		return 0
	}
	w.reg.ReleaseMapping()
	return n
}

// removalBatchWork is one batch of the removal queue between its file
// operations and its commit.
type removalBatchWork struct {
	jobs     []registry.QueuedJob
	rerender []registry.QueuedJob
	forget   map[FileID]int64 // entries to remove, with the Created they must still have
}

// prepare takes the next batch (skipping jobs still being committed) and
// does its file operations.
func (w *removalWorker) prepare(busy map[string]bool) (*removalBatchWork, error) {
	var jobs []registry.QueuedJob
	err := w.reg.View(func(tx *registry.Tx) error {
		var err error
		jobs, err = tx.NextJobs(registry.QueueRemoval, removalBatch, busy, time.Now(), w.cfg.get().AgeStep)
		return err
	})
	if err != nil || len(jobs) == 0 {
		return nil, err
	}
	lazy := w.cfg.get().LazyRemoval > 0
	b := &removalBatchWork{jobs: jobs, forget: map[FileID]int64{}}
	dirs := batchDirs{} // folders of this batch, opened once
	defer dirs.close()
	for _, j := range jobs {
		store := w.docroots.byID(j.Root, true)
		if store == nil {
			continue
		}
		id := j.ID()
		switch j.Op {
		case registry.OpPurge:
			if store.writtenSince(j.File, j.Since()) {
				continue // rendered again since the job's newest change was queued
			}
			store.Purge(j.File)
			b.forget[id] = retireBefore(j)
			if j.Rerender {
				b.rerender = append(b.rerender, j)
			}
		default:
			gone, err := store.renameToOld(dirs, j.File, j.Since())
			if err != nil {
				logJobError(w.log, j, err)
			}
			if gone && !lazy {
				b.forget[id] = retireBefore(j)
			}
		}
	}
	return b, nil
}

// retireBefore is the creation time up to which the job retires its
// file's entry: the entry it saw when queued, or any written before the
// newest change merged into it (a render that predates that change). An
// entry of a render after it is newer and stays.
func retireBefore(j registry.QueuedJob) int64 { return max(j.Created, j.Changed) }

// commit takes a batch's jobs off the queue (those a change was merged
// into meanwhile stay) and retires the registry
// entries of its files in the same transaction (unless lazy removal
// leaves them to the cleanup job); the idle-time sweep deletes retired
// entries and their index keys (registry/retire.go). A crash before the
// commit repeats some renames, which is harmless.
func (w *removalWorker) commit(b *removalBatchWork) error {
	var ret registry.Retirement
	var done map[string]bool
	err := w.reg.Update(func(tx *registry.Tx) error {
		done = make(map[string]bool, len(b.jobs))
		for _, j := range b.jobs {
			// A change merged into the job after the batch took it may
			// need the file the batch skipped as rendered since: the job
			// stays queued and its next batch decides again.
			ok, err := tx.CompleteUnchanged(registry.QueueRemoval, j)
			if err != nil {
				return err
			}
			done[j.Order()] = ok
		}
		for _, j := range b.rerender {
			if !done[j.Order()] {
				continue // the purge is queued still and queues its render when done
			}
			// The purge made the change take effect: the render after it
			// is not part of the invalidation latency.
			j.Op, j.Rerender, j.Enqueued, j.Created, j.Source = registry.OpRender, false, time.Now().UnixMilli(), 0, 0
			if _, err := tx.Enqueue(registry.QueuePregen, j); err != nil {
				return err
			}
		}
		return tx.RetireFiles(b.forget, &ret)
	})
	if err != nil {
		w.reg.Unretire(&ret)
		return err
	}
	if err := w.reg.FinishRetirement(&ret); err != nil {
		w.log.Warn("removing registry entries", zap.Error(err))
	}
	if len(b.rerender) > 0 {
		w.wake.notify()
	}
	w.reg.ReleaseMapping() // the queue's pages lie all over the file
	now := time.Now()
	for _, j := range b.jobs {
		if done[j.Order()] { // a job kept queued is in the next batch (run)
			w.removed.Add(1)
			w.latency.observeSince(j.Source, now)
		}
	}
	return nil
}

// logJobError logs a queue job that failed.
func logJobError(log *zap.Logger, j registry.QueuedJob, err error) {
	log.Warn("queue job failed", zap.String("op", j.Op), zap.String("file", j.File), zap.String("doc", j.Doc), zap.Error(err))
}
