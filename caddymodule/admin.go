package caddymodule

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/delivery-edge/edge/cache"
)

func init() {
	caddy.RegisterModule(AdminAPI{})
}

// AdminAPI is the `admin.api.delivery` module: the routes under
// /delivery/ on Caddy's admin endpoint, to look into and operate a
// running edge (docs/admin-api.md). Caddy loads every admin.api module
// itself; it has no configuration.
type AdminAPI struct {
	log *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (AdminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.delivery",
		New: func() caddy.Module { return new(AdminAPI) },
	}
}

// Provision keeps the logger; the app is looked up per request (it may
// start after the admin routes are provisioned, and changes at reloads).
func (a *AdminAPI) Provision(ctx caddy.Context) error {
	a.log = ctx.Logger()
	return nil
}

// Routes returns the admin routes.
func (a *AdminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{Pattern: "/delivery/", Handler: caddy.AdminHandlerFunc(a.serve)}}
}

// maxAdminBody bounds a request body (a warm's URL list is the largest).
const maxAdminBody = 8 << 20

// errNotRunning answers every route while no delivery app runs.
var errNotRunning = errors.New("the delivery app is not running")

func (a *AdminAPI) serve(w http.ResponseWriter, r *http.Request) error {
	app := adminSites.app()
	if app == nil {
		return apiError(http.StatusServiceUnavailable, errNotRunning)
	}
	c := &adminCall{api: a, app: app, w: w, r: r}
	path := strings.TrimPrefix(r.URL.Path, "/delivery/")
	if id, ok := strings.CutPrefix(path, "jobs/"); ok {
		return c.job(id)
	}
	routes := map[string]struct {
		method string
		fn     func() error
	}{
		"stats":      {http.MethodGet, c.stats},
		"queues":     {http.MethodGet, c.queues},
		"files":      {http.MethodGet, c.files},
		"dependents": {http.MethodGet, c.dependents},
		"jobs":       {http.MethodGet, c.jobList},
		"purge":      {http.MethodPost, c.purge},
		"flush":      {http.MethodPost, c.flush},
		"resources":  {http.MethodPost, c.resources},
		"warm":       {http.MethodPost, c.warm},
		"check":      {http.MethodPost, c.check},
		"rebuild":    {http.MethodPost, c.rebuild},
	}
	rt, ok := routes[path]
	if !ok {
		return apiError(http.StatusNotFound, fmt.Errorf("no such route: %s", r.URL.Path))
	}
	if r.Method != rt.method {
		w.Header().Set("Allow", rt.method)
		return apiError(http.StatusMethodNotAllowed, fmt.Errorf("%s wants %s", r.URL.Path, rt.method))
	}
	return rt.fn()
}

// adminCall is one request to the admin API.
type adminCall struct {
	api *AdminAPI
	app *App
	w   http.ResponseWriter
	r   *http.Request
}

// reply writes v as JSON with status.
func (c *adminCall) reply(status int, v any) error {
	c.w.Header().Set("Content-Type", "application/json")
	c.w.WriteHeader(status)
	return json.NewEncoder(c.w).Encode(v)
}

// decode reads the JSON body into v (bounded, no unknown fields); an
// empty body leaves v as it is.
func (c *adminCall) decode(v any) error {
	body, err := io.ReadAll(io.LimitReader(c.r.Body, maxAdminBody+1))
	if err != nil {
		return apiError(http.StatusBadRequest, fmt.Errorf("reading the body: %w", err))
	}
	if len(body) > maxAdminBody {
		adminLimitHit("admin_body")
		return apiError(http.StatusRequestEntityTooLarge, fmt.Errorf("body larger than %d bytes", maxAdminBody))
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil
	}
	d := json.NewDecoder(strings.NewReader(string(body)))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return apiError(http.StatusBadRequest, fmt.Errorf("invalid JSON body: %w", err))
	}
	return nil
}

// engine is the running app's engine.
func (c *adminCall) engine() (*cache.Engine, error) {
	eng, err := c.app.Engine()
	if err != nil {
		c.api.log.Error("admin API: delivery engine unavailable", zap.Error(err))
		return nil, apiError(http.StatusServiceUnavailable, errors.New("the delivery data folder cannot be opened"))
	}
	return eng, nil
}

// site is the site a request names with host (query or body); with one
// site, host may be left out.
func (c *adminCall) site(host string) (*cache.Site, error) {
	m := adminSites.sitesOf(c.app)
	if host != "" {
		if s, ok := m[hostName(host)]; ok {
			return s, nil
		}
		_, hosts := distinctSites(m)
		return nil, apiError(http.StatusNotFound, fmt.Errorf("unknown host %q (known: %s)", host, strings.Join(hosts, ", ")))
	}
	sites, hosts := distinctSites(m)
	switch len(sites) {
	case 0:
		return nil, apiError(http.StatusNotFound, errors.New("no docroot is known yet (none is configured, or none has had a request)"))
	case 1:
		return sites[0], nil
	}
	return nil, apiError(http.StatusBadRequest, fmt.Errorf("several sites: name one with host (%s)", strings.Join(hosts, ", ")))
}

// apiError is an error as Caddy's admin API answers it.
func apiError(status int, err error) error {
	return caddy.APIError{HTTPStatus: status, Err: err, Message: err.Error()}
}

// adminLimits counts the bounds of the admin API that were hit, by name
// (reported by the stats route).
var adminLimits sync.Map // name -> *atomic.Int64

func adminLimitHit(name string) {
	v, _ := adminLimits.LoadOrStore(name, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

func adminLimitCounts() map[string]int64 {
	out := map[string]int64{}
	adminLimits.Range(func(k, v any) bool {
		out[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	return out
}

// Interface guards
var (
	_ caddy.AdminRouter = (*AdminAPI)(nil)
	_ caddy.Provisioner = (*AdminAPI)(nil)
)
