package stagingclient_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/delivery-edge/edge/cache"
	"github.com/delivery-edge/edge/integration/origin"
	"github.com/delivery-edge/edge/stagingclient"
)

// TestFollow runs two followers of one stream against the cache engine's
// positions, as the old and the new config of a reload do: the second
// waits for the first's lease and goes on from the position the first
// stored, so no event is applied twice and none is missed.
func TestFollow(t *testing.T) {
	c := origin.NewContent()
	evs := publish(c, "doc", 10)
	e := newEnv(t, c, origin.StagingConfig{}, stagingclient.Config{})
	eng, err := cache.Open(cache.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	const stream = "test-stream"

	type follower struct {
		col    *collector
		from   chan int64
		done   chan error
		cancel context.CancelFunc
	}
	follow := func() *follower {
		f := &follower{col: newCollector(), from: make(chan int64, 1), done: make(chan error, 1)}
		ctx, cancel := context.WithCancel(context.Background())
		f.cancel = cancel
		p := stagingclient.NewPoller(e.client, stagingclient.PollerConfig{Interval: 10 * time.Millisecond})
		apply := func(ctx context.Context, events []stagingclient.Event, upTo int64) error {
			if err := f.col.apply(ctx, events, upTo); err != nil {
				return err
			}
			return eng.SetPosition(stream, upTo)
		}
		go func() {
			f.done <- stagingclient.Follow(ctx, eng, stream, p, func(from int64) { f.from <- from }, apply)
		}()
		return f
	}
	stop := func(f *follower) error {
		t.Helper()
		f.cancel()
		select {
		case err := <-f.done:
			return err
		case <-time.After(5 * time.Second):
			t.Fatal("Follow did not return within 5s of the cancellation")
			return nil
		}
	}

	first := follow()
	if from := <-first.from; from != 0 {
		t.Fatalf("first follower started from %d, want 0", from)
	}
	eventually(t, 5*time.Second, "10 events", func() bool { return first.col.count() == 10 })
	second := follow()
	more := publish(c, "more", 3)
	eventually(t, 5*time.Second, "13 events", func() bool { return first.col.count() == 13 })
	select {
	case from := <-second.from:
		t.Fatalf("second follower started from %d while the first holds the lease", from)
	case <-time.After(100 * time.Millisecond):
	}
	if err := stop(first); !errors.Is(err, context.Canceled) {
		t.Fatalf("first follower: %v, want context.Canceled", err)
	}
	if from := <-second.from; from != more[2].SourceTime {
		t.Fatalf("second follower started from %d, want %d (the first's stored position)", from, more[2].SourceTime)
	}
	last := publish(c, "last", 2)
	eventually(t, 5*time.Second, "2 events", func() bool { return second.col.count() == 2 })
	if err := stop(second); !errors.Is(err, context.Canceled) {
		t.Fatalf("second follower: %v, want context.Canceled", err)
	}
	second.col.mu.Lock()
	got := second.col.events
	second.col.mu.Unlock()
	if got[0].SourceTime != last[0].SourceTime || got[1].SourceTime != last[1].SourceTime || evs[9].SourceTime >= got[0].SourceTime {
		t.Fatalf("second follower applied %+v, want the 2 last events only", got)
	}

	// Waiting for the lease ends with the context; started is not called.
	release, err := eng.Lease(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	waiting := follow()
	time.Sleep(50 * time.Millisecond)
	if err := stop(waiting); !errors.Is(err, context.Canceled) {
		t.Fatalf("follower waiting for the lease: %v, want context.Canceled", err)
	}
	select {
	case from := <-waiting.from:
		t.Fatalf("started from %d without the lease", from)
	default:
	}
	release()
}

// TestFollowPositionError: a position that cannot be read stops Follow
// before anything is polled, with a *PositionError.
func TestFollowPositionError(t *testing.T) {
	e := newEnv(t, nil, origin.StagingConfig{}, stagingclient.Config{})
	eng, err := cache.Open(cache.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Close(); err != nil { // the registry file is closed: no position can be read
		t.Fatal(err)
	}
	p := stagingclient.NewPoller(e.client, stagingclient.PollerConfig{})
	started := false
	err = stagingclient.Follow(context.Background(), eng, "s", p, func(int64) { started = true },
		func(context.Context, []stagingclient.Event, int64) error { return nil })
	var pe *stagingclient.PositionError
	if !errors.As(err, &pe) || pe.Name != "s" || pe.Err == nil || started {
		t.Fatalf("Follow = %v (started %v), want a *PositionError for s", err, started)
	}
	if n := len(e.requests()); n != 0 {
		t.Fatalf("%d requests sent", n)
	}
}
