package cache

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/delivery-edge/edge/cache/registry"
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
	var jobs []registry.QueuedJob
	p.mu.Lock()
	err := e.reg.View(func(tx *registry.Tx) error {
		var err error
		jobs, err = tx.NextJobs(registry.QueuePregen, 1, p.busy, time.Now(), e.config().AgeStep)
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
	done, fallback := e.runPregen(p.ctx, j)
	if !done {
		return false, nil // no renderer for the docroot yet: later
	}
	err = e.reg.Update(func(tx *registry.Tx) error {
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
		e.wakeWorkers()
	}
	return true, err
}

// runPregen renders one job. done is false when it could not run at all
// (no renderer yet); fallback asks for the file to be renamed instead.
func (e *Engine) runPregen(ctx context.Context, j registry.QueuedJob) (done, fallback bool) {
	store := e.storeByRoot(j.Root, true)
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
