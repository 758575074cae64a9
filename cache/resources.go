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

// A render that began before the edge learnt a resource's newest hash and
// reports another one afterwards was rendered with the resource as it was
// before: it is a straggler of the deploy, not a change back (which would
// invalidate every page rendered with the new hash since, and the next
// render with it would invalidate the straggler's page again). Its answer
// is outdated: kept as the ".old" copy only, and rendered again.

// resourceHashes are the newest known hash of every resource, and the
// changes waiting to be applied.
type resourceHashes struct {
	log    *zap.Logger
	mu     sync.Mutex
	hashes map[string]string // resource name -> newest hash
	// learnt is when this process learnt each newest hash (from a render
	// or an announcement; none for those read at the start).
	learnt  map[string]time.Time
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
	return &resourceHashes{log: log, hashes: hashes, learnt: map[string]time.Time{}, changes: make(chan Dependency, 256)}, nil
}

// note compares the resource hashes a render that began at began
// reported with the newest known ones; a new hash is a change, applied in
// the background. It reports a straggler: a render that began before the
// newest hash of one of its resources was learnt, and reported another.
func (r *resourceHashes) note(deps []Dependency, began time.Time) (straggler bool) {
	for _, d := range deps {
		if d.Kind != DepResource {
			continue
		}
		r.mu.Lock()
		old, known := r.hashes[d.Name]
		if known && old != d.Hash && began.Before(r.learnt[d.Name]) {
			r.mu.Unlock()
			straggler = true
			continue
		}
		if known && old != d.Hash && r.pinnedNow(d.Name) {
			r.mu.Unlock()
			continue // a backend not deployed yet, after an announcement
		}
		changed := known && old != d.Hash
		r.hashes[d.Name] = d.Hash
		oldLearnt := r.learnt[d.Name]
		if changed {
			r.learnt[d.Name] = time.Now()
		}
		r.mu.Unlock()
		if changed {
			select {
			case r.changes <- d:
			default:
				r.log.Warn("resource change queue full; invalidating on the next render", zap.String("resource", d.Name))
				r.mu.Lock()
				r.hashes[d.Name], r.learnt[d.Name] = old, oldLearnt
				r.mu.Unlock()
			}
		}
	}
	return straggler
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
