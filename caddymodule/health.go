package caddymodule

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"

	"github.com/delivery-edge/edge/imaging"
	"github.com/delivery-edge/edge/stagingclient"
)

func init() {
	caddy.RegisterModule(Health{})
}

// Health is the `delivery_health` handler (README, "Image service", Health): GET answers
// {"status":"UP"|"DOWN","components":{"imageStore":{…},"staging":{…},"cache":{…}}},
// 200 when the app's image store and (if configured) the staging servers
// can be reached and the cache can be written (registry open, docroots
// writable, free space above cache.HealthMinFreePercent), else 503. It always answers; it never calls the next
// handler.
type Health struct {
	// ShowDetails adds each failing component's error message to the
	// answer. Off by default: the reasons (store addresses, server
	// answers) go to the log, once per change of state.
	ShowDetails bool `json:"show_details,omitempty"`

	log    *zap.Logger
	app    *App
	store  *imageStoreRef
	client *stagingclient.Client
	state  *healthState
}

// healthState coalesces concurrent checks and remembers the status last
// logged.
type healthState struct {
	flights singleflight.Group

	mu   sync.Mutex
	last string
}

// CaddyModule returns the Caddy module information.
func (Health) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.delivery_health",
		New: func() caddy.Module { return new(Health) },
	}
}

// Provision joins the app's image store and makes a staging client when
// the app has a staging block. It connects to nothing.
func (h *Health) Provision(ctx caddy.Context) error {
	h.log = ctx.Logger()
	h.state = new(healthState)
	appIface, err := ctx.App("delivery")
	if err != nil {
		return fmt.Errorf("loading delivery app: %w", err)
	}
	app := appIface.(*App)
	h.app = app
	if app.Staging != nil {
		client, _, err := newStagingClient(app.Staging, "staging", h.log)
		if err != nil {
			return fmt.Errorf("delivery_health: %w", err)
		}
		h.client = client
	}
	store, err := acquireImageStore(app)
	if err != nil {
		if h.client != nil {
			h.client.Close()
		}
		return err
	}
	h.store = store
	return nil
}

type healthResult struct {
	body   imaging.Health
	status int
}

// ServeHTTP runs the checks (once for concurrent requests) and answers.
func (h *Health) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
		return nil
	}
	// Detached from the first caller, whose going away must not turn the
	// shared answer DOWN; each check is bounded by imaging.HealthTimeout.
	ctx := context.WithoutCancel(r.Context())
	v, _, _ := h.state.flights.Do("check", func() (any, error) {
		var ping func(context.Context) error
		if h.client != nil {
			ping = h.client.Ping
		}
		body, status := imaging.CheckHealth(ctx, h.store, ping)
		if !h.checkCache(&body) {
			status = http.StatusServiceUnavailable
		}
		h.logChange(body)
		return healthResult{body: body, status: status}, nil
	})
	res := v.(healthResult)
	body := res.body
	if !h.ShowDetails {
		body = withoutErrors(body)
	}
	imaging.WriteHealth(w, body, res.status)
	return nil
}

// componentCache is the health component of the data folder and the
// docroots.
const componentCache = "cache"

// checkCache adds the cache component to body: the registry is open and
// can be written, the docroots can be written, and each has free space
// (cache.Engine.Health). It reports whether the component is UP.
func (h *Health) checkCache(body *imaging.Health) bool {
	start := time.Now()
	eng, err := h.app.Engine()
	if err == nil {
		err = eng.Health()
	}
	c := imaging.ComponentHealth{Status: imaging.StatusUp, Details: map[string]any{}}
	if err != nil {
		c.Status = imaging.StatusDown
		c.Details["error"] = err.Error()
		body.Status = imaging.StatusDown
	}
	c.Details["tookMs"] = time.Since(start).Milliseconds()
	if body.Components == nil {
		body.Components = map[string]imaging.ComponentHealth{}
	}
	body.Components[componentCache] = c
	return err == nil
}

// logChange logs the overall status when it changes, with the reasons.
func (h *Health) logChange(body imaging.Health) {
	st := h.state
	st.mu.Lock()
	defer st.mu.Unlock()
	if body.Status == st.last {
		return
	}
	first := st.last == ""
	st.last = body.Status
	if body.Status == imaging.StatusUp {
		if !first {
			h.log.Info("health: UP again")
		}
		return
	}
	names := make([]string, 0, len(body.Components))
	for name := range body.Components {
		names = append(names, name)
	}
	sort.Strings(names)
	fields := []zap.Field{}
	for _, name := range names {
		c := body.Components[name]
		if c.Status != imaging.StatusUp {
			fields = append(fields, zap.Any(name, c.Details["error"]))
		}
	}
	h.log.Warn("health: DOWN", fields...)
}

// withoutErrors returns a copy of body without error messages.
func withoutErrors(body imaging.Health) imaging.Health {
	out := imaging.Health{Status: body.Status, Components: make(map[string]imaging.ComponentHealth, len(body.Components))}
	for name, c := range body.Components {
		d := make(map[string]any, len(c.Details))
		for k, v := range c.Details {
			if k != "error" {
				d[k] = v
			}
		}
		out.Components[name] = imaging.ComponentHealth{Status: c.Status, Details: d}
	}
	return out
}

// Cleanup releases the shared store and the staging client's connections.
func (h *Health) Cleanup() error {
	releaseImageDeps(h.store, h.client)
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Health)(nil)
	_ caddy.CleanerUpper          = (*Health)(nil)
	_ caddyhttp.MiddlewareHandler = (*Health)(nil)
)
