package registry

import (
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func indexKeys(t *testing.T, r *Registry) int {
	t.Helper()
	n := 0
	_ = r.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketIndex).Stats().KeyN + tx.Bucket(bucketExpiry).Stats().KeyN
		return nil
	})
	return n
}

// TestRetiredEntries: an eagerly removed entry disappears from every read
// at once; its index keys go with the sweep, which leaves the keys of a
// newer render of the same file alone, and a restart in between keeps the
// reads right.
func TestRetiredEntries(t *testing.T) {
	dir := t.TempDir()
	r := openTestRegistry(t, dir)
	a, b := FileID{1, "a.html"}, FileID{1, "b.html"}
	story := Dependency{Kind: DepDocument, Name: "story1"}
	node := Dependency{Kind: DepNode, Name: "/sec", Props: []string{"name"}}
	for _, id := range []FileID{a, b} {
		if err := r.Put(id, Entry{Key: "/" + id.File, Created: 100, Expires: 5000, Deps: []Dependency{story, node}, Keys: []string{"k"}}); err != nil {
			t.Fatal(err)
		}
	}
	r.Sync()
	full := indexKeys(t, r)
	if err := r.db.Update(func(tx *bolt.Tx) error { return r.retire(tx, map[FileID]int64{a: 100, b: 100}) }); err != nil {
		t.Fatal(err)
	}
	if got := findFiles(t, r, DepDocument, "story1"); len(got) != 0 {
		t.Fatalf("retired files still found: %v", got)
	}
	if _, ok, _ := r.Get(a); ok {
		t.Fatal("retired entry still readable")
	}
	_ = r.View(func(tx *Tx) error {
		if tx.liveExpiry(a, 5000) || !tx.liveExpiry(FileID{1, "other.html"}, 5000) {
			t.Error("expiry keys: a retired file's key must be stale, an untouched file's live")
		}
		return nil
	})
	if r.Retired() != 2 || indexKeys(t, r) != full {
		t.Fatalf("retired %d, index keys %d (want 2, %d untouched)", r.Retired(), indexKeys(t, r), full)
	}

	// b is rendered again with fewer dependencies before the sweep.
	if err := r.Put(b, Entry{Key: "/b.html", Created: 200, Deps: []Dependency{story}}); err != nil {
		t.Fatal(err)
	}
	r.Sync()
	if got := findFiles(t, r, DepDocument, "story1"); !slices.Equal(got, []string{"b.html"}) {
		t.Fatalf("story1 dependents %v, want [b.html]", got)
	}
	if got := findFiles(t, r, DepNode, "/sec"); len(got) != 0 {
		t.Fatalf("stale node keys found: %v", got)
	}

	// A restart with the sweep still to do.
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r = openTestRegistry(t, dir)
	defer r.Close()
	if r.Retired() != 2 {
		t.Fatalf("retired after restart %d, want 2", r.Retired())
	}
	if got := findFiles(t, r, DepKey, "k"); len(got) != 0 {
		t.Fatalf("stale keys found after restart: %v", got)
	}
	n, err := r.SweepRetired(10)
	if err != nil || n != 2 {
		t.Fatalf("sweep: %d, %v", n, err)
	}
	if r.Retired() != 0 {
		t.Fatalf("retired after sweep %d", r.Retired())
	}
	if _, ok, _ := r.Get(a); ok {
		t.Fatal("swept entry readable")
	}
	if e, ok, _ := r.Get(b); !ok || e.Created != 200 {
		t.Fatalf("newer entry of b after the sweep: %v %+v", ok, e)
	}
	_ = r.db.View(func(tx *bolt.Tx) error {
		if n := tx.Bucket(bucketEntries).Stats().KeyN; n != 1 {
			t.Errorf("entries after sweep %d, want 1", n)
		}
		return nil
	})
	// Only b's one live key is left: story1 -> b.
	if got := indexKeys(t, r); got != 1 {
		t.Fatalf("index+expiry keys after sweep %d, want 1", got)
	}
	if got := findFiles(t, r, DepDocument, "story1"); !slices.Equal(got, []string{"b.html"}) {
		t.Fatalf("story1 dependents after sweep %v", got)
	}
}

// TestRetiredThenRenderedWithAnOlderClock: a render whose clock reads
// earlier than the tombstone of its file (the wall clock stepped back) is
// still visible, and the sweep leaves it alone.
func TestRetiredThenRenderedWithAnOlderClock(t *testing.T) {
	r := openTestRegistry(t, t.TempDir())
	defer r.Close()
	a := FileID{1, "a.html"}
	story := Dependency{Kind: DepDocument, Name: "story1"}
	if err := r.Put(a, Entry{Key: "/a.html", Created: 1000, Deps: []Dependency{story}}); err != nil {
		t.Fatal(err)
	}
	r.Sync()
	if err := r.db.Update(func(tx *bolt.Tx) error { return r.retire(tx, map[FileID]int64{a: 1000}) }); err != nil {
		t.Fatal(err)
	}
	if err := r.Put(a, Entry{Key: "/a.html", Created: 900, Deps: []Dependency{story}}); err != nil {
		t.Fatal(err)
	}
	r.Sync()
	if _, err := r.SweepRetired(10); err != nil {
		t.Fatal(err)
	}
	if e, ok, _ := r.Get(a); !ok || e.Created <= 1000 {
		t.Fatalf("re-rendered entry: found=%v created=%d, want found after the tombstone", ok, e.Created)
	}
	if got := findFiles(t, r, DepDocument, "story1"); !slices.Equal(got, []string{"a.html"}) {
		t.Fatalf("story1 dependents %v", got)
	}
}
