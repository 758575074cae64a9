package registry

import (
	"testing"
	"time"
)

func queueTx(t *testing.T, r *Registry, fn func(tx *Tx) error) {
	t.Helper()
	if err := r.Update(fn); err != nil {
		t.Fatal(err)
	}
}

func next(t *testing.T, r *Registry, q QueueKind, n int, now time.Time) []QueuedJob {
	t.Helper()
	var jobs []QueuedJob
	if err := r.View(func(tx *Tx) error {
		var err error
		jobs, err = tx.NextJobs(q, n, nil, now, time.Second)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return jobs
}

func TestQueueOrderAndDedup(t *testing.T) {
	r := openTestRegistry(t, t.TempDir())
	defer r.Close()
	now := time.Now()
	ms := now.UnixMilli()
	queueTx(t, r, func(tx *Tx) error {
		for _, j := range []QueuedJob{
			{Root: 1, File: "low.html", Op: OpRename, Priority: 10, Enqueued: ms},
			{Root: 1, File: "high.html", Op: OpRename, Priority: 90, Enqueued: ms},
			{Root: 1, File: "mid.html", Op: OpRename, Priority: 50, Enqueued: ms},
		} {
			if _, err := tx.Enqueue(QueueRemoval, j); err != nil {
				return err
			}
		}
		// Same file again with lower priority: ignored.
		if added, _ := tx.Enqueue(QueueRemoval, QueuedJob{Root: 1, File: "high.html", Op: OpRename, Priority: 5, Enqueued: ms}); added {
			t.Error("lower priority duplicate was added")
		}
		// Same file with higher priority, in the other queue: replaces it.
		if added, _ := tx.Enqueue(QueuePregen, QueuedJob{Root: 1, File: "low.html", Op: OpRender, Priority: 70, Enqueued: ms}); !added {
			t.Error("higher priority duplicate was not added")
		}
		return nil
	})
	got := next(t, r, QueueRemoval, 10, now)
	if len(got) != 2 || got[0].File != "high.html" || got[1].File != "mid.html" {
		t.Fatalf("removal queue = %+v", got)
	}
	pre := next(t, r, QueuePregen, 10, now)
	if len(pre) != 1 || pre[0].File != "low.html" || pre[0].Priority != 70 {
		t.Fatalf("pre-generation queue = %+v", pre)
	}
	queueTx(t, r, func(tx *Tx) error { return tx.Complete(QueueRemoval, got[0]) })
	if got := next(t, r, QueueRemoval, 10, now); len(got) != 1 || got[0].File != "mid.html" {
		t.Fatalf("after complete: %+v", got)
	}
	queueTx(t, r, func(tx *Tx) error {
		if added, _ := tx.Enqueue(QueueRemoval, QueuedJob{Root: 1, File: "high.html", Op: OpRename, Priority: 5, Enqueued: ms}); !added {
			t.Error("a completed file could not be queued again")
		}
		return nil
	})
}

func TestQueueAgeing(t *testing.T) {
	r := openTestRegistry(t, t.TempDir())
	defer r.Close()
	now := time.Now()
	queueTx(t, r, func(tx *Tx) error {
		_, err := tx.Enqueue(QueuePregen, QueuedJob{Root: 1, File: "old-low.html", Op: OpRender, Priority: 5,
			Enqueued: now.Add(-2 * time.Minute).UnixMilli()})
		if err != nil {
			return err
		}
		_, err = tx.Enqueue(QueuePregen, QueuedJob{Root: 1, File: "new-high.html", Op: OpRender, Priority: 90,
			Enqueued: now.UnixMilli()})
		return err
	})
	// Waited 120 s at one point per second: 5+120 beats 90.
	if got := next(t, r, QueuePregen, 1, now); got[0].File != "old-low.html" {
		t.Fatalf("aged job not first: %+v", got)
	}
	// Without waiting that long, priority wins.
	if got := next(t, r, QueuePregen, 1, now.Add(-100*time.Second)); got[0].File != "new-high.html" {
		t.Fatalf("young queue: %+v", got)
	}
	// Busy jobs are skipped.
	var jobs []QueuedJob
	_ = r.View(func(tx *Tx) error {
		first, _ := tx.NextJobs(QueuePregen, 1, nil, now, time.Second)
		jobs, _ = tx.NextJobs(QueuePregen, 2, map[string]bool{first[0].Order(): true}, now, time.Second)
		return nil
	})
	if len(jobs) != 1 || jobs[0].File != "new-high.html" {
		t.Fatalf("busy skipping: %+v", jobs)
	}
}

// TestQueuePurgeIsNeverDowngraded: a rename or render of higher priority
// for a file whose purge waits keeps the purge (the content is gone), with
// the higher priority and, for a render, a render after it.
func TestQueuePurgeIsNeverDowngraded(t *testing.T) {
	for _, tc := range []struct {
		q            QueueKind
		op           string
		wantRerender bool
	}{
		{QueueRemoval, OpRename, false},
		{QueuePregen, OpRender, true},
	} {
		t.Run(tc.op, func(t *testing.T) {
			r := openTestRegistry(t, t.TempDir())
			defer r.Close()
			now := time.Now()
			ms := now.UnixMilli()
			queueTx(t, r, func(tx *Tx) error {
				if _, err := tx.Enqueue(QueueRemoval, QueuedJob{Root: 1, File: "gone.html", Op: OpPurge, Priority: 10, Enqueued: ms}); err != nil {
					return err
				}
				added, err := tx.Enqueue(tc.q, QueuedJob{Root: 1, File: "gone.html", Op: tc.op, Priority: 90, Enqueued: ms})
				if !added {
					t.Error("higher priority job not taken")
				}
				return err
			})
			got := next(t, r, QueueRemoval, 10, now)
			if len(got) != 1 || got[0].Op != OpPurge || got[0].Priority != 90 || got[0].Rerender != tc.wantRerender {
				t.Fatalf("removal queue = %+v, want one purge of priority 90 (rerender %v)", got, tc.wantRerender)
			}
			if pre := next(t, r, QueuePregen, 10, now); len(pre) != 0 {
				t.Fatalf("pre-generation queue = %+v, want empty", pre)
			}
		})
	}
}
