package imaging

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"
)

// Health statuses.
const (
	// StatusUp means reachable.
	StatusUp = "UP"
	// StatusDown means not reachable.
	StatusDown = "DOWN"
)

// Health is the body of GET /actuator/health (Spring Boot style):
// {"status":"UP"|"DOWN","components":{"imageStore":{"status":"UP"},…}}.
type Health struct {
	// Status is DOWN if any component is DOWN, else UP.
	Status string `json:"status"`
	// Components holds each checked component by name.
	Components map[string]ComponentHealth `json:"components,omitempty"`
}

// ComponentHealth is one component's state.
type ComponentHealth struct {
	// Status is UP or DOWN.
	Status string `json:"status"`
	// Details says why a component is DOWN (key "error") and how long the
	// check took (key "tookMs").
	Details map[string]any `json:"details,omitempty"`
}

// HealthTimeout bounds each component check of CheckHealth.
const HealthTimeout = 5 * time.Second

// Health component names.
const (
	// ComponentImageStore is the image store's component name.
	ComponentImageStore = "imageStore"
	// ComponentStaging is the CMS staging servers' component name.
	ComponentStaging = "staging"
)

// CheckHealth pings the image store and, if cmsPing is not nil, the CMS,
// concurrently and each within HealthTimeout. It returns the health body
// and the HTTP status to answer with: 200 when everything is UP, 503
// otherwise.
func CheckHealth(ctx context.Context, store Store, cmsPing func(context.Context) error) (Health, int) {
	checks := map[string]func(context.Context) error{}
	if store != nil {
		checks[ComponentImageStore] = store.Ping
	}
	if cmsPing != nil {
		checks[ComponentStaging] = cmsPing
	}
	h := Health{Status: StatusUp, Components: make(map[string]ComponentHealth, len(checks))}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, check := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, HealthTimeout)
			defer cancel()
			start := time.Now()
			err := check(cctx)
			c := ComponentHealth{Status: StatusUp, Details: map[string]any{"tookMs": time.Since(start).Milliseconds()}}
			if err != nil {
				c.Status = StatusDown
				c.Details["error"] = err.Error()
			}
			mu.Lock()
			defer mu.Unlock()
			h.Components[name] = c
			if err != nil {
				h.Status = StatusDown
			}
		}()
	}
	wg.Wait()
	if h.Status == StatusDown {
		return h, http.StatusServiceUnavailable
	}
	return h, http.StatusOK
}

// WriteHealth writes h as JSON with status (for the health handler).
func WriteHealth(w http.ResponseWriter, h Health, status int) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(h)
}
