package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/delivery-edge/edge/cache"
	"github.com/delivery-edge/edge/integration/harness"
	"github.com/delivery-edge/edge/integration/origin"
)

// Full disks: the docroot, or the data folder, on a small tmpfs of its
// own that the test fills with a ballast file (root only; skipped
// otherwise).

const (
	healthPath  = "/actuator/health"
	diskFullLog = "disk full: "
	spaceLog    = "space available again: "
	tmpfsSize   = 8 << 20
)

// healthRoute is the health endpoint with error messages, and the cache
// servlet (for flushes).
const healthRoute = servletRoute + "\ndelivery_health " + healthPath + " {\nshow_details\n}"

// cacheHealth returns the health answer's status and its cache component.
func cacheHealth(t *testing.T, e *harness.Edge) (int, string, string) {
	t.Helper()
	status, _, body := harness.Get(t, nil, e.URL()+healthPath)
	var h struct {
		Components map[string]struct {
			Status  string         `json:"status"`
			Details map[string]any `json:"details"`
		} `json:"components"`
	}
	if err := json.Unmarshal([]byte(body), &h); err != nil {
		t.Fatalf("health: %d %q: %v", status, body, err)
	}
	c := h.Components["cache"]
	msg, _ := c.Details["error"].(string)
	return status, c.Status, msg
}

// wholePage reports whether body is a whole rendered page.
func wholePage(body string) bool { return strings.HasSuffix(body, "</html>\n") }

// tempFiles lists what is left in the docroot's temp folder.
func tempFiles(t *testing.T, e *harness.Edge) []string {
	t.Helper()
	ents, err := os.ReadDir(e.File(cache.TempDir))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, de := range ents {
		names = append(names, de.Name())
	}
	return names
}

// checkRegistry opens the stopped edge's data folder and runs the
// consistency check of registry and docroot.
func checkRegistry(t *testing.T, e *harness.Edge) {
	t.Helper()
	eng, err := cache.Open(cache.Options{DataDir: e.DataDir, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	rep, err := eng.Check(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("consistency check: %s", rep)
	if rep.Problems() != 0 {
		t.Errorf("registry and docroot disagree: %s", rep)
	}
}

// TestDiskFullDocroot: with the docroot's file system full, hits and
// ".old" copies are served, renders are passed on to the client uncached
// (no partial file, no temp file left, no registry record), flushes work,
// "disk full" is logged once and delivery_health reports the cache DOWN;
// once space is freed the edge stores renders again by itself, logs that
// once, and the registry check is clean.
//
// Eviction (min_free) is not relied on: the test frees the space itself.
// With eviction on, the edge might also free space by removing the least
// recently read pages; the hits below are read just before the disk is
// filled, and the assertions only ask for whole answers, not for a file
// to stay.
func TestDiskFullDocroot(t *testing.T) {
	dir := t.TempDir()
	harness.Tmpfs(t, filepath.Join(dir, "docroot"), tmpfsSize)
	o := harness.StartOrigin(t, origin.RenderConfig{})
	e := harness.StartEdge(t, harness.EdgeOptions{Dir: dir, Origin: o.RenderAddr, Route: healthRoute})

	const (
		hitPath   = "/politik/story101.html"
		oldPath   = "/politik/story102.html"
		missPath  = "/sport/story105.html"
		flushPath = "/politik/story103.html"
	)
	cachePages(t, e, storyPath, hitPath, oldPath, flushPath)
	_, _, oldBody := harness.Get(t, nil, e.URL()+oldPath)
	invalidate(t, e, "story102", fileOf(oldPath))
	if st, c, msg := cacheHealth(t, e); c != "UP" {
		t.Fatalf("health before the disk is full: %d, cache %s %q", st, c, msg)
	}

	ballast := harness.Fill(t, e.Docroot)
	t.Logf("docroot filled with a ballast of %d bytes", ballast.Size)

	// Hits are served as before, without a render.
	for _, p := range []string{storyPath, hitPath} {
		before := o.Renders(p)
		if status, _, body := harness.Get(t, nil, e.URL()+p); status != 200 || !wholePage(body) {
			t.Errorf("hit %s on a full disk: %d whole=%v", p, status, wholePage(body))
		}
		if n := o.Renders(p); n != before {
			t.Errorf("hit %s rendered again", p)
		}
	}

	// A miss is rendered and passed on whole, but not stored: the next
	// request renders again.
	for i := 1; i <= 3; i++ {
		status, h, body := harness.Get(t, nil, e.URL()+missPath)
		if status != 200 || !wholePage(body) {
			t.Fatalf("miss %d on a full disk: %d whole=%v %q", i, status, wholePage(body), h.Get("Cache-Status"))
		}
		if n := o.Renders(missPath); n != int64(i) {
			t.Errorf("after request %d: %d renders, want %d (not stored)", i, n, i)
		}
	}
	if e.Exists(fileOf(missPath)) {
		t.Errorf("%s stored on a full disk", fileOf(missPath))
	}
	if left := tempFiles(t, e); len(left) != 0 {
		t.Errorf("temp files left behind: %v", left)
	}

	// A page with an .old copy: the copy, or the render passed on; whole.
	if status, _, body := harness.Get(t, nil, e.URL()+oldPath); status != 200 || !wholePage(body) {
		t.Errorf("invalidated page on a full disk: %d whole=%v", status, wholePage(body))
	} else if body != oldBody {
		t.Logf("invalidated page answered by a render passed on")
	}

	// A flush still works (renaming needs no space; the data folder is
	// elsewhere) and the page is served from its .old copy meanwhile.
	invalidate(t, e, "story103", fileOf(flushPath))
	if status, _, body := harness.Get(t, nil, e.URL()+flushPath); status != 200 || !wholePage(body) {
		t.Errorf("flushed page on a full disk: %d whole=%v", status, wholePage(body))
	}

	st, c, msg := cacheHealth(t, e)
	t.Logf("health on a full docroot: %d, cache %s: %s", st, c, msg)
	if st != 503 || c != "DOWN" || !strings.Contains(msg, "docroot") {
		t.Errorf("health on a full docroot: %d, cache %s %q; want 503, DOWN, docroot named", st, c, msg)
	}

	// Space again: the edge finds out by itself (the health check tries,
	// and so does the next render).
	ballast.Remove()
	waitFor(t, 10*time.Second, "cache component UP", func() bool {
		st, c, _ := cacheHealth(t, e)
		return c == "UP" && st == 200
	})
	before := o.Renders(missPath)
	cachePages(t, e, missPath)
	waitFor(t, 5*time.Second, "the miss stored", func() bool { return e.Exists(fileOf(missPath)) })
	cachePages(t, e, missPath)
	if n := o.Renders(missPath) - before; n != 1 {
		t.Errorf("after space returned: %d renders for two requests, want 1 (stored)", n)
	}

	log := e.Log()
	if n := strings.Count(log, diskFullLog+"docroot"); n != 1 {
		t.Errorf("%q logged %d times, want once", diskFullLog+"docroot", n)
	}
	if n := strings.Count(log, spaceLog+"docroot"); n != 1 {
		t.Errorf("%q logged %d times, want once", spaceLog+"docroot", n)
	}
	if strings.Contains(log, "cannot cache render") || strings.Contains(log, "render not cached") {
		t.Errorf("a full disk was logged per render")
	}
	e.Stop()
	if left := tempFiles(t, e); len(left) != 0 {
		t.Errorf("temp files left behind: %v", left)
	}
	checkRegistry(t, e)
}
