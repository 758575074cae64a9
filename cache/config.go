package cache

import (
	"sync/atomic"
	"time"
)

// InvalidationConfig says how invalidated files are handled.
type InvalidationConfig struct {
	// Pregenerate enables the pre-generation queue; without it every
	// invalidation renames the file to .old.
	Pregenerate bool
	// Workers is the number of renders pre-generation has at the render
	// backend at once (default 4); the pool runs half as many goroutines
	// again, for the jobs' work at the edge (pregen_gate.go).
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

// settings hold the current InvalidationConfig; every part of the engine
// reads it for each piece of work, so a reload takes effect at the next.
type settings struct {
	p atomic.Pointer[InvalidationConfig]
}

func newSettings() *settings {
	s := &settings{}
	s.set(InvalidationConfig{})
	return s
}

func (s *settings) get() InvalidationConfig { return *s.p.Load() }

func (s *settings) set(c InvalidationConfig) {
	c = c.withDefaults()
	s.p.Store(&c)
}

// Configure replaces the invalidation settings; it can be called at any
// time (a config reload) and takes effect for the next jobs.
func (e *Engine) Configure(c InvalidationConfig) {
	e.cfg.set(c)
	e.pregen.resize(e.cfg.get().Workers)
	e.wake.notify()
}
