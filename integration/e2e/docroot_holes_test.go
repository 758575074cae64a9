package e2e

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/delivery-edge/edge/integration/harness"
	"github.com/delivery-edge/edge/integration/origin"
)

// TestSymlinksToInternalFilesAnswer404: a link in the docroot is followed
// only when its target is an ordinary page; a link to a ".old" copy, or a
// folder link into the temp folder, answers 404 without a render.
func TestSymlinksToInternalFilesAnswer404(t *testing.T) {
	o := harness.StartOrigin(t, origin.RenderConfig{})
	e := harness.StartEdge(t, harness.EdgeOptions{Origin: o.RenderAddr})
	_, _, story := harness.Get(t, nil, e.URL()+storyPath)
	mustWrite(t, e.File("politik/story100.html.old"), "secret old")
	mustWrite(t, e.File(".delivery-tmp/x"), "secret temp")
	mustLink(t, "story100.html.old", e.File("politik/link-old.html"))
	mustLink(t, ".delivery-tmp", e.File("d"))
	mustLink(t, "story100.html", e.File("politik/alias.html"))

	for _, p := range []string{"/politik/link-old.html", "/d/x"} {
		status, _, body := harness.Get(t, nil, e.URL()+p)
		if status != http.StatusNotFound || strings.Contains(body, "secret") {
			t.Errorf("%s: %d %q, want 404", p, status, body)
		}
		if n := o.Renders(p); n != 0 {
			t.Errorf("%s: rendered %d times, want refused at the edge", p, n)
		}
	}
	for range 2 { // from disk, then from memory
		if status, _, body := harness.Get(t, nil, e.URL()+"/politik/alias.html"); status != 200 || body != story {
			t.Errorf("link to a page: %d, same body %v", status, body == story)
		}
	}
	if n := o.Renders("/politik/alias.html"); n != 0 {
		t.Errorf("link to a page rendered %d times, want served from the docroot", n)
	}
}

// TestBackend404UnderAFile: a path below a cached page cannot be a file;
// the backend's 404 passes through, nothing is deleted and nothing is
// logged. A 404 for a path that is a link leaves the link.
func TestBackend404UnderAFile(t *testing.T) {
	o := harness.StartOrigin(t, origin.RenderConfig{})
	e := harness.StartEdge(t, harness.EdgeOptions{Origin: o.RenderAddr})
	harness.Get(t, nil, e.URL()+storyPath)
	mustWrite(t, e.File("politik/story100.html.old"), "old copy")
	mustLink(t, "nothing.html", e.File("politik/dangling.html"))
	mustLink(t, "../sport", e.File("politik/folder-link.html"))
	if err := os.MkdirAll(e.File("sport"), 0o755); err != nil {
		t.Fatal(err)
	}

	for range 3 {
		if status, _, _ := harness.Get(t, nil, e.URL()+storyPath+"/x1"); status != http.StatusNotFound {
			t.Errorf("under a file: %d, want the backend's 404", status)
		}
	}
	if n := o.Renders(storyPath + "/x1"); n != 3 {
		t.Errorf("under a file: %d renders, want 3 (passed through)", n)
	}
	for _, p := range []string{"/politik/dangling.html", "/politik/folder-link.html"} {
		if status, _, _ := harness.Get(t, nil, e.URL()+p); status != http.StatusNotFound {
			t.Errorf("%s: %d, want the backend's 404", p, status)
		}
	}
	for _, name := range []string{"politik/story100.html", "politik/story100.html.old", "politik/dangling.html",
		"politik/folder-link.html", "sport"} {
		if _, err := os.Lstat(e.File(name)); err != nil {
			t.Errorf("%s after the 404s: %v", name, err)
		}
	}
	for _, line := range strings.Split(e.Log(), "\n") {
		if strings.Contains(line, "cannot remove") || strings.Contains(line, "not a directory") {
			t.Errorf("a 404 was logged: %s", line)
		}
	}
}

// TestDeepURLPassesThrough: a URL beyond the bounds of what is stored (40
// segments) is answered by the backend every time and creates no folder,
// even when the backend answers every path with a cacheable 200.
func TestDeepURLPassesThrough(t *testing.T) {
	var calls atomic.Int64
	backend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte("<p>any path</p>"))
	}))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	backend.Listener = l
	backend.Start()
	t.Cleanup(backend.Close)
	e := harness.StartEdge(t, harness.EdgeOptions{Origin: l.Addr().String()})

	deep := "/d0" + strings.Repeat("/a", 39)
	for range 2 {
		if status, _, body := harness.Get(t, nil, e.URL()+deep); status != 200 || body != "<p>any path</p>" {
			t.Fatalf("deep URL: %d %q", status, body)
		}
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("backend calls = %d, want 2 (not cached)", n)
	}
	if _, err := os.Lstat(e.File("d0")); err == nil {
		t.Error("a folder was created for a URL that is not stored")
	}
	// Within the bounds the same backend's answer is stored.
	shallow := "/d1" + strings.Repeat("/a", 14)
	harness.Get(t, nil, e.URL()+shallow)
	if !e.Exists(filepath.FromSlash(shallow[1:])) {
		t.Error("a URL of 15 segments was not stored")
	}
}

func mustWrite(t *testing.T, name, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustLink(t *testing.T, target, name string) {
	t.Helper()
	if err := os.Symlink(target, name); err != nil {
		t.Fatal(err)
	}
}
