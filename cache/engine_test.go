package cache

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
)

// pages is a render backend whose pages report fixed dependencies and
// carry a version number, so tests see which render a file came from.
type pages struct {
	mu       sync.Mutex
	deps     map[string]string // path -> Delivery-Dependencies
	extra    map[string]http.Header
	status   map[string]int // answer status other than 200
	version  int
	renders  map[string]int
	template string
}

func newPages() *pages {
	return &pages{version: 1, renders: map[string]int{}, extra: map[string]http.Header{}, template: "t1", deps: map[string]string{
		"/s1.html":        `"story1"`,
		"/teaser-s1.html": `"story1";props="title"`,
		"/list.html":      `"story1";props="topline", "/sec";type=node`,
		"/s2.html":        `"story2", "uuid-2"`,
	}}
}

func (p *pages) render(w http.ResponseWriter, r *http.Request) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	d, ok := p.deps[r.URL.Path]
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		return nil
	}
	p.renders[r.URL.Path]++
	w.Header().Set(HeaderDependencies, d+`, "page.tmpl";type=resource;hash="`+p.template+`"`)
	for k, v := range p.extra[r.URL.Path] {
		w.Header()[k] = v
	}
	if code := p.status[r.URL.Path]; code != 0 {
		w.WriteHeader(code)
	}
	fmt.Fprintf(w, "%s v%d", r.URL.Path, p.version)
	return nil
}

func (p *pages) count(path string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.renders[path]
}

func (p *pages) set(fn func(p *pages)) {
	p.mu.Lock()
	fn(p)
	p.mu.Unlock()
}

// siteRenderer renders pre-generation work straight through a Site, as
// the Caddy module does through the server's handlers.
type siteRenderer struct {
	site *Site
	p    *pages
}

func (sr siteRenderer) Regenerate(ctx context.Context, host, key string) (int, error) {
	rec := httptest.NewRecorder()
	sr.site.Regenerate(rec, httptest.NewRequest("GET", key, nil).WithContext(ctx), sr.p.render)
	return rec.Code, nil
}

func (sr siteRenderer) Resolve(_ context.Context, _, doc string) (string, error) {
	return "/" + doc + ".html", nil
}

type engineFixture struct {
	t     *testing.T
	eng   *Engine
	site  *Site
	pages *pages
}

func newEngineFixture(t *testing.T, cfg InvalidationConfig) *engineFixture {
	t.Helper()
	dir := t.TempDir()
	eng, err := Open(Options{DataDir: filepath.Join(dir, "data"), Logger: zap.NewNop(), AccessFlushInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	eng.Configure(cfg)
	store, err := eng.Store(filepath.Join(dir, "docroot"))
	if err != nil {
		t.Fatal(err)
	}
	f := &engineFixture{t: t, eng: eng, site: &Site{Store: store, RenderTimeout: 2 * time.Second}, pages: newPages()}
	store.SetRenderer(siteRenderer{f.site, f.pages}, "")
	return f
}

func (f *engineFixture) get(path string) string {
	f.t.Helper()
	rec := httptest.NewRecorder()
	if err := f.site.ServeHTTP(rec, httptest.NewRequest("GET", path, nil), f.pages.render); err != nil {
		return fmt.Sprintf("error %d", statusOf(err))
	}
	if rec.Code != http.StatusOK {
		return fmt.Sprintf("error %d", rec.Code)
	}
	return rec.Body.String()
}

// ensure requests the pages until each is in place (a request that finds
// only a .old copy starts a render in the background).
func (f *engineFixture) ensure(paths ...string) {
	f.t.Helper()
	for _, p := range paths {
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			f.get(p)
			if _, ok := f.file(p[1:]); ok {
				break
			}
			if time.Now().After(deadline) {
				f.t.Fatalf("%s never rendered", p)
			}
		}
	}
	f.site.Store.reg.Sync()
}

func (f *engineFixture) file(name string) (string, bool) {
	b, err := os.ReadFile(filepath.Join(f.site.Store.Dir(), name))
	return string(b), err == nil
}

func (f *engineFixture) apply(c ...Change) {
	f.t.Helper()
	if err := f.eng.ApplyChanges(c, "test", 42); err != nil {
		f.t.Fatal(err)
	}
}

// settle waits until both queues are empty.
func (f *engineFixture) settle() {
	f.t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if st := f.eng.Stats(); st.RemovalQueue == 0 && st.PregenQueue == 0 {
			time.Sleep(20 * time.Millisecond)
			return
		}
	}
	f.t.Fatalf("queues did not drain: %+v", f.eng.Stats())
}

func TestEngineMatchesExactlyTheDependents(t *testing.T) {
	f := newEngineFixture(t, InvalidationConfig{})
	for _, p := range []string{"/s1.html", "/teaser-s1.html", "/list.html", "/s2.html"} {
		f.get(p)
	}
	f.site.Store.reg.Sync()

	tests := []struct {
		name    string
		change  Change
		renamed []string
	}{
		{"irrelevant property", Change{Kind: DepDocument, ID: "story1", State: StatePublished, ChangedProps: []string{"copytext"}}, []string{"s1.html"}},
		{"title", Change{Kind: DepDocument, ID: "story1", State: StatePublished, ChangedProps: []string{"title"}}, []string{"s1.html", "teaser-s1.html"}},
		{"unknown properties", Change{Kind: DepDocument, ID: "story1", State: StatePublished}, []string{"s1.html", "teaser-s1.html", "list.html"}},
		{"by UUID", Change{Kind: DepDocument, ID: "story2x", UUID: "uuid-2", State: StatePublished}, []string{"s2.html"}},
		{"node", Change{Kind: DepNode, ID: "/sec", State: StatePublished, ChangedProps: []string{"name"}}, []string{"list.html"}},
		{"other document", Change{Kind: DepDocument, ID: "story9", State: StatePublished}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.ensure("/s1.html", "/teaser-s1.html", "/list.html", "/s2.html")
			f.apply(tt.change)
			f.settle()
			for _, name := range []string{"s1.html", "teaser-s1.html", "list.html", "s2.html"} {
				_, present := f.file(name)
				_, old := f.file(name + OldSuffix)
				want := true
				for _, r := range tt.renamed {
					if r == name {
						want = false
					}
				}
				if present != want || (!want && !old) {
					t.Errorf("%s: present=%v old=%v, want present=%v", name, present, old, want)
				}
			}
		})
	}
	if pos, _ := f.eng.Position("test"); pos != 42 {
		t.Errorf("position = %d, want 42", pos)
	}
}

func TestEngineQueueChoice(t *testing.T) {
	tests := []struct {
		name      string
		cfg       InvalidationConfig
		read      bool // read after it was written
		force     bool
		wantInPre bool
	}{
		{"pre-generation off", InvalidationConfig{}, true, true, false},
		{"read recently", InvalidationConfig{Pregenerate: true}, true, false, true},
		{"never read after writing", InvalidationConfig{Pregenerate: true}, false, false, false},
		{"forced", InvalidationConfig{Pregenerate: true}, false, true, true},
		{"read, but not recently", InvalidationConfig{Pregenerate: true, Recent: time.Nanosecond}, true, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newEngineFixture(t, tt.cfg)
			if tt.force {
				f.pages.extra["/s1.html"] = http.Header{HeaderPregenerate: {"?1"}}
			}
			f.get("/s1.html")
			if tt.read {
				time.Sleep(5 * time.Millisecond)
				f.get("/s1.html") // a hit: recorded as an access after creation
			}
			time.Sleep(5 * time.Millisecond)
			f.site.Store.reg.Sync()
			f.pages.set(func(p *pages) { p.version = 2 })
			f.apply(Change{Kind: DepDocument, ID: "story1", State: StatePublished})
			f.settle()
			body, present := f.file("s1.html")
			_, old := f.file("s1.html" + OldSuffix)
			if tt.wantInPre {
				if !present || old || body != "/s1.html v2" || f.pages.count("/s1.html") != 2 {
					t.Fatalf("pre-generated: present=%v old=%v body=%q renders=%d", present, old, body, f.pages.count("/s1.html"))
				}
			} else if present || !old || f.pages.count("/s1.html") != 1 {
				t.Fatalf("removed: present=%v old=%v renders=%d", present, old, f.pages.count("/s1.html"))
			}
		})
	}
}

func TestEngineDeletedContentIsPurged(t *testing.T) {
	f := newEngineFixture(t, InvalidationConfig{Pregenerate: true})
	f.get("/s1.html")
	f.get("/list.html")
	time.Sleep(5 * time.Millisecond) // access times have millisecond resolution
	f.get("/list.html")              // read: it will be rendered again
	f.site.Store.reg.Sync()
	f.pages.set(func(p *pages) { delete(p.deps, "/s1.html"); p.version = 2 })
	f.apply(Change{Kind: DepDocument, ID: "story1", State: StateDeleted})
	f.settle()
	for _, name := range []string{"s1.html", "s1.html.old", "list.html.old"} {
		if _, ok := f.file(name); ok {
			t.Errorf("%s left after the document was deleted", name)
		}
	}
	if body, ok := f.file("list.html"); !ok || body != "/list.html v2" {
		t.Errorf("the read list page was not rendered again: %q %v", body, ok)
	}
	if got := f.get("/s1.html"); got != "error 404" {
		t.Errorf("deleted page: %q", got)
	}
}

func TestEngineResourceHashChange(t *testing.T) {
	f := newEngineFixture(t, InvalidationConfig{})
	f.get("/s1.html")
	f.get("/list.html")
	f.site.Store.reg.Sync()
	f.pages.set(func(p *pages) { p.template = "t2" })
	f.get("/s2.html") // the first render with the new template
	f.site.Store.reg.Sync()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, s1 := f.file("s1.html")
		_, list := f.file("list.html")
		if !s1 && !list {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pages rendered with the old template still there: s1=%v list=%v", s1, list)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, ok := f.file("s2.html"); !ok {
		t.Fatal("the page rendered with the new template was invalidated")
	}
}

func TestEngineGenerateNonexistent(t *testing.T) {
	f := newEngineFixture(t, InvalidationConfig{Pregenerate: true, GenerateNonexistent: true})
	f.apply(Change{Kind: DepDocument, ID: "s1", State: StatePublished})
	f.settle()
	if body, ok := f.file("s1.html"); !ok || body != "/s1.html v1" {
		t.Fatalf("document not pre-generated: %q %v", body, ok)
	}
}

func TestEngineScheduledExpiry(t *testing.T) {
	f := newEngineFixture(t, InvalidationConfig{})
	f.pages.extra["/s1.html"] = http.Header{"Cache-Control": {"max-age=1"}}
	f.get("/s1.html")
	f.site.Store.reg.Sync()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok := f.file("s1.html"); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("file with max-age=1 not invalidated")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, ok := f.file("s1.html.old"); !ok {
		t.Fatal("expired file not renamed to .old")
	}
}

func TestEngineEphemeral(t *testing.T) {
	f := newEngineFixture(t, InvalidationConfig{Ephemeral: 30 * time.Second})
	f.pages.extra["/s1.html"] = http.Header{"Cache-Control": {"max-age=1"}}
	f.get("/s1.html")
	f.site.Store.reg.Sync()
	if _, ok, _ := f.site.Store.reg.Get(f.site.Store.ID("s1.html")); ok {
		t.Fatal("ephemeral file went into the registry")
	}
	backup, _ := os.ReadFile(f.eng.ephemeral.path)
	if len(backup) < 10 {
		t.Fatalf("no backup of the ephemeral entry: %q", backup)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok := f.file("s1.html"); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("ephemeral file not expired")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestEngineCheck(t *testing.T) {
	f := newEngineFixture(t, InvalidationConfig{})
	f.ensure("/s1.html", "/list.html")
	rep, err := f.eng.Check(nil)
	if err != nil || rep.Problems() != 0 || rep.Files != 2 || rep.Entries != 2 {
		t.Fatalf("healthy edge: %v %v", rep, err)
	}
	// A file nobody registered, and an entry whose file vanished.
	if err := os.WriteFile(filepath.Join(f.site.Store.Dir(), "stray.html"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(f.site.Store.Dir(), "list.html")); err != nil {
		t.Fatal(err)
	}
	rep, err = f.eng.Check(nil)
	if err != nil || len(rep.Unregistered) != 1 || rep.Unregistered[0] != "stray.html" ||
		len(rep.Dangling) != 1 || rep.Dangling[0] != "list.html" {
		t.Fatalf("findings: %v %v", rep, err)
	}
}
