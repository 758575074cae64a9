package cache

import (
	"context"
	"sync"
	"time"
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

// broadcast wakes every goroutine waiting on it: the queue workers when
// jobs were queued, a renderer was set or the settings changed.
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

// sleep waits for a wake-up, the timeout or the end of ctx; it reports
// whether to go on.
func (b *broadcast) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-b.wait():
	case <-t.C:
	}
	return true
}
