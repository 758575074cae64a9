package caddymodule

import (
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/delivery-edge/edge/cache"
)

// Pre-generation needs, for each docroot, the server whose handlers render
// its pages. A delivery_cache handler learns its docroot from a request,
// but work queued before a restart must not wait for one. So when the app
// starts it walks the HTTP servers' routes, as a request would take them,
// and finds every delivery_cache handler whose docroot is the same for all
// requests:
//
//   - a root without placeholders (or with global ones only, such as
//     {env.DOCROOT}), or
//   - the default {http.vars.root} (or another single {http.vars.NAME})
//     when a vars handler (the Caddyfile's `root` directive) sets that var
//     on the way to the handler in a route without a matcher, to a value
//     without request placeholders.
//
// A root set in a route with a matcher (`root /path/* …`), a value that
// depends on the request ({host}, …), a var nobody sets on the way, and
// handlers reached only through `invoke`, error routes or other handlers'
// own routes wait for their site's first request, as before.

// maxRouteDepth bounds how deeply the walk follows nested subroutes.
const maxRouteDepth = 32

// startSite is a delivery_cache handler whose docroot is known at start,
// with the server that renders its pages and the host for work that has
// none of its own.
type startSite struct {
	handler *Cache
	srv     *caddyhttp.Server
	server  string // the server's name in the config
	root    string
	host    string
}

// unknownSite is a delivery_cache handler whose docroot depends on the
// request.
type unknownSite struct {
	server string
	root   string // the handler's root setting
}

// startSites walks the servers (in name order, routes in order) and
// returns the handlers whose docroot is known, and those whose docroot
// must wait for a request.
func startSites(servers map[string]*caddyhttp.Server) (known []startSite, unknown []unknownSite) {
	names := make([]string, 0, len(servers))
	for name := range servers {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		srv := servers[name]
		if srv == nil {
			continue
		}
		w := &routeWalk{srv: srv, name: name, port: listenPort(srv.Listen)}
		w.routes(srv.Routes, nil, varsState{}, 0)
		known = append(known, w.known...)
		unknown = append(unknown, w.unknown...)
	}
	return known, unknown
}

type routeWalk struct {
	srv     *caddyhttp.Server
	name    string
	port    string
	known   []startSite
	unknown []unknownSite
}

// routes walks a route list with the vars that hold when it is entered and
// returns the vars that hold after it.
func (w *routeWalk) routes(list caddyhttp.RouteList, hosts []string, in varsState, depth int) varsState {
	cur := in
	for _, rt := range list {
		inner := hosts
		if h := hostsOf(rt.MatcherSets); len(h) > 0 {
			inner = h
		}
		out := cur
		for _, handler := range rt.Handlers {
			switch handler := handler.(type) {
			case *caddyhttp.VarsMiddleware:
				out = out.with(*handler)
			case caddyhttp.VarsMiddleware:
				out = out.with(handler)
			case *caddyhttp.Subroute:
				if depth >= maxRouteDepth {
					out = varsState{anyUnknown: true}
					continue
				}
				out = w.routes(handler.Routes, inner, out, depth+1)
			case *caddyhttp.Invoke:
				// A named route may set vars; which one runs is
				// known only at request time.
				out = varsState{anyUnknown: true}
			case *Cache:
				w.found(handler, inner, out)
			}
		}
		switch conditional := len(rt.MatcherSets) > 0 || rt.Group != ""; {
		case !conditional:
			cur = out
		case rt.Terminal:
			// Later routes run only when this one did not match.
		default:
			cur = cur.merge(out)
		}
	}
	return cur
}

func (w *routeWalk) found(h *Cache, hosts []string, vars varsState) {
	root, ok := h.staticRoot(vars)
	if !ok {
		w.unknown = append(w.unknown, unknownSite{server: w.name, root: h.Root})
		return
	}
	w.known = append(w.known, startSite{handler: h, srv: w.srv, server: w.name, root: root,
		host: siteHost(hosts, w.port)})
}

// staticRoot is the handler's docroot when it is the same for every
// request, given the vars the walk knows at the handler.
func (h *Cache) staticRoot(vars varsState) (string, bool) {
	if h.rootVar != "" {
		return vars.get(h.rootVar)
	}
	return globalValue(h.Root)
}

// globalValue replaces the global placeholders ({env.*}, {system.*}, …)
// of s; it reports false when a placeholder remains, whose value only a
// request knows.
func globalValue(s string) (string, bool) {
	if !strings.Contains(s, "{") {
		return s, true
	}
	v := caddy.NewReplacer().ReplaceKnown(s, "")
	return v, !strings.Contains(v, "{")
}

// varsState is what the walk knows of a request's vars at one point of
// its way through the routes.
type varsState struct {
	known   map[string]string // the same value for every request
	unknown map[string]bool   // may or may not be set, or to a value only a request knows
	// anyUnknown: any var may have been set (a vars handler whose name
	// has a placeholder, a named route).
	anyUnknown bool
}

func (v varsState) get(name string) (string, bool) {
	if v.anyUnknown || v.unknown[name] {
		return "", false
	}
	val, ok := v.known[name]
	return val, ok && val != ""
}

func (v varsState) clone() varsState {
	return varsState{known: cloneMap(v.known), unknown: cloneMap(v.unknown), anyUnknown: v.anyUnknown}
}

// cloneMap copies m; the copy is never nil.
func cloneMap[V any](m map[string]V) map[string]V {
	out := make(map[string]V, len(m))
	maps.Copy(out, m)
	return out
}

// with is the state after a vars handler, which the server runs with the
// request's replacer.
func (v varsState) with(m caddyhttp.VarsMiddleware) varsState {
	out := v.clone()
	for name, val := range m {
		if strings.Contains(name, "{") {
			out.anyUnknown = true
			continue
		}
		s, isString := val.(string)
		if isString {
			s, isString = globalValue(s)
		}
		if isString {
			out.known[name] = s
			delete(out.unknown, name)
		} else {
			out.unknown[name] = true
			delete(out.known, name)
		}
	}
	return out
}

// merge is the state after a route that may or may not have run: in, or
// out. A var that differs is unknown.
func (v varsState) merge(out varsState) varsState {
	m := v.clone()
	m.anyUnknown = v.anyUnknown || out.anyUnknown
	for name := range out.unknown {
		m.unknown[name] = true
		delete(m.known, name)
	}
	for name, val := range out.known {
		if cur, ok := v.known[name]; !ok || cur != val {
			m.unknown[name] = true
			delete(m.known, name)
		}
	}
	return m
}

// hostsOf returns the host names a route's matchers ask for, without
// wildcards and placeholders, in order; none when any matcher set lacks a
// host matcher (then the route serves any host).
func hostsOf(sets caddyhttp.MatcherSets) []string {
	var hosts []string
	for _, set := range sets {
		var mh caddyhttp.MatchHost
		for _, m := range set {
			switch m := m.(type) {
			case *caddyhttp.MatchHost:
				mh = *m
			case caddyhttp.MatchHost:
				mh = m
			}
		}
		if mh == nil {
			return nil
		}
		for _, h := range mh {
			if h != "" && !strings.ContainsAny(h, "*{") {
				hosts = append(hosts, h)
			}
		}
	}
	return hosts
}

// listenPort is the port of a server's first listener address ("" when
// it has none or it is not a single TCP port).
func listenPort(listen []string) string {
	if len(listen) == 0 {
		return ""
	}
	addr, err := caddy.ParseNetworkAddress(listen[0])
	if err != nil || addr.IsUnixNetwork() || addr.StartPort == 0 || addr.PortRangeSize() != 1 {
		return ""
	}
	return strconv.FormatUint(uint64(addr.StartPort), 10)
}

// siteHost is the Host of pre-generation work that has none of its own:
// the site's first host name, else "localhost", with the listener's port
// unless it is 80 or 443.
func siteHost(hosts []string, port string) string {
	host := "localhost"
	if len(hosts) > 0 {
		host = hosts[0]
	}
	if port == "" || port == "80" || port == "443" {
		if strings.Contains(host, ":") {
			return "[" + host + "]"
		}
		return host
	}
	return net.JoinHostPort(host, port)
}

// claimStartRenderers makes this config's servers carry the pre-generation
// of every docroot whose delivery_cache handler knows it without a
// request, so work queued before a restart or reload runs at once. The
// servers need not listen yet: a render goes through Server.ServeHTTP,
// which is ready once the HTTP app is provisioned. A docroot that cannot
// be opened is logged and left to its first request.
func (a *App) claimStartRenderers(eng *cache.Engine) {
	httpApp, err := a.ctx.AppIfConfigured("http")
	if err != nil {
		return // no HTTP app: no delivery_cache handler either
	}
	servers := httpApp.(*caddyhttp.App).Servers
	known, unknown := startSites(servers)
	claimed := map[*cache.Store]bool{}
	for _, s := range known {
		store, err := eng.Store(s.root)
		if err != nil {
			a.log.Error("docroot unavailable; its pre-generation waits for a request",
				zap.String("server", s.server), zap.String("root", s.root), zap.Error(err))
			continue
		}
		if claimed[store] {
			continue // the first handler of a docroot carries its work
		}
		claimed[store] = true
		renderers.claim(store, a, a.renderer(s.srv), s.host)
		a.log.Info("pre-generation ready", zap.String("server", s.server),
			zap.String("docroot", store.Dir()), zap.String("host", s.host))
	}
	for _, u := range unknown {
		a.log.Info("docroot depends on the request; its pre-generation waits for a request",
			zap.String("server", u.server), zap.String("root", u.root))
	}
}

// renderer is the renderer of pre-generation through srv.
func (a *App) renderer(srv *caddyhttp.Server) *serverRenderer {
	resolve := DefaultResolvePath
	if p := a.Pregenerate; p != nil && p.ResolvePath != "" {
		resolve = p.ResolvePath
	}
	return &serverRenderer{srv: srv, resolvePath: resolve}
}
