package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/delivery-edge/edge/cache"
	"github.com/delivery-edge/edge/integration/harness"
	"github.com/delivery-edge/edge/integration/origin"
)

const teaserPath = "/fragments/teaser/story100.html"

// TestSSITeaserChangeRerendersOnlyItsFragment: the section page includes
// its teasers as fragments. A topline change re-renders the one teaser
// fragment (pre-generated, because it is read through the page), never the
// page, and the next page hit shows the new topline with a new ETag.
func TestSSITeaserChangeRerendersOnlyItsFragment(t *testing.T) {
	o := harness.StartOriginWith(t, harness.OriginOptions{Render: origin.RenderConfig{SSI: true}})
	e := harness.StartEdge(t, harness.EdgeOptions{Origin: o.RenderAddr, Cache: "ssi",
		Global: o.StagingBlock("200ms", true) + "\npregenerate {\nworkers 2\nrecent 1h\n}"})
	const page = "/politik/"
	// The poller starts from source time 0: let it apply the seed's
	// events before anything is cached, so they invalidate nothing.
	time.Sleep(time.Second)

	status, _, body := harness.Get(t, nil, e.URL()+page)
	if status != 200 || !strings.Contains(body, ">Topline 0<") || strings.Contains(body, "<!--#") {
		t.Fatalf("cold page: %d %q", status, body)
	}
	for i := range origin.StoriesPerSection {
		if !strings.Contains(body, fmt.Sprintf(">Topline %d<", i)) {
			t.Fatalf("teaser %d missing: %q", i, body)
		}
	}
	time.Sleep(20 * time.Millisecond)
	status, h, body2 := harness.Get(t, nil, e.URL()+page) // a hit: the fragments are read after they were written
	if status != 200 || body2 != body || !strings.HasPrefix(h.Get("Etag"), `"ssi-`) {
		t.Fatalf("hit: %d same=%v %v", status, body2 == body, h)
	}
	etag := h.Get("Etag")
	if s, _, _ := harness.Get(t, nil, e.URL()+page, "If-None-Match", etag); s != http.StatusNotModified {
		t.Fatalf("If-None-Match on the assembled page: %d", s)
	}
	if s, rh, b := harness.Get(t, nil, e.URL()+page, "Range", "bytes=0-9"); s != 200 || b != body ||
		rh.Get("Accept-Ranges") != "none" {
		t.Fatalf("Range on the assembled page: %d", s)
	}
	time.Sleep(700 * time.Millisecond)
	before := o.Render.Counts()
	if before[page] != 1 || before[teaserPath] != 1 {
		t.Fatalf("renders before the change: %v", before)
	}
	pageInfo, err := os.Stat(e.File("politik/index.html"))
	if err != nil {
		t.Fatal(err)
	}

	o.Content.Update("story100", map[string]any{"topline": "Neue Topline"})
	waitFor(t, 10*time.Second, "the teaser fragment re-rendered", func() bool { return o.Renders(teaserPath) == 2 })
	waitFor(t, 5*time.Second, "the new fragment in place", func() bool {
		b, err := os.ReadFile(e.File(strings.TrimPrefix(teaserPath, "/")))
		return err == nil && strings.Contains(string(b), "Neue Topline")
	})
	status, h, body3 := harness.Get(t, nil, e.URL()+page, "If-None-Match", etag)
	if status != 200 || !strings.Contains(body3, ">Neue Topline<") || strings.Contains(body3, ">Topline 0<") ||
		h.Get("Etag") == etag || h.Get(cache.HeaderStale) != "" {
		t.Fatalf("next page hit: %d stale=%q etag %s→%s\n%s", status, h.Get(cache.HeaderStale), etag, h.Get("Etag"), body3)
	}
	time.Sleep(700 * time.Millisecond) // give any wrong invalidation time to show
	after := o.Render.Counts()
	for p, n := range after {
		want := before[p]
		if p == teaserPath {
			want++
		}
		if n != want {
			t.Errorf("%s rendered %d times, want %d", p, n, want)
		}
	}
	info, err := os.Stat(e.File("politik/index.html"))
	if err != nil || !os.SameFile(info, pageInfo) {
		t.Fatal("the page file was touched by the fragment's change")
	}
}

// TestSSIColdPageConcurrent: a cold page of 10 cold fragments under 50
// concurrent requests renders the page and each fragment exactly once.
func TestSSIColdPageConcurrent(t *testing.T) {
	c := origin.NewContent()
	origin.SeedDemo(c)
	c.Put(origin.Document{ID: "/ssi", UUID: origin.DemoUUID("/ssi"), NodeType: "structureNode",
		Properties: map[string]any{"name": "SSI", "title": "Zehn Teaser"}}, nil)
	var stories []string
	for i := range 10 {
		id := fmt.Sprintf("ssistory%02d", i)
		stories = append(stories, id)
		c.Put(origin.Document{ID: id, UUID: origin.DemoUUID(id), NodeType: "story", Properties: map[string]any{
			"title": "Titel " + id, "topline": "Topline " + id, "teasertext": "Text", "section": "/ssi",
		}}, nil)
	}
	o := harness.StartOriginWith(t, harness.OriginOptions{Content: c,
		Render: origin.RenderConfig{SSI: true, Latency: 150 * time.Millisecond}})
	e := harness.StartEdge(t, harness.EdgeOptions{Origin: o.RenderAddr, Cache: "ssi"})

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 100}}
	const n = 50
	statuses, bodies := make([]int, n), make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i], _, bodies[i] = harness.Get(t, client, e.URL()+"/ssi/")
		}()
	}
	wg.Wait()
	for i := range n {
		if statuses[i] != 200 || bodies[i] != bodies[0] {
			t.Fatalf("request %d: %d, same body %v", i, statuses[i], bodies[i] == bodies[0])
		}
	}
	for _, id := range stories {
		if !strings.Contains(bodies[0], ">Topline "+id+"<") {
			t.Fatalf("teaser of %s missing:\n%s", id, bodies[0])
		}
		if got := o.Renders("/fragments/teaser/" + id + ".html"); got != 1 {
			t.Errorf("fragment of %s rendered %d times", id, got)
		}
		if !e.Exists("fragments/teaser/" + id + ".html") {
			t.Errorf("fragment of %s not stored", id)
		}
	}
	if got := o.Renders("/ssi/"); got != 1 {
		t.Errorf("page rendered %d times", got)
	}
	if strings.Contains(bodies[0], "<!--#") || strings.Contains(bodies[0], "ssi:") {
		t.Fatalf("unresolved or failed includes:\n%s", bodies[0])
	}
}

// TestSSIExecNeverRuns: a fragment with exec directives is served with
// them stripped, on the miss and on the hit; nothing is executed.
func TestSSIExecNeverRuns(t *testing.T) {
	pwned := filepath.Join(t.TempDir(), "pwned")
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		switch r.URL.Path {
		case "/page.html":
			fmt.Fprint(w, `<p>before</p><!--#include virtual="/frag/evil.html" --><p>after</p>`+
				`<!--#include virtual="/frag/../../etc/passwd" --><!--#include file="../secret" -->`)
		case "/frag/evil.html":
			fmt.Fprintf(w, `<!--#exec cmd="touch %[1]s" -->F<!--#exec cgi="/cgi-bin/x" --><!--#config errmsg="x" -->`+
				`<!--#echo var="DOCUMENT_ROOT" --><!--#set var="a" value="b" --><!--#include virtual="/frag/evil.html" -->`+
				`<!--# exec cmd="touch %[1]s" --><!--#EXEC CMD="touch %[1]s" -->`, pwned)
		default:
			http.NotFound(w, r)
		}
	}))
	defer backend.Close()
	e := harness.StartEdge(t, harness.EdgeOptions{Origin: strings.TrimPrefix(backend.URL, "http://"), Cache: "ssi"})
	for i := range 2 {
		status, _, body := harness.Get(t, nil, e.URL()+"/page.html")
		if status != 200 || !strings.HasPrefix(body, "<p>before</p>F") || !strings.Contains(body, "<p>after</p>") {
			t.Fatalf("request %d: %d %q", i, status, body)
		}
		for _, bad := range []string{"exec", "cmd=", "touch", "cgi", "config", "echo", "set var", "DOCUMENT_ROOT", "<!--#"} {
			if strings.Contains(strings.ToLower(body), strings.ToLower(bad)) {
				t.Errorf("request %d: %q in the output: %q", i, bad, body)
			}
		}
		if !strings.Contains(body, "skipped: cycle") || strings.Count(body, "refused") != 2 {
			t.Errorf("request %d: cycle/refused comments missing: %q", i, body)
		}
	}
	time.Sleep(200 * time.Millisecond)
	if _, err := os.Stat(pwned); err == nil {
		t.Fatal("an exec directive was executed")
	}
	if !e.Exists("frag/evil.html") {
		t.Fatal("fragment not stored")
	}
}
