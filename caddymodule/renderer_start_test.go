package caddymodule

import (
	"path/filepath"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/delivery-edge/edge/cache"
)

// Helpers that build provisioned route trees as the Caddyfile adapter and
// the HTTP app make them.

func vars(kv ...string) *caddyhttp.VarsMiddleware {
	m := caddyhttp.VarsMiddleware{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return &m
}

func cacheHandler(root string) *Cache {
	h := &Cache{Root: root}
	if h.Root == "" {
		h.Root = "{http.vars.root}"
	}
	h.rootVar = varPlaceholder(h.Root)
	return h
}

func route(handlers ...caddyhttp.MiddlewareHandler) caddyhttp.Route {
	return caddyhttp.Route{Handlers: handlers}
}

func sub(routes ...caddyhttp.Route) *caddyhttp.Subroute {
	return &caddyhttp.Subroute{Routes: routes}
}

// site is a Caddyfile site block: a terminal route for its hosts around a
// subroute.
func site(hosts []string, routes ...caddyhttp.Route) caddyhttp.Route {
	r := route(sub(routes...))
	if hosts != nil {
		mh := caddyhttp.MatchHost(hosts)
		r.MatcherSets = caddyhttp.MatcherSets{{&mh}}
	}
	r.Terminal = true
	return r
}

func pathMatched(r caddyhttp.Route, path string) caddyhttp.Route {
	mp := caddyhttp.MatchPath{path}
	r.MatcherSets = caddyhttp.MatcherSets{{&mp}}
	return r
}

func TestStartSites(t *testing.T) {
	t.Setenv("DELIVERY_TEST_DOCROOT", "/srv/from-env")
	type result struct{ root, host string }
	for _, tt := range []struct {
		name    string
		listen  string
		handler *Cache // the handler under test (found by identity)
		routes  func(h *Cache) caddyhttp.RouteList
		want    *result // nil: the docroot waits for a request
	}{
		{"root directive, as the harness writes it", ":8123", cacheHandler(""),
			func(h *Cache) caddyhttp.RouteList {
				return caddyhttp.RouteList{site([]string{"127.0.0.1"},
					route(vars("root", "/srv/a"), sub(route(h))))}
			}, &result{"/srv/a", "127.0.0.1:8123"}},
		{"fixed root, any host, port 80", ":80", cacheHandler("/srv/fixed"),
			func(h *Cache) caddyhttp.RouteList { return caddyhttp.RouteList{route(h)} },
			&result{"/srv/fixed", "localhost"}},
		{"root from a global placeholder", ":8080", cacheHandler("{env.DELIVERY_TEST_DOCROOT}/www"),
			func(h *Cache) caddyhttp.RouteList { return caddyhttp.RouteList{route(h)} },
			&result{"/srv/from-env/www", "localhost:8080"}},
		{"vars value from a global placeholder", ":8080", cacheHandler(""),
			func(h *Cache) caddyhttp.RouteList {
				return caddyhttp.RouteList{route(vars("root", "{env.DELIVERY_TEST_DOCROOT}")), route(h)}
			}, &result{"/srv/from-env", "localhost:8080"}},
		{"another var name", ":8080", cacheHandler("{http.vars.site_root}"),
			func(h *Cache) caddyhttp.RouteList {
				return caddyhttp.RouteList{route(vars("root", "/wrong", "site_root", "/srv/b")), route(h)}
			}, &result{"/srv/b", "localhost:8080"}},
		{"wildcard hosts are skipped", ":8443", cacheHandler(""),
			func(h *Cache) caddyhttp.RouteList {
				return caddyhttp.RouteList{site([]string{"*.example.com", "www.example.com"},
					route(vars("root", "/srv/c")), route(h))}
			}, &result{"/srv/c", "www.example.com:8443"}},
		{"IPv6 host", "[::1]:443", cacheHandler(""),
			func(h *Cache) caddyhttp.RouteList {
				return caddyhttp.RouteList{site([]string{"::1"}, route(vars("root", "/srv/d")), route(h))}
			}, &result{"/srv/d", "[::1]"}},
		{"root only for a path", ":8080", cacheHandler(""),
			func(h *Cache) caddyhttp.RouteList {
				return caddyhttp.RouteList{site(nil, pathMatched(route(vars("root", "/srv/x")), "/x/*"), route(h))}
			}, nil},
		{"root set, then changed for a path", ":8080", cacheHandler(""),
			func(h *Cache) caddyhttp.RouteList {
				return caddyhttp.RouteList{route(vars("root", "/srv/a")),
					pathMatched(route(vars("root", "/srv/b")), "/b/*"), route(h)}
			}, nil},
		{"root set for a path to the same value", ":8080", cacheHandler(""),
			func(h *Cache) caddyhttp.RouteList {
				return caddyhttp.RouteList{route(vars("root", "/srv/a")),
					pathMatched(route(vars("root", "/srv/a")), "/b/*"), route(h)}
			}, &result{"/srv/a", "localhost:8080"}},
		{"root from the request", ":8080", cacheHandler(""),
			func(h *Cache) caddyhttp.RouteList {
				return caddyhttp.RouteList{route(vars("root", "/srv/{http.request.host}")), route(h)}
			}, nil},
		{"handler root from the request", ":8080", cacheHandler("/srv/{http.request.host}"),
			func(h *Cache) caddyhttp.RouteList { return caddyhttp.RouteList{route(h)} }, nil},
		{"root never set", ":8080", cacheHandler(""),
			func(h *Cache) caddyhttp.RouteList { return caddyhttp.RouteList{route(h)} }, nil},
		{"another site's root does not carry over", ":8080", cacheHandler(""),
			func(h *Cache) caddyhttp.RouteList {
				return caddyhttp.RouteList{
					site([]string{"a.example"}, route(vars("root", "/srv/a"))),
					site([]string{"b.example"}, route(h)),
				}
			}, nil},
		{"a named route may set it", ":8080", cacheHandler(""),
			func(h *Cache) caddyhttp.RouteList {
				return caddyhttp.RouteList{route(vars("root", "/srv/a")), route(&caddyhttp.Invoke{Name: "x"}), route(h)}
			}, nil},
		{"a var whose name has a placeholder", ":8080", cacheHandler(""),
			func(h *Cache) caddyhttp.RouteList {
				return caddyhttp.RouteList{route(vars("root", "/srv/a")), route(vars("{http.request.host}", "/x")), route(h)}
			}, nil},
		{"a grouped route is conditional", ":8080", cacheHandler(""),
			func(h *Cache) caddyhttp.RouteList {
				g := route(vars("root", "/srv/g"))
				g.Group = "g1"
				return caddyhttp.RouteList{g, route(h)}
			}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := &caddyhttp.Server{Listen: []string{tt.listen}, Routes: tt.routes(tt.handler)}
			known, unknown := startSites(map[string]*caddyhttp.Server{"srv0": srv})
			if len(known)+len(unknown) != 1 {
				t.Fatalf("found %d known and %d unknown handlers, want one", len(known), len(unknown))
			}
			if tt.want == nil {
				if len(unknown) != 1 {
					t.Fatalf("docroot known: %+v", known[0])
				}
				return
			}
			if len(known) != 1 {
				t.Fatalf("docroot unknown, want %q", tt.want.root)
			}
			got := known[0]
			if got.handler != tt.handler || got.srv != srv || got.root != tt.want.root || got.host != tt.want.host {
				t.Fatalf("got root %q host %q (same handler %v), want %q %q",
					got.root, got.host, got.handler == tt.handler, tt.want.root, tt.want.host)
			}
		})
	}
}

func TestStartSitesWalksServersInNameOrder(t *testing.T) {
	a, b := cacheHandler("/srv/same"), cacheHandler("/srv/same")
	known, _ := startSites(map[string]*caddyhttp.Server{
		"srv1": {Listen: []string{":81"}, Routes: caddyhttp.RouteList{route(b)}},
		"srv0": {Listen: []string{":82"}, Routes: caddyhttp.RouteList{route(a)}},
	})
	if len(known) != 2 || known[0].handler != a || known[1].handler != b || known[0].server != "srv0" {
		t.Fatalf("order: %+v", known)
	}
}

func TestRendererClaims(t *testing.T) {
	eng, err := cache.Open(cache.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	store, err := eng.Store(filepath.Join(t.TempDir(), "docroot"))
	if err != nil {
		t.Fatal(err)
	}
	c := &rendererClaims{byStore: map[*cache.Store][]rendererClaim{}}
	newest := func() (*App, string) {
		list := c.byStore[store]
		if len(list) == 0 {
			return nil, ""
		}
		return list[len(list)-1].owner, list[len(list)-1].host
	}
	old, cur, failed := &App{}, &App{}, &App{}
	c.claim(store, old, &serverRenderer{}, "old")
	c.claim(store, cur, &serverRenderer{}, "cur")
	c.claim(store, cur, &serverRenderer{}, "cur2") // its first request: replaces its claim
	if owner, host := newest(); owner != cur || host != "cur2" || len(c.byStore[store]) != 2 {
		t.Fatalf("newest %p %q, %d claims", owner, host, len(c.byStore[store]))
	}
	// A reload stops the old config: the current one keeps carrying.
	c.release(old)
	if owner, _ := newest(); owner != cur || len(c.byStore[store]) != 1 {
		t.Fatal("releasing an older config changed the carrier")
	}
	// A late request of the stopped config claims nothing.
	c.claim(store, old, &serverRenderer{}, "late")
	if owner, _ := newest(); owner != cur || len(c.byStore[store]) != 1 {
		t.Fatal("a stopped config claimed the docroot")
	}
	// A new config that fails to start hands back to the current one.
	c.claim(store, failed, &serverRenderer{}, "failed")
	c.release(failed)
	if owner, host := newest(); owner != cur || host != "cur2" {
		t.Fatalf("after a failed start: %p %q", owner, host)
	}
	c.release(cur)
	if _, ok := c.byStore[store]; ok {
		t.Fatal("claims left after the last config stopped")
	}
}
