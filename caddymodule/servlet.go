package caddymodule

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(CacheServlet{})
}

// maxServletBody bounds a POSTed form; the parameters are short.
const maxServletBody = 64 << 10

// CacheServlet is the `cache_servlet` handler: explicit flushes of cache
// keys and the synchronisation of flushes between the edges of a group
// (SPEC §4). It answers every request it gets (it does not call the next
// handler). Parameters come from the query string or, for POST, from a
// form body. The password is the delivery app's servlet_password; the
// peers are its groups.
type CacheServlet struct {
	app      *App
	groups   *groupsFeature
	password string
	log      *zap.Logger

	disabledLogged *atomic.Bool // "cache disabled" is logged once until it works again
	// Refused requests are logged once per client address and minute,
	// with a count: wrong passwords at warn, other refusals at info.
	refusedPassword, refusedOther *refusalLog
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
	h.app, h.log, h.password = app, log, pw
	h.disabledLogged = new(atomic.Bool)
	h.refusedPassword = newRefusalLog(log, zap.WarnLevel)
	h.refusedOther = newRefusalLog(log, zap.InfoLevel)
	h.groups = app.groups
	return nil
}

// Cleanup stops the timers of the refusal logs.
func (h *CacheServlet) Cleanup() error {
	if h.refusedPassword != nil {
		h.refusedPassword.close()
		h.refusedOther.close()
	}
	return nil
}

// ServeHTTP answers a flush or a sync.
func (h *CacheServlet) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		answer(w, http.StatusMethodNotAllowed, "method not allowed")
		return nil
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxServletBody)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			answer(w, http.StatusRequestEntityTooLarge, "request body too large")
			return nil
		}
		// A malformed pair is dropped; what parsed is used, as a servlet
		// container would.
	}
	eng, err := h.app.Engine()
	if err != nil {
		if h.disabledLogged.CompareAndSwap(false, true) {
			h.log.Error("cache servlet: the cache is disabled (data folder unusable)", zap.Error(err))
		}
		answer(w, http.StatusInternalServerError, msgDisabled)
		return nil
	}
	h.disabledLogged.Store(false)
	req, msg := parseServletRequest(r.Form, h.password, time.Now())
	if msg != "" {
		refusals := h.refusedOther
		if msg == msgInvalidPassword || msg == msgPasswordRequired {
			refusals = h.refusedPassword
		}
		refusals.refused(clientAddr(r), zap.String("reason", msg), zap.String("action", req.Action))
		answer(w, http.StatusInternalServerError, msg)
		return nil
	}
	switch req.Action {
	case actionFlush:
		var peers []string
		if req.Forward && h.groups != nil {
			peers = h.groups.peersOf(req.Group)
		}
		applied, err := eng.Flush(req.Key, req.Group, req.Time, peers)
		if err != nil {
			h.log.Error("cache flush failed", zap.String("key", req.Key), zap.String("group", req.Group), zap.Error(err))
			answer(w, http.StatusInternalServerError, msgFailed)
			return nil
		}
		if applied && len(peers) > 0 {
			h.groups.kick()
		}
		h.log.Info("cache flush", zap.String("key", req.Key), zap.String("group", req.Group),
			zap.Int64("timestamp", req.Time), zap.Bool("applied", applied), zap.Bool("forward", req.Forward),
			zap.Int("peers", len(peers)), zap.String("remote", r.RemoteAddr))
		w.WriteHeader(http.StatusOK)
	case actionSync:
		flushes, err := eng.FlushesSince(req.Group, req.Since)
		if err != nil {
			h.log.Error("reading the flush log failed", zap.String("group", req.Group), zap.Error(err))
			answer(w, http.StatusInternalServerError, msgFailed)
			return nil
		}
		if req.Forward && h.groups != nil {
			h.groups.triggerSync(req.Group)
		}
		var body []byte
		for _, f := range flushes {
			body = appendSyncLine(body, f)
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	}
	return nil
}

// answer writes a plain-text answer.
func answer(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(strings.TrimSpace(body)))
}

// Interface guards
var (
	_ caddy.Provisioner           = (*CacheServlet)(nil)
	_ caddy.CleanerUpper          = (*CacheServlet)(nil)
	_ caddyhttp.MiddlewareHandler = (*CacheServlet)(nil)
)
