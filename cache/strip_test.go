package cache

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestEveryAnswerStripsDeliveryHeaders: no answer of the cache carries a
// Delivery-* header the backend sent, whatever its way through the cache —
// requests never cached, uncacheable answers, readers who waited for a
// render that could not be stored and then got their own, and header
// names the edge does not know.
func TestEveryAnswerStripsDeliveryHeaders(t *testing.T) {
	backendHeaders := http.Header{
		HeaderDependencies: {`"story1"`},
		HeaderCacheKeys:    {`"k"`},
		HeaderPregenerate:  {"?1"},
		"Delivery-Unknown": {"x"},
		HeaderStale:        {"1"}, // the backend's own, not the edge's
		"Content-Type":     {"text/html"},
	}
	uncacheable := backendHeaders.Clone()
	uncacheable.Set("Set-Cookie", "a=b")
	tests := []struct {
		name, method, target string
		header               http.Header
		status               int
	}{
		{"POST", "POST", "/a/page.html", backendHeaders, 200},
		{"URL that cannot be a file", "GET", "/a/page.html?unknown=1", backendHeaders, 200},
		{"encoded slash", "GET", "/a%2Fb.html", backendHeaders, 200},
		{"cacheable render streamed", "GET", "/a/page.html", backendHeaders, 200},
		{"uncacheable answer", "GET", "/a/cookie.html", uncacheable, 200},
		{"redirect", "GET", "/a/moved.html", backendHeaders, 302},
		{"5xx without a copy", "GET", "/a/broken.html", backendHeaders, 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestSite(t)
			b := &backend{body: "<html>page</html>", header: tt.header, status: tt.status}
			rec := serve(t, s, b, tt.method, tt.target)
			for k := range rec.Header() {
				if strings.HasPrefix(strings.ToLower(k), "delivery-") {
					t.Errorf("answer carries %s: %v", k, rec.Header()[k])
				}
			}
		})
	}
}

// TestWaitersOfAnUncacheableRenderGetNoDeliveryHeaders: readers who waited
// for a render whose answer could not be stored are sent to the backend
// each on their own; their answers lose the Delivery-* headers too.
func TestWaitersOfAnUncacheableRenderGetNoDeliveryHeaders(t *testing.T) {
	s, _ := newTestSite(t)
	b := &backend{body: "<html>page</html>", delay: 300 * time.Millisecond, header: http.Header{
		"Set-Cookie": {"a=b"}, "Delivery-Unknown": {"x"}, HeaderDependencies: {`"d"`},
	}}
	var wg sync.WaitGroup
	recs := make([]*httptest.ResponseRecorder, 4)
	for i := range recs {
		wg.Go(func() { recs[i] = serve(t, s, b, "GET", "/a/cookie.html") })
		time.Sleep(20 * time.Millisecond)
	}
	wg.Wait()
	if n := b.renders.Load(); n < 2 {
		t.Fatalf("%d renders: the waiters did not get their own", n)
	}
	for i, rec := range recs {
		for k := range rec.Header() {
			if strings.HasPrefix(strings.ToLower(k), "delivery-") {
				t.Errorf("reader %d: answer carries %s", i, k)
			}
		}
	}
}

// TestMalformedDeliveryHeaderLoggedOncePerURL: an answer refused for a
// malformed Delivery-* header is logged once per URL, not on every render.
func TestMalformedDeliveryHeaderLoggedOncePerURL(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	s, _ := newTestSiteLogged(t, zap.New(core))
	b := &backend{body: "<html>page</html>", header: http.Header{HeaderDependencies: {`"unterminated`}}}
	for range 3 {
		serve(t, s, b, "GET", "/a/bad.html")
		serve(t, s, b, "GET", "/a/other.html")
	}
	if n := b.renders.Load(); n != 6 {
		t.Fatalf("%d renders, want 6 (nothing stored)", n)
	}
	warn := logs.FilterLevelExact(zapcore.WarnLevel).FilterMessageSnippet("malformed")
	if n := warn.Len(); n != 2 {
		t.Fatalf("%d warnings for two URLs rendered three times each, want 2: %v", n, warn.All())
	}
}
