package cache

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

// target maps a path of the fixture's site.
func (f *engineFixture) target(path string) Target {
	f.t.Helper()
	t, err := f.site.FileOf(path)
	if err != nil {
		f.t.Fatalf("%s: %v", path, err)
	}
	return t
}

// holdPregeneration closes pre-generation's places at the backend, so its
// jobs wait in their queue (a worker that took one waits for a place); the
// returned func opens them again. Taking the renderer away instead would
// park the jobs a worker reaches first, out of the queue.
func (f *engineFixture) holdPregeneration() func() {
	g := f.eng.pregen.gate
	n := g.size()
	g.setMax(0)
	return func() { g.setMax(n) }
}

func TestFileReport(t *testing.T) {
	f := newEngineFixture(t, InvalidationConfig{})
	f.ensure("/list.html")
	f.get("/list.html") // read once more: a last read after the write
	time.Sleep(100 * time.Millisecond)
	rep, err := f.eng.File(f.site.Store, f.target("/list.html"))
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Registered || rep.Key != "/list.html" || rep.File != "list.html" || rep.Created == nil || rep.LastRead == nil {
		t.Fatalf("report %+v", rep)
	}
	if !rep.Disk.Exists || rep.Disk.Old || rep.Disk.Size == 0 || rep.Queue != nil {
		t.Fatalf("disk %+v queue %+v", rep.Disk, rep.Queue)
	}
	wantDeps := []DependencyReport{{Kind: "document", Name: "story1", Props: []string{"topline"}}, {Kind: "node", Name: "/sec"}}
	if fmt.Sprint(rep.Dependencies) != fmt.Sprint(wantDeps) {
		t.Errorf("dependencies %+v, want %+v", rep.Dependencies, wantDeps)
	}
	if len(rep.Resources) != 1 || rep.Resources[0] != (ResourceReport{Name: "page.tmpl", Hash: "t1", Newest: "t1", Current: true}) {
		t.Errorf("resources %+v", rep.Resources)
	}

	// A queued job shows; once done, the file is a .old copy and its
	// entry is gone.
	restore := f.holdPregeneration()
	if ok, err := f.eng.PurgeFile(f.site.Store, "list.html", PurgePregenerate); err != nil || !ok {
		t.Fatalf("purge: %v %v", ok, err)
	}
	rep, _ = f.eng.File(f.site.Store, f.target("/list.html"))
	if rep.Queue == nil || rep.Queue.Queue != QueueNamePregeneration || rep.Queue.Op != "render" || rep.Queue.Priority != MaxPriority {
		t.Fatalf("queue %+v", rep.Queue)
	}
	restore()
	f.settle()
	if ok, err := f.eng.PurgeFile(f.site.Store, "list.html", PurgeRemove); err != nil || !ok {
		t.Fatalf("purge: %v %v", ok, err)
	}
	f.settle()
	rep, _ = f.eng.File(f.site.Store, f.target("/list.html"))
	if rep.Registered || rep.Disk.Exists || !rep.Disk.Old || rep.Queue != nil {
		t.Fatalf("after removal: %+v", rep)
	}
}

func TestNextJobsInWorkerOrder(t *testing.T) {
	f := newEngineFixture(t, InvalidationConfig{})
	f.ensure("/s1.html", "/s2.html", "/list.html")
	defer f.holdPregeneration()()
	if _, err := f.eng.PurgePrefix(t.Context(), f.site.Store, "", PurgePregenerate, nil); err != nil {
		t.Fatal(err)
	}
	if ok, err := f.eng.PurgeFile(f.site.Store, "s2.html", PurgePregenerate); err != nil || !ok {
		t.Fatal(ok, err)
	}
	jobs, err := f.eng.NextJobs(QueueNamePregeneration, 10)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, j := range jobs {
		files = append(files, j.File)
		if j.Docroot != f.site.Store.Dir() || j.Key != "/"+j.File || j.Op != "render" || j.AgeSeconds < 0 {
			t.Errorf("job %+v", j)
		}
	}
	// s2 was queued again with priority 100; the rest share the priority
	// of a purge of three files, oldest first.
	if want := []string{"s2.html", "list.html", "s1.html"}; !slices.Equal(files, want) {
		t.Fatalf("next jobs %v, want %v", files, want)
	}
	if jobs, _ := f.eng.NextJobs(QueueNamePregeneration, 1); len(jobs) != 1 {
		t.Fatalf("limit: %d jobs", len(jobs))
	}
	if d := f.eng.OldestQueued(QueueNamePregeneration); d <= 0 || d > time.Minute {
		t.Errorf("oldest job waited %s", d)
	}
	if _, err := f.eng.NextJobs("other", 1); !errors.Is(err, ErrUnknownQueue) {
		t.Errorf("unknown queue: %v", err)
	}
}

func TestDependentsPaged(t *testing.T) {
	f := newEngineFixture(t, InvalidationConfig{})
	var paths []string
	f.pages.set(func(p *pages) {
		for i := range 5 {
			path := fmt.Sprintf("/d%d.html", i)
			p.deps[path] = `"story7";props="title"`
			paths = append(paths, path)
		}
	})
	f.ensure(paths...)
	var got []string
	cursor := ""
	for range 10 {
		page, err := f.eng.Dependents(DepDocument, "story7", cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range page.Files {
			got = append(got, d.Key)
			if d.Dependency.Name != "story7" || !slices.Equal(d.Dependency.Props, []string{"title"}) || d.Created == nil {
				t.Errorf("dependent %+v", d)
			}
		}
		if cursor = page.Next; cursor == "" {
			break
		}
	}
	if !slices.Equal(got, paths) {
		t.Fatalf("dependents %v, want %v", got, paths)
	}
	if page, _ := f.eng.Dependents(DepResource, "page.tmpl", "", 100); len(page.Files) != 5 || page.Next != "" {
		t.Errorf("resource dependents: %d, next %q", len(page.Files), page.Next)
	}
	if _, err := f.eng.Dependents(DepDocument, "story7", "%%%", 2); !errors.Is(err, ErrBadCursor) {
		t.Errorf("bad cursor: %v", err)
	}
}

func TestFilePrefix(t *testing.T) {
	tests := []struct {
		in, want string
		err      bool
	}{
		{"/", "", false},
		{"/politik/", "politik/", false},
		{"/politik/story1", "politik/story1", false},
		{"/a b/", "a%20b/", false},
		{"/a%20b/", "a%20b/", false},
		{"/ä", "%C3%A4", false},
		{"politik/", "", true},
		{"/../x", "", true},
		{"/a//b", "", true},
		{"/a?x", "", true},
		{"/%zz", "", true},
	}
	for _, tt := range tests {
		got, err := FilePrefix(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("FilePrefix(%q) = %q, %v; want %q (error %v)", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestPurge(t *testing.T) {
	f := newEngineFixture(t, InvalidationConfig{Pregenerate: true})
	f.pages.set(func(p *pages) {
		for _, path := range []string{"/a/1.html", "/a/2.html", "/a/b/index.html", "/a/b/", "/ab.html"} {
			p.deps[path] = `"x"`
		}
	})
	all := []string{"/a/1.html", "/a/2.html", "/a/b/", "/ab.html", "/s1.html"}
	f.ensure("/a/1.html", "/a/2.html", "/a/b/index.html", "/ab.html", "/s1.html")

	// By URL, remove: renamed to .old.
	if ok, err := f.eng.PurgeFile(f.site.Store, "s1.html", PurgeRemove); err != nil || !ok {
		t.Fatal(ok, err)
	}
	f.settle()
	if _, ok := f.file("s1.html"); ok {
		t.Fatal("s1.html was not removed")
	}
	if _, ok := f.file("s1.html.old"); !ok {
		t.Fatal("s1.html has no .old copy")
	}
	// Nothing cached: nothing queued.
	if ok, err := f.eng.PurgeFile(f.site.Store, "nope.html", PurgeRemove); err != nil || ok {
		t.Fatalf("purge of nothing: %v %v", ok, err)
	}
	if _, err := f.eng.PurgeFile(f.site.Store, "s1.html", "delete"); !errors.Is(err, ErrBadPurgeMode) {
		t.Fatalf("bad mode: %v", err)
	}

	// By prefix, pre-generated: rendered again in place, the rest alone.
	before := map[string]int{}
	for _, p := range all {
		before[p] = f.pages.count(p)
	}
	if n := f.eng.CountPrefix(f.site.Store, "a/"); n != 3 {
		t.Fatalf("count a/: %d", n)
	}
	res, err := f.eng.PurgePrefix(t.Context(), f.site.Store, "a/", PurgePregenerate, nil)
	if err != nil || res.Files != 3 || res.Queued != 3 {
		t.Fatalf("purge a/: %+v %v", res, err)
	}
	f.settle()
	for _, p := range []string{"/a/1.html", "/a/2.html", "/a/b/"} {
		if f.pages.count(p) != before[p]+1 {
			t.Errorf("%s rendered %d times, want %d", p, f.pages.count(p), before[p]+1)
		}
	}
	if f.pages.count("/ab.html") != before["/ab.html"] {
		t.Error("/ab.html is not under /a/ but was rendered")
	}
	if _, ok := f.file("a/1.html.old"); ok {
		t.Error("pre-generation left a .old copy")
	}
}

func TestAnnounceResource(t *testing.T) {
	pin := announcePin
	announcePin = 300 * time.Millisecond
	t.Cleanup(func() { announcePin = pin })
	f := newEngineFixture(t, InvalidationConfig{})
	f.ensure("/s1.html", "/s2.html", "/list.html")

	// The deploy: every file rendered with t1 is invalidated now.
	n, err := f.eng.AnnounceResource("page.tmpl", "t2")
	if err != nil || n != 3 {
		t.Fatalf("announce: %d %v", n, err)
	}
	if hashes, _ := f.eng.Registry().ResourceHashes(); hashes["page.tmpl"] != "t2" {
		t.Errorf("stored hash %q", hashes["page.tmpl"])
	}
	f.settle()
	for _, name := range []string{"s1.html", "s2.html", "list.html"} {
		if _, ok := f.file(name); ok {
			t.Errorf("%s was not invalidated", name)
		}
	}
	// Renders with the new hash are not invalidated again; one that still
	// reports the old hash (it started before the deploy) is not taken for
	// a change back while the announcement is pinned...
	f.pages.set(func(p *pages) { p.template = "t2" })
	f.ensure("/s1.html", "/s2.html")
	f.pages.set(func(p *pages) { p.template = "t1" })
	f.ensure("/list.html")
	time.Sleep(100 * time.Millisecond)
	f.settle()
	for _, name := range []string{"s1.html", "s2.html"} {
		if _, ok := f.file(name); !ok {
			t.Errorf("%s, rendered with the announced hash, was invalidated", name)
		}
	}
	// ... and is invalidated when the pin ends.
	deadline := time.Now().Add(5 * time.Second)
	for _, ok := f.file("list.html"); ok; _, ok = f.file("list.html") {
		if time.Now().After(deadline) {
			t.Fatal("the page rendered with the old hash after the announcement stayed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, ok := f.file("s1.html"); !ok {
		t.Error("s1.html was invalidated by the recheck")
	}
	for _, bad := range [][2]string{{"", "x"}, {"page.tmpl", ""}, {string(make([]byte, MaxResourceName+1)), "x"}} {
		if _, err := f.eng.AnnounceResource(bad[0], bad[1]); !errors.Is(err, ErrBadResource) {
			t.Errorf("announce %q: %v", bad, err)
		}
	}
}
