package registry

import (
	"fmt"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestDependentsPage: the files of a dependency come page by page in file
// order, every file once, with the dependency that matched; removed
// (retired) files are left out.
func TestDependentsPage(t *testing.T) {
	r := openTestRegistry(t, t.TempDir())
	defer r.Close()
	var want []string
	for i := range 7 {
		id := FileID{Root: 1, File: fmt.Sprintf("p%d.html", i)}
		e := Entry{Key: "/" + id.File, Created: time.Now().UnixMilli(),
			Deps: []Dependency{{Kind: DepDocument, Name: "story1", Props: []string{"title"}}}}
		if err := r.Put(id, e); err != nil {
			t.Fatal(err)
		}
		want = append(want, id.File)
	}
	other := Entry{Key: "/other.html", Created: time.Now().UnixMilli(), Deps: []Dependency{{Kind: DepDocument, Name: "story10"}}}
	if err := r.Put(FileID{Root: 1, File: "other.html"}, other); err != nil {
		t.Fatal(err)
	}
	r.Sync()
	// Retire p3: it must not be listed.
	if err := r.Update(func(tx *Tx) error {
		var ret Retirement
		return tx.RetireFiles(map[FileID]int64{{Root: 1, File: "p3.html"}: 0}, &ret)
	}); err != nil {
		t.Fatal(err)
	}
	want = slices.DeleteFunc(want, func(s string) bool { return s == "p3.html" })

	var got []string
	var after *FileID
	pages := 0
	for {
		var last FileID
		var more bool
		err := r.View(func(tx *Tx) error {
			var err error
			more, err = tx.DependentsPage(DepDocument, "story1", after, 3, func(id FileID, d Dependency, m Meta) {
				if d.Name != "story1" || !slices.Equal(d.Props, []string{"title"}) || m.Created == 0 {
					t.Errorf("%s: dependency %+v meta %+v", id.File, d, m)
				}
				got = append(got, id.File)
				last = id
			})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if !more {
			break
		}
		after = &last
		if pages > 10 {
			t.Fatal("paging does not end")
		}
	}
	if !slices.Equal(got, want) || pages != 2 {
		t.Fatalf("got %v in %d pages, want %v in 2", got, pages, want)
	}
}

// TestFilesWithPrefix: the files of one docroot under a name prefix, in
// batches, with their creation time and forced pre-generation.
func TestFilesWithPrefix(t *testing.T) {
	r := openTestRegistry(t, t.TempDir())
	defer r.Close()
	for _, id := range []FileID{{1, "politik/a.html"}, {1, "politik/b.html"}, {1, "politik/c/index.html"},
		{1, "politikx.html"}, {1, "sport/a.html"}, {2, "politik/z.html"}} {
		if err := r.Put(id, Entry{Key: "/" + id.File, Created: 1000, Force: id.File == "politik/b.html"}); err != nil {
			t.Fatal(err)
		}
	}
	r.Sync()
	var got []string
	after := ""
	for range 5 {
		var files []FileID
		var meta map[FileID]Meta
		var more bool
		if err := r.View(func(tx *Tx) error {
			var err error
			files, meta, more, err = tx.FilesWithPrefix(1, "politik/", after, 2)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			got = append(got, f.File)
			if m := meta[f]; m.Created != 1000 || m.Force != (f.File == "politik/b.html") {
				t.Errorf("%s: meta %+v", f.File, m)
			}
		}
		if !more {
			break
		}
		after = files[len(files)-1].File
	}
	want := []string{"politik/a.html", "politik/b.html", "politik/c/index.html"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	var n int
	_ = r.View(func(tx *Tx) error { n = tx.CountWithPrefix(1, "politik"); return nil })
	if n != 4 {
		t.Fatalf("count of politik: %d, want 4", n)
	}
}

// TestEntryCountIsKept: the first call counts; writes before, during and
// after are each counted once (journal, import, sweep, clear).
func TestEntryCountIsKept(t *testing.T) {
	r := openTestRegistry(t, t.TempDir())
	defer r.Close()
	put := func(name string) {
		t.Helper()
		if err := r.Put(FileID{1, name}, Entry{Key: "/" + name, Created: time.Now().UnixMilli()}); err != nil {
			t.Fatal(err)
		}
	}
	count := func() int64 {
		t.Helper()
		r.Sync()
		n, err := r.EntryCount()
		if err != nil {
			t.Fatal(err)
		}
		var real int64
		_ = r.db.View(func(tx *bolt.Tx) error { real = int64(tx.Bucket(bucketEntries).Stats().KeyN); return nil })
		if n != real {
			t.Fatalf("kept count %d, bucket holds %d", n, real)
		}
		return n
	}
	put("a.html")
	put("b.html")
	if n := count(); n != 2 {
		t.Fatalf("first count %d", n)
	}
	put("a.html") // replaced: no change
	put("c.html")
	if err := r.Remove(FileID{1, "b.html"}); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 2 {
		t.Fatalf("after journal writes %d", n)
	}
	importEntries(t, r, "i1.html", "i2.html")
	if n := count(); n != 4 {
		t.Fatalf("after import %d", n)
	}
	if err := r.Update(func(tx *Tx) error {
		var ret Retirement
		return tx.RetireFiles(map[FileID]int64{{1, "i1.html"}: 0}, &ret)
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.SweepRetired(10); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 3 {
		t.Fatalf("after sweep %d", n)
	}
	if _, err := r.ClearBefore(t.Context(), time.Now().Add(-30*time.Minute).UnixMilli(), nil); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 2 { // i2 was imported an hour ago
		t.Fatalf("after clear %d", n)
	}
}

// TestEntryCountDuringWrites: writes that commit while the first count
// runs are counted exactly once.
func TestEntryCountDuringWrites(t *testing.T) {
	r := openTestRegistry(t, t.TempDir())
	defer r.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 300 {
			_ = r.Put(FileID{1, fmt.Sprintf("f%03d.html", i)}, Entry{Key: "/x", Created: 1})
			if i%50 == 0 {
				r.Sync()
			}
		}
	}()
	for range 20 {
		if _, err := r.EntryCount(); err != nil {
			t.Fatal(err)
		}
	}
	<-done
	r.Sync()
	n, _ := r.EntryCount()
	if n != 300 {
		t.Fatalf("kept count %d after 300 new files", n)
	}
}

func TestOldestQueued(t *testing.T) {
	r := openTestRegistry(t, t.TempDir())
	defer r.Close()
	if !r.OldestJob(QueueRemoval).IsZero() {
		t.Fatal("an empty queue has no oldest job")
	}
	queueTx(t, r, func(tx *Tx) error {
		if _, err := tx.Enqueue(QueueRemoval, QueuedJob{Root: 1, File: "a", Op: OpRename, Priority: 10, Enqueued: 500}); err != nil {
			return err
		}
		_, err := tx.Enqueue(QueueRemoval, QueuedJob{Root: 1, File: "b", Op: OpRename, Priority: 90, Enqueued: 900})
		return err
	})
	if at := r.OldestJob(QueueRemoval); at.UnixMilli() != 500 {
		t.Fatalf("oldest %v, want 500 ms (the first queued, whatever its priority)", at)
	}
}
