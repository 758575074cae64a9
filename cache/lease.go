package cache

import (
	"context"
	"sync"
)

// leases hand out named exclusive rights, e.g. to apply one event stream.
// During a config reload the old and the new config overlap; the new
// poller waits until the old one has let go, so no event is applied twice.
type leases struct {
	mu sync.Mutex
	m  map[string]chan struct{}
}

// Lease waits until the named lease is free (or ctx ends) and takes it.
// The returned func gives it back.
func (e *Engine) Lease(ctx context.Context, name string) (release func(), err error) {
	return e.leases.take(ctx, name)
}

func (l *leases) take(ctx context.Context, name string) (release func(), err error) {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]chan struct{}{}
	}
	ch, ok := l.m[name]
	if !ok {
		ch = make(chan struct{}, 1)
		l.m[name] = ch
	}
	l.mu.Unlock()
	select {
	case ch <- struct{}{}:
		var once sync.Once
		return func() { once.Do(func() { <-ch }) }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
