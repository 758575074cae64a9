package caddymodule

import (
	"fmt"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/delivery-edge/edge/edgegroup"
)

func init() {
	caddy.RegisterModule(CacheServlet{})
}

// CacheServlet is the `cache_servlet` handler: explicit flushes of cache
// keys and the synchronisation of flushes between the edges of a group
// (docs/cache-servlet.md; the servlet itself is edgegroup.Servlet). It
// answers every request it gets (it does not call the next handler). The
// password is the delivery app's servlet_password; the peers are its
// groups.
type CacheServlet struct {
	servlet *edgegroup.Servlet
}

// CaddyModule returns the Caddy module information.
func (CacheServlet) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.cache_servlet",
		New: func() caddy.Module { return new(CacheServlet) },
	}
}

// Provision finds the delivery app and its groups.
func (h *CacheServlet) Provision(ctx caddy.Context) error {
	app, err := ctx.App("delivery")
	if err != nil {
		return fmt.Errorf("loading delivery app: %w", err)
	}
	return h.setup(app.(*App), ctx.Logger())
}

func (h *CacheServlet) setup(app *App, log *zap.Logger) error {
	pw, err := servletPassword(app)
	if err != nil {
		return err
	}
	h.servlet = edgegroup.NewServlet(edgegroup.ServletConfig{
		Password: pw,
		Groups:   app.groups,
		// The app's data folder that cannot be opened is the servlet's
		// "cache disabled".
		Engine:   app.Engine,
		ClientIP: caddyClientIP,
		Counts:   &servletRefusals,
		Logger:   log,
	})
	return nil
}

// servletRefusals counts the refusals of every cache servlet of the
// process, across config reloads (delivery_servlet_refused_total).
var servletRefusals edgegroup.RefusalCounts

// caddyClientIP is the client IP Caddy determined (trusted proxies
// considered), "" if none.
func caddyClientIP(r *http.Request) string {
	s, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	return s
}

// Cleanup stops the timers of the servlet's refusal logs.
func (h *CacheServlet) Cleanup() error {
	if h.servlet != nil {
		h.servlet.Close()
	}
	return nil
}

// ServeHTTP answers a flush or a sync.
func (h *CacheServlet) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	h.servlet.ServeHTTP(w, r)
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*CacheServlet)(nil)
	_ caddy.CleanerUpper          = (*CacheServlet)(nil)
	_ caddyhttp.MiddlewareHandler = (*CacheServlet)(nil)
)
