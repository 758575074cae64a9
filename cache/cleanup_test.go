package cache

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestLazyCleanupRemovesOrphanedCopies: once lazy cleanup finds a page
// gone, its precompressed copies go with its entry (they are served only
// next to the page they belong to), as does its .old copy.
func TestLazyCleanupRemovesOrphanedCopies(t *testing.T) {
	f := newEngineFixture(t, InvalidationConfig{LazyRemoval: 1 << 40})
	f.site.Precompress = true
	body := strings.Repeat("<p>compressible text</p>\n", 100)
	render := func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set(HeaderDependencies, `"story1"`)
		_, err := w.Write([]byte(body))
		return err
	}
	rec := httptest.NewRecorder()
	if err := f.site.ServeHTTP(rec, httptest.NewRequest("GET", "/p.html", nil), render); err != nil || rec.Code != 200 {
		t.Fatalf("render: %v %d", err, rec.Code)
	}
	dir := f.site.Store.Dir()
	for _, n := range []string{"p.html", "p.html.gz", "p.html.br"} {
		if !lexists(dir, n) {
			t.Fatalf("%s not written", n)
		}
	}
	f.site.Store.reg.Sync()
	f.apply(Change{Kind: DepDocument, ID: "story1", State: StatePublished})
	f.settle()
	if lexists(dir, "p.html") || !lexists(dir, "p.html.old") {
		t.Fatal("p.html not renamed to .old")
	}
	// An entry younger than the cleaner's minimum age is left alone: its
	// file may be on its way into place.
	if n, err := f.eng.Cleanup(context.Background(), 0); err != nil || n != 0 {
		t.Fatalf("cleanup of a fresh entry: %d entries, %v", n, err)
	}
	f.eng.cleaner.minAge = 0
	n, err := f.eng.Cleanup(context.Background(), 0)
	if err != nil || n != 1 {
		t.Fatalf("cleanup: %d entries, %v", n, err)
	}
	for _, n := range []string{"p.html.old", "p.html.gz", "p.html.br"} {
		if lexists(dir, n) {
			t.Errorf("%s left after the cleanup removed the page's entry", n)
		}
	}
}
