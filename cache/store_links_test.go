package cache

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// linkDocroot lays out a docroot with internal files and the symbolic links
// an operator might make to them (or to ordinary pages).
func linkDocroot(t *testing.T, root string) {
	t.Helper()
	files := map[string]string{
		"page.html":              "page",
		"page.html.old":          "old copy",
		"page.html.gz":           "gzip copy",
		".delivery-tmp/x":        "temp file",
		".delivery-tmp/y.html":   "temp page",
		"sub/real.html":          "real",
		"stash.old/a.html":       "in an old folder",
		".delivery-tmp/z.html.o": "temp",
	}
	for name, body := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"link-old.html":     "page.html.old",
		"link-page.html":    "page.html",
		"link-gz.html":      "page.html.gz",
		"link-deep.html":    "sub/../page.html.old",
		"d":                 ".delivery-tmp",
		"e":                 "sub",
		"g":                 "stash.old",
		"sub/up.html":       "../page.html.old",
		"sub/tmp":           "../.delivery-tmp",
		"link-dangling.htm": "nothing-here.html",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, filepath.FromSlash(name))); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSymlinksToInternalFilesAnswer404: a link inside the docroot is
// followed only when its target passes the same internal-name rules as a
// request path — as the last component and as a folder in the middle, on
// a hit from disk, from memory and for the stale copy.
func TestSymlinksToInternalFilesAnswer404(t *testing.T) {
	tests := []struct {
		target     string
		status     int
		body       string // the answer's body for 200
		folderLink bool   // a link in the middle of the path
	}{
		{"/link-old.html", 404, "", false},
		{"/link-deep.html", 404, "", false},
		{"/sub/up.html", 404, "", false},
		{"/link-gz.html", 404, "", false}, // precompressed copy
		{"/d/x", 404, "", true},
		{"/d/y.html", 404, "", true},
		{"/sub/tmp/x", 404, "", true},
		{"/g/a.html", 404, "", true},
		{"/link-page.html", 200, "page", false},
		{"/e/real.html", 200, "real", true},
		{"/page.html", 200, "page", false},
	}
	for _, mode := range []struct {
		name     string
		hot      int64
		fallback bool // the check without /proc (last component only)
	}{{"disk", -1, false}, {"memory", 1 << 20, false}, {"no-proc", -1, true}} {
		t.Run(mode.name, func(t *testing.T) {
			s, root := newHitSite(t, mode.hot)
			s.Precompress = true
			s.Mapper.ReservedSuffixes = []string{GzipSuffix, BrotliSuffix}
			if mode.fallback {
				s.Store.realRoot, s.Store.direct = "", nil
			}
			linkDocroot(t, root)
			b := &backend{body: "rendered", status: 200}
			for _, tt := range tests {
				if mode.fallback && tt.folderLink && tt.status == 404 {
					continue // folder links on a hit are checked only where /proc is available
				}
				for range 2 { // the second one could come from memory
					rec := serve(t, s, b, "GET", tt.target)
					if rec.Code != tt.status || tt.status == 200 && rec.Body.String() != tt.body {
						t.Errorf("%s: %d %q, want %d %q", tt.target, rec.Code, rec.Body, tt.status, tt.body)
					}
				}
			}
			if n := b.renders.Load(); n != 0 {
				t.Errorf("%d renders, want none (every answer is a hit or refused)", n)
			}
			// Nothing the edge refused was replaced, removed or rendered over.
			for _, name := range []string{"link-old.html", "d", "page.html.old", ".delivery-tmp/x"} {
				if _, err := os.Lstat(filepath.Join(root, filepath.FromSlash(name))); err != nil {
					t.Errorf("%s: %v", name, err)
				}
			}
		})
	}
}

// TestSymlinkedStaleCopyIsNotServed: the ".old" copy of a page reached
// through a folder link into the temp folder is never served as stale.
func TestSymlinkedStaleCopyIsNotServed(t *testing.T) {
	s, root := newHitSite(t, -1)
	linkDocroot(t, root)
	if err := os.WriteFile(filepath.Join(root, ".delivery-tmp", "w.html.old"), []byte("temp old"), 0o644); err != nil {
		t.Fatal(err)
	}
	b := &backend{body: "rendered"}
	rec := serve(t, s, b, "GET", "/d/w.html")
	if rec.Code != http.StatusNotFound || strings.Contains(rec.Body.String(), "temp old") {
		t.Fatalf("/d/w.html: %d %q, want 404", rec.Code, rec.Body)
	}
	if b.renders.Load() != 0 {
		t.Fatal("rendered into the temp folder")
	}
}

// TestMissThroughLinkIsNotStored: a miss under a link to an ordinary
// folder, or for a dangling link, is answered by the backend but not
// stored: the file would land under another URL's name.
func TestMissThroughLinkIsNotStored(t *testing.T) {
	s, root := newHitSite(t, -1)
	linkDocroot(t, root)
	b := &backend{body: "rendered"}
	for _, target := range []string{"/e/new.html", "/link-dangling.htm"} {
		rec := serve(t, s, b, "GET", target)
		if rec.Code != 200 || rec.Body.String() != "rendered" {
			t.Errorf("%s: %d %q", target, rec.Code, rec.Body)
		}
	}
	if _, err := os.Lstat(filepath.Join(root, "sub", "new.html")); err == nil {
		t.Error("a render was stored through the folder link")
	}
	if info, err := os.Lstat(filepath.Join(root, "link-dangling.htm")); err != nil || info.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the dangling link was replaced: %v", err)
	}
}

// TestInstallNeverThroughALink: whatever path leads to an install (a miss,
// pre-generation, an SSI part), a render is never written through a folder
// link nor over a link; a name with nothing in the way is installed.
func TestInstallNeverThroughALink(t *testing.T) {
	s, root := newHitSite(t, -1)
	linkDocroot(t, root)
	for _, tt := range []struct {
		name string
		want error
	}{
		{"e/new.html", errConflict},        // would land in sub/new.html
		{"d/new.html", errConflict},        // would land in the temp folder
		{"link-page.html", errConflict},    // would replace the operator's link
		{"link-dangling.htm", errConflict}, // likewise
		{"page.html/x", errConflict},       // a file is in the way
		{"fresh/new.html", nil},
		{"sub/other.html", nil},
	} {
		f, tmp, err := s.Store.createTemp()
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		if err := s.Store.install(tmp, tt.name, precompressed{}); err != tt.want { //nolint:errorlint // sentinel
			t.Errorf("install %s: %v, want %v", tt.name, err, tt.want)
		}
		s.Store.removeQuiet(tmp)
	}
	for name, want := range map[string]bool{"sub/new.html": false, ".delivery-tmp/new.html": false,
		"fresh/new.html": true, "sub/other.html": true} {
		if got := lexists(root, name); got != want {
			t.Errorf("%s exists = %v, want %v", name, got, want)
		}
	}
	for _, name := range []string{"link-page.html", "link-dangling.htm"} {
		if info, err := os.Lstat(filepath.Join(root, name)); err != nil || info.Mode()&os.ModeSymlink == 0 {
			t.Errorf("%s is no longer a link", name)
		}
	}
}
