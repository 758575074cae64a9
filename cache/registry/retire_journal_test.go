package registry

import "testing"

// TestRetirementViaJournalKeepsANewerRender: a removal batch retires a
// file whose entry is still in the journal, so its removal goes through
// the journal after the batch's commit. A render of the file that comes
// in between (the batch renamed the file away, the next reader rendered
// it again) must keep its entry: the file is in the docroot, and a file
// without an entry is never invalidated again.
func TestRetirementViaJournalKeepsANewerRender(t *testing.T) {
	r := openTestRegistry(t, t.TempDir())
	x := FileID{1, "x.html"}
	story := Dependency{Kind: DepDocument, Name: "story1"}
	var ret Retirement
	// The transaction holds the database's writer, so the render's record
	// stays in the journal while the batch retires the file.
	err := r.Update(func(tx *Tx) error {
		if err := r.Put(x, Entry{Key: "/x.html", Created: 100, Deps: []Dependency{story}}); err != nil {
			return err
		}
		return tx.RetireFiles(map[FileID]int64{x: 100}, &ret)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(ret.viaJournal) != 1 {
		t.Fatalf("the pending entry's removal should go through the journal: %+v", ret.viaJournal)
	}
	// The reader's render, between the batch's commit and its journal
	// removal.
	if err := r.Put(x, Entry{Key: "/x.html", Created: 200, Deps: []Dependency{story}}); err != nil {
		t.Fatal(err)
	}
	if err := r.FinishRetirement(&ret); err != nil {
		t.Fatal(err)
	}
	r.Sync()
	e, ok, err := r.Get(x)
	if err != nil || !ok || e.Created != 200 {
		t.Fatalf("entry of the render after the removal: %+v %v %v (want created 200)", e, ok, err)
	}
	if got := findFiles(t, r, DepDocument, "story1"); len(got) != 1 {
		t.Fatalf("files of story1: %v (want x.html)", got)
	}

	// Without a newer render, the journal removal ends the entry.
	ret = Retirement{}
	err = r.Update(func(tx *Tx) error {
		if err := r.Put(x, Entry{Key: "/x.html", Created: 300, Deps: []Dependency{story}}); err != nil {
			return err
		}
		return tx.RetireFiles(map[FileID]int64{x: 300}, &ret)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.FinishRetirement(&ret); err != nil {
		t.Fatal(err)
	}
	r.Sync()
	if _, ok, _ := r.Get(x); ok {
		t.Fatal("retired entry still readable")
	}
}
