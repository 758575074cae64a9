package cache

import (
	"net/http"
	"testing"
	"time"
)

// readAfterWrite renders a page and reads it once more, so that an
// invalidation sends it to pre-generation.
func (f *engineFixture) readAfterWrite(path string) {
	f.t.Helper()
	f.get(path)
	time.Sleep(5 * time.Millisecond) // access times have millisecond resolution
	f.get(path)
	f.site.Store.reg.Sync()
}

// TestPregenerationThatCannotBeStoredFallsBackToRemoval: a pre-generation
// whose answer cannot be stored (not cacheable, a redirect, a refusal)
// leaves nothing new in place, so the invalidated file must not stay and
// be served: it is renamed to .old like after a failed render, and not
// counted as pre-generated.
func TestPregenerationThatCannotBeStoredFallsBackToRemoval(t *testing.T) {
	tests := []struct {
		name   string
		status int
		header http.Header
	}{
		{"Set-Cookie", http.StatusOK, http.Header{"Set-Cookie": {"session=1"}}},
		{"no-store", http.StatusOK, http.Header{"Cache-Control": {"no-store"}}},
		{"redirect", http.StatusMovedPermanently, http.Header{"Location": {"/elsewhere.html"}}},
		{"forbidden", http.StatusForbidden, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newEngineFixture(t, InvalidationConfig{Pregenerate: true})
			f.readAfterWrite("/s1.html")
			f.pages.set(func(p *pages) {
				p.version = 2
				p.extra["/s1.html"] = tt.header
			})
			f.pages.set(func(p *pages) { p.status = map[string]int{"/s1.html": tt.status} })
			f.apply(Change{Kind: DepDocument, ID: "story1", State: StatePublished})
			f.settle()
			if f.pages.count("/s1.html") != 2 {
				t.Fatalf("renders: %d, want the first and the pre-generation", f.pages.count("/s1.html"))
			}
			if body, ok := f.file("s1.html"); ok {
				t.Errorf("the invalidated file stays in place and is served: %q", body)
			}
			if body, ok := f.file("s1.html.old"); !ok || body != "/s1.html v1" {
				t.Errorf(".old copy: %q %v", body, ok)
			}
			if n := f.eng.Stats().Pregenerated; n != 0 {
				t.Errorf("counted as pre-generated: %d", n)
			}
		})
	}
}
