package cache

import (
	"testing"
	"time"
)

func TestLatencyHistogramBuckets(t *testing.T) {
	var h latencyHistogram
	now := time.UnixMilli(time.Now().UnixMilli()) // source times have millisecond resolution
	for _, d := range []time.Duration{-time.Second, 30 * time.Millisecond, 700 * time.Millisecond, time.Second,
		3 * time.Second, time.Hour} {
		h.observeSince(now.Add(-d).UnixMilli(), now)
	}
	h.observeSince(0, now) // no source time: not recorded
	s := h.snapshot()
	if s.Count != 6 {
		t.Fatalf("count %d, want 6", s.Count)
	}
	want := map[float64]uint64{0.05: 2, 0.5: 2, 1: 4, 2.5: 4, 5: 5, 1800: 5}
	for i, le := range LatencyBuckets {
		if w, ok := want[le]; ok && s.Cumulative[i] != w {
			t.Errorf("le %v: %d, want %d", le, s.Cumulative[i], w)
		}
	}
	if s.Sum < 3600+4.7 || s.Sum > 3600+4.8 {
		t.Errorf("sum %v", s.Sum)
	}
}

// TestInvalidationLatencyIsRecorded: each file of a change is recorded
// once its job is done, removal and pre-generation alike, from the
// change's source time; changes without one are not.
func TestInvalidationLatencyIsRecorded(t *testing.T) {
	f := newEngineFixture(t, InvalidationConfig{Pregenerate: true})
	f.readAfterWrite("/s1.html") // read: pre-generated
	f.get("/list.html")          // not read again: renamed
	f.site.Store.reg.Sync()
	source := time.Now().Add(-2 * time.Second).UnixMilli()
	f.apply(Change{Kind: DepDocument, ID: "story1", State: StatePublished, SourceTime: source})
	f.settle()
	lat := f.eng.Stats().Latency
	if lat.Count != 2 || lat.Sum < 4 {
		t.Fatalf("after a change 2s old for 2 files: %+v", lat)
	}
	// Each took at least the 2 s since the source time (how much more
	// depends on the machine's load: no upper bound).
	if i := 4; LatencyBuckets[i] != 1 || lat.Cumulative[i] != 0 || lat.Cumulative[len(LatencyBuckets)-1] != 2 {
		t.Fatalf("buckets: %v", lat.Cumulative)
	}
	// A flush's time is its source time.
	keyed(f)
	f.ensure("/s2.html")
	if !f.flush("story2", "g", time.Now().Add(-time.Second).UnixMilli()) {
		t.Fatal("flush not applied")
	}
	f.settle()
	if got := f.eng.Stats().Latency.Count; got != 3 {
		t.Fatalf("after a flush of one file: %d recorded, want 3", got)
	}
	f.ensure("/s2.html")
	st := f.eng.Stats()
	f.apply(Change{Kind: DepDocument, ID: "story2", State: StatePublished})
	f.settle()
	if after := f.eng.Stats(); after.Removed+after.Pregenerated <= st.Removed+st.Pregenerated {
		t.Fatal("the change without a source time did nothing")
	}
	if got := f.eng.Stats().Latency.Count; got != 3 {
		t.Fatalf("a change without a source time was recorded: %d", got)
	}
}
