package cache

import (
	"bufio"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/delivery-edge/edge/cache/ssi"
)

// ssiPages is a render backend of HTML pages by path. Each page depends
// on a document named after its path; bodies are written in small pieces
// so directives are split across writes.
type ssiPages struct {
	mu      sync.Mutex
	pages   map[string]string
	header  map[string]http.Header
	status  map[string]int
	renders map[string]int
	delay   time.Duration
}

func newSSIPages(pages map[string]string) *ssiPages {
	return &ssiPages{pages: pages, header: map[string]http.Header{}, status: map[string]int{}, renders: map[string]int{}}
}

func (b *ssiPages) render(w http.ResponseWriter, r *http.Request) error {
	b.mu.Lock()
	b.renders[r.URL.Path]++
	body, ok := b.pages[r.URL.Path]
	hdr, status, delay := b.header[r.URL.Path], b.status[r.URL.Path], b.delay
	b.mu.Unlock()
	time.Sleep(delay)
	if !ok {
		http.NotFound(w, r)
		return nil
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set(HeaderDependencies, strconv.Quote("doc"+r.URL.Path))
	for k, v := range hdr {
		h[k] = v
	}
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	for len(body) > 0 { // pieces of 7 bytes: every tag is split
		n := min(7, len(body))
		_, _ = w.Write([]byte(body[:n]))
		body = body[n:]
	}
	return nil
}

func (b *ssiPages) set(path, body string) {
	b.mu.Lock()
	b.pages[path] = body
	b.mu.Unlock()
}

func (b *ssiPages) count(path string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.renders[path]
}

func newSSISite(t *testing.T, depth int) *Site {
	t.Helper()
	s, _ := newTestSite(t)
	s.SSI = &SSIConfig{MaxDepth: depth}
	return s
}

func ssiGet(t *testing.T, s *Site, b *ssiPages, method, target string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	if err := s.ServeHTTP(rec, req, b.render); err != nil {
		rec.Code = statusOf(err)
	}
	return rec
}

func (s *Site) mode(t *testing.T, name string) fs.FileMode {
	t.Helper()
	info, err := os.Stat(filepath.Join(s.Store.Dir(), filepath.FromSlash(name)))
	if err != nil {
		t.Fatal(err)
	}
	return info.Mode()
}

func TestSSIAssemblesMissesAndHits(t *testing.T) {
	s := newSSISite(t, 0)
	b := newSSIPages(map[string]string{
		"/p.html":   `<h1>P</h1><!--#include virtual="/f/a.html" -->|<!--#include virtual="/f/b.html" -->end`,
		"/f/a.html": "A",
		"/f/b.html": `B(<!--#include virtual="/f/c.html" -->)`,
		"/f/c.html": "C",
	})
	const want = "<h1>P</h1>A|B(C)end"
	rec := ssiGet(t, s, b, "GET", "/p.html")
	if rec.Code != 200 || rec.Body.String() != want {
		t.Fatalf("miss: %d %q", rec.Code, rec.Body)
	}
	for _, f := range []string{"p.html", "f/a.html", "f/b.html", "f/c.html"} {
		if !s.exists(f) {
			t.Fatalf("%s not stored", f)
		}
	}
	if s.mode(t, "p.html")&ssi.MarkBit == 0 || s.mode(t, "f/b.html")&ssi.MarkBit == 0 ||
		s.mode(t, "f/a.html")&ssi.MarkBit != 0 {
		t.Fatalf("marks: p %v b %v a %v", s.mode(t, "p.html"), s.mode(t, "f/b.html"), s.mode(t, "f/a.html"))
	}
	// Each fragment is registered with its own dependencies.
	e, ok, err := s.Store.reg.Get(s.Store.ID("f/c.html"))
	if err != nil || !ok || len(e.Deps) != 1 || e.Deps[0].Name != "doc/f/c.html" {
		t.Fatalf("fragment entry: %+v %v %v", e, ok, err)
	}
	rec = ssiGet(t, s, b, "GET", "/p.html")
	if rec.Code != 200 || rec.Body.String() != want {
		t.Fatalf("hit: %d %q", rec.Code, rec.Body)
	}
	h := rec.Header()
	if !strings.HasPrefix(h.Get("Etag"), `"ssi-`) || h.Get("Last-Modified") == "" ||
		h.Get("Content-Length") != strconv.Itoa(len(want)) || h.Get("Accept-Ranges") != "none" ||
		!strings.HasPrefix(h.Get("Content-Type"), "text/html") {
		t.Fatalf("hit headers: %v", h)
	}
	for _, p := range []string{"/p.html", "/f/a.html", "/f/b.html", "/f/c.html"} {
		if n := b.count(p); n != 1 {
			t.Errorf("%s rendered %d times", p, n)
		}
	}
	// A fragment requested on its own is assembled too.
	if rec := ssiGet(t, s, b, "GET", "/f/b.html"); rec.Body.String() != "B(C)" {
		t.Fatalf("fragment: %q", rec.Body)
	}
}

func TestSSIConcurrentColdPageRendersEachPartOnce(t *testing.T) {
	s := newSSISite(t, 0)
	pages := map[string]string{}
	var page, want strings.Builder
	for i := range 10 {
		fmt.Fprintf(&page, `<!--#include virtual="/f/%d.html" -->`, i)
		pages[fmt.Sprintf("/f/%d.html", i)] = fmt.Sprintf("[%d]", i)
		fmt.Fprintf(&want, "[%d]", i)
	}
	pages["/p.html"] = page.String()
	b := newSSIPages(pages)
	b.delay = 50 * time.Millisecond
	var wg sync.WaitGroup
	bodies := make([]string, 50)
	for i := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			bodies[i] = ssiGet(t, s, b, "GET", "/p.html").Body.String()
		}()
	}
	wg.Wait()
	for i, body := range bodies {
		if body != want.String() {
			t.Fatalf("request %d: %q", i, body)
		}
	}
	for p := range pages {
		if n := b.count(p); n != 1 {
			t.Errorf("%s rendered %d times", p, n)
		}
	}
}

func TestSSIStripsOtherDirectives(t *testing.T) {
	s := newSSISite(t, 0)
	b := newSSIPages(map[string]string{
		"/p.html": `a<!--#exec cmd="touch /tmp/x" -->b<!--#exec cgi="/x" --><!--#config errmsg="x" -->` +
			`<!--#echo var="DOCUMENT_URI" --><!--#set var="x" value="y" --><!--#if expr="1" -->c<!--#endif -->` +
			`<!--#printenv --><!--#fsize file="x" --><!--#flastmod virtual="/x" -->d<!--#include virtual="/f.html" -->`,
		"/f.html": `<!--#exec cmd="id" -->F`,
	})
	for range 2 { // miss, then hit
		rec := ssiGet(t, s, b, "GET", "/p.html")
		if rec.Code != 200 || rec.Body.String() != "abcdF" {
			t.Fatalf("%d %q", rec.Code, rec.Body)
		}
	}
}

func TestSSIFailuresBecomeComments(t *testing.T) {
	s := newSSISite(t, 3)
	b := newSSIPages(map[string]string{
		"/p.html": `<!--#include virtual="/missing.html" -->|<!--#include virtual="/broken.html" -->|` +
			`<!--#include virtual="/secret.html.old" -->|<!--#include virtual="/.delivery-tmp/x" -->|` +
			`<!--#include virtual="/a/../p.html" -->|<!--#include virtual="relative.html" -->|` +
			`<!--#include virtual="//evil.example/x" -->|<!--#include virtual="http://evil.example/" -->|` +
			`<!--#include virtual="/a%2Fb.html" -->|<!--#include virtual="/q.html?nope=1" -->|` +
			`<!--#include virtual="/p.html" -->|<!--#include virtual="/cyc1.html" -->|<!--#include virtual="/d1.html" -->|` +
			`<!--#include -->|<!--#include virtual="/f.html" -->`,
		"/broken.html": "x",
		"/f.html":      "F",
		"/cyc1.html":   `c1<!--#include virtual="/cyc2.html" -->`,
		"/cyc2.html":   `c2<!--#include virtual="/cyc1.html" -->`,
		"/d1.html":     `d1<!--#include virtual="/d2.html" -->`,
		"/d2.html":     `d2<!--#include virtual="/d3.html" -->`,
		"/d3.html":     `d3<!--#include virtual="/d4.html" -->`,
		"/d4.html":     `d4`,
	})
	b.status["/broken.html"] = 500
	if err := os.WriteFile(filepath.Join(s.Store.Dir(), "secret.html.old"), []byte("OLD SECRET"), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		done := make(chan *httptest.ResponseRecorder)
		go func() { done <- ssiGet(t, s, b, "GET", "/p.html") }()
		var rec *httptest.ResponseRecorder
		select {
		case rec = <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("assembly hangs")
		}
		body := rec.Body.String()
		parts := strings.Split(body, "|")
		if rec.Code != 200 || len(parts) != 15 {
			t.Fatalf("request %d: %d %q", i, rec.Code, body)
		}
		wants := []string{"failed: 404", "failed: 500", "refused", "refused", "refused", "refused", "refused",
			"refused", "refused", "refused", "skipped: cycle", "c1c2<!-- ssi: include \"/cyc1.html\" skipped: cycle -->",
			"d1d2d3<!-- ssi: include \"/d4.html\" skipped: nested deeper than 3 -->", "malformed include", "F"}
		for j, w := range wants {
			if !strings.Contains(parts[j], w) {
				t.Errorf("request %d part %d: %q does not contain %q", i, j, parts[j], w)
			}
		}
		if strings.Contains(body, "SECRET") {
			t.Fatal(".old file included by name")
		}
	}
	if n := b.count("/a%2Fb.html") + b.count("/a/b.html") + b.count("/q.html") + b.count("/relative.html"); n != 0 {
		t.Fatalf("refused includes were rendered: %d", n)
	}
}

func TestSSIFragmentChangeChangesValidators(t *testing.T) {
	s := newSSISite(t, 0)
	b := newSSIPages(map[string]string{
		"/p.html": `page:<!--#include virtual="/f.html" -->`,
		"/f.html": "v1",
	})
	ssiGet(t, s, b, "GET", "/p.html")
	rec := ssiGet(t, s, b, "GET", "/p.html")
	etag1, mod1 := rec.Header().Get("Etag"), rec.Header().Get("Last-Modified")
	if rec.Body.String() != "page:v1" || etag1 == "" {
		t.Fatalf("hit: %q %v", rec.Body, rec.Header())
	}
	if rec := ssiGet(t, s, b, "GET", "/p.html", "If-None-Match", etag1); rec.Code != http.StatusNotModified {
		t.Fatalf("If-None-Match: %d", rec.Code)
	}
	if rec := ssiGet(t, s, b, "GET", "/p.html", "If-Modified-Since", mod1); rec.Code != http.StatusNotModified {
		t.Fatalf("If-Modified-Since: %d", rec.Code)
	}
	pageInfo, _ := os.Stat(filepath.Join(s.Store.Dir(), "p.html"))

	// The fragment is invalidated: the page file is not touched, and the
	// page includes the fragment's .old copy while it renders anew.
	time.Sleep(1100 * time.Millisecond) // a new second for Last-Modified
	b.set("/f.html", "v2")
	b.mu.Lock()
	b.delay = 300 * time.Millisecond
	b.mu.Unlock()
	if ok, err := s.Store.Invalidate("f.html"); !ok || err != nil {
		t.Fatal(ok, err)
	}
	rec = ssiGet(t, s, b, "GET", "/p.html", "If-None-Match", etag1)
	if rec.Code != 200 || rec.Body.String() != "page:v1" || rec.Header().Get(HeaderStale) != "1" ||
		rec.Header().Get("Etag") == etag1 {
		t.Fatalf("stale fragment: %d %q %v", rec.Code, rec.Body, rec.Header())
	}
	deadline := time.Now().Add(5 * time.Second)
	for !s.exists("f.html") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	rec = ssiGet(t, s, b, "GET", "/p.html", "If-None-Match", etag1, "If-Modified-Since", mod1)
	etag2 := rec.Header().Get("Etag")
	if rec.Code != 200 || rec.Body.String() != "page:v2" || etag2 == etag1 || rec.Header().Get(HeaderStale) != "" ||
		rec.Header().Get("Last-Modified") == mod1 {
		t.Fatalf("after re-render: %d %q %v", rec.Code, rec.Body, rec.Header())
	}
	if rec := ssiGet(t, s, b, "GET", "/p.html", "If-None-Match", etag2); rec.Code != http.StatusNotModified {
		t.Fatalf("If-None-Match new: %d", rec.Code)
	}
	if rec := ssiGet(t, s, b, "GET", "/p.html", "If-Match", etag1); rec.Code != http.StatusPreconditionFailed {
		t.Fatalf("If-Match old: %d", rec.Code)
	}
	after, _ := os.Stat(filepath.Join(s.Store.Dir(), "p.html"))
	if !os.SameFile(pageInfo, after) || !after.ModTime().Equal(pageInfo.ModTime()) {
		t.Fatal("the page file changed when its fragment was invalidated")
	}
	if b.count("/p.html") != 1 || b.count("/f.html") != 2 {
		t.Fatalf("renders: page %d fragment %d", b.count("/p.html"), b.count("/f.html"))
	}

	// The page is invalidated: its fragment is not touched.
	fragInfo, _ := os.Stat(filepath.Join(s.Store.Dir(), "f.html"))
	if ok, err := s.Store.Invalidate("p.html"); !ok || err != nil {
		t.Fatal(ok, err)
	}
	fragAfter, err := os.Stat(filepath.Join(s.Store.Dir(), "f.html"))
	if err != nil || !os.SameFile(fragInfo, fragAfter) {
		t.Fatal("the fragment changed when its page was invalidated")
	}
}

func TestSSIRangeHeadAndStaleness(t *testing.T) {
	s := newSSISite(t, 0)
	b := newSSIPages(map[string]string{"/p.html": `ab<!--#include virtual="/f.html" -->cd`, "/f.html": "F"})
	ssiGet(t, s, b, "GET", "/p.html")
	rec := ssiGet(t, s, b, "GET", "/p.html", "Range", "bytes=0-1")
	if rec.Code != 200 || rec.Body.String() != "abFcd" || rec.Header().Get("Accept-Ranges") != "none" {
		t.Fatalf("range: %d %q %v", rec.Code, rec.Body, rec.Header())
	}
	rec = ssiGet(t, s, b, "HEAD", "/p.html")
	if rec.Code != 200 || rec.Body.Len() != 0 || rec.Header().Get("Content-Length") != "5" || rec.Header().Get("Etag") == "" {
		t.Fatalf("HEAD: %d %q %v", rec.Code, rec.Body, rec.Header())
	}
	// The page itself stale: assembled from its .old copy.
	if _, err := s.Store.Invalidate("p.html"); err != nil {
		t.Fatal(err)
	}
	b.set("/p.html", `new<!--#include virtual="/f.html" -->`)
	rec = ssiGet(t, s, b, "GET", "/p.html")
	if rec.Body.String() != "abFcd" || rec.Header().Get(HeaderStale) != "1" {
		t.Fatalf("stale page: %q %v", rec.Body, rec.Header())
	}
	s.Store.bg.Wait()
	if rec := ssiGet(t, s, b, "GET", "/p.html"); rec.Body.String() != "newF" {
		t.Fatalf("re-rendered page: %q", rec.Body)
	}
}

func TestSSIMissAnsweredWithHeadAndConditions(t *testing.T) {
	s := newSSISite(t, 0)
	b := newSSIPages(map[string]string{"/p.html": `<!--#include virtual="/f.html" -->!`, "/f.html": "F"})
	rec := ssiGet(t, s, b, "HEAD", "/p.html")
	if rec.Code != 200 || rec.Body.Len() != 0 {
		t.Fatalf("HEAD miss: %d %q", rec.Code, rec.Body)
	}
	rec = ssiGet(t, s, b, "GET", "/p.html", "If-None-Match", `"nope"`)
	if rec.Code != 200 || rec.Body.String() != "F!" {
		t.Fatalf("conditional GET: %d %q", rec.Code, rec.Body)
	}
}

func TestSSIUncacheableAnswersAreAssembledAsTheyStream(t *testing.T) {
	s := newSSISite(t, 0)
	b := newSSIPages(map[string]string{
		"/private.html": `me:<!--#include virtual="/f.html" --><!--#exec cmd="x" -->.`,
		"/q.html":       `q:<!--#include virtual="/f.html" -->`,
		"/f.html":       `F<!--#include file="g.html" -->`,
		"/g.html":       "G",
	})
	b.header["/private.html"] = http.Header{"Cache-Control": {"private"}, "Content-Length": {"63"}}
	for range 2 {
		rec := ssiGet(t, s, b, "GET", "/private.html")
		if rec.Code != 200 || rec.Body.String() != "me:FG." || rec.Header().Get("Content-Length") != "" {
			t.Fatalf("uncacheable page: %d %q %v", rec.Code, rec.Body, rec.Header())
		}
	}
	if s.exists("private.html") || !s.exists("f.html") || !s.exists("g.html") {
		t.Fatal("files stored wrongly")
	}
	// A request that is not cacheable (query parameter not allowed).
	if rec := ssiGet(t, s, b, "GET", "/q.html?utm=1"); rec.Body.String() != "q:FG" {
		t.Fatalf("uncacheable request: %q", rec.Body)
	}
	if b.count("/f.html") != 1 || b.count("/g.html") != 1 {
		t.Fatalf("fragments rendered %d, %d times", b.count("/f.html"), b.count("/g.html"))
	}
}

func TestSSIOffOrNotHTMLServesRaw(t *testing.T) {
	s := newSSISite(t, 0)
	b := newSSIPages(map[string]string{"/t.txt": `<!--#include virtual="/f.html" -->`, "/f.html": "F"})
	b.header["/t.txt"] = http.Header{"Content-Type": {"text/plain"}}
	for range 2 {
		if rec := ssiGet(t, s, b, "GET", "/t.txt"); rec.Body.String() != `<!--#include virtual="/f.html" -->` {
			t.Fatalf("text: %q", rec.Body)
		}
	}
	if s.mode(t, "t.txt")&ssi.MarkBit != 0 {
		t.Fatal("plain text marked")
	}
	// Without ssi the marked file is served as it is.
	b.set("/p.html", `<!--#include virtual="/f.html" -->`)
	ssiGet(t, s, b, "GET", "/p.html")
	s.SSI = nil
	if rec := ssiGet(t, s, b, "GET", "/p.html"); rec.Body.String() != `<!--#include virtual="/f.html" -->` ||
		rec.Header().Get("Accept-Ranges") == "none" {
		t.Fatalf("ssi off: %q", rec.Body)
	}
}

func TestSSIRegenerateMarks(t *testing.T) {
	s := newSSISite(t, 0)
	b := newSSIPages(map[string]string{"/p.html": `x<!--#include virtual="/f.html" -->`, "/f.html": "F"})
	req := httptest.NewRequest("GET", "/p.html", nil)
	rec := httptest.NewRecorder()
	s.Regenerate(rec, req, b.render)
	if rec.Code != RegenStored || s.mode(t, "p.html")&ssi.MarkBit == 0 {
		t.Fatalf("regenerate: %d %v", rec.Code, s.mode(t, "p.html"))
	}
	if rec := ssiGet(t, s, b, "GET", "/p.html"); rec.Body.String() != "xF" {
		t.Fatalf("%q", rec.Body)
	}
}

func TestSSILargePageTagAcrossReadBoundary(t *testing.T) {
	s := newSSISite(t, 0)
	for _, at := range []int{32<<10 - 3, 32<<10 - 20, 64<<10 - 1} {
		page := strings.Repeat("x", at) + `<!--#include virtual="/f.html" -->` + strings.Repeat("y", 1000)
		name := fmt.Sprintf("big%d.html", at)
		if err := os.WriteFile(filepath.Join(s.Store.Dir(), name), []byte(page), 0o744); err != nil {
			t.Fatal(err)
		}
		b := newSSIPages(map[string]string{"/f.html": "F"})
		rec := ssiGet(t, s, b, "GET", "/"+name)
		want := strings.Repeat("x", at) + "F" + strings.Repeat("y", 1000)
		if rec.Body.String() != want {
			t.Fatalf("at %d: %d bytes", at, rec.Body.Len())
		}
		rec = ssiGet(t, s, b, "GET", "/"+name)
		if rec.Body.String() != want || rec.Header().Get("Content-Length") != strconv.Itoa(len(want)) {
			t.Fatalf("hit at %d: %d bytes", at, rec.Body.Len())
		}
	}
}

// TestSSILayoutCachedByFileVersion: without a hot set, the directives of a
// file are kept by file version, so a new version (renamed into place) is
// parsed anew.
func TestSSILayoutCachedByFileVersion(t *testing.T) {
	s := newSSISite(t, 0)
	s.Store.hot = nil
	name := filepath.Join(s.Store.Dir(), "p.html")
	if err := os.WriteFile(name, []byte(`<!--#include virtual="/a.html" -->`), 0o744); err != nil {
		t.Fatal(err)
	}
	b := newSSIPages(map[string]string{"/a.html": "A", "/b.html": "B"})
	if rec := ssiGet(t, s, b, "GET", "/p.html"); rec.Body.String() != "A" {
		t.Fatalf("%q", rec.Body)
	}
	// A new version (written beside and renamed, as the cache does).
	tmp := name + ".new"
	if err := os.WriteFile(tmp, []byte(`x<!--#include virtual="/b.html" -->`), 0o744); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, name); err != nil {
		t.Fatal(err)
	}
	if rec := ssiGet(t, s, b, "GET", "/p.html"); rec.Body.String() != "xB" {
		t.Fatalf("%q", rec.Body)
	}
}

// TestSSIPartsFromMemory: parts come from the store's hot set, which every
// change the store makes (invalidation, new render, purge) updates at once.
func TestSSIPartsFromMemory(t *testing.T) {
	s := newSSISite(t, 0)
	dir := s.Store.Dir()
	if err := os.WriteFile(filepath.Join(dir, "p.html"), []byte(`<!--#include virtual="/f/a.html" -->`), 0o744); err != nil {
		t.Fatal(err)
	}
	b := newSSIPages(map[string]string{"/f/a.html": "v1"})
	for range 3 {
		if rec := ssiGet(t, s, b, "GET", "/p.html"); rec.Body.String() != "v1" {
			t.Fatalf("%q", rec.Body)
		}
	}
	if s.Store.hot.get("f/a.html") == nil || s.Store.hot.get("p.html") == nil {
		t.Fatal("page and part not held in memory")
	}
	// Invalidated (renamed to .old): served stale at once, rendered anew.
	b.set("/f/a.html", "v2")
	if _, err := s.Store.Invalidate("f/a.html"); err != nil {
		t.Fatal(err)
	}
	if rec := ssiGet(t, s, b, "GET", "/p.html"); rec.Body.String() != "v1" || rec.Header().Get(HeaderStale) != "1" {
		t.Fatalf("after invalidation: %q %v", rec.Body, rec.Header())
	}
	s.Store.bg.Wait()
	if rec := ssiGet(t, s, b, "GET", "/p.html"); rec.Body.String() != "v2" {
		t.Fatalf("after the render: %q", rec.Body)
	}
	// Deleted: rendered again at once (a miss), never the remembered body.
	b.set("/f/a.html", "again")
	s.Store.Purge("f/a.html")
	if rec := ssiGet(t, s, b, "GET", "/p.html"); rec.Body.String() != "again" {
		t.Fatalf("after deletion: %q", rec.Body)
	}
}

// TestSSIMissingPartsRenderInParallel: the missing parts of a page are
// rendered ahead, at the same time; each still once.
func TestSSIMissingPartsRenderInParallel(t *testing.T) {
	s := newSSISite(t, 0)
	pages := map[string]string{"/p.html": ""}
	var want strings.Builder
	for i := range 10 {
		pages["/p.html"] += fmt.Sprintf(`<!--#include virtual="/f/%d.html" -->`, i)
		pages[fmt.Sprintf("/f/%d.html", i)] = fmt.Sprint(i)
		want.WriteString(fmt.Sprint(i))
	}
	b := newSSIPages(pages)
	b.delay = 200 * time.Millisecond
	start := time.Now()
	rec := ssiGet(t, s, b, "GET", "/p.html")
	took := time.Since(start)
	if rec.Body.String() != want.String() {
		t.Fatalf("%q", rec.Body)
	}
	// In sequence: 11 × 200 ms; ahead, 8 at a time: page + 2 rounds.
	if took > 1500*time.Millisecond {
		t.Fatalf("cold page took %v: parts rendered one after the other", took)
	}
	for p := range pages {
		if n := b.count(p); n != 1 {
			t.Errorf("%s rendered %d times", p, n)
		}
	}
}

// TestSSIUncacheablePart: a part that may not be stored is rendered into
// each answer (the first time also once ahead, in vain).
func TestSSIUncacheablePart(t *testing.T) {
	s := newSSISite(t, 0)
	b := newSSIPages(map[string]string{"/p.html": `[<!--#include virtual="/me.html" -->]`, "/me.html": "you"})
	b.header["/me.html"] = http.Header{"Set-Cookie": {"a=b"}}
	for i := range 3 {
		if rec := ssiGet(t, s, b, "GET", "/p.html"); rec.Body.String() != "[you]" || rec.Header().Get("Etag") != "" {
			t.Fatalf("request %d: %q %v", i, rec.Body, rec.Header())
		}
	}
	if s.exists("me.html") {
		t.Fatal("uncacheable part stored")
	}
	if n := b.count("/me.html"); n != 4 {
		t.Fatalf("uncacheable part rendered %d times, want 4", n)
	}
}

type hijackRecorder struct {
	*httptest.ResponseRecorder
	hijacked bool
}

func (h *hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h.hijacked = true
	return nil, nil, nil
}

// TestSSIFilterLetsUpgradesThrough: a request that is not cached reaches
// the backend through the SSI filter, which must not hide the client's
// connection (WebSocket upgrades hijack it).
func TestSSIFilterLetsUpgradesThrough(t *testing.T) {
	s := newSSISite(t, 0)
	rec := &hijackRecorder{ResponseRecorder: httptest.NewRecorder()}
	err := s.ServeHTTP(rec, httptest.NewRequest("GET", "/ws?token=1", nil), func(w http.ResponseWriter, r *http.Request) error {
		w.WriteHeader(http.StatusSwitchingProtocols)
		_, _, err := http.NewResponseController(w).Hijack()
		return err
	})
	if err != nil || !rec.hijacked {
		t.Fatalf("hijack through the filter: %v %v", err, rec.hijacked)
	}
}
