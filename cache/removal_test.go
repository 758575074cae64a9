package cache

import (
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// indexKeys counts the registry's reverse-index and expiry keys as stored,
// including keys of removed files that wait for the sweep.
func indexKeys(t *testing.T, r *Registry) int {
	t.Helper()
	n := 0
	_ = r.DB().View(func(tx *bolt.Tx) error {
		n = tx.Bucket([]byte("index")).Stats().KeyN + tx.Bucket([]byte("expiry")).Stats().KeyN
		return nil
	})
	return n
}

// findFiles lists the files that depend on name (of the given kind).
func findFiles(t *testing.T, r *Registry, kind DepKind, name string) []string {
	t.Helper()
	var files []string
	if err := r.Find(kind, name, func(id FileID, _ Dependency) bool {
		files = append(files, id.File)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	return files
}

// TestEngineRemovalRetiresAndSweeps: a removal batch takes the entries
// out of every read at once; the idle sweep then deletes them and their
// index keys, and a consistency check is clean at both moments.
func TestEngineRemovalRetiresAndSweeps(t *testing.T) {
	f := newEngineFixture(t, InvalidationConfig{})
	f.ensure("/s1.html", "/teaser-s1.html", "/list.html", "/s2.html")
	keys := indexKeys(t, f.eng.reg)
	f.apply(Change{Kind: DepDocument, ID: "story1", State: StatePublished})
	f.settle()
	if got := findFiles(t, f.eng.reg, DepDocument, "story1"); len(got) != 0 {
		t.Fatalf("removed files still depend on story1: %v", got)
	}
	for deadline := time.Now().Add(5 * time.Second); f.eng.reg.Retired() > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("sweep did not finish: %d retired", f.eng.reg.Retired())
		}
	}
	if got := indexKeys(t, f.eng.reg); got >= keys || got == 0 {
		t.Fatalf("index keys after the sweep %d (before %d): the removed files' keys should be gone, s2's kept", got, keys)
	}
	rep, err := f.eng.Check(nil)
	if err != nil || rep.Problems() != 0 || rep.Entries != 1 || rep.RetiredEntries+rep.RetiredKeys != 0 {
		t.Fatalf("check after the sweep: %v %v", rep, err)
	}
	// The removed pages render again on the next request and are found again.
	f.ensure("/s1.html")
	if got := findFiles(t, f.eng.reg, DepDocument, "story1"); len(got) != 1 {
		t.Fatalf("re-rendered page's dependencies: %v", got)
	}
}
