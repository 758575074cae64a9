package e2e

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/delivery-edge/edge/cache"
	"github.com/delivery-edge/edge/integration/harness"
	"github.com/delivery-edge/edge/integration/origin"
)

// The first reader after a removal waits for the render it starts (up to
// render_wait) and gets the newest page; readers arriving meanwhile get the
// .old copy at once.

// removedStory caches story100, changes its title and removes the page
// through the cache servlet (renamed to .old by the removal queue).
func removedStory(t *testing.T, cacheOpts string) (*harness.Edge, *harness.Origin, string) {
	t.Helper()
	o := harness.StartOrigin(t, origin.RenderConfig{})
	e := harness.StartEdge(t, harness.EdgeOptions{Origin: o.RenderAddr, Route: servletRoute, Cache: cacheOpts})
	_, _, before := harness.Get(t, nil, e.URL()+storyPath)
	o.Content.Update("story100", map[string]any{"title": "Neuer Titel"})
	invalidate(t, e, "story100", "politik/story100.html")
	return e, o, before
}

func TestRenderWaitFirstReaderGetsNewPage(t *testing.T) {
	e, o, _ := removedStory(t, "")
	status, h, body := harness.Get(t, nil, e.URL()+storyPath)
	if status != 200 || !strings.Contains(body, "Neuer Titel") || h.Get(cache.HeaderStale) != "" {
		t.Fatalf("first reader after the removal: %d stale=%q new title %v", status, h.Get(cache.HeaderStale),
			strings.Contains(body, "Neuer Titel"))
	}
	if e.Exists("politik/story100.html.old") || !e.Exists("politik/story100.html") {
		t.Fatal("the new file must be in place and .old gone")
	}
	if n := o.Renders(storyPath); n != 2 {
		t.Fatalf("renders = %d, want 2", n)
	}
}

func TestRenderWaitSecondReaderGetsOldAtOnce(t *testing.T) {
	e, o, before := removedStory(t, "")
	o.Faults(origin.Fault{Prefix: storyPath, Delay: 1500 * time.Millisecond, Count: 1})
	var wg sync.WaitGroup
	var firstBody string
	var firstStale string
	wg.Go(func() {
		_, h, body := harness.Get(t, nil, e.URL()+storyPath)
		firstBody, firstStale = body, h.Get(cache.HeaderStale)
	})
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	status, h, body := harness.Get(t, nil, e.URL()+storyPath)
	took := time.Since(start)
	wg.Wait()
	if status != 200 || body != before || h.Get(cache.HeaderStale) != "1" || took > 700*time.Millisecond {
		t.Fatalf("second reader: %d stale=%q old body %v after %v (want the copy at once)", status,
			h.Get(cache.HeaderStale), body == before, took)
	}
	if !strings.Contains(firstBody, "Neuer Titel") || firstStale != "" {
		t.Fatalf("first reader: stale=%q new title %v", firstStale, strings.Contains(firstBody, "Neuer Titel"))
	}
	if n := o.Renders(storyPath); n != 2 {
		t.Fatalf("renders = %d, want 2", n)
	}
}

func TestRenderWaitSlowRenderGivesOldThenLands(t *testing.T) {
	e, o, before := removedStory(t, "render_timeout 30s")
	o.Faults(origin.Fault{Prefix: storyPath, Delay: 15 * time.Second, Count: 1})
	start := time.Now()
	status, h, body := harness.Get(t, nil, e.URL()+storyPath)
	took := time.Since(start)
	if status != 200 || body != before || h.Get(cache.HeaderStale) != "1" {
		t.Fatalf("reader of a slow render: %d stale=%q old body %v", status, h.Get(cache.HeaderStale), body == before)
	}
	if took < 4*time.Second || took > 10*time.Second {
		t.Errorf("the reader got the copy after %v, want about render_wait (5s)", took)
	}
	waitFor(t, 20*time.Second, "the slow render in place", func() bool {
		return e.Exists("politik/story100.html") && !e.Exists("politik/story100.html.old")
	})
	_, h, body = harness.Get(t, nil, e.URL()+storyPath)
	if !strings.Contains(body, "Neuer Titel") || h.Get(cache.HeaderStale) != "" {
		t.Fatalf("after the render: stale=%q new title %v", h.Get(cache.HeaderStale), strings.Contains(body, "Neuer Titel"))
	}
}

func TestRenderWaitDeletedDocumentIs404(t *testing.T) {
	e, o, _ := removedStory(t, "")
	o.Content.SetState("story100", origin.StateDeleted)
	status, h, _ := harness.Get(t, nil, e.URL()+storyPath)
	if status != 404 || h.Get(cache.HeaderStale) != "" {
		t.Fatalf("deleted document whose page is .old: %d stale=%q, want 404", status, h.Get(cache.HeaderStale))
	}
	if e.Exists("politik/story100.html") || e.Exists("politik/story100.html.old") {
		t.Fatal("file or .old left after the 404")
	}
}
