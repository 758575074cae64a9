package cache

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// removedPage renders /p.html as v1, then removes it (renamed to .old) and
// makes the backend answer v2 after delay.
func removedPage(t *testing.T, wait, delay time.Duration) (*Site, *backend) {
	t.Helper()
	s, _ := newTestSite(t)
	s.RenderWait = wait
	b := &backend{body: "v1"}
	if rec := serve(t, s, b, "GET", "/p.html"); rec.Body.String() != "v1" {
		t.Fatalf("first render: %d %q", rec.Code, rec.Body)
	}
	if _, err := s.Store.Invalidate("p.html"); err != nil {
		t.Fatal(err)
	}
	b.set(func(b *backend) { b.body, b.delay = "v2", delay })
	return s, b
}

// TestRenderWaitFirstReaderGetsNewVersion: the request that finds only the
// .old copy renders and gets the new page, not marked stale, and the copy
// is gone.
func TestRenderWaitFirstReaderGetsNewVersion(t *testing.T) {
	s, b := removedPage(t, 2*time.Second, 100*time.Millisecond)
	rec := serve(t, s, b, "GET", "/p.html")
	if rec.Code != 200 || rec.Body.String() != "v2" || rec.Header().Get(HeaderStale) != "" {
		t.Fatalf("first reader after the removal: %d %q stale=%q", rec.Code, rec.Body, rec.Header().Get(HeaderStale))
	}
	if s.exists("p.html.old") || !s.exists("p.html") {
		t.Fatal("the new file must be in place and .old gone")
	}
	if n := b.renders.Load(); n != 2 {
		t.Fatalf("renders = %d, want 2", n)
	}
}

// TestRenderWaitOthersGetOldAtOnce: while the first reader's render runs,
// the next readers get the .old copy at once, marked stale.
func TestRenderWaitOthersGetOldAtOnce(t *testing.T) {
	s, b := removedPage(t, 5*time.Second, 600*time.Millisecond)
	var wg sync.WaitGroup
	var first *httptest.ResponseRecorder
	wg.Go(func() { first = serve(t, s, b, "GET", "/p.html") })
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	second := serve(t, s, b, "GET", "/p.html")
	took := time.Since(start)
	wg.Wait()
	if first.Body.String() != "v2" || first.Header().Get(HeaderStale) != "" {
		t.Fatalf("first: %q stale=%q", first.Body, first.Header().Get(HeaderStale))
	}
	if second.Body.String() != "v1" || second.Header().Get(HeaderStale) != "1" || took > 400*time.Millisecond {
		t.Fatalf("second: %q stale=%q after %v (want the copy at once)", second.Body, second.Header().Get(HeaderStale), took)
	}
	if n := b.renders.Load(); n != 2 {
		t.Fatalf("renders = %d, want 2", n)
	}
}

// TestRenderWaitBounded: a render slower than RenderWait leaves the waiting
// reader with the copy; the render goes on and lands.
func TestRenderWaitBounded(t *testing.T) {
	s, b := removedPage(t, 150*time.Millisecond, 700*time.Millisecond)
	rec := serve(t, s, b, "GET", "/p.html")
	if rec.Body.String() != "v1" || rec.Header().Get(HeaderStale) != "1" {
		t.Fatalf("after render_wait: %q stale=%q", rec.Body, rec.Header().Get(HeaderStale))
	}
	s.Store.bg.Wait()
	if rec := serve(t, s, b, "GET", "/p.html"); rec.Body.String() != "v2" || s.exists("p.html.old") {
		t.Fatalf("the render did not land: %q", rec.Body)
	}
}

// TestRenderWaitOutcomes: the render's outcome reaches the reader that
// waited: 404/410 pass on (file and .old deleted), 5xx gives the copy.
func TestRenderWaitOutcomes(t *testing.T) {
	for _, tc := range []struct {
		status    int
		wantCode  int
		wantBody  string
		wantStale string
		oldKept   bool
	}{
		{status: 404, wantCode: 404},
		{status: 410, wantCode: 410},
		{status: 503, wantCode: 200, wantBody: "v1", wantStale: "1", oldKept: true},
		{status: 500, wantCode: 200, wantBody: "v1", wantStale: "1", oldKept: true},
	} {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			s, b := removedPage(t, 2*time.Second, 50*time.Millisecond)
			b.set(func(b *backend) { b.status = tc.status })
			rec := serve(t, s, b, "GET", "/p.html")
			if rec.Code != tc.wantCode || rec.Header().Get(HeaderStale) != tc.wantStale ||
				tc.wantBody != "" && rec.Body.String() != tc.wantBody {
				t.Fatalf("got %d %q stale=%q", rec.Code, rec.Body, rec.Header().Get(HeaderStale))
			}
			if s.exists("p.html.old") != tc.oldKept || s.exists("p.html") {
				t.Fatalf(".old kept=%v, file=%v", s.exists("p.html.old"), s.exists("p.html"))
			}
		})
	}
}

// TestRenderWaitZeroKeepsGraceMode: RenderWait 0 answers every request
// from the copy at once.
func TestRenderWaitZeroKeepsGraceMode(t *testing.T) {
	s, b := removedPage(t, 0, 300*time.Millisecond)
	start := time.Now()
	rec := serve(t, s, b, "GET", "/p.html")
	if rec.Body.String() != "v1" || rec.Header().Get(HeaderStale) != "1" || time.Since(start) > 200*time.Millisecond {
		t.Fatalf("render_wait 0: %q stale=%q after %v", rec.Body, rec.Header().Get(HeaderStale), time.Since(start))
	}
	s.Store.bg.Wait()
}

// TestRenderWaitSSIPart: a part found only as .old is rendered and waited
// for by the assembly that starts it; a slow one stays the copy and marks
// the page stale.
func TestRenderWaitSSIPart(t *testing.T) {
	for _, tc := range []struct {
		name      string
		delay     time.Duration
		wantPart  string
		wantStale string
	}{
		{name: "in time", delay: 50 * time.Millisecond, wantPart: "part v2", wantStale: ""},
		{name: "too slow", delay: 800 * time.Millisecond, wantPart: "part v1", wantStale: "1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSSISite(t, 4)
			s.RenderWait = 300 * time.Millisecond
			b := newSSIPages(map[string]string{
				"/page.html": `<p>page <!--#include virtual="/part.html" --></p>`,
				"/part.html": "part v1",
			})
			get := func() *httptest.ResponseRecorder {
				rec := httptest.NewRecorder()
				if err := s.ServeHTTP(rec, httptest.NewRequest("GET", "/page.html", nil), b.render); err != nil {
					t.Fatal(err)
				}
				return rec
			}
			if rec := get(); !strings.Contains(rec.Body.String(), "part v1") {
				t.Fatalf("cold page: %q", rec.Body)
			}
			if _, err := s.Store.Invalidate("part.html"); err != nil {
				t.Fatal(err)
			}
			b.set("/part.html", "part v2")
			b.mu.Lock()
			b.delay = tc.delay
			b.mu.Unlock()
			rec := get()
			body := rec.Body.String()
			if !strings.Contains(body, tc.wantPart) || rec.Header().Get(HeaderStale) != tc.wantStale {
				t.Fatalf("page: %q stale=%q", body, rec.Header().Get(HeaderStale))
			}
			if cl := rec.Header().Get("Content-Length"); cl != "" && cl != itoa(int64(len(body))) {
				t.Fatalf("Content-Length %s for %d bytes", cl, len(body))
			}
			s.Store.bg.Wait()
		})
	}
}
