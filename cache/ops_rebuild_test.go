package cache

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func (f *engineFixture) check() CheckReport {
	f.t.Helper()
	rep, err := f.eng.Check(nil)
	if err != nil {
		f.t.Fatal(err)
	}
	return rep
}

// TestRepair: dangling entries, unregistered files and bad index keys
// are repaired; a file written after the check started is left alone.
func TestRepair(t *testing.T) {
	f := newEngineFixture(t, InvalidationConfig{})
	f.ensure("/s1.html", "/s2.html", "/list.html")
	dir := f.site.Store.Dir()
	// Dangling: s1's file gone behind the edge's back.
	if err := os.Remove(filepath.Join(dir, "s1.html")); err != nil {
		t.Fatal(err)
	}
	// Unregistered: a file nothing could invalidate, and one that a render
	// will have written after the check started.
	for _, name := range []string{"stray.html", "later.html"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Bad index: a key of an entry that does not exist.
	if err := f.eng.Registry().DB().Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("index")).Put(append([]byte("dnowhere\x00\x00\x01"), "ghost.html"...), []byte{0, 2})
	}); err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	rep := f.check()
	if len(rep.Dangling) != 1 || len(rep.Unregistered) != 2 || len(rep.BadIndex) != 1 || len(rep.DanglingIDs) != 1 ||
		len(rep.UnregisteredIDs) != 2 || rep.DanglingIDs[0] != f.site.Store.ID("s1.html") {
		t.Fatalf("check: %+v", rep)
	}
	future := started.Add(time.Minute)
	if err := os.Chtimes(filepath.Join(dir, "later.html"), future, future); err != nil {
		t.Fatal(err)
	}
	res, err := f.eng.Repair(t.Context(), rep, started, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.DanglingRemoved != 1 || res.UnregisteredRenamed != 1 || res.Index.Removed != 1 || res.Skipped != 1 {
		t.Fatalf("repair %+v", res)
	}
	if _, ok := f.file("stray.html.old"); !ok {
		t.Error("the unregistered file was not renamed to .old")
	}
	if _, ok := f.file("later.html"); !ok {
		t.Error("a file written after the check started was touched")
	}
	os.Remove(filepath.Join(dir, "later.html"))
	if rep := f.check(); rep.Problems() != 0 {
		t.Fatalf("after the repair: %s", rep)
	}
	if got := f.get("/s1.html"); !strings.HasPrefix(got, "/s1.html v") {
		t.Fatalf("s1 after the repair: %q", got)
	}
}

// TestRebuild: the docroot is emptied (the operator's link stays), the
// registry and queues forget what was there, the moved content is
// deleted, and pages render again on request; the flush log survives.
func TestRebuild(t *testing.T) {
	f := newEngineFixture(t, InvalidationConfig{})
	f.pages.set(func(p *pages) {
		for i := range 30 {
			p.deps[fmt.Sprintf("/sec%d/p%d.html", i%3, i)] = `"story1"`
		}
	})
	var paths []string
	for i := range 30 {
		paths = append(paths, fmt.Sprintf("/sec%d/p%d.html", i%3, i))
	}
	f.ensure(append(paths, "/s1.html")...)
	dir := f.site.Store.Dir()
	if err := os.Symlink("/etc", filepath.Join(dir, "operator-link")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.eng.Flush("k", "g", 1000, nil); err != nil {
		t.Fatal(err)
	}
	defer f.holdPregeneration()()
	if _, err := f.eng.PurgeFile(f.site.Store, "s1.html", PurgePregenerate); err != nil {
		t.Fatal(err)
	}
	p := &countingProgress{}
	res, err := f.eng.Rebuild(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Docroots) != 1 || res.Docroots[0].Moved != 4 || res.Cleared.Entries != 31 || res.Cleared.Jobs != 1 ||
		res.Deleted != 31 || res.KeptLinks != 0 {
		t.Fatalf("rebuild %+v", res)
	}
	if !slices.Equal(p.phases, []string{"move", "registry", "trash"}) {
		t.Errorf("phases %v", p.phases)
	}
	ents, _ := os.ReadDir(dir)
	var left []string
	for _, e := range ents {
		left = append(left, e.Name())
	}
	if want := []string{TempDir, "operator-link"}; !slices.Equal(left, want) {
		t.Fatalf("docroot holds %v, want %v", left, want)
	}
	if n, _ := f.eng.Registry().EntryCount(); n != 0 {
		t.Fatalf("%d entries left", n)
	}
	if st := f.eng.Stats(); st.RemovalQueue+st.PregenQueue != 0 {
		t.Fatalf("queues %+v", st)
	}
	if fl, _ := f.eng.FlushesSince("g", 0); len(fl) != 1 {
		t.Fatalf("flush log %v", fl)
	}
	// Served again by rendering.
	n := f.pages.count("/sec1/p1.html")
	if got := f.get("/sec1/p1.html"); !strings.HasPrefix(got, "/sec1/p1.html") || f.pages.count("/sec1/p1.html") != n+1 {
		t.Fatalf("after the rebuild: %q", got)
	}
	f.site.Store.reg.Sync()
	if rep := f.check(); rep.Problems() != 0 || rep.Files != 1 {
		t.Fatalf("check after the rebuild: %s", rep)
	}
}

// TestRebuildWithRendersUnderWay: a render that runs while the docroot is
// moved aside never leaves a file nothing could invalidate; the hot set
// forgets the files that went.
func TestRebuildWithRendersUnderWay(t *testing.T) {
	f := newEngineFixture(t, InvalidationConfig{})
	f.ensure("/s2.html")
	f.get("/s2.html") // into the hot set
	if f.site.Store.hot.Stats().Fills == 0 {
		t.Fatal("s2 not in memory")
	}
	release := make(chan struct{})
	started := make(chan struct{})
	slow := func(w http.ResponseWriter, r *http.Request) error {
		if r.URL.Path == "/s1.html" {
			close(started)
			<-release
		}
		return f.pages.render(w, r)
	}
	done := make(chan int)
	go func() {
		rec := httptest.NewRecorder()
		_ = f.site.ServeHTTP(rec, httptest.NewRequest("GET", "/s1.html", nil), slow)
		done <- rec.Code
	}()
	<-started
	if _, err := f.eng.Rebuild(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	close(release)
	<-done
	f.site.Store.reg.Sync()
	if _, ok := f.file("s1.html"); ok {
		t.Fatal("the render under way installed its page after the rebuild")
	}
	if _, found, _ := f.eng.Registry().Get(f.site.Store.ID("s1.html")); found {
		t.Fatal("the render under way recorded an entry")
	}
	if rep := f.check(); rep.Problems() != 0 {
		t.Fatalf("check: %s", rep)
	}
	// s2 is not answered from memory: it renders again.
	n := f.pages.count("/s2.html")
	f.get("/s2.html")
	if f.pages.count("/s2.html") != n+1 {
		t.Fatal("s2 was served from the hot set after the rebuild")
	}
}

// TestCheckSkipsTrash: a rebuild's trash left behind (a crash) is not a
// finding, and the next rebuild deletes it.
func TestCheckSkipsTrash(t *testing.T) {
	f := newEngineFixture(t, InvalidationConfig{})
	f.ensure("/s1.html")
	trash := filepath.Join(f.site.Store.Dir(), TrashPrefix+"123", "sec")
	if err := os.MkdirAll(trash, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(trash, "x.html"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if rep := f.check(); rep.Problems() != 0 {
		t.Fatalf("check: %s", rep)
	}
	res, err := f.eng.Rebuild(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Deleted != 2 {
		t.Fatalf("deleted %d, want the page and the old trash's file", res.Deleted)
	}
	if _, err := os.Stat(filepath.Join(f.site.Store.Dir(), TrashPrefix+"123")); !os.IsNotExist(err) {
		t.Fatalf("old trash: %v", err)
	}
}
