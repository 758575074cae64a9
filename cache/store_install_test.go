package cache

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestInstallPlacesPageCopiesAndOld: install puts the page and its
// precompressed copies in place and removes the ".old" copy, whether the
// folder exists (by descriptor on Linux) or must be created (the os.Root
// way); a folder or a link at the name is a conflict that changes nothing.
func TestInstallPlacesPageCopiesAndOld(t *testing.T) {
	s, root := newHitSite(t, -1)
	s.Store.precompressed.Store(true)
	write := func(name, body string) {
		t.Helper()
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	temp := func(body string) string {
		t.Helper()
		f, name, err := s.Store.createTemp()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString(body); err != nil {
			t.Fatal(err)
		}
		f.Close()
		return name
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			return "<none>"
		}
		return string(b)
	}
	for _, tc := range []struct {
		name, file string
		prepare    func()
		gzip       bool
		conflict   bool
	}{
		{name: "folder exists", file: "a/b/p.html", prepare: func() { write("a/b/p.html.old", "old"); write("a/b/p.html.br", "stale br") }, gzip: true},
		{name: "folder missing", file: "new/p.html"},
		{name: "top level", file: "top.html", prepare: func() { write("top.html.old", "old") }},
		{name: "folder at the name", file: "c/d.html", prepare: func() { write("c/d.html/x", "x") }, conflict: true},
		{name: "link at the name", file: "e/l.html", prepare: func() {
			write("e/target.html", "target")
			if err := os.Symlink("target.html", filepath.Join(root, "e/l.html")); err != nil {
				t.Fatal(err)
			}
		}, gzip: true, conflict: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.prepare != nil {
				tc.prepare()
			}
			var v precompressed
			if tc.gzip {
				v.gzip = temp("gz")
			}
			err := s.Store.install(temp("page"), tc.file, v)
			if tc.conflict {
				if !errors.Is(err, errConflict) {
					t.Fatalf("install: %v, want a conflict", err)
				}
				if got := read(tc.file + GzipSuffix); got != "<none>" {
					t.Errorf("gzip copy installed next to a conflict: %q", got)
				}
				if tc.name == "link at the name" && read(tc.file) != "target" {
					t.Errorf("the link was replaced")
				}
				if left, _ := os.ReadDir(filepath.Join(root, TempDir)); len(left) != 1 {
					t.Errorf("%d files left in the temp folder, want the page's only (the render removes it)", len(left))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := read(tc.file); got != "page" {
				t.Errorf("page %q", got)
			}
			if got := read(tc.file + OldSuffix); got != "<none>" {
				t.Errorf(".old copy left: %q", got)
			}
			if got, want := read(tc.file+GzipSuffix), map[bool]string{true: "gz", false: "<none>"}[tc.gzip]; got != want {
				t.Errorf("gzip copy %q, want %q", got, want)
			}
			if got := read(tc.file + BrotliSuffix); got != "<none>" {
				t.Errorf("stale brotli copy left: %q", got)
			}
		})
		// The temp files of a conflict are the render's to remove.
		entries, _ := os.ReadDir(filepath.Join(root, TempDir))
		for _, e := range entries {
			os.Remove(filepath.Join(root, TempDir, e.Name()))
		}
	}
}
