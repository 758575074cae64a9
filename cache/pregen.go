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

// pregenPool runs the pre-generation queue: at most N renders at the
// backend at once, N following the settings, each job rendered in place
// through the docroot's Renderer (the current file is served until the
// new one replaces it). More goroutines than N do the jobs' work at the
// edge while others are at the backend (pregen_gate.go). A job that fails
// falls back to removal, so the next reader starts a render and gets the
// .old copy meanwhile.
//
// The workers do not commit their jobs: a committer takes the finished
// jobs off the queue in one transaction for all that finished meanwhile
// (pregen_commit.go), so the queue costs one disk sync per batch, not one
// per render. Until then a finished job stays busy, so no worker takes it
// again; a crash before the commit only renders those files once more.
type pregenPool struct {
	reg      *registry.Registry
	docroots *docroots
	cfg      *settings
	wake     *broadcast
	log      *zap.Logger
	latency  *latencyHistogram
	ctx      context.Context
	wg       *sync.WaitGroup // the engine's: Close waits for the workers
	done     atomic.Int64    // jobs rendered
	gate     *backendGate    // places at the backend: N

	// finished carries the workers' jobs to the committer, which closes
	// committerDone when it has stopped.
	finished      chan pregenResult
	committerDone chan struct{}

	mu      sync.Mutex
	target  int // goroutines wanted: N and a few more
	running int
	busy    map[string]bool      // order keys of jobs taken: in ready, rendered or committed
	ready   []registry.QueuedJob // jobs taken off the queue, not started yet
}

// pregenOutcome is what became of a job the worker ran.
type pregenOutcome uint8

const (
	pregenDone     pregenOutcome = iota // rendered (or nothing left to do): off the queue
	pregenFallback                      // off this queue, into the removal queue as a rename
	pregenPark                          // its docroot has no renderer: parked until it has one
	pregenAgain                         // stays queued as it is (changed meanwhile, shutting down)
)

type pregenResult struct {
	job     registry.QueuedJob
	outcome pregenOutcome
}

func newPregenPool(p *pregenPool) *pregenPool {
	p.busy = map[string]bool{}
	p.gate = newBackendGate()
	p.finished = make(chan pregenResult, 1024)
	p.committerDone = make(chan struct{})
	return p
}

// resize sets N, the renders at the backend at once.
func (p *pregenPool) resize(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gate.setMax(n)
	p.target = 0
	if n > 0 {
		p.target = n + pregenExtra(n)
	}
	for p.running < p.target && p.ctx.Err() == nil {
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

// runOne takes the next job nobody works on, runs it and hands it to the
// committer. It reports whether it found a job that could run.
func (p *pregenPool) runOne() (bool, error) {
	j, ok, err := p.next()
	if !ok {
		return false, err
	}
	ctx, place := withBackendPlace(p.ctx, p.gate)
	outcome := p.render(ctx, j)
	place.release() // in case the render did not give it back (a panic)
	if outcome == pregenAgain {
		p.release(j)
		return false, nil
	}
	select {
	case p.finished <- pregenResult{job: j, outcome: outcome}:
	case <-p.committerDone:
		p.release(j) // shutting down: the job stays queued
	}
	return true, nil
}

// next takes the next job off the pool's batch, reading a new batch of
// the queue's next jobs when it is empty: one read of the queue per
// batch, not per job. A job queued meanwhile with a higher priority waits
// for the batch ahead of it at most.
func (p *pregenPool) next() (registry.QueuedJob, bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.ready) == 0 {
		n := max(1, p.gate.size())
		err := p.reg.View(func(tx *registry.Tx) error {
			var err error
			p.ready, err = tx.NextJobs(registry.QueuePregen, n, p.busy, time.Now(), p.cfg.get().AgeStep)
			return err
		})
		if err != nil {
			p.ready = nil
			return registry.QueuedJob{}, false, err
		}
		for _, j := range p.ready {
			p.busy[j.Order()] = true
		}
	}
	if len(p.ready) == 0 {
		return registry.QueuedJob{}, false, nil
	}
	j := p.ready[0]
	p.ready = p.ready[1:]
	return j, true, nil
}

// release forgets that a job is being worked on.
func (p *pregenPool) release(jobs ...registry.QueuedJob) {
	p.mu.Lock()
	for _, j := range jobs {
		delete(p.busy, j.Order())
	}
	p.mu.Unlock()
}

// render renders one job and says what becomes of it.
func (p *pregenPool) render(ctx context.Context, j registry.QueuedJob) pregenOutcome {
	store := p.docroots.byID(j.Root, true)
	if store == nil {
		return pregenDone // the docroot is gone
	}
	rd, host := store.renderer()
	if rd == nil {
		return pregenPark
	}
	key := j.Key
	if j.Op == registry.OpResolve {
		if !enterBackend(ctx) {
			return pregenAgain
		}
		k, err := rd.Resolve(ctx, host, j.Doc)
		leftBackend(ctx)
		switch {
		case ctx.Err() != nil:
			return pregenAgain
		case err != nil || k == "":
			if err != nil && !errors.Is(err, context.Canceled) {
				logJobError(p.log, j, err)
			}
			return pregenDone
		}
		key = k
	}
	if j.Host != "" {
		host = j.Host
	}
	status, err := rd.Regenerate(ctx, host, key)
	switch {
	case ctx.Err() != nil:
		return pregenAgain // shutting down: the job stays queued
	case err != nil:
		logJobError(p.log, j, err)
	case status == RegenConflict:
		return pregenAgain // changed again meanwhile: the job runs again
	case status == RegenStored:
		p.done.Add(1)
		return pregenDone
	case status == RegenGone:
		return pregenDone // the render purged the file and its entry
	}
	// Failed, or an answer that could not be stored (not cacheable, a
	// redirect, a refusal, another handler's answer): nothing new is in
	// place, so the invalidated file must not stay and be served.
	if j.File == "" {
		return pregenDone
	}
	return pregenFallback
}
