// Package e2e holds the end-to-end tests: the real Caddy binary with this
// project's modules (DELIVERY_CADDY, or built from ./cmd/caddy), the sample
// origin, real HTTP, real bbolt files and kill -9.
package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/delivery-edge/edge/cache"
	"github.com/delivery-edge/edge/integration/harness"
	"github.com/delivery-edge/edge/integration/origin"
	"go.uber.org/zap"
)

const storyPath = "/politik/story100.html"

func TestMissThenHit(t *testing.T) {
	o := harness.StartOrigin(t, origin.RenderConfig{})
	e := harness.StartEdge(t, harness.EdgeOptions{Origin: o.RenderAddr})

	status, h, body := harness.Get(t, nil, e.URL()+storyPath)
	if status != 200 || !strings.Contains(body, "Politik: Meldung 1") {
		t.Fatalf("miss: %d %q", status, body[:min(len(body), 200)])
	}
	for _, name := range []string{cache.HeaderDependencies, cache.HeaderCacheKeys, cache.HeaderPregenerate} {
		if h.Get(name) != "" {
			t.Errorf("miss leaked %s to the client", name)
		}
	}
	status, h, body2 := harness.Get(t, nil, e.URL()+storyPath)
	if status != 200 || body2 != body {
		t.Fatalf("hit: %d, body equal %v", status, body2 == body)
	}
	if h.Get("Etag") == "" || h.Get("Last-Modified") == "" || !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
		t.Errorf("hit headers incomplete: %v", h)
	}
	if n := o.Renders(storyPath); n != 1 {
		t.Fatalf("renders = %d, want 1", n)
	}
	if !e.Exists("politik/story100.html") {
		t.Fatal("file not in the docroot")
	}

	// Conditional GET, Range and HEAD on the hit.
	status, _, _ = harness.Get(t, nil, e.URL()+storyPath, "If-None-Match", h.Get("Etag"))
	if status != http.StatusNotModified {
		t.Errorf("If-None-Match: %d, want 304", status)
	}
	status, rh, part := harness.Get(t, nil, e.URL()+storyPath, "Range", "bytes=0-14")
	if status != http.StatusPartialContent || part != body[:15] || rh.Get("Content-Range") == "" {
		t.Errorf("Range: %d %q", status, part)
	}
	resp, err := http.Head(e.URL() + storyPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ContentLength != int64(len(body)) {
		t.Errorf("HEAD: %d length %d", resp.StatusCode, resp.ContentLength)
	}
	if n := o.Renders(storyPath); n != 1 {
		t.Fatalf("renders after conditional/range/HEAD = %d, want 1", n)
	}
}

func TestInternalFilesAreNeverServed(t *testing.T) {
	o := harness.StartOrigin(t, origin.RenderConfig{})
	e := harness.StartEdge(t, harness.EdgeOptions{Origin: o.RenderAddr})
	harness.Get(t, nil, e.URL()+storyPath)
	if err := os.WriteFile(e.File("politik/story100.html.old"), []byte("secret old"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{
		"/politik/story100.html.old", "/politik/story100.html.OLD", "/politik/story100.html.%6fld",
		"/politik/story100.html%2Eold", "/.delivery-tmp/", "/.DELIVERY-tmp/x", "/politik/../politik/story100.html.old",
	} {
		status, _, body := harness.Get(t, nil, e.URL()+p)
		if status == 200 || strings.Contains(body, "secret old") {
			t.Errorf("%s: status %d body %q", p, status, body)
		}
	}
}

func TestConcurrentColdRequestsRenderOnce(t *testing.T) {
	o := harness.StartOrigin(t, origin.RenderConfig{Latency: 300 * time.Millisecond})
	e := harness.StartEdge(t, harness.EdgeOptions{Origin: o.RenderAddr})
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 0, MaxIdleConnsPerHost: 200}}
	const n = 200
	var wg sync.WaitGroup
	bodies := make([]string, n)
	statuses := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i], _, bodies[i] = harness.Get(t, client, e.URL()+storyPath)
		}()
	}
	wg.Wait()
	for i := range n {
		if statuses[i] != 200 || bodies[i] != bodies[0] {
			t.Fatalf("request %d: status %d, same body %v", i, statuses[i], bodies[i] == bodies[0])
		}
	}
	if got := o.Renders(storyPath); got != 1 {
		t.Fatalf("%d concurrent cold requests caused %d renders, want 1", n, got)
	}
}

// invalidate renames a cached file to its .old copy, as the removal queue
// does.
// servletRoute mounts the cache servlet, the tests' way to invalidate.
const servletRoute = "cache_servlet /system/servlet/cache.servlet"

// invalidate flushes a cache key through the cache servlet and waits
// until the removal queue has renamed the file to its .old copy.
func invalidate(t *testing.T, e *harness.Edge, key, name string) {
	t.Helper()
	status, _, body := harness.Get(t, nil, e.URL()+"/system/servlet/cache.servlet?action=flush&group=test&forward=false&key="+key)
	if status != http.StatusOK {
		t.Fatalf("flush %s: %d %s", key, status, body)
	}
	waitFor(t, 5*time.Second, name+" renamed to .old", func() bool {
		return !e.Exists(name) && e.Exists(name+cache.OldSuffix)
	})
}

// TestOldServedDuringRegeneration: with render_wait 0 (grace mode) every
// request gets the copy at once. render_wait_test.go covers the default.
func TestOldServedDuringRegeneration(t *testing.T) {
	o := harness.StartOrigin(t, origin.RenderConfig{})
	e := harness.StartEdge(t, harness.EdgeOptions{Origin: o.RenderAddr, Route: servletRoute, Cache: "render_wait 0"})
	_, _, before := harness.Get(t, nil, e.URL()+storyPath)
	invalidate(t, e, "story100", "politik/story100.html")
	o.Content.Update("story100", map[string]any{"title": "Neuer Titel"})
	o.Faults(origin.Fault{Prefix: storyPath, Delay: time.Second, Count: 1})

	// Every request, the one that starts the render included, gets the
	// .old copy at once while the render runs in the background.
	for i := range 5 {
		start := time.Now()
		status, h, body := harness.Get(t, nil, e.URL()+storyPath)
		if status != 200 || h.Get(cache.HeaderStale) != "1" || body != before {
			t.Fatalf("request %d during regeneration: %d stale=%q old body %v", i, status, h.Get(cache.HeaderStale), body == before)
		}
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Errorf("stale answer took %v, it must not wait for the render", d)
		}
	}
	if status, _, _ := harness.Get(t, nil, e.URL()+storyPath+".old"); status != 404 {
		t.Errorf(".old asked for directly: %d, want 404", status)
	}
	waitFor(t, 5*time.Second, "the new file", func() bool {
		_, h, body := harness.Get(t, nil, e.URL()+storyPath)
		return h.Get(cache.HeaderStale) == "" && strings.Contains(body, "Neuer Titel")
	})
	if e.Exists("politik/story100.html.old") {
		t.Error(".old still there after the new file landed")
	}
	if n := o.Renders(storyPath); n != 2 {
		t.Errorf("renders = %d, want 2", n)
	}
}

func TestRenderFailureServesStaleCopy(t *testing.T) {
	o := harness.StartOrigin(t, origin.RenderConfig{})
	e := harness.StartEdge(t, harness.EdgeOptions{Origin: o.RenderAddr, Cache: "render_timeout 1s", Route: servletRoute})
	_, _, before := harness.Get(t, nil, e.URL()+storyPath)

	invalidate(t, e, "story100", "politik/story100.html")
	o.Faults(origin.Fault{Prefix: storyPath, Status: 503})
	for range 3 {
		status, h, body := harness.Get(t, nil, e.URL()+storyPath)
		if status != 200 || body != before || h.Get(cache.HeaderStale) != "1" {
			t.Fatalf("backend failing: %d stale=%q same body %v", status, h.Get(cache.HeaderStale), body == before)
		}
	}
	waitFor(t, 5*time.Second, "the failed background render", func() bool { return o.Renders(storyPath) >= 2 })
	time.Sleep(100 * time.Millisecond)
	if !e.Exists("politik/story100.html.old") || e.Exists("politik/story100.html") {
		t.Fatal("a failed render must keep the .old copy and write nothing")
	}
	if n := o.Renders(storyPath); n > 3 {
		t.Errorf("%d renders of a failing page within a moment: no backoff", n)
	}

	// Without a stale copy the error is passed on, and a render that takes
	// longer than render_timeout ends in 504.
	o.Faults(origin.Fault{Prefix: "/sport/story105", Status: 503, Count: 1},
		origin.Fault{Prefix: "/sport/story106", Delay: 3 * time.Second, Count: 1})
	if status, _, _ := harness.Get(t, nil, e.URL()+"/sport/story105.html"); status != 503 {
		t.Fatalf("5xx without .old: %d, want 503", status)
	}
	start := time.Now()
	if status, _, _ := harness.Get(t, nil, e.URL()+"/sport/story106.html"); status != 504 {
		t.Fatalf("timeout without .old: %d, want 504", status)
	}
	if d := time.Since(start); d > 2500*time.Millisecond {
		t.Errorf("render_timeout 1s took %v", d)
	}
	if e.Exists("sport/story105.html") || e.Exists("sport/story106.html") {
		t.Fatal("an error was cached")
	}
}

func TestGoneAtOriginDeletesFileAndOld(t *testing.T) {
	o := harness.StartOrigin(t, origin.RenderConfig{})
	e := harness.StartEdge(t, harness.EdgeOptions{Origin: o.RenderAddr, Route: servletRoute})
	harness.Get(t, nil, e.URL()+storyPath)
	o.Content.SetState("story100", origin.StateDeleted)
	// Without a copy the render's 404 is passed on and nothing is kept.
	if status, _, _ := harness.Get(t, nil, e.URL()+"/politik/story101.html"); status != 200 {
		t.Fatal("story101 not rendered")
	}
	o.Content.SetState("story101", origin.StateDeleted)
	os.Remove(e.File("politik/story101.html"))
	if status, _, _ := harness.Get(t, nil, e.URL()+"/politik/story101.html"); status != 404 {
		t.Fatalf("deleted document: %d, want 404", status)
	}
	// With a .old copy the background render's 404 deletes file and copy.
	invalidate(t, e, "story100", "politik/story100.html")
	harness.Get(t, nil, e.URL()+storyPath)
	waitFor(t, 5*time.Second, "404 after the background render", func() bool {
		status, _, _ := harness.Get(t, nil, e.URL()+storyPath)
		return status == 404
	})
	if e.Exists("politik/story100.html") || e.Exists("politik/story100.html.old") ||
		e.Exists("politik/story101.html") {
		t.Fatal("file or .old left after 404")
	}
}

func TestKillDuringSlowRenderLeavesNoPartialFile(t *testing.T) {
	o := harness.StartOrigin(t, origin.RenderConfig{})
	e := harness.StartEdge(t, harness.EdgeOptions{Origin: o.RenderAddr})
	o.Faults(origin.Fault{Prefix: storyPath, Delay: 2 * time.Second, Count: 1})
	go func() {
		resp, err := http.Get(e.URL() + storyPath)
		if err == nil {
			resp.Body.Close()
		}
	}()
	time.Sleep(500 * time.Millisecond)
	e.Kill()
	if e.Exists("politik/story100.html") {
		t.Fatal("a file appeared although the render never finished")
	}
	e.Start()
	entries, _ := os.ReadDir(filepath.Join(e.Docroot, cache.TempDir))
	if len(entries) != 0 {
		t.Fatalf("temp files left after restart: %d", len(entries))
	}
	status, _, body := harness.Get(t, nil, e.URL()+storyPath)
	if status != 200 || !strings.HasSuffix(body, "</html>\n") {
		t.Fatalf("after restart: %d, complete page %v", status, strings.HasSuffix(body, "</html>\n"))
	}
	if n := o.Renders(storyPath); n != 2 {
		t.Fatalf("renders = %d, want 2 (the killed one and the new one)", n)
	}
}

func TestRestartKeepsRegistry(t *testing.T) {
	o := harness.StartOrigin(t, origin.RenderConfig{})
	e := harness.StartEdge(t, harness.EdgeOptions{Origin: o.RenderAddr})
	harness.Get(t, nil, e.URL()+storyPath)
	harness.Get(t, nil, e.URL()+"/politik/")
	e.Kill() // no clean shutdown: the journal must carry what bbolt did not get
	e.Start()
	harness.Get(t, nil, e.URL()+storyPath)
	if n := o.Renders(storyPath); n != 1 {
		t.Fatalf("renders after restart = %d, want 1 (served from the docroot)", n)
	}
	e.Stop()

	reg, err := cache.OpenRegistry(e.DataDir, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	found := map[string]bool{}
	for _, dep := range []struct {
		kind cache.DepKind
		name string
	}{{cache.DepDocument, "story100"}, {cache.DepKey, "story100"}, {cache.DepNode, "/politik"}} {
		err := reg.Find(dep.kind, dep.name, func(id cache.FileID, d cache.Dependency) bool {
			found[dep.name+" -> "+id.File] = true
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"story100 -> politik/story100.html", "/politik -> politik/index.html",
		"/politik -> politik/story100.html"} {
		if !found[want] {
			t.Errorf("registry lacks %s; has %v", want, found)
		}
	}
}
