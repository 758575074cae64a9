package cache

import (
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
)

// walkDocroot counts the regular files of a docroot the way an operator's
// du would, without the edge's internal folders.
func walkDocroot(t *testing.T, dir string) (files, bytes int64) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() && rel != "." && !strings.Contains(rel, string(filepath.Separator)) &&
			strings.HasPrefix(rel, InternalPrefix) {
			return fs.SkipDir
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		files++
		bytes += info.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files, bytes
}

// waitWalked waits for the start-up count of a store.
func waitWalked(t *testing.T, s *Store) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !s.size.walked.Load(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("start-up count never finished")
		}
	}
}

// sizedPages renders pages whose size depends on a version the test
// changes, so that a render again replaces a file by one of another size.
type sizedPages struct {
	mu    sync.Mutex
	sizes map[string]int
}

func (p *sizedPages) set(path string, n int) {
	p.mu.Lock()
	p.sizes[path] = n
	p.mu.Unlock()
}

func (p *sizedPages) render(w http.ResponseWriter, r *http.Request) error {
	if strings.Contains(r.URL.Path, "gone") {
		w.WriteHeader(http.StatusNotFound)
		return nil
	}
	p.mu.Lock()
	n := p.sizes[r.URL.Path]
	p.mu.Unlock()
	w.Header().Set("Content-Type", "text/html")
	w.Header().Set(HeaderDependencies, `"doc`+r.URL.Path+`"`)
	_, _ = w.Write([]byte(strings.Repeat("x", n)))
	return nil
}

func TestDocrootSizeFollowsEveryWrite(t *testing.T) {
	dir := t.TempDir()
	docroot := filepath.Join(dir, "docroot")
	// What is there before the start is counted by the start-up walk; the
	// operator's link, the temp folder and a rebuild's trash are not.
	writeDocroot(t, docroot, map[string]string{
		"old/a.html":             strings.Repeat("a", 700),
		"old/a.html.old":         strings.Repeat("b", 300),
		"top.html":               "top",
		TrashPrefix + "1/x.html": strings.Repeat("t", 999),
	}, map[string]string{"link.html": "top.html"})
	eng, err := Open(Options{DataDir: filepath.Join(dir, "data"), Logger: zap.NewNop(), HotBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	store, err := eng.Store(docroot)
	if err != nil {
		t.Fatal(err)
	}
	waitWalked(t, store)
	check := func(step string) {
		t.Helper()
		files, bytes := walkDocroot(t, docroot)
		if got := store.DocrootSize(); got.Files != files || got.Bytes != bytes {
			t.Fatalf("%s: counted %d files, %d bytes; the walk finds %d files, %d bytes", step, got.Files, got.Bytes, files, bytes)
		}
	}
	check("start")

	site := &Site{Store: store, RenderTimeout: 2 * time.Second, Precompress: true}
	p := &sizedPages{sizes: map[string]int{}}
	rng := rand.New(rand.NewPCG(1, 2))
	names := make([]string, 40)
	for i := range names {
		names[i] = fmt.Sprintf("/d%d/p%d.html", i%7, i)
		if i%9 == 0 {
			names[i] = fmt.Sprintf("/d%d/gone%d.html", i%7, i)
		}
	}
	for step := range 600 {
		name := names[rng.IntN(len(names))]
		file := name[1:]
		var op string
		switch rng.IntN(8) {
		case 0, 1, 2: // a request (a miss renders; a different size next time)
			op = "get"
			p.set(name, rng.IntN(3000))
			rec := httptest.NewRecorder()
			_ = site.ServeHTTP(rec, httptest.NewRequest("GET", name, nil), p.render)
		case 3:
			op = "invalidate"
			if _, err := store.Invalidate(file); err != nil {
				t.Fatal(err)
			}
		case 4:
			op = "rename to .old"
			dirs := batchDirs{}
			if _, err := store.renameToOld(dirs, file, time.Now().Add(time.Hour).UnixMilli()); err != nil {
				t.Fatal(err)
			}
			dirs.close()
		case 5:
			op = "purge"
			store.Purge(file)
		case 6:
			op = "leftovers"
			store.removeLeftovers(file, time.Now().Add(time.Hour))
		case 7:
			op = "keep as old"
			f, tmp, err := store.createTemp()
			if err != nil {
				t.Fatal(err)
			}
			_, _ = f.Write([]byte(strings.Repeat("o", rng.IntN(2000))))
			f.Close()
			if store.makeRoomFor(file) == nil {
				store.keepAsOld(tmp, file)
			} else {
				store.removeQuiet(tmp)
			}
		}
		if step%50 == 0 {
			store.bg.Wait() // renders finishing in the background
			check(fmt.Sprintf("step %d (%s %s)", step, op, name))
		}
	}
	store.bg.Wait()
	check("end")
	if got := store.DocrootSize(); got.Files < 5 {
		t.Fatalf("the mix left only %d files: it tests too little", got.Files)
	}
}

func TestDocrootSizeRecountAfterRebuildMove(t *testing.T) {
	dir := t.TempDir()
	docroot := filepath.Join(dir, "docroot")
	writeDocroot(t, docroot, map[string]string{"a.html": "aaaa", "b/c.html": "cc"}, nil)
	eng, err := Open(Options{DataDir: filepath.Join(dir, "data"), Logger: zap.NewNop(), HotBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	store, err := eng.Store(docroot)
	if err != nil {
		t.Fatal(err)
	}
	waitWalked(t, store)
	if got := store.DocrootSize(); got.Files != 2 || got.Bytes != 6 {
		t.Fatalf("counted %+v, want 2 files, 6 bytes", got)
	}
	if _, err := store.moveAside(TrashPrefix + "1"); err != nil {
		t.Fatal(err)
	}
	store.recountSize()
	store.bg.Wait()
	if got := store.DocrootSize(); got.Files != 0 || got.Bytes != 0 {
		t.Fatalf("after the move aside counted %+v, want nothing", got)
	}
}
