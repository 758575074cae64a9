package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/delivery-edge/edge/cache"
	"github.com/delivery-edge/edge/integration/harness"
)

// servingBackend is a render backend for the serving path's outcomes: a
// page per path, answers by the path's name (404, 500, Set-Cookie, 2 MiB
// bodies), renders held at a gate until a test opens it, and a Delivery-*
// header on every answer (known and unknown) that must never reach a
// client.
type servingBackend struct {
	mu      sync.Mutex
	renders map[string]int
	gates   map[string]chan struct{}
}

const bigBody = 2 << 20

func (b *servingBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	b.renders[r.URL.Path]++
	gate := b.gates[r.URL.Path]
	b.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set(cache.HeaderDependencies, `"doc-1"`)
	h.Set("Delivery-Surprise", "from the backend")
	name := filepath.Base(r.URL.Path)
	switch {
	case strings.HasPrefix(name, "missing"):
		w.WriteHeader(http.StatusNotFound)
	case strings.HasPrefix(name, "error"):
		w.WriteHeader(http.StatusInternalServerError)
	case strings.HasPrefix(name, "cookie"):
		h.Set("Set-Cookie", "session=1")
	case strings.HasPrefix(name, "big-chunked"):
		chunk := strings.Repeat("c", 64<<10)
		for range bigBody / len(chunk) {
			fmt.Fprint(w, chunk)
			http.NewResponseController(w).Flush() // no Content-Length
		}
		return
	case strings.HasPrefix(name, "big"):
		h.Set("Content-Length", fmt.Sprint(bigBody))
		fmt.Fprint(w, strings.Repeat("b", bigBody))
		return
	}
	fmt.Fprintf(w, "<html><body>%s %s</body></html>\n", r.Method, r.URL.Path)
}

func (b *servingBackend) count(path string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.renders[path]
}

// hold makes renders of path wait until the returned func is called.
func (b *servingBackend) hold(path string) (release func()) {
	gate := make(chan struct{})
	b.mu.Lock()
	b.gates[path] = gate
	b.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			b.mu.Lock()
			delete(b.gates, path)
			b.mu.Unlock()
			close(gate)
		})
	}
}

// awaitRenders polls until path has been asked for n times.
func (b *servingBackend) awaitRenders(t *testing.T, path string, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); b.count(path) < n; {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d renders, want %d", path, b.count(path), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startServingEdge starts a backend and an edge over it whose access log
// (JSON, in the edge's folder) carries the cache_status placeholder.
func startServingEdge(t *testing.T, cacheOpts string) (*harness.Edge, *servingBackend, string) {
	t.Helper()
	b := &servingBackend{renders: map[string]int{}, gates: map[string]chan struct{}{}}
	srv := httptest.NewServer(b) // listens on 127.0.0.1
	t.Cleanup(srv.Close)
	dir, port := t.TempDir(), harness.FreePort(t)
	if err := os.MkdirAll(filepath.Join(dir, "docroot"), 0o755); err != nil {
		t.Fatal(err)
	}
	opts := harness.EdgeOptions{Origin: srv.Listener.Addr().String(), Cache: cacheOpts,
		Route: "metrics /metrics\nlog_append cache_status {http.delivery.cache_status}"}
	accessLog := filepath.Join(dir, "access.log")
	caddyfile := strings.Replace(opts.Caddyfile(dir, port), "\troute {",
		"\tlog {\n\t\toutput file "+accessLog+"\n\t\tformat json\n\t}\n\troute {", 1)
	c := harness.StartCaddy(t, dir, caddyfile, port)
	return &harness.Edge{Caddy: c, DataDir: filepath.Join(dir, "data"), Docroot: filepath.Join(dir, "docroot")}, b, accessLog
}

type answer struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, method, url string) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	var sb strings.Builder
	if _, err := bufio.NewReader(resp.Body).WriteTo(&sb); err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return answer{resp.StatusCode, resp.Header, sb.String()}
}

// noDeliveryHeaders fails if the backend's Delivery-* headers reached the
// client (only the edge's Delivery-Stale may).
func noDeliveryHeaders(t *testing.T, what string, h http.Header) {
	t.Helper()
	for k := range h {
		if strings.HasPrefix(strings.ToLower(k), "delivery-") && k != cache.HeaderStale {
			t.Errorf("%s: the backend's %s reached the client", what, k)
		}
	}
}

// accessLogStatuses reads the cache_status field of the access log's
// lines, keyed by "METHOD uri", waiting until want lines are there.
func accessLogStatuses(t *testing.T, path string, want int) map[string][]string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		data, _ := os.ReadFile(path)
		out := map[string][]string{}
		n := 0
		for line := range strings.Lines(string(data)) {
			var entry struct {
				Request struct {
					Method, URI string
				}
				CacheStatus *string `json:"cache_status"`
			}
			if err := json.Unmarshal([]byte(line), &entry); err != nil {
				t.Fatalf("access log line %q: %v", line, err)
			}
			if entry.CacheStatus == nil {
				continue // /metrics
			}
			out[entry.Request.Method+" "+entry.Request.URI] = append(out[entry.Request.Method+" "+entry.Request.URI], *entry.CacheStatus)
			n++
		}
		if n >= want || time.Now().After(deadline) {
			return out
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCacheStatusOfEveryOutcome: each way delivery_cache answers, seen on
// real requests: its Cache-Status header, the same value in the access
// log through {http.delivery.cache_status}, and never a backend's
// Delivery-* header.
func TestCacheStatusOfEveryOutcome(t *testing.T) {
	e, b, accessLog := startServingEdge(t, "")
	if err := os.MkdirAll(e.File("s"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.File("s/error-old.html.old"), []byte("old copy\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	// Two readers of a page whose render is held: one leads, one waits.
	release := b.hold("/s/slow.html")
	var wg sync.WaitGroup
	var first answer
	wg.Go(func() { first = do(t, "GET", e.URL()+"/s/slow.html") })
	b.awaitRenders(t, "/s/slow.html", 1)
	var second answer
	wg.Go(func() { second = do(t, "GET", e.URL()+"/s/slow.html") })
	time.Sleep(200 * time.Millisecond) // the second joins the flight
	release()
	wg.Wait()
	collapsed := []string{first.header.Get(cache.HeaderCacheStatus), second.header.Get(cache.HeaderCacheStatus)}
	if !(collapsed[0] == "delivery;fwd=uri-miss;stored" && collapsed[1] == "delivery;fwd=uri-miss;collapsed" ||
		collapsed[1] == "delivery;fwd=uri-miss;stored" && collapsed[0] == "delivery;fwd=uri-miss;collapsed") {
		t.Errorf("leader and waiter: %q, want one stored and one collapsed", collapsed)
	}
	if b.count("/s/slow.html") != 1 {
		t.Errorf("slow page rendered %d times, want 1", b.count("/s/slow.html"))
	}

	cases := []struct {
		method, path string
		code         int
		status       string // Cache-Status
		stale        bool
	}{
		{"GET", "/s/page.html", 200, "delivery;fwd=uri-miss;stored", false},
		{"GET", "/s/page.html", 200, "delivery;hit", false},
		{"HEAD", "/s/page.html", 200, "delivery;hit", false},
		{"GET", "/s/missing.html", 404, "delivery;fwd=uri-miss;fwd-status=404", false},
		{"GET", "/s/cookie.html", 200, "delivery;fwd=uri-miss;detail=uncacheable", false},
		{"GET", "/s/error.html", 500, "delivery;fwd=uri-miss;fwd-status=500", false},
		{"GET", "/s/error-old.html", 200, "delivery;hit;fwd=stale;fwd-status=500;detail=render-failed", true},
		{"POST", "/s/page.html", 200, "delivery;fwd=method", false},
		{"GET", "/s//page.html", 200, "delivery;fwd=bypass", false},
		{"GET", "/s/page.html.old", 404, "delivery;detail=refused", false},
	}
	for _, c := range cases {
		a := do(t, c.method, e.URL()+c.path)
		what := c.method + " " + c.path
		got := a.header.Get(cache.HeaderCacheStatus)
		if a.status != c.code || !strings.HasPrefix(got, c.status) {
			t.Errorf("%s: %d %q, want %d %q", what, a.status, got, c.code, c.status)
		}
		if (a.header.Get(cache.HeaderStale) == "1") != c.stale {
			t.Errorf("%s: Delivery-Stale %q, want stale=%v", what, a.header.Get(cache.HeaderStale), c.stale)
		}
		noDeliveryHeaders(t, what, a.header)
	}
	noDeliveryHeaders(t, "leader", first.header)
	noDeliveryHeaders(t, "waiter", second.header)

	logged := accessLogStatuses(t, accessLog, len(cases)+2)
	if got := logged["GET /s/slow.html"]; len(got) != 2 {
		t.Errorf("access log of the slow page: %q", got)
	}
	seen := map[string]int{}
	for _, c := range cases {
		key := c.method + " " + c.path
		got := logged[key]
		i := seen[key]
		seen[key]++
		if i >= len(got) || !strings.HasPrefix(got[i], c.status) {
			t.Errorf("access log of %s: %q, want %q as entry %d", key, got, c.status, i)
		}
	}
}

// TestCacheStatusOff: `cache_status off` leaves the header off; the
// placeholder is still set for the access log.
func TestCacheStatusOff(t *testing.T) {
	e, _, accessLog := startServingEdge(t, "cache_status off")
	for range 2 { // a miss, then a hit
		a := do(t, "GET", e.URL()+"/s/page.html")
		if a.status != 200 || a.header.Get(cache.HeaderCacheStatus) != "" {
			t.Fatalf("%d, Cache-Status %q, want none", a.status, a.header.Get(cache.HeaderCacheStatus))
		}
	}
	logged := accessLogStatuses(t, accessLog, 2)["GET /s/page.html"]
	if len(logged) != 2 || logged[0] != "delivery;fwd=uri-miss;stored" || logged[1] != "delivery;hit" {
		t.Fatalf("access log: %q, want stored then hit", logged)
	}
}

// TestMaxRendersBusyAnswers: with every render slot taken, a miss waits
// render_wait and then gets the .old copy if there is one, else 503 with
// Retry-After; the bound is logged once and counted; once the slot is free
// the same URLs render normally.
func TestMaxRendersBusyAnswers(t *testing.T) {
	e, b, _ := startServingEdge(t, "max_renders 1\nrender_wait 300ms")
	if err := os.MkdirAll(e.File("s"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.File("s/with-old.html.old"), []byte("old copy\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	release := b.hold("/s/slow.html")
	defer release()
	var wg sync.WaitGroup
	var slow answer
	wg.Go(func() { slow = do(t, "GET", e.URL()+"/s/slow.html") })
	b.awaitRenders(t, "/s/slow.html", 1)

	for range 2 {
		a := do(t, "GET", e.URL()+"/s/other.html")
		if a.status != http.StatusServiceUnavailable || a.header.Get("Retry-After") == "" ||
			a.header.Get(cache.HeaderCacheStatus) != "delivery;detail=busy" {
			t.Fatalf("miss without a slot: %d Retry-After %q Cache-Status %q", a.status, a.header.Get("Retry-After"),
				a.header.Get(cache.HeaderCacheStatus))
		}
	}
	a := do(t, "GET", e.URL()+"/s/with-old.html")
	if a.status != 200 || a.body != "old copy\n" || a.header.Get(cache.HeaderStale) != "1" ||
		a.header.Get(cache.HeaderCacheStatus) != "delivery;hit;fwd=stale;detail=busy" {
		t.Fatalf("miss with a copy, without a slot: %d %q stale %q Cache-Status %q", a.status, a.body,
			a.header.Get(cache.HeaderStale), a.header.Get(cache.HeaderCacheStatus))
	}
	if n := b.count("/s/other.html"); n != 0 {
		t.Fatalf("other page rendered %d times without a slot", n)
	}

	release()
	wg.Wait()
	if slow.status != 200 {
		t.Fatalf("held render: %d", slow.status)
	}
	// The rejected flights were released: the next request leads a render.
	a = do(t, "GET", e.URL()+"/s/other.html")
	if a.status != 200 || a.header.Get(cache.HeaderCacheStatus) != "delivery;fwd=uri-miss;stored" {
		t.Fatalf("after the slot came free: %d %q", a.status, a.header.Get(cache.HeaderCacheStatus))
	}
	if n := metricValue(t, e, `delivery_render_rejected_total{reason="slots"}`); n < 3 {
		t.Errorf("delivery_render_rejected_total{slots} = %v, want at least 3", n)
	}
	if n := metricValue(t, e, `delivery_render_duration_seconds_count{outcome="stored"}`); n < 2 {
		t.Errorf("render durations of stored renders: %v, want at least 2", n)
	}
	// (Caddy's error log has a line per 503 too, as for any error.)
	if n := strings.Count(e.Log(), `"msg":"all render slots busy`); n != 1 {
		t.Errorf("%d log lines about busy render slots, want 1", n)
	}
}

// TestMaxFileSizePassesLargeAnswersOn: answers over max_file_size reach
// the client whole and are not stored, whether the size is known from
// Content-Length or only while streaming; each URL is logged once and
// every such answer counted.
func TestMaxFileSizePassesLargeAnswersOn(t *testing.T) {
	e, b, accessLog := startServingEdge(t, "max_file_size 1MiB")
	paths := []string{"/s/big.html", "/s/big-chunked.html"}
	for _, p := range paths {
		for range 2 {
			a := do(t, "GET", e.URL()+p)
			if a.status != 200 || len(a.body) != bigBody {
				t.Fatalf("%s: %d, %d bytes, want %d", p, a.status, len(a.body), bigBody)
			}
		}
		if n := b.count(p); n != 2 {
			t.Errorf("%s rendered %d times for two requests, want 2 (not stored)", p, n)
		}
		if e.Exists(strings.TrimPrefix(p, "/")) {
			t.Errorf("%s stored", p)
		}
	}
	// A smaller answer is stored as before.
	do(t, "GET", e.URL()+"/s/page.html")
	if !e.Exists("s/page.html") {
		t.Error("small page not stored")
	}
	if n := metricValue(t, e, `delivery_cache_uncacheable_total{reason="file_too_large"}`); n != 4 {
		t.Errorf(`delivery_cache_uncacheable_total{reason="file_too_large"} = %v, want 4`, n)
	}
	if n := strings.Count(e.Log(), "larger than max_file_size"); n != 2 {
		t.Errorf("%d log lines about answers over max_file_size, want 2 (one per URL)", n)
	}
	for _, p := range paths {
		for _, got := range accessLogStatuses(t, accessLog, 5)["GET "+p] {
			if got != "delivery;fwd=uri-miss;detail=too-large" {
				t.Errorf("access log of %s: %q, want too-large", p, got)
			}
		}
	}
	// A temp file for an answer known too large is never made; one found
	// too large while streaming is removed.
	tmp, _ := filepath.Glob(filepath.Join(e.Docroot, cache.TempDir, "*"))
	if len(tmp) != 0 {
		t.Errorf("temp files left: %v", tmp)
	}
}
