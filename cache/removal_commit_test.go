package cache

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/delivery-edge/edge/cache/registry"
)

// newBareRemoval is a removal worker on its own registry and docroot, with
// no engine running it, so a test can step between a batch's file
// operations and its commit.
func newBareRemoval(t *testing.T) (*removalWorker, *Store) {
	t.Helper()
	dir, log := t.TempDir(), zap.NewNop()
	reg, err := registry.Open(filepath.Join(dir, "data"), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	resources, err := loadResourceHashes(reg, log)
	if err != nil {
		t.Fatal(err)
	}
	cfg, wake := newSettings(), newBroadcast()
	docroots := newDocroots(reg, log, storeDeps{reg: reg, access: NewAccessLog(), resources: resources, changes: newRecentChanges(log),
		ephemeral: newEphemeralFiles(filepath.Join(dir, "data"), cfg, log), workers: wake, sizeWake: func() {}, log: log})
	store, err := docroots.open(filepath.Join(dir, "docroot"))
	if err != nil {
		t.Fatal(err)
	}
	return &removalWorker{reg: reg, docroots: docroots, cfg: cfg, wake: wake, log: log, latency: &latencyHistogram{}}, store
}

// TestRemovalKeepsAChangeMergedDuringItsBatch: a change that finds a
// removal job already in a batch (after the batch skipped the job's file
// as rendered since, before the batch's commit) is not lost with the
// commit: the job stays queued and its next batch renames the file, which
// predates that change.
func TestRemovalKeepsAChangeMergedDuringItsBatch(t *testing.T) {
	w, store := newBareRemoval(t)
	first := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	job := registry.QueuedJob{Root: store.rootID, File: "p.html", Key: "/p.html", Op: registry.OpRename,
		Priority: 50, Enqueued: first.UnixMilli()}
	enqueue := func(j registry.QueuedJob) {
		t.Helper()
		if err := w.reg.Update(func(tx *registry.Tx) error { _, err := tx.Enqueue(registry.QueueRemoval, j); return err }); err != nil {
			t.Fatal(err)
		}
	}
	queued := func() bool {
		t.Helper()
		found := false
		_ = w.reg.View(func(tx *registry.Tx) error { _, _, found = tx.Queued(job); return nil })
		return found
	}
	enqueue(job)
	// A reader rendered the page after the first change.
	page := filepath.Join(store.Dir(), "p.html")
	if err := os.WriteFile(page, []byte("after the first change"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(page, first.Add(time.Second), first.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	b, err := w.prepare(map[string]bool{})
	if err != nil || b == nil || len(b.jobs) != 1 {
		t.Fatalf("batch %+v, %v", b, err)
	}
	if _, err := os.Stat(page); err != nil {
		t.Fatalf("the batch removed a page rendered after its change: %v", err)
	}
	// The second change arrives while the batch commits.
	second := job
	second.Enqueued = first.Add(2 * time.Second).UnixMilli()
	enqueue(second)
	if err := w.commit(b); err != nil {
		t.Fatal(err)
	}
	if !queued() {
		t.Fatal("the commit took the job off the queue with the change merged into it: the page keeps content of before that change")
	}
	if b, err = w.prepare(map[string]bool{}); err != nil || b == nil {
		t.Fatalf("second batch %+v, %v", b, err)
	}
	if err := w.commit(b); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(page); !os.IsNotExist(err) {
		t.Fatalf("page rendered before the second change still in place: %v", err)
	}
	if queued() {
		t.Fatal("the job is still queued after its work was done")
	}
}
