package registry

import (
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// importEntries writes entries (a document dependency and a key each) for
// files of root 1 straight into the registry.
func importEntries(t *testing.T, r *Registry, files ...string) {
	t.Helper()
	now := time.Now().Add(-time.Hour).UnixMilli()
	i := 0
	if _, err := r.Import(func() (ImportRecord, bool) {
		if i >= len(files) {
			return ImportRecord{}, false
		}
		name := files[i]
		i++
		return ImportRecord{ID: FileID{Root: 1, File: name}, Entry: Entry{Key: "/" + name, Created: now,
			Deps: []Dependency{{Kind: DepDocument, Name: "doc-" + name}}, Keys: []string{"key-" + name}}}, true
	}); err != nil {
		t.Fatal(err)
	}
}

func checkIndex(t *testing.T, r *Registry) IndexReport {
	t.Helper()
	var rep IndexReport
	if err := r.View(func(tx *Tx) error {
		var err error
		rep, err = tx.CheckIndex(func(CheckStep) {})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestCheckIndexNamesBadKeys: a missing index key, a key of a dependency
// the entry does not have and a key of a missing entry are each named.
func TestCheckIndexNamesBadKeys(t *testing.T) {
	r := openTestRegistry(t, t.TempDir())
	defer r.Close()
	importEntries(t, r, "a.html", "b.html")
	if rep := checkIndex(t, r); len(rep.BadIndex) != 0 || rep.Entries != 2 {
		t.Fatalf("before: %+v", rep)
	}
	a, b := FileID{Root: 1, File: "a.html"}.key(), FileID{Root: 1, File: "b.html"}.key()
	value := indexValue(Dependency{Kind: DepDocument}, &Entry{Created: time.Now().UnixMilli()})
	err := r.db.Update(func(tx *bolt.Tx) error {
		idx := tx.Bucket(bucketIndex)
		if err := idx.Delete(append(indexPrefix(DepKey, "key-a.html"), a...)); err != nil {
			return err
		}
		if err := idx.Put(append(indexPrefix(DepDocument, "other"), b...), value); err != nil {
			return err
		}
		return idx.Put(append(indexPrefix(DepDocument, "doc-c.html"), FileID{Root: 1, File: "c.html"}.key()...), value)
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`a.html: key "key-a.html" not indexed`,
		`index d "doc-c.html" points to missing entry c.html`,
		`index d "other" not in entry b.html`,
	}
	got := checkIndex(t, r).BadIndex
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("bad index:\n%q\nwant\n%q", got, want)
	}
}
