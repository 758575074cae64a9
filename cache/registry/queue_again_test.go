package registry

import (
	"testing"
	"time"
)

// TestQueueChangeMergedWhileRendering: a change for a file whose
// pre-generation job a worker has taken (and maybe rendered already) is
// merged into that job; the worker's CompleteUnchanged then leaves it
// queued, so the file is rendered once more. Before, the worker's commit
// took the job off, and the change was never rendered.
func TestQueueChangeMergedWhileRendering(t *testing.T) {
	r := openTestRegistry(t, t.TempDir())
	defer r.Close()
	now := time.Now()
	job := QueuedJob{Root: 1, File: "s/p1.html", Op: OpRender, Priority: 50, Enqueued: now.UnixMilli()}
	queueTx(t, r, func(tx *Tx) error { _, err := tx.Enqueue(QueuePregen, job); return err })
	taken := next(t, r, QueuePregen, 1, now)
	if len(taken) != 1 {
		t.Fatalf("taken %d jobs", len(taken))
	}

	// The change arrives after the render, before the commit.
	queueTx(t, r, func(tx *Tx) error {
		if added, err := tx.Enqueue(QueuePregen, job); err != nil || added {
			t.Errorf("the change's job: added %v, %v; want it merged", added, err)
		}
		return nil
	})
	queueTx(t, r, func(tx *Tx) error {
		done, err := tx.CompleteUnchanged(QueuePregen, taken[0])
		if done {
			t.Error("the job was taken off with a change merged after it was taken")
		}
		return err
	})
	again := next(t, r, QueuePregen, 1, now)
	if len(again) != 1 || again[0].File != job.File {
		t.Fatalf("queue after the commit = %+v, want the job again", again)
	}
	queueTx(t, r, func(tx *Tx) error {
		done, err := tx.CompleteUnchanged(QueuePregen, again[0])
		if !done {
			t.Error("the job rendered after the change stayed queued")
		}
		return err
	})
	if left := next(t, r, QueuePregen, 1, now); len(left) != 0 {
		t.Fatalf("queue = %+v, want empty", left)
	}
}

// TestQueueChangeMergedIntoARemoval: a change merged into a removal job
// that is already waiting moves the job's Since to when that change was
// queued. The removal worker skips a file written after Since (rendered
// again since); a file written between the two changes predates the
// second and must go. Before, Since stayed at the first change, and such
// a file stayed in place with the content of before the second change
// (found by TestInvalidationCrashRounds, where a kill -9 between a
// removal batch's renames and its commit left the job queued while a
// reader rendered the file again).
func TestQueueChangeMergedIntoARemoval(t *testing.T) {
	r := openTestRegistry(t, t.TempDir())
	defer r.Close()
	now := time.Now()
	first := QueuedJob{Root: 1, File: "s/p1.html", Op: OpRename, Priority: 50, Enqueued: now.UnixMilli(), Created: 7}
	queueTx(t, r, func(tx *Tx) error { _, err := tx.Enqueue(QueueRemoval, first); return err })
	second := first
	second.Enqueued = now.Add(3 * time.Second).UnixMilli()
	queueTx(t, r, func(tx *Tx) error {
		if added, err := tx.Enqueue(QueueRemoval, second); err != nil || added {
			t.Errorf("the second change's job: added %v, %v; want it merged", added, err)
		}
		return nil
	})
	got := next(t, r, QueueRemoval, 1, now)
	if len(got) != 1 {
		t.Fatalf("queue = %+v, want one job", got)
	}
	if got[0].Since() != second.Enqueued {
		t.Errorf("Since = %d, want the second change's %d (first %d)", got[0].Since(), second.Enqueued, first.Enqueued)
	}
	if got[0].Enqueued != first.Enqueued || got[0].Created != first.Created {
		t.Errorf("job = %+v, want the first change's queue time (its age) and entry", got[0])
	}
}
