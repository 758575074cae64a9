package caddymodule

import (
	"os"
	"path/filepath"
	"time"

	"github.com/delivery-edge/edge/cache"
	"github.com/delivery-edge/edge/cache/registry"
)

// Snapshot is what the edge reports about itself at one moment: the answer
// of the admin API's GET /delivery/stats and the figures of the status
// page. Counters count since the start of the process; rates are left to
// the reader (two snapshots).
type Snapshot struct {
	Time time.Time `json:"time"`
	// Cache is the docroot cache: requests answered, renders by outcome.
	Cache CacheStats `json:"cache"`
	// Queues are the two invalidation queues.
	Queues QueueStats `json:"queues"`
	// Registry is the bbolt registry.
	Registry RegistryStats `json:"registry"`
	// Staging is the staging poller; nil when the edge has no `staging`.
	Staging *StagingStats `json:"staging,omitempty"`
	// Groups are the edge groups, by name, with their peers; FlushLog is
	// the flush log (groups.go of this package has the rest).
	Groups   []GroupStats   `json:"groups,omitempty"`
	FlushLog *FlushLogStats `json:"flush_log,omitempty"`
	// Invalidations are the last invalidations applied (stats_invalidations.go).
	Invalidations InvalidationStats `json:"invalidations"`
	// Docroots are the open docroots: what their files take and what the
	// size limits evicted.
	Docroots []DocrootStats `json:"docroots,omitempty"`
	// Images is the image service (stats_images.go); nil when this
	// process has no image store.
	Images *ImageStats `json:"images,omitempty"`
}

// DocrootStats are the figures of one docroot.
type DocrootStats struct {
	Docroot string `json:"docroot"`
	// Files and Bytes are its files: pages, ".old" and precompressed
	// copies.
	Files int64 `json:"files"`
	Bytes int64 `json:"bytes"`
	// Limit is the size it is kept under, from max_size and min_free (0:
	// none).
	Limit int64 `json:"limit"`
	// Evicted counts the pages evicted (with their copies), EvictedBytes
	// the bytes that freed.
	Evicted      int64 `json:"evicted"`
	EvictedBytes int64 `json:"evicted_bytes"`
}

// CacheStats are the figures of the docroot cache.
type CacheStats struct {
	// Hits are requests answered from a cached file (memory or disk).
	Hits int64 `json:"hits"`
	// HitRatio is Hits of Hits and Misses together (0 before the first).
	HitRatio float64 `json:"hit_ratio"`
	// Renders counts the renders by how they ended: stored, passthrough,
	// gone, failed, outdated.
	Renders map[string]int64 `json:"renders"`
	// Removed and Pregenerated count the queue jobs done.
	Removed      int64 `json:"removed"`
	Pregenerated int64 `json:"pregenerated"`
	// Misses are requests that found no file of their own (they led a
	// render, waited for one or got the ".old" copy).
	Misses int64 `json:"misses"`
	// Stale are answers from ".old" copies (or with an SSI part from one).
	Stale int64 `json:"stale"`
	// RenderRejected are renders not started because no render slot came
	// free within render_wait (max_renders).
	RenderRejected int64 `json:"render_rejected"`
	// TooLarge are render answers over max_file_size, passed on unstored.
	TooLarge int64 `json:"too_large"`
	// Hot is the hot set (files held in memory), all docroots together.
	Hot HotSetStats `json:"hot"`
}

// HotSetStats are the figures of the hot set.
type HotSetStats struct {
	Entries int64 `json:"entries"`
	Bytes   int64 `json:"bytes"`
	Hits    int64 `json:"hits"`
	Fills   int64 `json:"fills"`
	// HitRatio is the share of the cache's hits answered from memory.
	HitRatio float64 `json:"hit_ratio"`
}

// QueueStats are the lengths of the invalidation queues.
type QueueStats struct {
	Removal       QueueStat `json:"removal"`
	Pregeneration QueueStat `json:"pregeneration"`
}

// QueueStat is one queue.
type QueueStat struct {
	Length int `json:"length"`
	// OldestAgeSeconds is how long the oldest waiting job has waited (0:
	// the queue is empty).
	OldestAgeSeconds float64 `json:"oldest_age_seconds"`
}

// RegistryStats are the figures of the registry.
type RegistryStats struct {
	// Files counts the registry's entries (retired ones included);
	// FileBytes is the size of the registry file.
	Files     int64 `json:"files"`
	FileBytes int64 `json:"file_bytes"`
	// Retired are removed files whose entries wait for the sweep.
	Retired int `json:"retired"`
	// OverLimits counts render answers not cached because their record was
	// beyond a limit; JournalRejected the journal records moved aside.
	OverLimits      int64 `json:"over_limits"`
	JournalRejected int64 `json:"journal_rejected"`
}

// StagingStats are the staging poller's figures.
type StagingStats struct {
	Connected         bool    `json:"connected"`
	LagSeconds        float64 `json:"lag_seconds"`
	AppliedSourceTime int64   `json:"applied_source_time_ms"`
	Events            int64   `json:"events"`
}

// Snapshot collects the edge's figures. Parts that are not open (the data
// folder before the first request or start) are reported empty.
func (a *App) Snapshot() Snapshot {
	s := Snapshot{Time: time.Now(), Cache: CacheStats{Renders: map[string]int64{}}}
	if eng := a.engine.opened(); eng != nil {
		s.fillEngine(eng, a.dataDir)
	}
	s.fillGroups(a)
	s.Images = a.imageStats()
	if ps, ok := a.stagingStats(); ok {
		s.Staging = &StagingStats{Connected: ps.Connected, LagSeconds: ps.Lag.Seconds(), AppliedSourceTime: ps.Applied,
			Events: ps.Events}
	}
	return s
}

func (s *Snapshot) fillEngine(eng *cache.Engine, dataDir string) {
	st := eng.Stats()
	s.Cache.Hits, s.Cache.Renders = st.Hits, st.Renders
	s.Cache.Removed, s.Cache.Pregenerated = st.Removed, st.Pregenerated
	s.Cache.Misses, s.Cache.Stale = st.Misses, st.Stale
	s.Cache.RenderRejected, s.Cache.TooLarge = st.RenderRejected, st.TooLarge
	s.Cache.Hot = HotSetStats{Entries: st.Hot.Entries, Bytes: st.Hot.Bytes, Hits: st.Hot.Hits, Fills: st.Hot.Fills,
		HitRatio: ratio(st.Hot.Hits, st.Hits)}
	s.Cache.HitRatio = ratio(st.Hits, st.Hits+st.Misses)
	s.Queues.Removal = QueueStat{Length: st.RemovalQueue, OldestAgeSeconds: ageSeconds(s.Time, st.RemovalOldest)}
	s.Queues.Pregeneration = QueueStat{Length: st.PregenQueue, OldestAgeSeconds: ageSeconds(s.Time, st.PregenOldest)}
	reg := eng.Registry()
	s.Registry = RegistryStats{Retired: st.Retired, OverLimits: reg.OverLimits(), JournalRejected: reg.JournalRejected()}
	s.Invalidations = invalidationStats(eng)
	for _, d := range st.Docroots {
		s.Docroots = append(s.Docroots, DocrootStats{Docroot: d.Dir, Files: d.Files, Bytes: d.Bytes, Limit: d.Limit,
			Evicted: d.Evicted, EvictedBytes: d.EvictedBytes})
	}
	if n, err := reg.EntryCount(); err == nil {
		s.Registry.Files = n
	}
	if info, err := os.Stat(filepath.Join(dataDir, registry.FileName)); err == nil {
		s.Registry.FileBytes = info.Size()
	}
}

// ratio is part of whole, 0 when whole is 0.
func ratio(part, whole int64) float64 {
	if whole <= 0 {
		return 0
	}
	return float64(part) / float64(whole)
}

// ageSeconds is how long before now since was (0 for the zero time).
func ageSeconds(now, since time.Time) float64 {
	if since.IsZero() {
		return 0
	}
	return max(now.Sub(since), 0).Seconds()
}
