package cache

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
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

// storyPages names n pages (/p0.html …) that depend on story1.
func (f *engineFixture) storyPages(n int) []string {
	var names []string
	for i := range n {
		names = append(names, fmt.Sprintf("/p%d.html", i))
	}
	f.pages.set(func(p *pages) {
		for _, n := range names {
			p.deps[n] = `"story1"`
		}
	})
	return names
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

// TestPregenerationSkipsDocrootsWithoutRenderer: the jobs of a docroot
// without a renderer (no config serves it yet) do not hold up the jobs
// of other docroots queued behind them; they wait, parked, and run once
// the docroot gets a renderer.
func TestPregenerationSkipsDocrootsWithoutRenderer(t *testing.T) {
	f := newEngineFixture(t, InvalidationConfig{Pregenerate: true, Workers: 2})
	// Docroot A is the fixture's, its renderer taken away; B comes second.
	a := f.site
	a.Store.SetRenderer(nil, "")
	bStore, err := f.eng.Store(filepath.Join(t.TempDir(), "b"))
	if err != nil {
		t.Fatal(err)
	}
	b := &Site{Store: bStore, RenderTimeout: 2 * time.Second}
	bStore.SetRenderer(siteRenderer{b, f.pages}, "")
	names := f.storyPages(10)
	for _, s := range []*Site{a, b} {
		for _, n := range names {
			for range 2 { // written, then read: pre-generated when invalidated
				rec := httptest.NewRecorder()
				if err := s.ServeHTTP(rec, httptest.NewRequest("GET", n, nil), f.pages.render); err != nil {
					t.Fatal(err)
				}
				time.Sleep(2 * time.Millisecond)
			}
		}
	}
	a.Store.reg.Sync()
	f.pages.set(func(p *pages) { p.version = 2 })
	f.apply(Change{Kind: DepDocument, ID: "story1", State: StatePublished})
	body := func(s *Site, n string) string {
		b, _ := os.ReadFile(filepath.Join(s.Store.Dir(), n))
		return string(b)
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 5s (stats %+v)", what, f.eng.Stats())
			}
		}
	}
	waitFor("docroot B pre-generated behind A's jobs", func() bool {
		for _, n := range names {
			if body(b, n[1:]) != n+" v2" {
				return false
			}
		}
		return true
	})
	// B's finished jobs leave the queue with the committer's next batch.
	waitFor("A's jobs alone waiting", func() bool { return f.eng.Stats().PregenQueue == len(names) })
	for _, n := range names {
		if got := body(a, n[1:]); got != n+" v1" {
			t.Fatalf("A's %s without a renderer: %q", n, got)
		}
	}
	a.Store.SetRenderer(siteRenderer{a, f.pages}, "")
	waitFor("docroot A pre-generated once it has a renderer", func() bool {
		for _, n := range names {
			if body(a, n[1:]) != n+" v2" {
				return false
			}
		}
		return f.eng.Stats().PregenQueue == 0
	})
}
