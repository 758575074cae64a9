package caddymodule

import (
	"time"

	"github.com/delivery-edge/edge/cache"
)

// InvalidationStats are the last invalidations the edge applied: what
// changed, how many files it invalidated, which queue they went to.
type InvalidationStats struct {
	// Total counts the invalidations applied since the data folder was
	// opened; Recent holds the newest 50 of them, newest first.
	Total  int64              `json:"total"`
	Recent []InvalidationStat `json:"recent"`
}

// InvalidationStat is one applied content change, flush, expiry batch or
// resource change (cache.Invalidation).
type InvalidationStat struct {
	Time time.Time `json:"time"`
	// Source is staging, change, flush, sync, expiry or resource.
	Source string `json:"source"`
	// Kind is document, node, yellow, key, resource or expiry; ID names
	// it; Detail is the state of a content change, the group of a flush,
	// the peer of a synced flush or the new hash of a resource.
	Kind   string `json:"kind"`
	ID     string `json:"id,omitempty"`
	Detail string `json:"detail,omitempty"`
	// Files is how many files it invalidated; Removal and Pregeneration
	// the jobs it queued in each queue.
	Files         int `json:"files"`
	Removal       int `json:"removal"`
	Pregeneration int `json:"pregeneration"`
}

func invalidationStats(eng *cache.Engine) InvalidationStats {
	recent, total := eng.Invalidations()
	out := InvalidationStats{Total: total, Recent: make([]InvalidationStat, len(recent))}
	for i, inv := range recent {
		out.Recent[i] = InvalidationStat{Time: inv.Time, Source: inv.Source, Kind: inv.Kind, ID: inv.ID,
			Detail: inv.Detail, Files: inv.Files, Removal: inv.Removal, Pregeneration: inv.Pregeneration}
	}
	return out
}
