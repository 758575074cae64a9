package cache

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// evictFixture is an engine with one precompressing docroot and the
// sizedPages backend.
type evictFixture struct {
	t     *testing.T
	eng   *Engine
	site  *Site
	pages *sizedPages
	logs  *observer.ObservedLogs
}

func newEvictFixture(t *testing.T, files map[string]string) *evictFixture {
	t.Helper()
	dir := t.TempDir()
	docroot := filepath.Join(dir, "docroot")
	if files != nil {
		writeDocroot(t, docroot, files, nil)
	}
	core, logs := observer.New(zapcore.InfoLevel)
	eng, err := Open(Options{DataDir: filepath.Join(dir, "data"), Logger: zap.New(core), HotBytes: -1,
		AccessFlushInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	store, err := eng.Store(docroot)
	if err != nil {
		t.Fatal(err)
	}
	waitWalked(t, store)
	return &evictFixture{t: t, eng: eng, logs: logs, pages: &sizedPages{sizes: map[string]int{}},
		site: &Site{Store: store, RenderTimeout: 2 * time.Second, Precompress: true}}
}

func (f *evictFixture) get(path string) {
	rec := httptest.NewRecorder()
	if err := f.site.ServeHTTP(rec, httptest.NewRequest("GET", path, nil), f.pages.render); err != nil {
		f.t.Fatalf("GET %s: %v", path, err)
	}
}

func (f *evictFixture) onDisk(name string) bool { return lexists(f.site.Store.Dir(), name) }

func (f *evictFixture) registered(name string) bool {
	_, found, err := f.eng.reg.Get(f.site.Store.ID(name))
	if err != nil {
		f.t.Fatal(err)
	}
	return found
}

func TestEvictionRemovesTheLeastRecentlyRead(t *testing.T) {
	f := newEvictFixture(t, nil)
	const n = 30
	page := func(i int) string { return fmt.Sprintf("/s%d/p%02d.html", i%3, i) }
	for i := range n {
		f.pages.set(page(i), 1000)
		f.get(page(i))
		time.Sleep(2 * time.Millisecond) // each written in a millisecond of its own
	}
	// The five oldest pages are the ones read since.
	for i := range 5 {
		f.get(page(i))
		time.Sleep(2 * time.Millisecond)
	}
	f.eng.reg.Sync()
	before := f.site.Store.DocrootSize()
	if before.Files != 3*n {
		t.Fatalf("%d files before eviction, want %d (pages with .gz and .br)", before.Files, 3*n)
	}
	limit := before.Bytes * 6 / 10
	f.eng.SetSizeLimits(SizeLimits{MaxSize: limit})
	for deadline := time.Now().Add(10 * time.Second); f.site.Store.DocrootSize().Bytes > limit-limit/20; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("still %d bytes, limit %d", f.site.Store.DocrootSize().Bytes, limit)
		}
	}
	after := f.site.Store.DocrootSize()
	files, bytes := walkDocroot(t, f.site.Store.Dir())
	if after.Files != files || after.Bytes != bytes {
		t.Fatalf("counted %+v, the walk finds %d files, %d bytes", after, files, bytes)
	}
	for i := range 5 {
		if !f.onDisk(page(i)[1:]) || !f.registered(page(i)[1:]) {
			t.Errorf("%s was read recently but was evicted", page(i))
		}
	}
	// The pages not read since were evicted oldest first: once one is
	// kept, every later one is kept.
	evicted, kept := 0, false
	for i := 5; i < n; i++ {
		name := page(i)[1:]
		on, reg := f.onDisk(name), f.registered(name)
		if on != reg {
			t.Errorf("%s: on disk %v, registered %v: a half state", name, on, reg)
		}
		for _, suffix := range []string{GzipSuffix, BrotliSuffix} {
			if !on && f.onDisk(name+suffix) {
				t.Errorf("%s evicted but its %s copy is left", name, suffix)
			}
		}
		switch {
		case on:
			kept = true
		case kept:
			t.Errorf("%s evicted although an older page was kept", name)
		default:
			evicted++
		}
	}
	if evicted == 0 || after.Evicted != int64(evicted) || after.EvictedBytes <= 0 {
		t.Fatalf("evicted %d pages; the counts say %+v", evicted, after)
	}
	if got := f.logs.FilterMessageSnippet("over its size limit").Len(); got != 1 {
		t.Fatalf("the limit was logged %d times, want once", got)
	}
}

func TestEvictionStopsWithoutProgress(t *testing.T) {
	// Files the registry does not know cannot be evicted (nothing says when
	// they were read): the evictor gives up with one error, not a loop.
	f := newEvictFixture(t, map[string]string{"a.html": strings.Repeat("a", 5000), "b.html.old": strings.Repeat("b", 5000)})
	f.eng.SetSizeLimits(SizeLimits{MaxSize: 1000})
	stuck := func() int { return f.logs.FilterMessageSnippet("no page left to evict").Len() }
	for deadline := time.Now().Add(10 * time.Second); stuck() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the evictor never said it could not get under the limit")
		}
	}
	for range 5 {
		f.eng.SetSizeLimits(SizeLimits{MaxSize: 1000}) // wakes it
		time.Sleep(20 * time.Millisecond)
	}
	if got := stuck(); got != 1 {
		t.Fatalf("logged %d times, want once", got)
	}
	if got := f.site.Store.DocrootSize(); got.Files != 2 || got.Evicted != 0 {
		t.Fatalf("figures %+v, want the two files kept and nothing evicted", got)
	}
}

func TestEvictionLimit(t *testing.T) {
	f := newEvictFixture(t, map[string]string{"a.html": strings.Repeat("a", 1000)})
	s := f.site.Store
	const gb = 1 << 30
	for _, tc := range []struct {
		name         string
		limits       SizeLimits
		total, avail int64
		statErr      error
		want         int64
	}{
		{"none", SizeLimits{}, 100 * gb, 1, nil, 0},
		{"max_size only", SizeLimits{MaxSize: 5000}, 100 * gb, 1, nil, 5000},
		{"min_free in bytes, room", SizeLimits{MinFree: 10 * gb}, 100 * gb, 50 * gb, nil, 1000 + 40*gb},
		{"min_free in bytes, short", SizeLimits{MinFree: 10 * gb}, 100 * gb, 10*gb - 400, nil, 600},
		{"min_free percent", SizeLimits{MinFreePercent: 5}, 100 * gb, 6 * gb, nil, 1000 + gb},
		{"the smaller of both", SizeLimits{MaxSize: 5000, MinFreePercent: 5}, 100 * gb, 6 * gb, nil, 5000},
		{"nothing to spare", SizeLimits{MinFree: 10 * gb}, 100 * gb, gb, nil, 1},
		{"statfs fails", SizeLimits{MaxSize: 5000, MinFree: gb}, 0, 0, errors.New("no"), 5000},
	} {
		v := newEvictor(f.eng.reg, f.eng.access, zap.NewNop())
		v.freeSpace = func(string) (int64, int64, error) { return tc.total, tc.avail, tc.statErr }
		if got := v.limitOf(s, v.stateOf(s), tc.limits); got != tc.want {
			t.Errorf("%s: limit %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestEvictionKeepsWhatAScanFound: under a flood that passes the limit
// again and again, one scan of the registry serves many rounds (it keeps
// the least recently read pages it found beyond the round's batch), and
// a kept page that is read meanwhile is not evicted.
func TestEvictionKeepsWhatAScanFound(t *testing.T) {
	f := newEvictFixture(t, nil)
	f.eng.evictor.keepShare = 1 // a scan keeps every page it finds (a large docroot's 1 in 50)
	page := func(i int) string { return fmt.Sprintf("/p%02d.html", i) }
	write := func(i, size int) {
		f.pages.set(page(i), size)
		f.get(page(i))
		time.Sleep(2 * time.Millisecond) // each written in a millisecond of its own
	}
	const n, flood = 100, 8 // the kept pages outlast the floods: one scan
	for i := range n {
		write(i, 1000)
	}
	f.eng.reg.Sync()
	// Every larger page written from here on passes the limit again.
	limit := f.site.Store.DocrootSize().Bytes * 9 / 10
	target := limit - limit/20
	f.eng.SetSizeLimits(SizeLimits{MaxSize: limit})
	under := func() {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); f.site.Store.DocrootSize().Bytes > target; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				for _, e := range f.logs.All() {
					t.Log(e.Message, e.ContextMap())
				}
				t.Fatalf("still %d bytes, target %d (%d scans)", f.site.Store.DocrootSize().Bytes, target, f.eng.evictor.scans.Load())
			}
		}
	}
	under()
	// The oldest page still in place is read: it is the most recent now.
	readAgain := ""
	for i := range n {
		if f.onDisk(page(i)[1:]) {
			readAgain = page(i)
			break
		}
	}
	f.get(readAgain)
	f.eng.reg.Sync()
	for i := n; i < n+flood; i++ {
		write(i, int(limit/10)) // more than the 5 % eviction leaves below the limit
		under()
	}
	if !f.onDisk(readAgain[1:]) {
		t.Errorf("%s was read after the scan that found it, and evicted", readAgain)
	}
	evicted := f.site.Store.DocrootSize().Evicted
	if scans := f.eng.evictor.scans.Load(); scans > 2 {
		t.Errorf("%d scans of the registry for %d evictions over %d floods past the limit, want one or two", scans,
			evicted, flood+1)
	}
	if evicted < flood {
		t.Errorf("%d pages evicted, want at least %d", evicted, flood)
	}
}
