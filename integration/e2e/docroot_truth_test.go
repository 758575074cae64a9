package e2e

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/delivery-edge/edge/cache"
	"github.com/delivery-edge/edge/integration/harness"
	"github.com/delivery-edge/edge/integration/origin"
)

// The files on disk are the truth: what another process does to a cached
// page is served right within hot_cache_valid (default 1s), also when the
// page is held in memory.

const truthDeadline = 1500 * time.Millisecond

// hotStory starts an edge, caches story100 and reads it until it is in
// memory.
func hotStory(t *testing.T, cacheOpts string) (*harness.Edge, *harness.Origin, string) {
	t.Helper()
	o := harness.StartOrigin(t, origin.RenderConfig{})
	e := harness.StartEdge(t, harness.EdgeOptions{Origin: o.RenderAddr, Cache: cacheOpts})
	var body string
	for range 4 {
		_, _, body = harness.Get(t, nil, e.URL()+storyPath, "Accept-Encoding", "gzip")
	}
	return e, o, body
}

// replaceByHand puts content at a docroot name the way deploy tools do: a
// new file renamed over the old one.
func replaceByHand(t *testing.T, e *harness.Edge, name, content string) {
	t.Helper()
	tmp := e.File(name) + ".by-hand"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, e.File(name)); err != nil {
		t.Fatal(err)
	}
}

// servedWithin polls the page until ok accepts what is served.
func servedWithin(t *testing.T, e *harness.Edge, path string, ok func(status int, body string, stale bool) bool) {
	t.Helper()
	start := time.Now()
	for {
		status, h, body := harness.Get(t, nil, e.URL()+path, "Accept-Encoding", "gzip")
		if h.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(bytes.NewReader([]byte(body)))
			if err != nil {
				t.Fatal(err)
			}
			plain, _ := io.ReadAll(zr)
			body = string(plain)
		}
		if ok(status, body, h.Get(cache.HeaderStale) != "") {
			return
		}
		if time.Since(start) > truthDeadline {
			t.Fatalf("%s not served right within %v: %d %q", path, truthDeadline, status, body[:min(len(body), 80)])
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func TestDocrootReplacedByRename(t *testing.T) {
	e, _, _ := hotStory(t, "")
	replaceByHand(t, e, "politik/story100.html", "<p>replaced by a deploy</p>")
	servedWithin(t, e, storyPath, func(s int, b string, _ bool) bool { return s == 200 && b == "<p>replaced by a deploy</p>" })
}

func TestDocrootEditedInPlace(t *testing.T) {
	e, _, before := hotStory(t, "")
	f, err := os.OpenFile(e.File("politik/story100.html"), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	edited := before + "<!-- edited in place -->\n"
	if _, err := f.WriteString(edited); err != nil {
		t.Fatal(err)
	}
	f.Close()
	servedWithin(t, e, storyPath, func(s int, b string, _ bool) bool { return s == 200 && b == edited })
}

func TestDocrootDeletedIsRenderedAgain(t *testing.T) {
	e, o, _ := hotStory(t, "")
	if err := os.Remove(e.File("politik/story100.html")); err != nil {
		t.Fatal(err)
	}
	servedWithin(t, e, storyPath, func(s int, b string, _ bool) bool {
		return s == 200 && o.Renders(storyPath) == 2 && strings.Contains(b, "Politik: Meldung 1")
	})
}

func TestDocrootRenamedToOldIsRenderedAgain(t *testing.T) {
	e, o, _ := hotStory(t, "")
	o.Content.Update("story100", map[string]any{"title": "Nach dem Umbenennen"})
	if err := os.Rename(e.File("politik/story100.html"), e.File("politik/story100.html.old")); err != nil {
		t.Fatal(err)
	}
	servedWithin(t, e, storyPath, func(s int, b string, stale bool) bool {
		return s == 200 && !stale && strings.Contains(b, "Nach dem Umbenennen")
	})
	if n := o.Renders(storyPath); n != 2 {
		t.Fatalf("renders = %d, want 2", n)
	}
}

func TestDocrootNewFileByHand(t *testing.T) {
	e, o, _ := hotStory(t, "")
	replaceByHand(t, e, "robots.txt", "User-agent: *\nDisallow: /preview/\n")
	servedWithin(t, e, "/robots.txt", func(s int, b string, _ bool) bool {
		return s == 200 && b == "User-agent: *\nDisallow: /preview/\n"
	})
	if n := o.Renders("/robots.txt"); n != 0 {
		t.Fatalf("a file put in by hand was rendered %d times", n)
	}
}

func TestDocrootPrecompressedReplacedByHand(t *testing.T) {
	e, _, _ := hotStory(t, "precompress")
	if _, err := os.Stat(e.File("politik/story100.html.gz")); err != nil {
		t.Fatalf("no precompressed copy: %v", err)
	}
	replaceByHand(t, e, "politik/story100.html", "<p>new page, old copies next to it</p>")
	servedWithin(t, e, storyPath, func(s int, b string, _ bool) bool {
		return s == 200 && b == "<p>new page, old copies next to it</p>"
	})
	// The old copies stay on disk but are never served for the new page.
	for range 5 {
		_, h, body := harness.Get(t, nil, e.URL()+storyPath, "Accept-Encoding", "gzip, br")
		if h.Get("Content-Encoding") != "" || body != "<p>new page, old copies next to it</p>" {
			t.Fatalf("an old copy was served: %v", h)
		}
	}
	if _, err := os.Stat(filepath.Join(e.Docroot, "politik", "story100.html.gz")); err != nil {
		t.Logf("copy removed meanwhile: %v", err)
	}
}
