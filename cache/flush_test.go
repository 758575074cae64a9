package cache

import (
	"errors"
	"net/http"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/delivery-edge/edge/cache/registry"
)

// keyed makes the fixture's pages register cache keys, as the sample
// origin does: a story page its ID and UUID, the list a section key.
func keyed(f *engineFixture) {
	f.pages.extra["/s1.html"] = http.Header{HeaderCacheKeys: {`"story1", "uuid-1"`}}
	f.pages.extra["/list.html"] = http.Header{HeaderCacheKeys: {`"section:/sec"`}}
	f.pages.extra["/s2.html"] = http.Header{HeaderCacheKeys: {`"story2"`}}
}

func (f *engineFixture) flush(key, group string, ts int64, peers ...string) bool {
	f.t.Helper()
	applied, err := f.eng.Flush(key, group, ts, peers)
	if err != nil {
		f.t.Fatal(err)
	}
	return applied
}

// state is "file", "old" (renamed) or "gone".
func (f *engineFixture) state(name string) string {
	if _, ok := f.file(name); ok {
		return "file"
	}
	if _, ok := f.file(name + OldSuffix); ok {
		return "old"
	}
	return "gone"
}

func TestFlushInvalidatesTheFilesOfTheKey(t *testing.T) {
	f := newEngineFixture(t, InvalidationConfig{})
	keyed(f)
	f.ensure("/s1.html", "/teaser-s1.html", "/list.html", "/s2.html")

	if !f.flush("section:/sec", "live", 1000) {
		t.Fatal("first flush not applied")
	}
	f.settle()
	want := map[string]string{"s1.html": "file", "teaser-s1.html": "file", "list.html": "old", "s2.html": "file"}
	for name, st := range want {
		if got := f.state(name); got != st {
			t.Errorf("%s: %s, want %s", name, got, st)
		}
	}

	// The UUID key flushes the story page too (pre-generation is off: renamed).
	f.ensure("/list.html")
	if !f.flush("uuid-1", "live", 1001) {
		t.Fatal("uuid flush not applied")
	}
	f.settle()
	if got := f.state("s1.html"); got != "old" {
		t.Errorf("s1.html after flush of its UUID key: %s", got)
	}
	if got := f.state("list.html"); got != "file" {
		t.Errorf("list.html after flush of another key: %s", got)
	}
}

func TestFlushDuplicateIsNotAppliedTwice(t *testing.T) {
	f := newEngineFixture(t, InvalidationConfig{})
	keyed(f)
	f.ensure("/list.html")
	if !f.flush("section:/sec", "live", 5000, "http://peer") {
		t.Fatal("not applied")
	}
	f.settle()
	f.ensure("/list.html") // rendered again
	if f.flush("section:/sec", "live", 5000, "http://peer") {
		t.Fatal("the same key and timestamp was applied twice")
	}
	f.settle()
	if got := f.state("list.html"); got != "file" {
		t.Fatalf("duplicate flush invalidated the file: %s", got)
	}
	if fw, _ := f.eng.PendingForwards("http://peer", 0); len(fw) != 1 {
		t.Fatalf("duplicate flush forwarded again: %d outbox entries", len(fw))
	}
	// The same flush reported under another group is not applied either,
	// but that group's sync answers list it.
	if f.flush("section:/sec", "preview", 5000) {
		t.Fatal("applied again under another group")
	}
	if got, _ := f.eng.FlushesSince("preview", 0); len(got) != 1 || got[0].Key != "section:/sec" {
		t.Fatalf("preview log: %+v", got)
	}
	// Another timestamp is another flush.
	if !f.flush("section:/sec", "live", 5001) {
		t.Fatal("a new timestamp was not applied")
	}
	f.settle()
	if got := f.state("list.html"); got != "old" {
		t.Fatalf("new flush did not invalidate: %s", got)
	}
}

func TestFlushOfDocumentKeyPregeneratesItsPages(t *testing.T) {
	for _, tt := range []struct {
		name   string
		cfg    InvalidationConfig
		key    string
		s1     string // state of s1.html afterwards
		render int    // renders of /s1.html
	}{
		{"pre-generation on, by ID", InvalidationConfig{Pregenerate: true}, "story1", "file", 2},
		{"pre-generation on, by UUID", InvalidationConfig{Pregenerate: true}, "uuid-1", "file", 2},
		{"pre-generation off", InvalidationConfig{}, "story1", "old", 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newEngineFixture(t, tt.cfg)
			keyed(f)
			f.pages.deps["/s1.html"] = `"story1", "uuid-1"`
			// Written and never read since: the normal choice would be removal.
			f.ensure("/s1.html", "/teaser-s1.html", "/list.html")
			f.pages.set(func(p *pages) { p.version = 2 })
			f.flush(tt.key, "live", 42)
			f.settle()
			if got := f.state("s1.html"); got != tt.s1 {
				t.Fatalf("s1.html: %s, want %s", got, tt.s1)
			}
			if n := f.pages.count("/s1.html"); n != tt.render {
				t.Fatalf("s1.html rendered %d times, want %d", n, tt.render)
			}
			if tt.s1 == "file" {
				if body, _ := f.file("s1.html"); body != "/s1.html v2" {
					t.Fatalf("s1.html not re-rendered: %q", body)
				}
			}
			// The teaser (a property dependency, not keyed) and the list
			// are not the document's pages.
			for _, name := range []string{"teaser-s1.html", "list.html"} {
				if got := f.state(name); got != "file" {
					t.Errorf("%s: %s", name, got)
				}
			}
		})
	}
}

// readLongAgo records a read of a cached file after it was written and
// then lets the fixture's recent interval pass, so the usual queue choice
// for it is removal.
func (f *engineFixture) readLongAgo(name string, recent time.Duration) {
	f.t.Helper()
	id := f.site.Store.ID(name)
	e, ok, err := f.eng.reg.Get(id)
	if err != nil || !ok {
		f.t.Fatalf("%s not registered: %v", name, err)
	}
	f.eng.access.Touch(id, e.Created+1)
	time.Sleep(3 * recent)
}

func TestFlushOfDocumentKeyPregeneratesWhatItInvalidates(t *testing.T) {
	const uuidKey = "0b7c6a7e-3f1d-4e2a-9c51-7d8e2f4a6b10"
	const recent = 20 * time.Millisecond
	for _, tt := range []struct {
		name        string
		pregenerate bool
		key         string
		keyed       string // the page registered under key
		want        string // its state afterwards
		renders     int    // its renders
	}{
		// teaser-s1 depends on story1 by property only: it is no page of
		// the document, but it is registered under the key.
		{"document ID (the registry knows it), read long ago", true, "story1", "/teaser-s1.html", "file", 2},
		{"UUID no file depends on, read long ago", true, uuidKey, "/list.html", "file", 2},
		{"plain key, read long ago", true, "section:/sec", "/list.html", "old", 1},
		{"plain key that is nearly a UUID", true, uuidKey[:35] + "g", "/list.html", "old", 1},
		{"document ID, pre-generation off", false, "story1", "/teaser-s1.html", "old", 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newEngineFixture(t, InvalidationConfig{Pregenerate: tt.pregenerate, Recent: recent})
			f.pages.extra[tt.keyed] = http.Header{HeaderCacheKeys: {`"` + tt.key + `"`}}
			f.ensure(tt.keyed)
			f.readLongAgo(tt.keyed[1:], recent)
			f.pages.set(func(p *pages) { p.version = 2 })
			f.flush(tt.key, "live", 42)
			f.settle()
			if got := f.state(tt.keyed[1:]); got != tt.want {
				t.Fatalf("%s: %s, want %s", tt.keyed, got, tt.want)
			}
			if n := f.pages.count(tt.keyed); n != tt.renders {
				t.Fatalf("%s rendered %d times, want %d", tt.keyed, n, tt.renders)
			}
			if tt.want == "file" {
				if body, _ := f.file(tt.keyed[1:]); body != tt.keyed+" v2" {
					t.Fatalf("%s not re-rendered: %q", tt.keyed, body)
				}
			}
		})
	}
}

func TestFlushOfDocumentKeyKeepsAQueuedPurge(t *testing.T) {
	f := newEngineFixture(t, InvalidationConfig{Pregenerate: true})
	f.pages.extra["/teaser-s1.html"] = http.Header{HeaderCacheKeys: {`"story1"`}}
	f.ensure("/teaser-s1.html")
	id := f.site.Store.ID("teaser-s1.html")
	rollback := errors.New("rollback")
	err := f.eng.reg.Update(func(tx *registry.Tx) error {
		// The content is gone: its purge waits in the removal queue.
		if _, err := tx.Enqueue(registry.QueueRemoval, registry.QueuedJob{Root: id.Root, File: id.File, Op: registry.OpPurge, Priority: 1}); err != nil {
			return err
		}
		files, err := f.eng.inval.queueFlushTx(tx, "story1", 0, time.Now())
		if err != nil {
			return err
		}
		if !slices.Contains(files, id) {
			t.Errorf("flush did not find the keyed file: %v", files)
		}
		if r, p := countQueues(t, tx); r != 1 || p != 0 {
			t.Errorf("queue lengths %d/%d, want the purge alone (1/0)", r, p)
		}
		q, j, ok := tx.Queued(registry.QueuedJob{Root: id.Root, File: id.File})
		if !ok || q != registry.QueueRemoval || j.Op != registry.OpPurge {
			t.Errorf("queued for the file: %v %c %+v, want the purge", ok, q, j)
		}
		return rollback
	})
	if !errors.Is(err, rollback) {
		t.Fatal(err)
	}
}

func TestLooksLikeUUID(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want bool
	}{
		{"0b7c6a7e-3f1d-4e2a-9c51-7d8e2f4a6b10", true},
		{"0B7C6A7E-3F1D-4E2A-9C51-7D8E2F4A6B10", true},
		{"0b7c6a7e3f1d4e2a9c517d8e2f4a6b10", false},
		{"{0b7c6a7e-3f1d-4e2a-9c51-7d8e2f4a6b10}", false},
		{"0b7c6a7e-3f1d-4e2a-9c51-7d8e2f4a6b1", false},
		{"0b7c6a7e-3f1d-4e2a-9c51_7d8e2f4a6b10", false},
		{"0b7c6a7e-3f1d-4e2a-9c51-7d8e2f4a6b1z", false},
		{"story100", false},
		{"", false},
	} {
		if got := looksLikeUUID(tt.in); got != tt.want {
			t.Errorf("looksLikeUUID(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestFlushOfPlainKeyUsesTheUsualQueueChoice(t *testing.T) {
	f := newEngineFixture(t, InvalidationConfig{Pregenerate: true})
	keyed(f)
	f.ensure("/list.html")
	f.flush("section:/sec", "live", 7)
	f.settle()
	if got := f.state("list.html"); got != "old" {
		t.Fatalf("unread list page: %s, want renamed", got)
	}
}

func TestForcePregenReplacesQueuedRename(t *testing.T) {
	f := newEngineFixture(t, InvalidationConfig{Pregenerate: true})
	keyed(f)
	f.ensure("/s1.html")
	id := f.site.Store.ID("s1.html")
	file := registry.QueuedJob{Root: id.Root, File: id.File}
	rollback := errors.New("rollback")
	err := f.eng.reg.Update(func(tx *registry.Tx) error {
		now := time.Now()
		if _, err := tx.Enqueue(registry.QueueRemoval, registry.QueuedJob{Root: id.Root, File: id.File, Op: registry.OpRename, Priority: 90}); err != nil {
			return err
		}
		if err := f.eng.inval.forcePregenTx(tx, id, 10, 0, now); err != nil {
			return err
		}
		q, cur, ok := tx.Queued(file)
		if !ok || q != registry.QueuePregen || cur.Priority != 90 {
			t.Errorf("queued: %v %c %+v, want pre-generation with priority 90", ok, q, cur)
		}
		if r, p := countQueues(t, tx); r != 0 || p != 1 {
			t.Errorf("queue lengths %d/%d, want 0/1", r, p)
		}
		// A purge (content gone) is never turned into a render.
		if err := tx.Complete(registry.QueuePregen, cur); err != nil {
			return err
		}
		if _, err := tx.Enqueue(registry.QueueRemoval, registry.QueuedJob{Root: id.Root, File: id.File, Op: registry.OpPurge, Priority: 90}); err != nil {
			return err
		}
		if err := f.eng.inval.forcePregenTx(tx, id, 100, 0, now); err != nil {
			return err
		}
		if r, p := countQueues(t, tx); r != 1 || p != 0 {
			t.Errorf("after purge: queue lengths %d/%d, want 1/0", r, p)
		}
		return rollback
	})
	if !errors.Is(err, rollback) {
		t.Fatal(err)
	}
}

func TestFlushesSinceAndPrune(t *testing.T) {
	f := newEngineFixture(t, InvalidationConfig{})
	for i, fl := range []Flush{
		{Key: "a", Group: "live", Time: 100}, {Key: "b", Group: "live", Time: 200}, {Key: "c", Group: "preview", Time: 250},
		{Key: "d;x", Group: "live", Time: 300}, {Key: "e", Group: "live", Time: 400},
	} {
		if !f.flush(fl.Key, fl.Group, fl.Time) {
			t.Fatalf("flush %d not applied", i)
		}
	}
	got, err := f.eng.FlushesSince("live", 200)
	if err != nil {
		t.Fatal(err)
	}
	want := []Flush{{Key: "b", Group: "live", Time: 200}, {Key: "d;x", Group: "live", Time: 300}, {Key: "e", Group: "live", Time: 400}}
	if !slices.Equal(got, want) {
		t.Fatalf("since 200: %+v, want %+v", got, want)
	}
	if got, _ := f.eng.FlushesSince("liv", 0); len(got) != 0 {
		t.Fatalf("a group name's prefix matched: %+v", got)
	}

	n, err := f.eng.PruneFlushLog(300, 2)
	if err != nil || n != 2 {
		t.Fatalf("first batch: %d %v, want 2", n, err)
	}
	n, _ = f.eng.PruneFlushLog(300, 2)
	if n != 1 {
		t.Fatalf("second batch: %d, want 1", n)
	}
	if n, _ = f.eng.PruneFlushLog(300, 2); n != 0 {
		t.Fatalf("third batch: %d", n)
	}
	got, _ = f.eng.FlushesSince("live", 0)
	if !slices.Equal(got, []Flush{{Key: "d;x", Group: "live", Time: 300}, {Key: "e", Group: "live", Time: 400}}) {
		t.Fatalf("after prune: %+v", got)
	}
	if got, _ := f.eng.FlushesSince("preview", 0); len(got) != 0 {
		t.Fatalf("preview after prune: %+v", got)
	}
	if seen, _ := f.eng.FlushLogged("a", 100); seen {
		t.Fatal("pruned flush still logged")
	}
}

func TestFlushRejectsIncompleteFlushes(t *testing.T) {
	f := newEngineFixture(t, InvalidationConfig{})
	for _, fl := range []Flush{
		{Key: "", Group: "g", Time: 1}, {Key: "k", Group: "", Time: 1}, {Key: "k", Group: "g", Time: 0}, {Key: "k", Group: "g", Time: -5},
	} {
		if _, err := f.eng.Flush(fl.Key, fl.Group, fl.Time, nil); !errors.Is(err, ErrInvalidFlush) {
			t.Errorf("%+v: %v", fl, err)
		}
	}
}

func TestApplySync(t *testing.T) {
	f := newEngineFixture(t, InvalidationConfig{})
	keyed(f)
	f.ensure("/list.html", "/s2.html")
	f.flush("story2", "live", 150) // already applied here
	answer := []Flush{{Key: "section:/sec", Time: 100}, {Key: "story2", Time: 150}, {Key: "x", Time: 120}, {Key: "", Time: 130}}
	n, err := f.eng.ApplySync("live", "http://b", answer)
	if err != nil || n != 2 {
		t.Fatalf("applied %d (%v), want 2", n, err)
	}
	if pos, _ := f.eng.SyncPosition("live", "http://b"); pos != 150 {
		t.Fatalf("position %d, want 150", pos)
	}
	if pos, _ := f.eng.SyncPosition("live", "http://c"); pos != 0 {
		t.Fatalf("other peer's position %d", pos)
	}
	f.settle()
	if got := f.state("list.html"); got != "old" {
		t.Fatalf("list.html after sync: %s", got)
	}
	if n, _ := f.eng.ApplySync("live", "http://b", answer); n != 0 {
		t.Fatalf("second sync applied %d", n)
	}
	if fw, _ := f.eng.PendingForwards("http://b", 0); len(fw) != 0 {
		t.Fatal("synced flushes were forwarded")
	}
}

func TestOutboxPersistsAcrossRestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	eng, err := Open(Options{DataDir: dir, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Flush("k1", "live", 10, []string{"http://b", "http://c"}); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Flush("k2", "live", 11, []string{"http://b"}); err != nil {
		t.Fatal(err)
	}
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	eng, err = Open(Options{DataDir: dir, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	peers, _ := eng.OutboxPeers()
	if !slices.Equal(peers, []string{"http://b", "http://c"}) {
		t.Fatalf("peers %v", peers)
	}
	fb, _ := eng.PendingForwards("http://b", 0)
	if len(fb) != 2 || fb[0].Key != "k1" || fb[1].Key != "k2" || fb[0].Time != 10 || fb[0].Group != "live" || fb[0].Queued == 0 {
		t.Fatalf("b: %+v", fb)
	}
	if err := eng.ForwardsDone("http://b", []uint64{fb[0].ID}); err != nil {
		t.Fatal(err)
	}
	if fb, _ = eng.PendingForwards("http://b", 0); len(fb) != 1 || fb[0].Key != "k2" {
		t.Fatalf("b after done: %+v", fb)
	}
	if fc, _ := eng.PendingForwards("http://c", 1); len(fc) != 1 || fc[0].Key != "k1" {
		t.Fatalf("c: %+v", fc)
	}
	n, err := eng.PruneOutbox(time.Now().Add(time.Minute).UnixMilli(), 1)
	if err != nil || n != 1 {
		t.Fatalf("prune: %d %v", n, err)
	}
	n, _ = eng.PruneOutbox(time.Now().Add(time.Minute).UnixMilli(), 10)
	if n != 1 {
		t.Fatalf("prune rest: %d", n)
	}
	if peers, _ := eng.OutboxPeers(); len(peers) != 0 {
		t.Fatalf("peers after prune: %v", peers)
	}
}

// countQueues counts queued jobs inside a write transaction (bucket
// statistics do not see its uncommitted changes).
func countQueues(t *testing.T, tx *registry.Tx) (removal, pregen int) {
	t.Helper()
	count := func(q registry.QueueKind) int {
		jobs, err := tx.NextJobs(q, 1<<20, nil, time.Now(), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return len(jobs)
	}
	return count(registry.QueueRemoval), count(registry.QueuePregen)
}
