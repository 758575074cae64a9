package cache

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/delivery-edge/edge/cache/registry"
)

// Resource hashes: a render reports the hash of every resource (template)
// it used. When a render reports a hash that differs from the newest one
// known, the resource has changed: every file rendered with another hash
// is invalidated, by the same rules as a content change.

// resourceHashes are the newest known hash of every resource, and the
// changes waiting to be applied.
type resourceHashes struct {
	log     *zap.Logger
	mu      sync.Mutex
	hashes  map[string]string // resource name -> newest hash
	changes chan Dependency
	// pinned are hashes announced through the admin API, until when a
	// render that reports another one does not count as a change
	// (ops_resources.go).
	pinned map[string]time.Time
}

// loadResourceHashes reads the newest known hashes from the registry.
func loadResourceHashes(reg *registry.Registry, log *zap.Logger) (*resourceHashes, error) {
	hashes, err := reg.ResourceHashes()
	if err != nil {
		return nil, fmt.Errorf("read resource hashes: %w", err)
	}
	return &resourceHashes{log: log, hashes: hashes, changes: make(chan Dependency, 256)}, nil
}

// note compares the resource hashes a render reported with the newest
// known ones; a new hash is a change, applied in the background.
func (r *resourceHashes) note(deps []Dependency) {
	for _, d := range deps {
		if d.Kind != DepResource {
			continue
		}
		r.mu.Lock()
		old, known := r.hashes[d.Name]
		if known && old != d.Hash && r.pinnedNow(d.Name) {
			r.mu.Unlock()
			continue // a render that started before an announced deploy
		}
		changed := known && old != d.Hash
		r.hashes[d.Name] = d.Hash
		r.mu.Unlock()
		if changed {
			select {
			case r.changes <- d:
			default:
				r.log.Warn("resource change queue full; invalidating on the next render", zap.String("resource", d.Name))
				r.mu.Lock()
				r.hashes[d.Name] = old
				r.mu.Unlock()
			}
		}
	}
}

// run queues the files of resources whose content changed until ctx ends.
func (r *resourceHashes) run(ctx context.Context, inval *invalidator) {
	for {
		select {
		case <-ctx.Done():
			return
		case d := <-r.changes:
			if err := inval.resourceChanged(d); err != nil {
				r.log.Error("resource invalidation", zap.String("resource", d.Name), zap.Error(err))
			}
		}
	}
}
