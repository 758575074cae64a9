package cache

import (
	"context"
	"errors"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"
)

// Renderer renders pages through the web server's own handlers for work
// that no reader asked for (pre-generation), so such a render takes the
// same path as a miss and is coalesced with it. The Caddy module
// implements it for the server that hosts a docroot.
type Renderer interface {
	// Regenerate renders key (a canonical URL) in place; it returns one of
	// the Regen* statuses.
	Regenerate(ctx context.Context, host, key string) (int, error)
	// Resolve asks the render backend for the URL of a document (for
	// documents that are not in the cache yet); "" if it has none.
	Resolve(ctx context.Context, host, doc string) (string, error)
}

// broadcast wakes every goroutine waiting on it.
type broadcast struct {
	mu sync.Mutex
	ch chan struct{}
}

func newBroadcast() *broadcast { return &broadcast{ch: make(chan struct{})} }

func (b *broadcast) wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ch
}

func (b *broadcast) notify() {
	b.mu.Lock()
	close(b.ch)
	b.ch = make(chan struct{})
	b.mu.Unlock()
}

func (e *Engine) wakeWorkers() { e.wake.notify() }

// sleep waits for a wake-up, the timeout or the end of ctx; it reports
// whether to go on.
func (e *Engine) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-e.wake.wait():
	case <-t.C:
	}
	return true
}

const removalBatch = 1000

// removalLoop runs the removal queue, single-threaded, in batches.
func (e *Engine) removalLoop(ctx context.Context) {
	defer e.wg.Done()
	for e.sleep(ctx, time.Second) {
		for ctx.Err() == nil {
			n, err := e.runRemovalBatch()
			if err != nil {
				e.log.Error("removal queue", zap.Error(err))
				break
			}
			if n == 0 {
				break
			}
		}
	}
}

// runRemovalBatch renames (or purges) the next files of the removal queue,
// then, in one transaction, takes their jobs off the queue and removes
// their registry entries (unless lazy removal leaves that to the cleanup
// job). A crash in between repeats some renames, which is harmless.
func (e *Engine) runRemovalBatch() (int, error) {
	var jobs []QueuedJob
	var current map[FileID]int64 // Created of each job's registry entry
	err := e.reg.db.View(func(tx *bolt.Tx) error {
		var err error
		if jobs, err = nextJobs(tx, QueueRemoval, removalBatch, nil, time.Now(), e.config().AgeStep); err != nil {
			return err
		}
		current = make(map[FileID]int64, len(jobs))
		for _, j := range jobs {
			if entry, ok, err := e.reg.GetTx(tx, j.id()); err == nil && ok {
				current[j.id()] = entry.Created
			}
		}
		return nil
	})
	if err != nil || len(jobs) == 0 {
		return 0, err
	}
	lazy := e.config().LazyRemoval > 0
	var rerender []QueuedJob
	forget := map[FileID]int64{} // entries to remove, with the Created they must still have
	for _, j := range jobs {
		store := e.storeByRoot(j.Root, true)
		if store == nil {
			continue
		}
		id := j.id()
		if created, ok := current[id]; ok && j.Created != 0 && created > j.Created {
			continue // rendered again since the job was queued
		}
		switch j.Op {
		case OpPurge:
			store.Purge(j.File)
			forget[id] = j.Created
			if j.Rerender {
				rerender = append(rerender, j)
			}
		default:
			if _, err := store.Invalidate(j.File); err != nil {
				e.logJobError(j.Op, j, err)
				continue
			}
			if !lazy {
				forget[id] = j.Created
			}
		}
	}
	var viaJournal []FileID
	err = e.reg.db.Update(func(tx *bolt.Tx) error {
		for _, j := range jobs {
			if err := complete(tx, QueueRemoval, j); err != nil {
				return err
			}
		}
		for _, j := range rerender {
			j.Op, j.Rerender, j.Enqueued, j.Created = OpRender, false, time.Now().UnixMilli(), 0
			if _, err := enqueue(tx, QueuePregen, j); err != nil {
				return err
			}
		}
		viaJournal = viaJournal[:0]
		removals := make(map[FileID]*Entry, len(forget))
		for id, created := range forget {
			switch entry, ok, err := e.reg.GetTx(tx, id); {
			case err != nil:
				return err
			case !ok || (created != 0 && entry.Created > created):
				// gone already, or a newer render's entry: keep it
			case e.reg.hasPending(id):
				viaJournal = append(viaJournal, id) // keep the journal's order
			default:
				removals[id] = nil
			}
		}
		return writeEntries(tx, removals)
	})
	for _, id := range viaJournal {
		if err := e.reg.Remove(id); err != nil {
			e.log.Warn("removing registry entry", zap.String("file", id.File), zap.Error(err))
		}
	}
	if len(rerender) > 0 {
		e.wakeWorkers()
	}
	e.stats.removed.Add(int64(len(jobs)))
	return len(jobs), err
}

// pregenPool runs the pre-generation workers; their number follows the
// configuration.
type pregenPool struct {
	e       *Engine
	ctx     context.Context
	mu      sync.Mutex
	target  int
	running int
	busy    map[string]bool // order keys of jobs being rendered
}

func (p *pregenPool) resize(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.target = n
	for p.running < n && p.ctx.Err() == nil {
		p.running++
		p.e.wg.Add(1)
		go p.worker(p.running - 1)
	}
}

func (p *pregenPool) worker(i int) {
	defer p.e.wg.Done()
	for {
		p.mu.Lock()
		if i >= p.target {
			p.running--
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		ran, err := p.runOne()
		if err != nil {
			p.e.log.Error("pre-generation queue", zap.Error(err))
		}
		if !ran && !p.e.sleep(p.ctx, time.Second) {
			return
		}
		if p.ctx.Err() != nil {
			return
		}
	}
}

// runOne takes the next job nobody works on and runs it.
func (p *pregenPool) runOne() (bool, error) {
	e := p.e
	var jobs []QueuedJob
	p.mu.Lock()
	err := e.reg.db.View(func(tx *bolt.Tx) error {
		var err error
		jobs, err = nextJobs(tx, QueuePregen, 1, p.busy, time.Now(), e.config().AgeStep)
		return err
	})
	if err == nil && len(jobs) == 1 {
		p.busy[string(jobs[0].order)] = true
	}
	p.mu.Unlock()
	if err != nil || len(jobs) == 0 {
		return false, err
	}
	j := jobs[0]
	defer func() {
		p.mu.Lock()
		delete(p.busy, string(j.order))
		p.mu.Unlock()
	}()
	done, fallback := e.runPregen(p.ctx, j)
	if !done {
		return false, nil // no renderer for the docroot yet: later
	}
	err = e.reg.db.Update(func(tx *bolt.Tx) error {
		if err := complete(tx, QueuePregen, j); err != nil {
			return err
		}
		if fallback {
			// Pre-generation failed: rename instead, so the next reader
			// starts a render (and gets the .old copy meanwhile).
			j.Op, j.Enqueued = OpRename, time.Now().UnixMilli()
			_, err := enqueue(tx, QueueRemoval, j)
			return err
		}
		return nil
	})
	if fallback {
		e.wakeWorkers()
	}
	return true, err
}

// runPregen renders one job. done is false when it could not run at all
// (no renderer yet); fallback asks for the file to be renamed instead.
func (e *Engine) runPregen(ctx context.Context, j QueuedJob) (done, fallback bool) {
	store := e.storeByRoot(j.Root, true)
	if store == nil {
		return true, false // the docroot is gone
	}
	rd, host := store.renderer()
	if rd == nil {
		return false, false
	}
	key := j.Key
	if j.Op == OpResolve {
		k, err := rd.Resolve(ctx, host, j.Doc)
		if err != nil || k == "" {
			if err != nil && !errors.Is(err, context.Canceled) {
				e.logJobError(j.Op, j, err)
			}
			return true, false
		}
		key = k
	}
	if j.Host != "" {
		host = j.Host
	}
	status, err := rd.Regenerate(ctx, host, key)
	switch {
	case ctx.Err() != nil:
		return false, false // shutting down: the job stays queued
	case err != nil:
		e.logJobError(j.Op, j, err)
		return true, j.File != ""
	case status == RegenConflict:
		return false, false // changed again meanwhile: the job runs again
	case status == RegenFailed:
		return true, j.File != ""
	}
	e.stats.pregenerated.Add(1)
	return true, false
}
