package registry

import (
	"context"
	"fmt"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestRepairIndex: after the repair the check finds nothing: a missing key
// is written again, keys of a missing entry, of a dependency the entry
// does not have and malformed keys are deleted; good keys stay.
func TestRepairIndex(t *testing.T) {
	r := openTestRegistry(t, t.TempDir())
	defer r.Close()
	var files []string
	for i := range 3 * repairBatch / 2 { // more than one transaction
		files = append(files, fmt.Sprintf("f%05d.html", i))
	}
	importEntries(t, r, files...)
	a, b := FileID{Root: 1, File: files[0]}.key(), FileID{Root: 1, File: files[len(files)-1]}.key()
	value := indexValue(Dependency{Kind: DepDocument}, &Entry{Created: time.Now().UnixMilli()})
	err := r.db.Update(func(tx *bolt.Tx) error {
		idx := tx.Bucket(bucketIndex)
		if err := idx.Delete(append(indexPrefix(DepKey, "key-"+files[0]), a...)); err != nil {
			return err
		}
		if err := idx.Put(append(indexPrefix(DepDocument, "other"), b...), value); err != nil {
			return err
		}
		if err := idx.Put([]byte("x"), value); err != nil {
			return err
		}
		return idx.Put(append(indexPrefix(DepDocument, "doc-c.html"), FileID{Root: 1, File: "c.html"}.key()...), value)
	})
	if err != nil {
		t.Fatal(err)
	}
	if bad := checkIndex(t, r).BadIndex; len(bad) != 4 {
		t.Fatalf("before the repair: %q", bad)
	}
	looked := 0
	rep, err := r.RepairIndex(context.Background(), func(n int) { looked += n })
	if err != nil {
		t.Fatal(err)
	}
	if rep.Added != 1 || rep.Removed != 3 {
		t.Fatalf("repair %+v, want 1 added, 3 removed", rep)
	}
	if bad := checkIndex(t, r).BadIndex; len(bad) != 0 {
		t.Fatalf("after the repair: %q", bad)
	}
	if want := len(files) + 2*len(files) + 3; looked != want { // entries, then index keys (with the bad ones)
		t.Errorf("progress counted %d, want %d", looked, want)
	}
	if got := findFiles(t, r, DepKey, "key-"+files[0]); len(got) != 1 {
		t.Errorf("the repaired key finds %v", got)
	}
}

// TestClearBefore: what was rendered and queued before the cutoff goes,
// with its index, expiry, access keys and tombstones; a render recorded
// after the cutoff, the flush log, positions and resource hashes stay.
func TestClearBefore(t *testing.T) {
	r := openTestRegistry(t, t.TempDir())
	defer r.Close()
	cutoff := time.Now().UnixMilli()
	old, fresh, retired := FileID{1, "old.html"}, FileID{1, "new.html"}, FileID{1, "gone.html"}
	tmpl := Dependency{Kind: DepResource, Name: "page.tmpl", Hash: "v1"}
	doc := Dependency{Kind: DepDocument, Name: "story1"}
	for id, created := range map[FileID]int64{old: cutoff - 1000, fresh: cutoff + 5, retired: cutoff - 2000} {
		e := Entry{Key: "/" + id.File, Created: created, Deps: []Dependency{doc, tmpl}, Keys: []string{"k"},
			Expires: cutoff + 60_000}
		if err := r.Put(id, e); err != nil {
			t.Fatal(err)
		}
	}
	r.Sync()
	if err := r.WriteAccess(map[FileID]int64{old: cutoff - 10, fresh: cutoff + 10}); err != nil {
		t.Fatal(err)
	}
	if err := r.Update(func(tx *Tx) error {
		var ret Retirement
		if err := tx.RetireFiles(map[FileID]int64{retired: cutoff - 2000}, &ret); err != nil {
			return err
		}
		for _, j := range []QueuedJob{{Root: 1, File: old.File, Op: OpRename, Priority: 5, Enqueued: cutoff - 1},
			{Root: 1, File: fresh.File, Op: OpRender, Priority: 5, Enqueued: cutoff + 1, Key: "/new.html"}} {
			q := QueueRemoval
			if j.Op == OpRender {
				q = QueuePregen
			}
			if _, err := tx.Enqueue(q, j); err != nil {
				return err
			}
		}
		if _, err := tx.LogFlush(Flush{Key: "k", Group: "g", Time: cutoff - 5}); err != nil {
			return err
		}
		return tx.SetPosition("staging", 42)
	}); err != nil {
		t.Fatal(err)
	}
	rep, err := r.ClearBefore(context.Background(), cutoff, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Entries != 2 || rep.Jobs != 1 || rep.Retired != 1 || rep.IndexKeys != 6 {
		t.Fatalf("cleared %+v", rep)
	}
	for _, id := range []FileID{old, retired} {
		if _, ok, _ := r.Get(id); ok {
			t.Errorf("%s survived", id.File)
		}
	}
	if _, ok, _ := r.Get(fresh); !ok {
		t.Error("the render after the cutoff was cleared")
	}
	if got := findFiles(t, r, DepDocument, "story1"); len(got) != 1 || got[0] != fresh.File {
		t.Errorf("index finds %v", got)
	}
	if r.Retired() != 0 {
		t.Errorf("%d tombstones left", r.Retired())
	}
	var expiry, access int
	_ = r.db.View(func(tx *bolt.Tx) error {
		expiry, access = tx.Bucket(bucketExpiry).Stats().KeyN, tx.Bucket(bucketAccess).Stats().KeyN
		return nil
	})
	if expiry != 1 || access != 1 {
		t.Errorf("expiry keys %d, access keys %d; want 1 each (the new render's)", expiry, access)
	}
	if rm, pg := r.QueueLengths(); rm != 0 || pg != 1 {
		t.Errorf("queues %d/%d, want the job queued after the cutoff only", rm, pg)
	}
	if p, _ := r.Position("staging"); p != 42 {
		t.Errorf("position %d", p)
	}
	if h, _ := r.ResourceHashes(); h["page.tmpl"] != "v1" {
		t.Errorf("resource hashes %v", h)
	}
	var flushes int
	_ = r.db.View(func(tx *bolt.Tx) error {
		flushes = tx.Bucket(bucketFlushLog).Stats().KeyN
		return nil
	})
	if flushes != 1 {
		t.Errorf("flush log holds %d", flushes)
	}
	if bad := checkIndex(t, r).BadIndex; len(bad) != 0 {
		t.Errorf("index after clearing: %q", bad)
	}
}
