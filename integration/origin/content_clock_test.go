package origin

import (
	"testing"
	"time"
)

// TestSetClockBackdatesASeed: a seed stamped with a clock in the past
// leaves the source times behind the wall clock, so a lagging replica
// has all of it; later events get wall-clock source times again.
func TestSetClockBackdatesASeed(t *testing.T) {
	c := NewContent()
	const n = 5000
	base := time.Now().Add(-time.Minute)
	i := 0
	c.SetClock(func() time.Time { i++; return base.Add(time.Duration(i) * time.Millisecond) })
	for k := range n {
		c.Put(Document{ID: StoryID(k), NodeType: "story"}, nil)
	}
	c.SetClock(time.Now)
	seeded := c.LastSourceTime()
	if ahead := time.UnixMilli(seeded).Sub(time.Now()); ahead > 0 {
		t.Fatalf("the seed runs %v ahead of the clock", ahead)
	}
	st := NewStaging(c, StagingConfig{Lag: 2 * time.Second})
	defer st.Close()
	if got := st.Stats().Replicas[0].SourceTime; got != seeded {
		t.Fatalf("a replica 2 s behind is at %d, want the whole seed (%d)", got, seeded)
	}
	ev := c.Put(Document{ID: "late", NodeType: "story"}, nil)
	if d := time.Since(time.UnixMilli(ev.SourceTime)); d < -time.Second || d > time.Second {
		t.Fatalf("an event after the seed is %v off the clock", d)
	}
}
