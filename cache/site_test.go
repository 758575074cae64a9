package cache

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
)

// backend is an in-process render backend for the Site tests.
type backend struct {
	renders atomic.Int64
	mu      sync.Mutex
	status  int
	header  http.Header
	body    string
	delay   time.Duration
	abort   bool // panic with http.ErrAbortHandler mid-body, as reverse_proxy does
}

func (b *backend) render(w http.ResponseWriter, r *http.Request) error {
	b.renders.Add(1)
	b.mu.Lock()
	status, header, body, delay, abort := b.status, b.header, b.body, b.delay, b.abort
	b.mu.Unlock()
	time.Sleep(delay)
	for k, v := range header {
		w.Header()[k] = v
	}
	if status == 0 {
		status = 200
	}
	w.WriteHeader(status)
	half := len(body) / 2
	_, _ = w.Write([]byte(body[:half]))
	if abort {
		panic(http.ErrAbortHandler)
	}
	_, _ = w.Write([]byte(body[half:]))
	return nil
}

func (b *backend) set(fn func(*backend)) {
	b.mu.Lock()
	fn(b)
	b.mu.Unlock()
}

func newTestSite(t *testing.T) (*Site, *Engine) {
	t.Helper()
	return newTestSiteLogged(t, zap.NewNop())
}

// newTestSiteLogged is newTestSite logging to log from the start (the
// store's background work logs too, so the logger cannot change later).
func newTestSiteLogged(t *testing.T, log *zap.Logger) (*Site, *Engine) {
	t.Helper()
	dir := t.TempDir()
	eng, err := Open(Options{DataDir: filepath.Join(dir, "data"), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	store, err := eng.Store(filepath.Join(dir, "docroot"))
	if err != nil {
		t.Fatal(err)
	}
	return &Site{Store: store, RenderTimeout: 2 * time.Second}, eng
}

func serve(t *testing.T, s *Site, b *backend, method, target string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	if err := s.ServeHTTP(rec, req, b.render); err != nil {
		code := statusOf(err)
		rec.Code = code
	}
	return rec
}

func (s *Site) exists(name string) bool {
	_, err := os.Stat(filepath.Join(s.Store.Dir(), filepath.FromSlash(name)))
	return err == nil
}

func TestSiteMissHitAndHeaders(t *testing.T) {
	s, _ := newTestSite(t)
	b := &backend{body: "<html>page</html>", header: http.Header{
		"Content-Type":          {"text/html"},
		"Delivery-Dependencies": {`"story1"`},
		"Cache-Control":         {"max-age=600"},
	}}
	rec := serve(t, s, b, "GET", "/a/page.html")
	if rec.Code != 200 || rec.Body.String() != b.body || rec.Header().Get(HeaderDependencies) != "" ||
		rec.Header().Get("Cache-Control") != "" {
		t.Fatalf("miss: %d %q %v", rec.Code, rec.Body, rec.Header())
	}
	rec = serve(t, s, b, "GET", "/a/page.html")
	if rec.Code != 200 || rec.Body.String() != b.body || rec.Header().Get("Etag") == "" {
		t.Fatalf("hit: %d %v", rec.Code, rec.Header())
	}
	if n := b.renders.Load(); n != 1 {
		t.Fatalf("renders = %d", n)
	}
	e, ok, err := s.Store.reg.Get(s.Store.ID("a/page.html"))
	if err != nil || !ok || e.Key != "/a/page.html" || e.Expires == 0 || len(e.Deps) != 1 {
		t.Fatalf("registry entry: %+v %v %v", e, ok, err)
	}
}

func TestSiteMissVariants(t *testing.T) {
	tests := []struct {
		name      string
		method    string
		header    []string
		backend   *backend
		wantCode  int
		wantBody  string
		wantFile  bool
		wantStale bool
	}{
		{"HEAD renders with GET and stores", "HEAD", nil, &backend{body: "full"}, 200, "", true, false},
		{"range is answered from the stored file", "GET", []string{"Range", "bytes=1-2"}, &backend{body: "full"}, 206, "ul", true, false},
		{"set-cookie is not stored", "GET", nil, &backend{body: "x", header: http.Header{"Set-Cookie": {"a=b"}}}, 200, "x", false, false},
		{"private is not stored", "GET", nil, &backend{body: "x", header: http.Header{"Cache-Control": {"private"}}}, 200, "x", false, false},
		{"malformed dependencies are not stored", "GET", nil, &backend{body: "x", header: http.Header{HeaderDependencies: {"(("}}}, 200, "x", false, false},
		{"gzip from the backend is not stored", "GET", nil, &backend{body: "x", header: http.Header{"Content-Encoding": {"gzip"}}}, 200, "x", false, false},
		{"404 is passed on", "GET", nil, &backend{status: 404, body: "nope"}, 404, "nope", false, false},
		{"500 is passed on", "GET", nil, &backend{status: 500, body: "err"}, 500, "err", false, false},
		{"201 is passed on, not stored", "GET", nil, &backend{status: 201, body: "made"}, 201, "made", false, false},
		{"aborted stream leaves no file", "GET", nil, &backend{body: "broken body", abort: true}, 502, "", false, false},
		{"short body leaves no file", "GET", nil, &backend{body: "12345", header: http.Header{"Content-Length": {"9"}}}, 200, "12345", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestSite(t)
			b := tt.backend
			var rec *httptest.ResponseRecorder
			func() {
				defer func() {
					if v := recover(); v != nil {
						if v != http.ErrAbortHandler { //nolint:errorlint
							panic(v)
						}
						rec = httptest.NewRecorder()
						rec.Code = 502 // what the client sees: a broken connection
					}
				}()
				rec = serve(t, s, b, tt.method, "/p.html", tt.header...)
			}()
			if rec.Code != tt.wantCode || (tt.wantBody != "" && rec.Body.String() != tt.wantBody) {
				t.Fatalf("got %d %q, want %d %q", rec.Code, rec.Body.String(), tt.wantCode, tt.wantBody)
			}
			if got := s.exists("p.html"); got != tt.wantFile {
				t.Fatalf("file stored = %v, want %v", got, tt.wantFile)
			}
			entries, _ := os.ReadDir(filepath.Join(s.Store.Dir(), TempDir))
			if len(entries) != 0 {
				t.Fatalf("%d temp files left", len(entries))
			}
		})
	}
}

func TestSiteCoalescesConcurrentMisses(t *testing.T) {
	s, _ := newTestSite(t)
	b := &backend{body: strings.Repeat("x", 100000), delay: 100 * time.Millisecond}
	var wg sync.WaitGroup
	codes := make([]int, 50)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec := serve(t, s, b, "GET", "/p.html")
			if rec.Body.Len() == 100000 {
				codes[i] = rec.Code
			}
		}()
	}
	wg.Wait()
	for i, c := range codes {
		if c != 200 {
			t.Fatalf("request %d: %d", i, c)
		}
	}
	if n := b.renders.Load(); n != 1 {
		t.Fatalf("renders = %d, want 1", n)
	}
}

func TestSiteStaleWhileRendering(t *testing.T) {
	s, _ := newTestSite(t)
	b := &backend{body: "v1"}
	serve(t, s, b, "GET", "/p.html")
	if _, err := s.Store.Invalidate("p.html"); err != nil {
		t.Fatal(err)
	}
	b.set(func(b *backend) { b.body, b.delay = "v2", 200*time.Millisecond })
	for range 3 {
		rec := serve(t, s, b, "GET", "/p.html")
		if rec.Body.String() != "v1" || rec.Header().Get(HeaderStale) != "1" {
			t.Fatalf("stale answer: %q %v", rec.Body, rec.Header())
		}
	}
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if rec := serve(t, s, b, "GET", "/p.html"); rec.Body.String() == "v2" && rec.Header().Get(HeaderStale) == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("background render never landed")
		}
	}
	if s.exists("p.html.old") {
		t.Fatal(".old not removed")
	}
	if n := b.renders.Load(); n != 2 {
		t.Fatalf("renders = %d, want 2", n)
	}
}

func TestSiteInvalidationDuringRenderKeepsResultAsOld(t *testing.T) {
	s, _ := newTestSite(t)
	b := &backend{body: "rendered-before-change", delay: 200 * time.Millisecond}
	done := make(chan *httptest.ResponseRecorder)
	go func() { done <- serve(t, s, b, "GET", "/p.html") }()
	time.Sleep(50 * time.Millisecond)
	if _, err := s.Store.Invalidate("p.html"); err != nil { // a change arrives mid-render
		t.Fatal(err)
	}
	<-done
	if s.exists("p.html") || !s.exists("p.html.old") {
		t.Fatal("a render that predates an invalidation must only become .old")
	}
}

func TestSiteRefusesInternalAndBadPaths(t *testing.T) {
	s, _ := newTestSite(t)
	b := &backend{body: "x"}
	for target, want := range map[string]int{
		"/p.html.old":        404,
		"/.delivery-tmp/abc": 404,
		"/a/../p.html":       400,
	} {
		if rec := serve(t, s, b, "GET", target); rec.Code != want {
			t.Errorf("%s: %d, want %d", target, rec.Code, want)
		}
	}
	if rec := serve(t, s, b, "POST", "/p.html"); rec.Code != 200 || s.exists("p.html") {
		t.Errorf("POST must pass through uncached")
	}
	if n := b.renders.Load(); n != 1 {
		t.Errorf("renders = %d, want 1 (the POST)", n)
	}
}

type varsKey struct{}

// TestBackgroundRendersAreDetached: a render on its own goroutine gets the
// request through Site.Detach, so it never shares per-request state (in
// Caddy: the vars map) with the request that started it.
func TestBackgroundRendersAreDetached(t *testing.T) {
	s, _ := newTestSite(t)
	s.Detach = func(r *http.Request) *http.Request {
		return r.WithContext(context.WithValue(r.Context(), varsKey{}, map[string]any{}))
	}
	b := &backend{body: "v1"}
	serve(t, s, b, "GET", "/p.html")
	if _, err := s.Store.Invalidate("p.html"); err != nil {
		t.Fatal(err)
	}
	own := map[string]any{}
	var mu sync.Mutex
	var shared bool
	render := func(w http.ResponseWriter, r *http.Request) error {
		m, _ := r.Context().Value(varsKey{}).(map[string]any)
		mu.Lock()
		shared = shared || m == nil || fmt.Sprintf("%p", m) == fmt.Sprintf("%p", own)
		mu.Unlock()
		return b.render(w, r)
	}
	req := httptest.NewRequest("GET", "/p.html", nil)
	req = req.WithContext(context.WithValue(req.Context(), varsKey{}, own))
	if err := s.ServeHTTP(httptest.NewRecorder(), req, render); err != nil { // stale answer, render in background
		t.Fatal(err)
	}
	s.Store.bg.Wait()
	if b.renders.Load() != 2 || shared {
		t.Fatalf("background render: renders=%d, shared per-request state=%v", b.renders.Load(), shared)
	}
}
