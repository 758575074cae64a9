package caddymodule

import (
	"time"

	"github.com/delivery-edge/edge/cache"
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
}

// CacheStats are the figures of the docroot cache.
type CacheStats struct {
	// Hits are requests answered from a cached file (memory or disk).
	Hits int64 `json:"hits"`
	// Renders counts the renders by how they ended: stored, passthrough,
	// gone, failed, outdated.
	Renders map[string]int64 `json:"renders"`
	// Removed and Pregenerated count the queue jobs done.
	Removed      int64 `json:"removed"`
	Pregenerated int64 `json:"pregenerated"`
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
		s.fillEngine(eng)
	}
	if ps, ok := a.stagingStats(); ok {
		s.Staging = &StagingStats{Connected: ps.Connected, LagSeconds: ps.Lag.Seconds(), AppliedSourceTime: ps.Applied,
			Events: ps.Events}
	}
	return s
}

func (s *Snapshot) fillEngine(eng *cache.Engine) {
	st := eng.Stats()
	s.Cache.Hits, s.Cache.Renders = st.Hits, st.Renders
	s.Cache.Removed, s.Cache.Pregenerated = st.Removed, st.Pregenerated
	s.Queues.Removal = QueueStat{Length: st.RemovalQueue, OldestAgeSeconds: ageSeconds(s.Time, st.RemovalOldest)}
	s.Queues.Pregeneration = QueueStat{Length: st.PregenQueue, OldestAgeSeconds: ageSeconds(s.Time, st.PregenOldest)}
	reg := eng.Registry()
	s.Registry = RegistryStats{Retired: st.Retired, OverLimits: reg.OverLimits(), JournalRejected: reg.JournalRejected()}
}

// ageSeconds is how long before now since was (0 for the zero time).
func ageSeconds(now, since time.Time) float64 {
	if since.IsZero() {
		return 0
	}
	return max(now.Sub(since), 0).Seconds()
}
