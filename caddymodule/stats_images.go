package caddymodule

import "github.com/delivery-edge/edge/imaging"

// ImageStats are the image service's figures, every image_service of the
// process together (they count since the process started, across reloads).
type ImageStats struct {
	// Requests counts the image requests by outcome (stored, generated,
	// bad_request, not_found, gone, refused, unavailable, error).
	Requests map[string]uint64 `json:"requests"`
	// FromMemory and FromStore count the variants answered from the memory
	// cache and read from the image store.
	FromMemory uint64 `json:"from_memory"`
	FromStore  uint64 `json:"from_store"`
	// Generated counts the variants generated; GenerationSeconds is the
	// time they took together.
	Generated         uint64  `json:"generated"`
	GenerationSeconds float64 `json:"generation_seconds"`
	// Failures are the requests answered 5xx (unavailable, error).
	Failures uint64 `json:"failures"`
	// NegativeHits are 404/422 answers from the negative cache.
	NegativeHits uint64 `json:"negative_hits"`
	// UpdatesLagSeconds is how far the image update service is behind the
	// staging servers (absent when it does not run).
	UpdatesLagSeconds *float64 `json:"updates_lag_seconds,omitempty"`
}

// imageStats reports the image service, nil when no image store is open.
func (a *App) imageStats() *ImageStats {
	neg, ok := imageNegativeStats()
	if !ok {
		return nil
	}
	m := imageMetrics.Snapshot()
	st := &ImageStats{Requests: m.Requests, FromMemory: m.FromMemory, FromStore: m.FromStore,
		Generated: m.Generations, GenerationSeconds: m.GenerationSeconds,
		Failures: m.Requests[imaging.OutcomeUnavailable] + m.Requests[imaging.OutcomeError], NegativeHits: neg.Hits}
	if f := a.imageUpdates; f != nil {
		if p := f.poller.Load(); p != nil {
			lag := p.Stats().Lag.Seconds()
			st.UpdatesLagSeconds = &lag
		}
	}
	return st
}
