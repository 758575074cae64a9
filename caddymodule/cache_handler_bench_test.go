package caddymodule

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/delivery-edge/edge/cache"
)

// BenchmarkCacheHandlerHotHit measures the delivery_cache handler's own
// cost for a hit from memory, as Caddy calls it: each request gets a new
// replacer and vars map the way Caddy's server makes them (their
// allocations are the same with and without the handler's work), and the
// handler finds its Site, serves the hit and sets its placeholders.
func BenchmarkCacheHandlerHotHit(b *testing.B) {
	h, root := benchCacheHandler(b)
	if err := os.WriteFile(filepath.Join(root, "story100.html"), bytes.Repeat([]byte("x"), 30<<10), 0o644); err != nil {
		b.Fatal(err)
	}
	base := httptest.NewRequest("GET", "/story100.html", nil)
	w := &benchResponse{h: http.Header{}}
	serve := func(logged bool) {
		repl := caddy.NewReplacer()
		ctx := context.WithValue(base.Context(), caddy.ReplacerCtxKey, repl)
		ctx = context.WithValue(ctx, caddyhttp.VarsCtxKey, map[string]any{"root": root})
		r := base.WithContext(ctx)
		clear(w.h)
		if err := h.ServeHTTP(w, r, caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })); err != nil {
			b.Fatal(err)
		}
		if logged {
			// What Caddy's server sets after the handler when the access
			// log is on: the replacer's map gets its first entries here
			// when the handler set none.
			repl.Set("http.response.status", 200)
			repl.Set("http.response.size", 30<<10)
			repl.Set("http.response.duration", time.Millisecond)
		}
	}
	serve(false) // fill the hot set
	b.Run("request-setup-only", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			repl := caddy.NewReplacer()
			ctx := context.WithValue(base.Context(), caddy.ReplacerCtxKey, repl)
			ctx = context.WithValue(ctx, caddyhttp.VarsCtxKey, map[string]any{"root": root})
			_ = base.WithContext(ctx)
		}
	})
	b.Run("handler", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			serve(false)
		}
	})
	b.Run("handler-access-log", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			serve(true)
		}
	})
}

// benchCacheHandler is a provisioned-enough handler: its Site for the
// docroot is made the way site() makes it, over an engine of its own.
func benchCacheHandler(b *testing.B) (*Cache, string) {
	b.Helper()
	dir := b.TempDir()
	eng, err := cache.Open(cache.Options{DataDir: filepath.Join(dir, "data"), Logger: zap.NewNop()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { eng.Close() })
	root := filepath.Join(dir, "docroot")
	store, err := eng.Store(root)
	if err != nil {
		b.Fatal(err)
	}
	h := &Cache{log: zap.NewNop(), sites: new(sync.Map), Root: "{http.vars.root}", rootVar: "root"}
	h.sites.Store(store.Dir(), h.newSite(store))
	return h, store.Dir()
}

type benchResponse struct{ h http.Header }

func (d *benchResponse) Header() http.Header         { return d.h }
func (d *benchResponse) WriteHeader(int)             {}
func (d *benchResponse) Write(p []byte) (int, error) { return len(p), nil }
