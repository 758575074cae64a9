package cache

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dunglas/httpsfv"
)

// statusProbe records what a Site reports through OnCacheStatus.
type statusProbe struct {
	mu   sync.Mutex
	seen map[*http.Request][]string
}

func probe(s *Site) *statusProbe {
	p := &statusProbe{seen: map[*http.Request][]string{}}
	s.OnCacheStatus = func(r *http.Request, c CacheStatus) {
		p.mu.Lock()
		p.seen[r] = append(p.seen[r], c.Value().(string))
		p.mu.Unlock()
	}
	return p
}

func (p *statusProbe) of(r *http.Request) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seen[r]
}

// answer is one request's answer: status, header, body and what the site
// reported.
type answer struct {
	code     int
	header   http.Header
	body     string
	reported []string
}

func (a answer) cacheStatus() string { return strings.Join(a.header.Values(HeaderCacheStatus), ", ") }

func ask(t *testing.T, s *Site, p *statusProbe, render RenderFunc, method, target string, header ...string) answer {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	if err := s.ServeHTTP(rec, req, render); err != nil {
		rec.Code = statusOf(err) // what Caddy writes, with the header set so far
	}
	return answer{code: rec.Code, header: rec.Header(), body: rec.Body.String(), reported: p.of(req)}
}

// cachedThenOld renders and stores target, then renames it to ".old" as
// the removal queue does.
func cachedThenOld(t *testing.T, s *Site, p *statusProbe, target, file string) {
	t.Helper()
	b := &backend{body: "<p>old</p>"}
	if a := ask(t, s, p, b.render, "GET", target); a.code != 200 {
		t.Fatalf("caching %s: %d", target, a.code)
	}
	if _, err := s.Store.Invalidate(file); err != nil {
		t.Fatal(err)
	}
}

// holdSlot occupies the site's only render slot with a render that blocks
// until the returned function is called.
func holdSlot(t *testing.T, s *Site, p *statusProbe) (release func()) {
	t.Helper()
	gate := make(chan struct{})
	started := make(chan struct{})
	slow := func(w http.ResponseWriter, r *http.Request) error {
		close(started)
		<-gate
		_, err := w.Write([]byte("slow"))
		return err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		ask(t, s, p, slow, "GET", "/slow.html")
	}()
	<-started
	var once sync.Once
	release = func() { once.Do(func() { close(gate); <-done }) }
	t.Cleanup(release)
	return release
}

// TestCacheStatusOfEveryOutcome: each way an answer comes about, on real
// requests through a Site, and the value it carries — in the header and as
// reported for the placeholder.
func TestCacheStatusOfEveryOutcome(t *testing.T) {
	tests := []struct {
		name string
		// run sets up the site and answers the request to check.
		run  func(t *testing.T, s *Site, p *statusProbe) answer
		code int
		want string
		// reported, when not empty, differs from the header (the header
		// went out before the render was over).
		reported string
	}{
		{"hit from memory", func(t *testing.T, s *Site, p *statusProbe) answer {
			b := &backend{body: "<p>x</p>"}
			ask(t, s, p, b.render, "GET", "/p.html")
			ask(t, s, p, b.render, "GET", "/p.html")
			return ask(t, s, p, b.render, "GET", "/p.html")
		}, 200, "delivery;hit", ""},
		{"hit from disk, HEAD", func(t *testing.T, s *Site, p *statusProbe) answer {
			b := &backend{body: "<p>x</p>"}
			ask(t, s, p, b.render, "GET", "/p.html")
			return ask(t, s, p, b.render, "HEAD", "/p.html")
		}, 200, "delivery;hit", ""},
		{"304 of a hit", func(t *testing.T, s *Site, p *statusProbe) answer {
			b := &backend{body: "<p>x</p>"}
			ask(t, s, p, b.render, "GET", "/p.html")
			etag := ask(t, s, p, b.render, "GET", "/p.html").header.Get("Etag")
			return ask(t, s, p, b.render, "GET", "/p.html", "If-None-Match", etag)
		}, 304, "delivery;hit", ""},
		{"rendered and stored", func(t *testing.T, s *Site, p *statusProbe) answer {
			return ask(t, s, p, (&backend{body: "<p>x</p>"}).render, "GET", "/p.html")
		}, 200, "delivery;fwd=uri-miss;stored", ""},
		{"HEAD miss: rendered, stored, served from the file", func(t *testing.T, s *Site, p *statusProbe) answer {
			return ask(t, s, p, (&backend{body: "<p>x</p>"}).render, "HEAD", "/p.html")
		}, 200, "delivery;fwd=uri-miss;stored", ""},
		{"uncacheable answer", func(t *testing.T, s *Site, p *statusProbe) answer {
			b := &backend{body: "<p>x</p>", header: http.Header{"Set-Cookie": {"a=b"}}}
			return ask(t, s, p, b.render, "GET", "/p.html")
		}, 200, "delivery;fwd=uri-miss;detail=uncacheable", ""},
		{"404 passed on", func(t *testing.T, s *Site, p *statusProbe) answer {
			return ask(t, s, p, (&backend{status: 404}).render, "GET", "/p.html")
		}, 404, "delivery;fwd=uri-miss;fwd-status=404", ""},
		{"410 to a HEAD request", func(t *testing.T, s *Site, p *statusProbe) answer {
			return ask(t, s, p, (&backend{status: 410}).render, "HEAD", "/p.html")
		}, 410, "delivery;fwd=uri-miss;fwd-status=410", ""},
		{"redirect passed on", func(t *testing.T, s *Site, p *statusProbe) answer {
			return ask(t, s, p, (&backend{status: 302}).render, "GET", "/p.html")
		}, 302, "delivery;fwd=uri-miss;fwd-status=302", ""},
		{"5xx passed on", func(t *testing.T, s *Site, p *statusProbe) answer {
			return ask(t, s, p, (&backend{status: 503}).render, "GET", "/p.html")
		}, 503, "delivery;fwd=uri-miss;fwd-status=503", ""},
		{"render timeout without a copy", func(t *testing.T, s *Site, p *statusProbe) answer {
			s.RenderTimeout = 50 * time.Millisecond
			slow := func(w http.ResponseWriter, r *http.Request) error {
				<-r.Context().Done()
				return r.Context().Err()
			}
			return ask(t, s, p, slow, "GET", "/p.html")
		}, 504, "delivery;fwd=uri-miss;detail=render-timeout", ""},
		{".old copy while the page renders", func(t *testing.T, s *Site, p *statusProbe) answer {
			cachedThenOld(t, s, p, "/p.html", "p.html")
			s.RenderWait = 0
			return ask(t, s, p, (&backend{body: "<p>new</p>", delay: 200 * time.Millisecond}).render, "GET", "/p.html")
		}, 200, "delivery;hit;fwd=stale;detail=rendering", ""},
		{".old copy after a failed render", func(t *testing.T, s *Site, p *statusProbe) answer {
			cachedThenOld(t, s, p, "/p.html", "p.html")
			s.RenderWait = time.Second
			return ask(t, s, p, (&backend{status: 502}).render, "GET", "/p.html")
		}, 200, "delivery;hit;fwd=stale;fwd-status=502;detail=render-failed", ""},
		{"new page after render_wait", func(t *testing.T, s *Site, p *statusProbe) answer {
			cachedThenOld(t, s, p, "/p.html", "p.html")
			s.RenderWait = 5 * time.Second
			return ask(t, s, p, (&backend{body: "<p>new</p>"}).render, "GET", "/p.html")
		}, 200, "delivery;fwd=uri-miss;stored", ""},
		{"no render slot, no copy: 503", func(t *testing.T, s *Site, p *statusProbe) answer {
			s.MaxRenders, s.RenderWait = 1, 50*time.Millisecond
			holdSlot(t, s, p)
			return ask(t, s, p, (&backend{body: "<p>x</p>"}).render, "GET", "/p.html")
		}, 503, "delivery;detail=busy", ""},
		{"no render slot: the .old copy", func(t *testing.T, s *Site, p *statusProbe) answer {
			s.MaxRenders = 1
			cachedThenOld(t, s, p, "/p.html", "p.html")
			s.RenderWait = 50 * time.Millisecond
			holdSlot(t, s, p)
			return ask(t, s, p, (&backend{body: "<p>x</p>"}).render, "GET", "/p.html")
		}, 200, "delivery;hit;fwd=stale;detail=busy", ""},
		{"other method", func(t *testing.T, s *Site, p *statusProbe) answer {
			return ask(t, s, p, (&backend{body: "ok"}).render, "POST", "/p.html")
		}, 200, "delivery;fwd=method", ""},
		{"URL that cannot be a file", func(t *testing.T, s *Site, p *statusProbe) answer {
			return ask(t, s, p, (&backend{body: "ok"}).render, "GET", "/p.html?unknown=1")
		}, 200, "delivery;fwd=bypass", ""},
		{"internal file refused", func(t *testing.T, s *Site, p *statusProbe) answer {
			return ask(t, s, p, (&backend{body: "ok"}).render, "GET", "/p.html.old")
		}, 404, "delivery;detail=refused", ""},
		{"answer over max_file_size by Content-Length", func(t *testing.T, s *Site, p *statusProbe) answer {
			s.MaxFileSize = 10
			b := &backend{body: strings.Repeat("x", 100), header: http.Header{"Content-Length": {"100"}}}
			return ask(t, s, p, b.render, "GET", "/p.html")
		}, 200, "delivery;fwd=uri-miss;detail=too-large", ""},
		{"answer over max_file_size while streaming", func(t *testing.T, s *Site, p *statusProbe) answer {
			s.MaxFileSize = 10
			return ask(t, s, p, (&backend{body: strings.Repeat("x", 100)}).render, "GET", "/p.html")
		}, 200, "delivery;fwd=uri-miss;stored", "delivery;fwd=uri-miss;detail=too-large"},
		{"backend's own Cache-Status kept first", func(t *testing.T, s *Site, p *statusProbe) answer {
			b := &backend{body: "ok", header: http.Header{HeaderCacheStatus: {"Souin;fwd=uri-miss"}}}
			return ask(t, s, p, b.render, "POST", "/p.html")
		}, 200, "Souin;fwd=uri-miss, delivery;fwd=method", "delivery;fwd=method"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestSite(t)
			p := probe(s)
			a := tt.run(t, s, p)
			if a.code != tt.code || a.cacheStatus() != tt.want {
				t.Fatalf("%d %q, want %d %q", a.code, a.cacheStatus(), tt.code, tt.want)
			}
			if _, err := httpsfv.UnmarshalList(a.header.Values(HeaderCacheStatus)); err != nil {
				t.Errorf("not an RFC 9651 list: %v", err)
			}
			want := tt.reported
			if want == "" {
				want = tt.want
			}
			if len(a.reported) != 1 || a.reported[0] != want {
				t.Errorf("reported %q, want once %q", a.reported, want)
			}
			stale := strings.Contains(want, "fwd=stale")
			if (a.header.Get(HeaderStale) == "1") != stale {
				t.Errorf("Delivery-Stale %q with %q", a.header.Get(HeaderStale), want)
			}
			busy := tt.want == "delivery;detail=busy"
			if (a.header.Get("Retry-After") != "") != busy {
				t.Errorf("Retry-After %q on %d", a.header.Get("Retry-After"), a.code)
			}
		})
	}
}

// TestCacheStatusCollapsed: a request that waited for another's render
// says so; after an answer that could not be stored, it says it could not
// collapse.
func TestCacheStatusCollapsed(t *testing.T) {
	for _, tt := range []struct {
		name   string
		header http.Header
		want   string
	}{
		{"stored", nil, "delivery;fwd=uri-miss;collapsed"},
		{"not storable", http.Header{"Set-Cookie": {"a=b"}}, "delivery;fwd=uri-miss;collapsed=?0;detail=uncacheable"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestSite(t)
			p := probe(s)
			b := &backend{body: "<p>x</p>", header: tt.header, delay: 300 * time.Millisecond}
			var first answer
			var wg sync.WaitGroup
			wg.Go(func() { first = ask(t, s, p, b.render, "GET", "/p.html") })
			time.Sleep(100 * time.Millisecond) // the first leads
			second := ask(t, s, p, b.render, "GET", "/p.html")
			wg.Wait()
			if first.cacheStatus() == second.cacheStatus() || second.cacheStatus() != tt.want {
				t.Fatalf("leader %q, waiter %q, want waiter %q", first.cacheStatus(), second.cacheStatus(), tt.want)
			}
		})
	}
}

// TestCacheStatusOfSSIPages: an assembled page carries its own file's
// status and, when not every part was a hit, its parts.
func TestCacheStatusOfSSIPages(t *testing.T) {
	s, _ := newTestSite(t)
	s.SSI = &SSIConfig{}
	p := probe(s)
	render := func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "text/html")
		switch r.URL.Path {
		case "/page.html":
			_, err := fmt.Fprint(w, `<p><!--#include virtual="/a.html" --><!--#include virtual="/b.html" --></p>`)
			return err
		default:
			_, err := fmt.Fprintf(w, "[%s]", r.URL.Path)
			return err
		}
	}
	ask(t, s, p, render, "GET", "/a.html")
	first := ask(t, s, p, render, "GET", "/page.html")
	if first.body != "<p>[/a.html][/b.html]</p>" {
		t.Fatalf("assembled %q", first.body)
	}
	if got, want := first.cacheStatus(), `delivery;fwd=uri-miss;stored;detail="parts: 1 hit, 1 miss"`; got != want {
		t.Errorf("page rendered, one part missing: %q, want %q", got, want)
	}
	if got := ask(t, s, p, render, "GET", "/page.html").cacheStatus(); got != "delivery;hit" {
		t.Errorf("page and parts cached: %q", got)
	}
	// A part removed (".old" copy) and served while it renders.
	if _, err := s.Store.Invalidate("b.html"); err != nil {
		t.Fatal(err)
	}
	s.RenderWait = 0
	a := ask(t, s, p, render, "GET", "/page.html")
	if got, want := a.cacheStatus(), `delivery;hit;detail="parts: 1 hit, 1 stale"`; got != want || a.header.Get(HeaderStale) != "1" {
		t.Errorf("part from its copy: %q stale=%q, want %q", got, a.header.Get(HeaderStale), want)
	}
}

// TestCacheStatusOff: no header, but the status is still reported.
func TestCacheStatusOff(t *testing.T) {
	s, _ := newTestSite(t)
	s.HideCacheStatus = true
	p := probe(s)
	b := &backend{body: "<p>x</p>", header: http.Header{HeaderCacheStatus: {"Souin;hit"}}}
	for i, want := range []string{"delivery;fwd=uri-miss;stored", "delivery;hit"} {
		a := ask(t, s, p, b.render, "GET", "/p.html")
		if len(a.reported) != 1 || a.reported[0] != want {
			t.Errorf("request %d reported %q, want %q", i, a.reported, want)
		}
		for _, v := range a.header.Values(HeaderCacheStatus) {
			if strings.Contains(v, CacheName) {
				t.Errorf("request %d: Cache-Status %q with cache_status off", i, v)
			}
		}
	}
}

// TestCacheStatusValues: the values are RFC 9651 lists with the
// parameters of RFC 9211, whatever a detail holds.
func TestCacheStatusValues(t *testing.T) {
	tests := []struct {
		c    CacheStatus
		want string
	}{
		{statusHit, "delivery;hit"},
		{forwarded(404, 1), "delivery;fwd=uri-miss;fwd-status=404;collapsed"},
		{renderFailed(502, false, true, 0), "delivery;hit;fwd=stale;fwd-status=502;detail=render-failed"},
		{renderFailed(504, true, false, -1), "delivery;fwd=uri-miss;collapsed=?0;detail=render-timeout"},
		{statusStored.withParts(partCounts{hit: 2, stale: 1}, true), `delivery;fwd=uri-miss;stored;detail="parts: 2 hit, 1 stale"`},
		{statusStaleBusy.withParts(partCounts{miss: 3}, false), `delivery;hit;fwd=stale;detail="busy; parts: 3 miss"`},
		{CacheStatus{detail: "bad\x01byte"}, "delivery"},
	}
	for _, tt := range tests {
		if got := tt.c.String(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.c, got, tt.want)
		}
		if _, err := httpsfv.UnmarshalList([]string{tt.c.String()}); err != nil {
			t.Errorf("%q: %v", tt.c.String(), err)
		}
	}
}

// TestCacheStatusOnHitsAllocatesNothing: the header and the report of a
// hit from memory are precomputed.
func TestCacheStatusOnHitsAllocatesNothing(t *testing.T) {
	s, root := newHitSite(t, 16<<20)
	var got any
	s.OnCacheStatus = func(_ *http.Request, c CacheStatus) { got = c.Value() }
	if err := os.WriteFile(filepath.Join(root, "p.html"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/p.html", nil)
	w := &discardResponse{h: http.Header{}}
	_ = s.ServeHTTP(w, req, nil) // fill
	allocs := testing.AllocsPerRun(1000, func() {
		clear(w.h)
		if err := s.ServeHTTP(w, req, nil); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 || got != "delivery;hit" || w.h.Get(HeaderCacheStatus) != "delivery;hit" {
		t.Fatalf("%.1f allocations per hit; reported %v, header %q", allocs, got, w.h.Get(HeaderCacheStatus))
	}
}
