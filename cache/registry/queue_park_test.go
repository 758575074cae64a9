package registry

import (
	"testing"
	"time"
)

func lengths(t *testing.T, r *Registry) [2]int {
	t.Helper()
	rm, pre := r.QueueLengths()
	return [2]int{rm, pre}
}

// TestQueueLengthsAreCounted: the lengths follow every enqueue,
// replacement, completion, parking and unparking, and are counted again
// from the buckets at the next start.
func TestQueueLengthsAreCounted(t *testing.T) {
	dir := t.TempDir()
	r := openTestRegistry(t, dir)
	ms := time.Now().UnixMilli()
	enqueue := func(q QueueKind, j QueuedJob) {
		queueTx(t, r, func(tx *Tx) error { _, err := tx.Enqueue(q, j); return err })
	}
	enqueue(QueueRemoval, QueuedJob{Root: 1, File: "a.html", Op: OpRename, Priority: 10, Enqueued: ms})
	enqueue(QueueRemoval, QueuedJob{Root: 1, File: "b.html", Op: OpRename, Priority: 10, Enqueued: ms})
	enqueue(QueuePregen, QueuedJob{Root: 1, File: "c.html", Op: OpRender, Priority: 10, Enqueued: ms})
	enqueue(QueuePregen, QueuedJob{Root: 2, File: "d.html", Op: OpRender, Priority: 10, Enqueued: ms})
	if got := lengths(t, r); got != [2]int{2, 2} {
		t.Fatalf("after queueing: %v", got)
	}
	// A lower priority duplicate is dropped; a higher one moves the file
	// to the other queue.
	enqueue(QueueRemoval, QueuedJob{Root: 1, File: "c.html", Op: OpRename, Priority: 5, Enqueued: ms})
	enqueue(QueuePregen, QueuedJob{Root: 1, File: "a.html", Op: OpRender, Priority: 50, Enqueued: ms})
	if got := lengths(t, r); got != [2]int{1, 3} {
		t.Fatalf("after replacing: %v", got)
	}
	pre := next(t, r, QueuePregen, 10, time.Now())
	var d QueuedJob
	for _, j := range pre {
		if j.File == "d.html" {
			d = j
		}
	}
	queueTx(t, r, func(tx *Tx) error { _, err := tx.Park(QueuePregen, d); return err })
	if got := lengths(t, r); got != [2]int{1, 3} {
		t.Fatalf("parking changed the length: %v", got)
	}
	queueTx(t, r, func(tx *Tx) error { return tx.Complete(QueuePregen, pre[0]) })
	queueTx(t, r, func(tx *Tx) error { return tx.Complete(QueuePregen, pre[0]) }) // twice: no effect
	if got := lengths(t, r); got != [2]int{1, 2} {
		t.Fatalf("after completing: %v", got)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r = openTestRegistry(t, dir)
	defer r.Close()
	if got := lengths(t, r); got != [2]int{1, 2} {
		t.Fatalf("after a restart: %v", got)
	}
}

// TestParkedJobsWaitForTheirDocroot: a parked job is not handed out again
// until its docroot's jobs are unparked; the jobs behind it are; a new job
// for its file replaces it; it keeps its place when it comes back.
func TestParkedJobsWaitForTheirDocroot(t *testing.T) {
	r := openTestRegistry(t, t.TempDir())
	defer r.Close()
	now := time.Now()
	ms := now.UnixMilli()
	queueTx(t, r, func(tx *Tx) error {
		for _, j := range []QueuedJob{
			{Root: 1, File: "a1.html", Op: OpRender, Priority: 90, Enqueued: ms, Source: ms - 1000},
			{Root: 1, File: "a2.html", Op: OpRender, Priority: 90, Enqueued: ms},
			{Root: 2, File: "b1.html", Op: OpRender, Priority: 10, Enqueued: ms},
			{Root: 1, Op: OpResolve, Doc: "story9", Priority: 50, Enqueued: ms},
		} {
			if _, err := tx.Enqueue(QueuePregen, j); err != nil {
				return err
			}
		}
		return nil
	})
	// The workers find root 1 without a renderer, one job at a time.
	for range 3 {
		head := next(t, r, QueuePregen, 1, now)
		if head[0].Root != 1 {
			t.Fatalf("head %+v, want a job of root 1", head[0])
		}
		queueTx(t, r, func(tx *Tx) error {
			ok, err := tx.Park(QueuePregen, head[0])
			if !ok {
				t.Errorf("%+v not parked", head[0])
			}
			return err
		})
	}
	if got := next(t, r, QueuePregen, 10, now); len(got) != 1 || got[0].File != "b1.html" {
		t.Fatalf("with root 1 parked: %+v, want b1.html only", got)
	}
	if old := r.OldestJob(QueuePregen); old.UnixMilli() != ms {
		t.Fatalf("oldest job %v, want %v", old, time.UnixMilli(ms))
	}
	// A job of higher priority for a parked file replaces it and runs.
	queueTx(t, r, func(tx *Tx) error {
		_, err := tx.Enqueue(QueuePregen, QueuedJob{Root: 1, File: "a2.html", Op: OpRender, Priority: 100, Enqueued: ms})
		return err
	})
	if got := next(t, r, QueuePregen, 10, now); len(got) != 2 || got[0].File != "a2.html" || got[1].File != "b1.html" {
		t.Fatalf("after replacing a parked job: %+v", got)
	}
	if n, err := r.Unpark(QueuePregen, 2); err != nil || n != 0 {
		t.Fatalf("unpark of another root: %d %v", n, err)
	}
	if n, err := r.Unpark(QueuePregen, 1); err != nil || n != 2 {
		t.Fatalf("unpark: %d %v, want a1.html and the resolve", n, err)
	}
	got := next(t, r, QueuePregen, 10, now)
	if len(got) != 4 || got[0].File != "a2.html" || got[1].File != "a1.html" || got[1].Source != ms-1000 ||
		got[2].Doc != "story9" || got[3].File != "b1.html" {
		t.Fatalf("after unparking: %+v", got)
	}
	if rm, pre := r.QueueLengths(); rm != 0 || pre != 4 {
		t.Fatalf("lengths %d %d", rm, pre)
	}
}

// TestQueueKeepsTheEarliestSource: a job that replaces another keeps the
// older source time, so the latency runs from the first change.
func TestQueueKeepsTheEarliestSource(t *testing.T) {
	r := openTestRegistry(t, t.TempDir())
	defer r.Close()
	now := time.Now()
	ms := now.UnixMilli()
	queueTx(t, r, func(tx *Tx) error {
		if _, err := tx.Enqueue(QueueRemoval, QueuedJob{Root: 1, File: "a.html", Op: OpRename, Priority: 10, Enqueued: ms, Source: 1000}); err != nil {
			return err
		}
		_, err := tx.Enqueue(QueuePregen, QueuedJob{Root: 1, File: "a.html", Op: OpRender, Priority: 50, Enqueued: ms, Source: 2000})
		return err
	})
	if got := next(t, r, QueuePregen, 10, now); len(got) != 1 || got[0].Source != 1000 {
		t.Fatalf("%+v, want source 1000", got)
	}
}

// TestClearBeforeTakesParkedJobs: a rebuild's clearing takes the parked
// jobs too (they would come back when their docroot gets a renderer), and
// the counted lengths follow.
func TestClearBeforeTakesParkedJobs(t *testing.T) {
	r := openTestRegistry(t, t.TempDir())
	defer r.Close()
	ms := time.Now().UnixMilli()
	for _, f := range []string{"a.html", "b.html"} {
		queueTx(t, r, func(tx *Tx) error {
			_, err := tx.Enqueue(QueuePregen, QueuedJob{Root: 1, File: f, Op: OpRender, Priority: 10, Enqueued: ms})
			return err
		})
	}
	head := next(t, r, QueuePregen, 1, time.Now())
	queueTx(t, r, func(tx *Tx) error { _, err := tx.Park(QueuePregen, head[0]); return err })
	rep, err := r.ClearBefore(t.Context(), ms+1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Jobs != 2 {
		t.Fatalf("cleared %d jobs, want 2 (one waiting, one parked)", rep.Jobs)
	}
	if got := lengths(t, r); got != [2]int{0, 0} {
		t.Fatalf("lengths after clearing: %v", got)
	}
	if !r.OldestJob(QueuePregen).IsZero() {
		t.Fatal("a parked job survived the clearing")
	}
}
