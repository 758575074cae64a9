package cache

import (
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/delivery-edge/edge/cache/registry"
)

// what is the part of a record a test compares (not its time).
func what(inv Invalidation) Invalidation {
	inv.Time = time.Time{}
	return inv
}

// newest waits until the log has total records and returns the newest.
func (f *engineFixture) newest(total int64) Invalidation {
	f.t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		recent, n := f.eng.Invalidations()
		if n == total && len(recent) > 0 {
			return what(recent[0])
		}
		if n > total || time.Now().After(deadline) {
			f.t.Fatalf("%d invalidations recorded, want %d: %+v", n, total, recent)
		}
	}
}

func TestInvalidationLogRecordsWhatWasApplied(t *testing.T) {
	f := newEngineFixture(t, InvalidationConfig{Pregenerate: true, Recent: time.Hour})
	keyed(f)
	f.ensure("/s1.html", "/teaser-s1.html", "/list.html", "/s2.html")

	// A plain key, never read after writing: renamed.
	f.flush("section:/sec", "live", 1000)
	want := Invalidation{Source: SourceFlush, Kind: "key", ID: "section:/sec", Detail: "live", Files: 1, Removal: 1}
	if got := f.newest(1); got != want {
		t.Fatalf("plain flush: %+v, want %+v", got, want)
	}
	f.settle()

	// A document key: its page is pre-generated whatever its use.
	f.flush("story1", "live", 1001)
	want = Invalidation{Source: SourceFlush, Kind: "key", ID: "story1", Detail: "live", Files: 1, Pregeneration: 1}
	if got := f.newest(2); got != want {
		t.Fatalf("document flush: %+v, want %+v", got, want)
	}
	f.settle()

	// The same flush again is not applied, so not recorded.
	f.flush("story1", "live", 1001)

	// A content change, applied from the stream "test"; the list was
	// renamed by the flush above, so it is not touched again.
	f.ensure("/list.html")
	f.apply(Change{Kind: DepDocument, ID: "story1", State: StatePublished})
	if got := f.newest(3); got.Source != "test" || got.Kind != "document" || got.ID != "story1" ||
		got.Detail != StatePublished || got.Files != 3 || got.Removal+got.Pregeneration != 3 {
		t.Fatalf("content change: %+v", got)
	}
	f.settle()

	// Deleted content goes to removal (a purge), even with pre-generation.
	f.ensure("/s2.html")
	f.apply(Change{Kind: DepDocument, ID: "story2", State: StateDeleted})
	want = Invalidation{Source: "test", Kind: "document", ID: "story2", Detail: StateDeleted, Files: 1, Removal: 1}
	if got := f.newest(4); got != want {
		t.Fatalf("deleted content: %+v, want %+v", got, want)
	}
	f.settle()

	// A change that touches nothing is recorded too: "it changed, and no
	// file depended on it" is what an operator looks for.
	f.apply(Change{Kind: DepNode, ID: "/nowhere", State: StatePublished})
	want = Invalidation{Source: "test", Kind: "node", ID: "/nowhere", Detail: StatePublished}
	if got := f.newest(5); got != want {
		t.Fatalf("change without files: %+v, want %+v", got, want)
	}

	// Flushes learnt from a peer's log name the peer.
	f.ensure("/list.html")
	if _, err := f.eng.ApplySync("live", "http://b", []Flush{{Key: "section:/sec", Time: 2000}}); err != nil {
		t.Fatal(err)
	}
	// (Read or not since it was rendered again: either queue.)
	if got := f.newest(6); got.Source != SourceSync || got.ID != "section:/sec" || got.Detail != "http://b" ||
		got.Files != 1 || got.Removal+got.Pregeneration != 1 {
		t.Fatalf("sync: %+v", got)
	}
	f.settle()

	recent, total := f.eng.Invalidations()
	if total != 6 || len(recent) != 6 {
		t.Fatalf("%d records, total %d", len(recent), total)
	}
	for i := 1; i < len(recent); i++ {
		if recent[i].Time.After(recent[i-1].Time) {
			t.Fatalf("not newest first: %v after %v", recent[i].Time, recent[i-1].Time)
		}
	}
	if what(recent[len(recent)-1]).ID != "section:/sec" || recent[len(recent)-1].Source != SourceFlush {
		t.Fatalf("oldest record: %+v", recent[len(recent)-1])
	}
}

func TestInvalidationLogResourceAndExpiry(t *testing.T) {
	f := newEngineFixture(t, InvalidationConfig{})
	f.pages.extra["/s2.html"] = http.Header{"Cache-Control": {"max-age=1"}}
	f.ensure("/s1.html", "/list.html")
	f.pages.set(func(p *pages) { p.template = "t2" })
	f.get("/s2.html") // the first render with the new template, which expires in 1 s
	want := Invalidation{Source: SourceResource, Kind: "resource", ID: "page.tmpl", Detail: "t2", Files: 2, Removal: 2}
	if got := f.newest(1); got != want {
		t.Fatalf("resource change: %+v, want %+v", got, want)
	}
	want = Invalidation{Source: SourceExpiry, Kind: KindExpiry, Files: 1, Removal: 1}
	if got := f.newest(2); got != want {
		t.Fatalf("expiry: %+v, want %+v", got, want)
	}
}

func TestInvalidationLogKeepsTheNewest(t *testing.T) {
	var l invalidationLog
	reg, err := registry.Open(filepath.Join(t.TempDir(), "data"), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	const n = InvalidationLogSize*2 + 7
	for i := range n {
		err := reg.Update(func(tx *registry.Tx) error {
			m := l.mark()
			for range i % 3 {
				l.queued(registry.QueuePregen)
			}
			l.queued(registry.QueueRemoval)
			l.note(tx, m, Invalidation{Kind: "key", ID: fmt.Sprint(i), Files: i%3 + 1})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	recent, total := l.list()
	if total != n || len(recent) != InvalidationLogSize {
		t.Fatalf("%d kept, total %d", len(recent), total)
	}
	for j, inv := range recent {
		i := n - 1 - j
		if inv.ID != fmt.Sprint(i) || inv.Removal != 1 || inv.Pregeneration != i%3 || inv.Files != i%3+1 {
			t.Fatalf("record %d: %+v, want ID %d", j, inv, i)
		}
	}
}

func TestInvalidationLogSkipsRolledBackTransactions(t *testing.T) {
	var l invalidationLog
	reg, err := registry.Open(filepath.Join(t.TempDir(), "data"), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	failed := errors.New("queueing failed")
	err = reg.Update(func(tx *registry.Tx) error {
		m := l.mark()
		l.queued(registry.QueueRemoval)
		l.note(tx, m, Invalidation{Kind: "key", ID: "lost"})
		return failed
	})
	if !errors.Is(err, failed) {
		t.Fatal(err)
	}
	// The next record counts only its own jobs.
	_ = reg.Update(func(tx *registry.Tx) error {
		m := l.mark()
		l.queued(registry.QueuePregen)
		l.note(tx, m, Invalidation{Kind: "key", ID: "kept", Files: 1})
		return nil
	})
	recent, total := l.list()
	if total != 1 || len(recent) != 1 || recent[0].ID != "kept" || recent[0].Removal != 0 || recent[0].Pregeneration != 1 {
		t.Fatalf("log after a rolled-back transaction: %+v (total %d)", recent, total)
	}
}

// A published document that no cached file depends on, with
// generate_nonexistent, is queued for pre-generation (once per docroot):
// the record says so.
func TestInvalidationLogCountsNonexistentPregeneration(t *testing.T) {
	f := newEngineFixture(t, InvalidationConfig{Pregenerate: true, GenerateNonexistent: true})
	f.apply(Change{Kind: DepDocument, ID: "s1", State: StatePublished})
	want := Invalidation{Source: "test", Kind: "document", ID: "s1", Detail: StatePublished, Pregeneration: 1}
	if got := f.newest(1); got != want {
		t.Fatalf("new document: %+v, want %+v", got, want)
	}
	f.settle()
}
