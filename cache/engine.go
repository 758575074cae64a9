package cache

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"go.uber.org/zap"
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
}

// Engine owns one data folder: the registry, the access log and the
// docroot stores. It is shared by every configuration that names the same
// data folder and lives until the last of them is unloaded.
type Engine struct {
	log    *zap.Logger
	reg    *Registry
	access *AccessLog

	mu     sync.Mutex
	stores map[string]*Store

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Open opens the data folder and starts the engine's background work.
func Open(o Options) (*Engine, error) {
	log := o.Logger
	if log == nil {
		log = zap.NewNop()
	}
	if o.AccessFlushInterval <= 0 {
		o.AccessFlushInterval = 5 * time.Second
	}
	reg, err := OpenRegistry(o.DataDir, log)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Engine{log: log, reg: reg, access: NewAccessLog(), stores: map[string]*Store{}, cancel: cancel}
	e.wg.Add(1)
	go e.flushAccessLoop(ctx, o.AccessFlushInterval)
	return e, nil
}

// Registry is the engine's registry.
func (e *Engine) Registry() *Registry { return e.reg }

// Access is the engine's access log.
func (e *Engine) Access() *AccessLog { return e.access }

// Store returns the store of a docroot, opening it on first use.
func (e *Engine) Store(docroot string) (*Store, error) {
	dir, err := filepath.Abs(docroot)
	if err != nil {
		return nil, fmt.Errorf("docroot %q: %w", docroot, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if s, ok := e.stores[dir]; ok {
		return s, nil
	}
	id, err := e.reg.Root(dir)
	if err != nil {
		return nil, err
	}
	s, err := openStore(dir, id, e.reg, e.access, e.log)
	if err != nil {
		return nil, err
	}
	e.stores[dir] = s
	return s, nil
}

// Close stops the background work, writes what is pending and closes the
// data folder.
func (e *Engine) Close() error {
	e.cancel()
	e.wg.Wait()
	_, aerr := e.access.Flush(e.reg.DB())
	e.mu.Lock()
	var errs []error
	for _, s := range e.stores {
		errs = append(errs, s.close())
	}
	e.mu.Unlock()
	errs = append(errs, aerr, e.reg.Close())
	return errors.Join(errs...)
}

func (e *Engine) flushAccessLoop(ctx context.Context, every time.Duration) {
	defer e.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := e.access.Flush(e.reg.DB()); err != nil {
				e.log.Warn("access times not written; will retry", zap.Error(err))
			}
		}
	}
}
