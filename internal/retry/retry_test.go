package retry

import (
	"context"
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	const first, limit = 250 * time.Millisecond, 15 * time.Second
	for attempt := -1; attempt < 70; attempt++ {
		d := Backoff(attempt, first, limit)
		ceil := min(limit, first<<min(max(attempt, 1)-1, 10))
		if d < ceil/2 || d > ceil {
			t.Fatalf("attempt %d: %v not in [%v, %v]", attempt, d, ceil/2, ceil)
		}
	}
	// A zero limit (or first) never panics and never waits long.
	if d := Backoff(3, 0, 0); d != 0 {
		t.Fatalf("zero limit: %v", d)
	}
	if d := Backoff(3, 0, time.Second); d < 500*time.Millisecond || d > time.Second {
		t.Fatalf("zero first: %v, want the limit with jitter", d)
	}
}

func TestSleep(t *testing.T) {
	if !Sleep(context.Background(), time.Millisecond) {
		t.Fatal("a wait that ran out reported false")
	}
	if !Sleep(context.Background(), 0) {
		t.Fatal("a zero wait reported false")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if Sleep(ctx, time.Hour) {
		t.Fatal("a wait on an ended context reported true")
	}
	if time.Since(start) > 10*time.Second {
		t.Fatal("the wait did not end with its context")
	}
	if Sleep(ctx, 0) {
		t.Fatal("a zero wait on an ended context reported true")
	}
}
