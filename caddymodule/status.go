package caddymodule

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(Status{})
}

// Refresh bounds of the status page.
const (
	DefaultStatusRefresh = 5 * time.Second
	minStatusRefresh     = time.Second
	maxStatusRefresh     = time.Hour
)

// Status is the `delivery_status` handler: the edge's status page, one
// self-contained HTML page that fetches the figures (the same Snapshot as
// the admin API's /delivery/stats, with the history of the last 10
// minutes) from its own path with ?format=json and draws them. It shows
// internal figures: put it behind basic_auth or a remote_ip matcher. It
// always answers; it never calls the next handler.
type Status struct {
	// Refresh is how often the page fetches the figures again (default
	// 5s, from 1s to 1h).
	Refresh caddy.Duration `json:"refresh,omitempty"`

	app     *App
	sampler *statusSampler
	log     *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Status) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.delivery_status",
		New: func() caddy.Module { return new(Status) },
	}
}

// Provision joins the delivery app and asks it for the sampler of the
// history, which runs once the app starts.
func (s *Status) Provision(ctx caddy.Context) error {
	appIface, err := ctx.App("delivery")
	if err != nil {
		return fmt.Errorf("loading delivery app: %w", err)
	}
	return s.setup(appIface.(*App), ctx.Logger(), ctx.GetMetricsRegistry())
}

// setup joins app (before it starts) and registers the sampler's metric.
func (s *Status) setup(app *App, log *zap.Logger, metrics *prometheus.Registry) error {
	s.app, s.log = app, log
	var err error
	if s.sampler, err = app.statusSampler(); err != nil {
		return fmt.Errorf("delivery_status: %w", err)
	}
	if err := registerMetrics(metrics, newStatusMetrics(s.sampler)); err != nil {
		return fmt.Errorf("delivery_status: registering metrics: %w", err)
	}
	return nil
}

// Validate checks the refresh interval.
func (s *Status) Validate() error {
	if r := time.Duration(s.Refresh); r != 0 && (r < minStatusRefresh || r > maxStatusRefresh) {
		return fmt.Errorf("delivery_status: refresh %v is not between %v and %v", r, minStatusRefresh, maxStatusRefresh)
	}
	return nil
}

func (s *Status) refresh() time.Duration {
	if s.Refresh == 0 {
		return DefaultStatusRefresh
	}
	return time.Duration(s.Refresh)
}

// statusAnswer is the JSON the page reads.
type statusAnswer struct {
	// Stats is what the admin API's /delivery/stats answers.
	Stats   Snapshot      `json:"stats"`
	History StatusHistory `json:"history"`
	// RefreshSeconds is how often the page fetches this again.
	RefreshSeconds float64 `json:"refresh_seconds"`
}

// ServeHTTP answers the page, or with ?format=json its figures. Neither
// may be stored by a cache on the way.
func (s *Status) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
		return nil
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	if r.URL.Query().Get("format") == "json" {
		body, err := json.Marshal(statusAnswer{Stats: s.app.Snapshot(), History: s.sampler.history(),
			RefreshSeconds: s.refresh().Seconds()})
		if err != nil {
			s.log.Error("status page: encoding the figures", zap.Error(err))
			return caddyhttp.Error(http.StatusInternalServerError, err)
		}
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body)
		return nil
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", statusPage.csp)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Length", strconv.Itoa(len(statusPage.html)))
	_, _ = w.Write(statusPage.html)
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Status)(nil)
	_ caddy.Validator             = (*Status)(nil)
	_ caddyhttp.MiddlewareHandler = (*Status)(nil)
)
