package cache

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/delivery-edge/edge/cache/registry"
)

// pregenPool runs the pre-generation queue: N workers, their number
// following the settings, each rendering one job at a time in place
// through the docroot's Renderer (the current file is served until the
// new one replaces it). A job that fails falls back to removal, so the
// next reader starts a render and gets the .old copy meanwhile.
type pregenPool struct {
	reg      *registry.Registry
	docroots *docroots
	cfg      *settings
	wake     *broadcast
	log      *zap.Logger
	ctx      context.Context
	wg       *sync.WaitGroup // the engine's: Close waits for the workers
	done     atomic.Int64    // jobs rendered

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
		i := p.running - 1
		p.wg.Go(func() { p.worker(i) })
	}
}

func (p *pregenPool) worker(i int) {
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
			p.log.Error("pre-generation queue", zap.Error(err))
		}
		if !ran && !p.wake.sleep(p.ctx, time.Second) {
			return
		}
		if p.ctx.Err() != nil {
			return
		}
	}
}

// runOne takes the next job nobody works on and runs it.
func (p *pregenPool) runOne() (bool, error) {
	var jobs []registry.QueuedJob
	p.mu.Lock()
	err := p.reg.View(func(tx *registry.Tx) error {
		var err error
		jobs, err = tx.NextJobs(registry.QueuePregen, 1, p.busy, time.Now(), p.cfg.get().AgeStep)
		return err
	})
	if err == nil && len(jobs) == 1 {
		p.busy[jobs[0].Order()] = true
	}
	p.mu.Unlock()
	if err != nil || len(jobs) == 0 {
		return false, err
	}
	j := jobs[0]
	defer func() {
		p.mu.Lock()
		delete(p.busy, j.Order())
		p.mu.Unlock()
	}()
	done, fallback := p.render(p.ctx, j)
	if !done {
		return false, nil // no renderer for the docroot yet: later
	}
	err = p.reg.Update(func(tx *registry.Tx) error {
		if err := tx.Complete(registry.QueuePregen, j); err != nil {
			return err
		}
		if fallback {
			// Pre-generation failed: rename instead, so the next reader
			// starts a render (and gets the .old copy meanwhile).
			j.Op, j.Enqueued = registry.OpRename, time.Now().UnixMilli()
			_, err := tx.Enqueue(registry.QueueRemoval, j)
			return err
		}
		return nil
	})
	if fallback {
		p.wake.notify()
	}
	return true, err
}

// render renders one job. done is false when it could not run at all
// (no renderer yet); fallback asks for the file to be renamed instead.
func (p *pregenPool) render(ctx context.Context, j registry.QueuedJob) (done, fallback bool) {
	store := p.docroots.byID(j.Root, true)
	if store == nil {
		return true, false // the docroot is gone
	}
	rd, host := store.renderer()
	if rd == nil {
		return false, false
	}
	key := j.Key
	if j.Op == registry.OpResolve {
		k, err := rd.Resolve(ctx, host, j.Doc)
		if err != nil || k == "" {
			if err != nil && !errors.Is(err, context.Canceled) {
				logJobError(p.log, j, err)
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
		logJobError(p.log, j, err)
		return true, j.File != ""
	case status == RegenConflict:
		return false, false // changed again meanwhile: the job runs again
	case status == RegenStored:
		p.done.Add(1)
		return true, false
	case status == RegenGone:
		return true, false // the render purged the file and its entry
	}
	// Failed, or an answer that could not be stored (not cacheable, a
	// redirect, a refusal, another handler's answer): nothing new is in
	// place, so the invalidated file must not stay and be served.
	return true, j.File != ""
}
