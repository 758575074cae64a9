package caddymodule

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/delivery-edge/edge/edgegroup"
)

// The servlet itself (parameters, answers, forwarding, catch-up, refusal
// logs) is tested in edgegroup; these tests cover the glue: the app's
// configuration reaches it, and the app decides when the cache is
// disabled.

// Answers of edgegroup's servlet that the glue tests look for.
const (
	msgDisabled        = "Invalid use of the cache servlet: the cache is disabled"
	msgInvalidPassword = "invalid password"
)

// testEdge is a provisioned and started delivery app with its cache
// servlet.
type testEdge struct {
	app *App
	h   *CacheServlet
}

func newTestEdge(t *testing.T, configure func(a *App)) *testEdge {
	t.Helper()
	a := &App{DataDir: filepath.Join(t.TempDir(), "data")}
	if configure != nil {
		configure(a)
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	if err := a.Provision(ctx); err != nil {
		cancel()
		t.Fatalf("provision: %v", err)
	}
	if err := a.Start(); err != nil {
		cancel()
		t.Fatalf("start: %v", err)
	}
	e := &testEdge{app: a, h: &CacheServlet{}}
	if err := e.h.setup(a, zap.NewNop()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = e.h.Cleanup()
		_ = a.Stop()
		_ = a.Cleanup()
		cancel()
	})
	return e
}

// do calls the servlet with a GET query.
func (e *testEdge) do(params string) (int, string) {
	r := httptest.NewRequest(http.MethodGet, edgegroup.DefaultServletPath+"?"+params, nil)
	w := httptest.NewRecorder()
	_ = e.h.ServeHTTP(w, r, nil)
	return w.Code, w.Body.String()
}

func TestServletCacheDisabled(t *testing.T) {
	// A data folder that cannot be created: the engine cannot be opened.
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	a := &App{DataDir: filepath.Join(file, "data"), ServletPassword: "secret"}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	if err := a.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	defer a.Cleanup()
	e := &testEdge{app: a, h: &CacheServlet{}}
	if err := e.h.setup(a, zap.NewNop()); err != nil {
		t.Fatal(err)
	}
	defer e.h.Cleanup()
	for _, p := range []string{"action=flush&key=k&group=g&password=secret", "action=sync&group=g", ""} {
		status, body := e.do(p)
		if status != 500 || body != msgDisabled {
			t.Errorf("%q: %d %q", p, status, body)
		}
	}
}

func TestServletPasswordPlaceholder(t *testing.T) {
	t.Setenv("DELIVERY_TEST_SERVLET_PW", "from-env")
	e := newTestEdge(t, func(a *App) { a.ServletPassword = "{env.DELIVERY_TEST_SERVLET_PW}" })
	if status, body := e.do("action=sync&group=g&password=from-env"); status != 200 {
		t.Fatalf("env password refused: %d %q", status, body)
	}
	if status, body := e.do("action=sync&group=g&password={env.DELIVERY_TEST_SERVLET_PW}"); body != msgInvalidPassword {
		t.Fatalf("the placeholder itself was accepted: %d %q", status, body)
	}

	// Configured but empty after replacement: refused at provisioning.
	a := &App{DataDir: t.TempDir(), ServletPassword: "{env.DELIVERY_TEST_UNSET_PW}"}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	err := a.Provision(ctx)
	if err == nil || !strings.Contains(err.Error(), "servlet_password") {
		t.Fatalf("provision with an unset password variable: %v", err)
	}
	_ = a.Cleanup()
}

// TestServletForwardsToTheAppsGroups: a flush through the handler reaches
// the peer of the app's group (its URL given with a placeholder), with the
// app's password; a group name the app refuses fails provisioning.
func TestServletForwardsToTheAppsGroups(t *testing.T) {
	var (
		mu  sync.Mutex
		got []url.Values
	)
	peer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		mu.Lock()
		got = append(got, r.Form)
		mu.Unlock()
	}))
	defer peer.Close()
	t.Setenv("DELIVERY_TEST_PEER", peer.URL)
	e := newTestEdge(t, func(a *App) {
		a.ServletPassword = "pw"
		a.Groups = map[string]GroupConfig{"live": {Peers: []string{"{env.DELIVERY_TEST_PEER}"}}}
	})
	if status, body := e.do("action=flush&key=home&group=live&timestamp=777&password=pw"); status != 200 {
		t.Fatalf("flush: %d %q", status, body)
	}
	flushes := func() []url.Values {
		mu.Lock()
		defer mu.Unlock()
		var out []url.Values
		for _, v := range got {
			if v.Get("action") == "flush" {
				out = append(out, v)
			}
		}
		return out
	}
	for deadline := time.Now().Add(10 * time.Second); len(flushes()) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the flush did not reach the group's peer")
		}
	}
	if f := flushes()[0]; f.Get("key") != "home" || f.Get("password") != "pw" || f.Get("forward") != "false" {
		t.Fatalf("forwarded %v", f)
	}

	a := &App{DataDir: t.TempDir(), Groups: map[string]GroupConfig{"a\nb": {}}}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	if err := a.Provision(ctx); err == nil || !strings.Contains(err.Error(), "invalid name") {
		t.Fatalf("provision with a group name holding a newline: %v", err)
	}
	_ = a.Cleanup()
}

// TestServletCountsRefusalsByCaddysClientIP: refused requests are counted
// under the client IP Caddy determined (behind a trusted proxy), not the
// proxy's address.
func TestServletCountsRefusalsByCaddysClientIP(t *testing.T) {
	e := newTestEdge(t, func(a *App) { a.ServletPassword = "secret" })
	core, logs := observer.New(zapcore.InfoLevel)
	h := &CacheServlet{}
	if err := h.setup(e.app, zap.New(core)); err != nil {
		t.Fatal(err)
	}
	defer h.Cleanup()
	r := httptest.NewRequest(http.MethodGet, edgegroup.DefaultServletPath+"?action=sync&group=g&password=guess", nil)
	r.RemoteAddr = "192.0.2.1:4711"
	vars := map[string]any{caddyhttp.ClientIPVarKey: "198.51.100.9"}
	r = r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, vars))
	if got := caddyClientIP(r); got != "198.51.100.9" {
		t.Fatalf("caddyClientIP = %q", got)
	}
	_ = h.ServeHTTP(httptest.NewRecorder(), r, nil)
	lines := logs.FilterMessage("cache servlet request refused").All()
	if len(lines) != 1 || lines[0].ContextMap()["remote"] != "198.51.100.9" {
		t.Fatalf("refusal lines: %v", lines)
	}
	if got := caddyClientIP(httptest.NewRequest(http.MethodGet, "/", nil)); got != "" {
		t.Fatalf("without Caddy's variable: %q", got)
	}
}
