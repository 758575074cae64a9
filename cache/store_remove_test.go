package cache

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// newObservedSite is a Site without a hot set whose log is kept for the
// test to read.
func newObservedSite(t *testing.T) (*Site, string, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.InfoLevel)
	dir := t.TempDir()
	eng, err := Open(Options{DataDir: filepath.Join(dir, "data"), Logger: zap.New(core), HotBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	store, err := eng.Store(filepath.Join(dir, "docroot"))
	if err != nil {
		t.Fatal(err)
	}
	return &Site{Store: store, RenderTimeout: 2 * time.Second}, store.Dir(), logs
}

func writeDocroot(t *testing.T, root string, files map[string]string, links map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if body == "/" {
			if err := os.Mkdir(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, filepath.FromSlash(name))); err != nil {
			t.Fatal(err)
		}
	}
}

func lexists(root, name string) bool {
	_, err := os.Lstat(filepath.Join(root, filepath.FromSlash(name)))
	return err == nil
}

// TestGoneRemovesOnlyTheEdgesOwnFiles: a backend 404 for a miss removes
// the regular files the edge wrote for exactly that name (page, .old,
// .gz, .br) and nothing else: no link, no folder, nothing reached through
// a link; a path with a file in the way of a folder is passed through.
// None of it is worth a warning.
func TestGoneRemovesOnlyTheEdgesOwnFiles(t *testing.T) {
	tests := []struct {
		name    string
		target  string
		files   map[string]string
		links   map[string]string
		status  int      // the answer; 0: the backend's 404
		renders int64    // backend calls the request makes
		gone    []string // removed by the 404
		kept    []string
	}{
		{
			name:   "file in the way of a folder",
			target: "/politik/story100.html/x1",
			files:  map[string]string{"politik/story100.html": "story", "politik/story100.html.old": "old"},
			kept:   []string{"politik/story100.html", "politik/story100.html.old"}, renders: 1,
		},
		{
			name:   "deeper under a file",
			target: "/politik/story100.html/a/b/c.html",
			files:  map[string]string{"politik/story100.html": "story"},
			kept:   []string{"politik/story100.html"}, renders: 1,
		},
		{
			name:   "stale copy of a gone page", // served while the background render finds it gone
			target: "/p.html",
			files:  map[string]string{"p.html.old": "old", "p.html.gz": "gz", "p.html.br": "br"},
			gone:   []string{"p.html.old", "p.html.gz", "p.html.br"}, status: 200, renders: 1,
		},
		{
			name:   "copies of a gone page",
			target: "/c.html",
			files:  map[string]string{"c.html.gz": "gz", "c.html.br": "br", "sub/c.html": "other"},
			gone:   []string{"c.html.gz", "c.html.br"}, kept: []string{"sub/c.html"}, renders: 1,
		},
		{
			name:   "dangling link at the name",
			target: "/l.html",
			links:  map[string]string{"l.html": "missing.html"},
			kept:   []string{"l.html"}, renders: 1,
		},
		{
			name:   "links next to the name",
			target: "/q.html",
			files:  map[string]string{"keep.old": "k", "keep.gz": "g"},
			links:  map[string]string{"q.html.old": "keep.old", "q.html.gz": "keep.gz"},
			kept:   []string{"q.html.old", "q.html.gz", "keep.old", "keep.gz"}, renders: 1,
		},
		{
			name:   "folder at the name",
			target: "/empty",
			files:  map[string]string{"empty": "/"},
			kept:   []string{"empty"}, renders: 1,
		},
		{
			name:   "under a link to a folder",
			target: "/e/x.html",
			files:  map[string]string{"sub/x.html.old": "old"},
			links:  map[string]string{"e": "sub"},
			kept:   []string{"e", "sub/x.html.old"}, renders: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, root, logs := newObservedSite(t)
			writeDocroot(t, root, tt.files, tt.links)
			b := &backend{status: 404, body: "not here"}
			rec := serve(t, s, b, "GET", tt.target)
			s.Store.bg.Wait()
			want := tt.status
			if want == 0 {
				want = 404
			}
			if rec.Code != want {
				t.Errorf("status %d, want %d", rec.Code, want)
			}
			if n := b.renders.Load(); n != tt.renders {
				t.Errorf("%d renders, want %d", n, tt.renders)
			}
			for _, name := range tt.gone {
				if lexists(root, name) {
					t.Errorf("%s left after 404", name)
				}
			}
			for _, name := range tt.kept {
				if !lexists(root, name) {
					t.Errorf("%s removed by 404", name)
				}
			}
			if w := logs.FilterLevelExact(zapcore.WarnLevel).All(); len(w) > 0 {
				t.Errorf("warnings: %v", w)
			}
			if e := logs.FilterLevelExact(zapcore.ErrorLevel).All(); len(e) > 0 {
				t.Errorf("errors: %v", e)
			}
		})
	}
}

// TestPurgeTouchesOnlyRegularFiles: Purge (a document removed, or gone at
// the backend) deletes regular files only, and none through a link.
func TestPurgeTouchesOnlyRegularFiles(t *testing.T) {
	s, root, logs := newObservedSite(t)
	writeDocroot(t, root,
		map[string]string{"a.html": "a", "a.html.old": "o", "sub/b.html": "b", "sub/b.html.old": "bo", "dir.html": "/",
			"f": "file"},
		map[string]string{"l.html": "a.html", "e": "sub"})
	for _, name := range []string{"a.html", "l.html", "e/b.html", "dir.html", "f/x.html", "f/x/y.html", "none.html"} {
		s.Store.Purge(name)
	}
	for name, want := range map[string]bool{"a.html": false, "a.html.old": false, "l.html": true,
		"sub/b.html": true, "sub/b.html.old": true, "e": true, "dir.html": true, "f": true} {
		if got := lexists(root, name); got != want {
			t.Errorf("%s exists = %v, want %v", name, got, want)
		}
	}
	if w := logs.FilterLevelExact(zapcore.WarnLevel).All(); len(w) > 0 {
		t.Errorf("warnings: %v", w)
	}
}
