package cache

import (
	"net/http/httptest"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// indexKeys counts the registry's reverse-index and expiry keys as stored,
// including keys of removed files that wait for the sweep.
func indexKeys(t *testing.T, r *Registry) int {
	t.Helper()
	n := 0
	_ = r.DB().View(func(tx *bolt.Tx) error {
		n = tx.Bucket([]byte("index")).Stats().KeyN + tx.Bucket([]byte("expiry")).Stats().KeyN
		return nil
	})
	return n
}

// findFiles lists the files that depend on name (of the given kind).
func findFiles(t *testing.T, r *Registry, kind DepKind, name string) []string {
	t.Helper()
	var files []string
	if err := r.Find(kind, name, func(id FileID, _ Dependency) bool {
		files = append(files, id.File)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	return files
}

// TestEngineRemovalRetiresAndSweeps: a removal batch takes the entries
// out of every read at once; the idle sweep then deletes them and their
// index keys, and a consistency check is clean at both moments.
func TestEngineRemovalRetiresAndSweeps(t *testing.T) {
	f := newEngineFixture(t, InvalidationConfig{})
	f.ensure("/s1.html", "/teaser-s1.html", "/list.html", "/s2.html")
	keys := indexKeys(t, f.eng.reg)
	f.apply(Change{Kind: DepDocument, ID: "story1", State: StatePublished})
	f.settle()
	if got := findFiles(t, f.eng.reg, DepDocument, "story1"); len(got) != 0 {
		t.Fatalf("removed files still depend on story1: %v", got)
	}
	for deadline := time.Now().Add(5 * time.Second); f.eng.reg.Retired() > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("sweep did not finish: %d retired", f.eng.reg.Retired())
		}
	}
	if got := indexKeys(t, f.eng.reg); got >= keys || got == 0 {
		t.Fatalf("index keys after the sweep %d (before %d): the removed files' keys should be gone, s2's kept", got, keys)
	}
	rep, err := f.eng.Check(nil)
	if err != nil || rep.Problems() != 0 || rep.Entries != 1 || rep.RetiredEntries+rep.RetiredKeys != 0 {
		t.Fatalf("check after the sweep: %v %v", rep, err)
	}
	// The removed pages render again on the next request and are found again.
	f.ensure("/s1.html")
	if got := findFiles(t, f.eng.reg, DepDocument, "story1"); len(got) != 1 {
		t.Fatalf("re-rendered page's dependencies: %v", got)
	}
}

// TestRemovalBatchKeepsDocrootsApart: one removal batch with files of the
// same folder name in two docroots renames both; a folder opened for one
// docroot is never used for the other's file.
func TestRemovalBatchKeepsDocrootsApart(t *testing.T) {
	f := newEngineFixture(t, InvalidationConfig{})
	other, err := f.eng.Store(filepath.Join(t.TempDir(), "docroot2"))
	if err != nil {
		t.Fatal(err)
	}
	site2 := &Site{Store: other, RenderTimeout: 2 * time.Second}
	f.pages.set(func(p *pages) { p.deps["/a/x.html"] = `"story1"` })
	for _, s := range []*Site{f.site, site2} {
		rec := httptest.NewRecorder()
		if err := s.ServeHTTP(rec, httptest.NewRequest("GET", "/a/x.html", nil), f.pages.render); err != nil || rec.Code != 200 {
			t.Fatalf("render in %s: %v %d", s.Store.Dir(), err, rec.Code)
		}
	}
	f.site.Store.reg.Sync()
	f.apply(Change{Kind: DepDocument, ID: "story1", State: StatePublished})
	f.settle()
	for _, s := range []*Site{f.site, site2} {
		if lexists(s.Store.Dir(), "a/x.html") || !lexists(s.Store.Dir(), "a/x.html.old") {
			t.Errorf("%s: a/x.html not renamed to .old (file %v, .old %v)", s.Store.Dir(),
				lexists(s.Store.Dir(), "a/x.html"), lexists(s.Store.Dir(), "a/x.html.old"))
		}
		if _, ok, _ := f.eng.reg.Get(s.Store.ID("a/x.html")); ok {
			t.Errorf("%s: entry of a/x.html still visible after its removal", s.Store.Dir())
		}
	}
}
