package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/delivery-edge/edge/cache"
	"github.com/delivery-edge/edge/integration/harness"
	"github.com/delivery-edge/edge/integration/origin"
	"go.uber.org/zap"
)

// invalidationEdge is an edge polling the sample origin with long polls.
func invalidationEdge(t *testing.T, global string) (*harness.Edge, *harness.Origin) {
	t.Helper()
	return invalidationEdgeWith(t, global, origin.RenderConfig{})
}

func invalidationEdgeWith(t *testing.T, global string, render origin.RenderConfig) (*harness.Edge, *harness.Origin) {
	t.Helper()
	o := harness.StartOriginWith(t, harness.OriginOptions{Render: render})
	e := harness.StartEdge(t, harness.EdgeOptions{Origin: o.RenderAddr, Global: o.StagingBlock("100ms", true) + "\n" + global})
	return e, o
}

// modTimes records the modification time of each cached page.
func modTimes(t *testing.T, e *harness.Edge, pages []string) map[string]time.Time {
	t.Helper()
	out := map[string]time.Time{}
	for _, p := range pages {
		if info, err := os.Stat(e.File(fileOf(p))); err == nil {
			out[p] = info.ModTime()
		}
	}
	return out
}

func fileOf(page string) string {
	f := strings.TrimPrefix(page, "/")
	if f == "" || strings.HasSuffix(f, "/") {
		f += "index.html"
	}
	return f
}

// settle gives the poller and the queues time to act on a change.
func settle() { time.Sleep(700 * time.Millisecond) }

var demoPages = []string{"/", "/politik/", "/sport/", "/politik/story100.html", "/politik/story101.html",
	"/politik/story102.html", "/sport/story105.html"}

func TestInvalidationExactlyTheDependents(t *testing.T) {
	e, o := invalidationEdge(t, "")
	for _, p := range demoPages {
		harness.Get(t, nil, e.URL()+p)
	}
	settle()
	before := modTimes(t, e, demoPages)
	renders := o.Render.Counts()

	// copytext is read by story100's own page only.
	o.Content.Update("story100", map[string]any{"copytext": "neuer Text"})
	settle()
	invalidated := func(want ...string) {
		t.Helper()
		now := modTimes(t, e, demoPages)
		for _, p := range demoPages {
			_, present := now[p]
			gone := !present
			wantGone := false
			for _, w := range want {
				wantGone = wantGone || w == p
			}
			if gone != wantGone {
				t.Errorf("%s: invalidated=%v, want %v", p, gone, wantGone)
			}
			if present && !now[p].Equal(before[p]) {
				t.Errorf("%s was rewritten", p)
			}
		}
		for p, n := range o.Render.Counts() {
			if n != renders[p] {
				t.Errorf("%s rendered without a request (%d → %d); nothing is read, nothing is pre-generated", p, renders[p], n)
			}
		}
	}
	invalidated("/politik/story100.html")
	if !e.Exists("politik/story100.html.old") {
		t.Error("the unread page must be kept as .old")
	}
	// The next request gets the .old copy and renders; then the new page.
	waitFor(t, 5*time.Second, "the re-rendered story", func() bool {
		_, h, body := harness.Get(t, nil, e.URL()+"/politik/story100.html")
		return h.Get(cache.HeaderStale) == "" && strings.Contains(body, "neuer Text")
	})

	// The title is shown in teasers: the section page and story101 (which
	// links story100 as related) depend on it, the other pages do not.
	before = modTimes(t, e, demoPages)
	renders = o.Render.Counts()
	o.Content.Update("story100", map[string]any{"title": "Ganz neuer Titel"})
	settle()
	invalidated("/politik/story100.html", "/politik/", "/politik/story101.html")

	// A template change: the first render that reports the new hash
	// invalidates every page rendered with the old one.
	for _, p := range demoPages {
		harness.Get(t, nil, e.URL()+p)
	}
	settle()
	o.Render.BumpTemplate()
	harness.Get(t, nil, e.URL()+"/wirtschaft/") // a miss: rendered with the new template
	waitFor(t, 5*time.Second, "every page with the old template invalidated", func() bool {
		for _, p := range demoPages {
			if e.Exists(fileOf(p)) {
				return false
			}
		}
		return true
	})
	if !e.Exists("wirtschaft/index.html") {
		t.Error("the page rendered with the new template was invalidated")
	}
}

func TestInvalidationPregeneratesWhatIsRead(t *testing.T) {
	// The backend counts a render when the request arrives; the latency
	// keeps the page's installation well after that count, so the test
	// must wait for the page itself, not for the count.
	e, o := invalidationEdgeWith(t, "pregenerate {\nworkers 2\nrecent 1h\n}", origin.RenderConfig{Latency: 150 * time.Millisecond})
	read, unread := "/politik/story100.html", "/sport/story105.html"
	harness.Get(t, nil, e.URL()+read)
	harness.Get(t, nil, e.URL()+unread)
	time.Sleep(20 * time.Millisecond)
	harness.Get(t, nil, e.URL()+read) // read after it was written
	settle()
	n := o.Renders(read)
	o.Content.Update("story100", map[string]any{"copytext": "vorab gerendert"})
	o.Content.Update("story105", map[string]any{"copytext": "erst auf Anfrage"})
	waitFor(t, 15*time.Second, "the pre-generated page in place", func() bool {
		body, err := os.ReadFile(e.File(fileOf(read)))
		return err == nil && strings.Contains(string(body), "vorab gerendert")
	})
	if e.Exists(fileOf(read)+cache.OldSuffix) || o.Renders(read) != n+1 {
		t.Fatalf("the read page must be rendered once and replaced in place (renders %d, want %d)", o.Renders(read), n+1)
	}
	settle()
	if e.Exists(fileOf(unread)) || !e.Exists(fileOf(unread)+cache.OldSuffix) || o.Renders(unread) != 1 {
		t.Fatalf("the unread page must be renamed to .old, not rendered (renders %d)", o.Renders(unread))
	}
	harness.Get(t, nil, e.URL()+unread)
	waitFor(t, 5*time.Second, "the unread page rendered on request", func() bool { return o.Renders(unread) == 2 })
}

func TestInvalidationDeletedDocumentNeverServesOld(t *testing.T) {
	e, o := invalidationEdge(t, "pregenerate {\nworkers 2\n}")
	page := "/politik/story102.html"
	harness.Get(t, nil, e.URL()+page)
	time.Sleep(20 * time.Millisecond)
	harness.Get(t, nil, e.URL()+page)
	o.Content.SetState("story102", origin.StateDeleted)
	waitFor(t, 5*time.Second, "the deleted story's page gone", func() bool { return !e.Exists(fileOf(page)) })
	for range 5 {
		status, h, body := harness.Get(t, nil, e.URL()+page)
		if status != 404 || h.Get(cache.HeaderStale) != "" || strings.Contains(body, "Meldung 3") {
			t.Fatalf("deleted page: %d stale=%q", status, h.Get(cache.HeaderStale))
		}
	}
	if e.Exists(fileOf(page) + cache.OldSuffix) {
		t.Fatal(".old of a deleted page kept")
	}
}

// TestInvalidationCrashRounds applies 200 title changes while readers read
// and the queues run, killing the edge with SIGKILL at 20 random moments.
// Afterwards every page shows its latest title, no file is partial and the
// registry matches the docroot.
func TestInvalidationCrashRounds(t *testing.T) {
	if testing.Short() {
		t.Skip("crash rounds take a minute")
	}
	e, o := invalidationEdge(t, "pregenerate {\nworkers 2\nrecent 1h\n}")
	stories := make([]string, 10)
	pages := make([]string, 10)
	for i := range stories {
		stories[i] = origin.StoryID(i)
		section := origin.Sections[i/origin.StoriesPerSection].ID
		pages[i] = section + "/" + stories[i] + ".html"
	}
	pages = append(pages, "/politik/", "/sport/")
	latest := map[string]string{}
	history := map[string][]string{} // each story's titles with their source times, for the report
	var mu sync.Mutex
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // the changes
		defer wg.Done()
		for k := range 200 {
			i := rand.IntN(len(stories))
			title := fmt.Sprintf("Titel %s #%d", stories[i], k)
			mu.Lock()
			latest[stories[i]] = title
			ev, _ := o.Content.Update(stories[i], map[string]any{"title": title})
			history[stories[i]] = append(history[stories[i]], fmt.Sprintf("%q at source time %d", title, ev.SourceTime))
			mu.Unlock()
			select {
			case <-stop:
				return
			case <-time.After(time.Duration(5+rand.IntN(40)) * time.Millisecond):
			}
		}
	}()
	go func() { // the readers
		defer wg.Done()
		client := &http.Client{Timeout: 2 * time.Second}
		for {
			select {
			case <-stop:
				return
			default:
			}
			if resp, err := client.Get(e.URL() + pages[rand.IntN(len(pages))]); err == nil {
				resp.Body.Close()
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	var kills []int64 // when each kill came (Unix ms), for the report
	for range 20 {
		time.Sleep(time.Duration(50+rand.IntN(300)) * time.Millisecond)
		kills = append(kills, time.Now().UnixMilli())
		e.Kill()
		if entries, _ := os.ReadDir(e.File(cache.TempDir)); len(entries) > 0 {
			t.Logf("kill left %d temp files (removed at start)", len(entries))
		}
		e.Start()
	}
	// The changes run out on their own; then everything must converge.
	time.Sleep(3 * time.Second)
	close(stop)
	wg.Wait()

	client := &http.Client{Timeout: 5 * time.Second}
	var stale []string // pages without their latest title: reported with the registry's view below
	for i, s := range stories {
		mu.Lock()
		want := latest[s]
		mu.Unlock()
		if want == "" {
			continue
		}
		var status string
		if !eventually(10*time.Second, func() bool {
			_, h, body := harness.Get(t, client, e.URL()+pages[i])
			status = h.Get("Cache-Status")
			return strings.Contains(body, want+"</h1>")
		}) {
			t.Errorf("waited 10s for the latest title of %s on %s (Cache-Status %q)", s, pages[i], status)
			stale = append(stale, pages[i])
		}
	}
	if len(stale) == 0 {
		settle()
	}
	e.Stop()

	eng, err := cache.Open(cache.Options{DataDir: e.DataDir, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	rep, err := eng.Check(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("consistency check after 20 kill -9 rounds: %s", rep)
	if len(stale) > 0 {
		store, err := eng.Store(e.Docroot)
		if err != nil {
			t.Fatal(err)
		}
		pos, _ := eng.Position("staging")
		t.Logf("staging events applied up to source time %d; the origin's newest is %d; kills at %v", pos, o.Content.LastSourceTime(), kills)
		for _, p := range stale {
			fr, err := eng.File(store, cache.Target{Key: p, File: fileOf(p)})
			b, _ := json.Marshal(fr)
			t.Logf("the registry's view of %s: %s (%v)", p, b, err)
			page, _ := os.ReadFile(filepath.Join(e.Docroot, fileOf(p)))
			if m := regexp.MustCompile(`<h1>([^<]*)</h1>`).FindSubmatch(page); m != nil {
				t.Logf("%s on disk shows %q", p, m[1])
			}
		}
		for i, s := range stories {
			if slices.Contains(stale, pages[i]) {
				h := history[s]
				t.Logf("the last changes of %s: %s", s, strings.Join(h[max(0, len(h)-4):], ", "))
			}
		}
	}
	if rep.Problems() != 0 {
		t.Errorf("registry and docroot disagree: %s; unregistered %q, dangling %q, bad index %q, temp files %q",
			rep, rep.Unregistered, rep.Dangling, rep.BadIndex, rep.TempFiles)
	}
	st := eng.Stats()
	if st.RemovalQueue != 0 || st.PregenQueue != 0 {
		t.Errorf("queues not drained: %+v", st)
	}
	for _, p := range pages {
		b, err := os.ReadFile(e.File(fileOf(p)))
		if err == nil && !strings.HasSuffix(string(b), "</html>\n") {
			t.Errorf("%s is partial", p)
		}
	}
}
