package stagingclient_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/delivery-edge/edge/integration/origin"
	"github.com/delivery-edge/edge/stagingclient"
)

// runPoller starts p.Run in a goroutine and returns a stop function that
// cancels it and returns how long Run took to return and its error.
func runPoller(t *testing.T, p *stagingclient.Poller, from int64, apply stagingclient.ApplyFunc) (stop func() (time.Duration, error)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, from, apply) }()
	var once sync.Once
	var err error
	var took time.Duration
	stop = func() (time.Duration, error) {
		once.Do(func() {
			start := time.Now()
			cancel()
			select {
			case err = <-done:
				took = time.Since(start)
			case <-time.After(5 * time.Second):
				t.Fatal("Run did not return within 5s of the cancellation")
			}
		})
		return took, err
	}
	t.Cleanup(func() { stop() })
	return stop
}

// collector is an ApplyFunc that records what it applied.
type collector struct {
	mu     sync.Mutex
	events []stagingclient.Event
	upTo   []int64
	got    chan stagingclient.Event
}

func newCollector() *collector { return &collector{got: make(chan stagingclient.Event, 10000)} }

func (c *collector) apply(_ context.Context, evs []stagingclient.Event, upTo int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, evs...)
	c.upTo = append(c.upTo, upTo)
	for _, e := range evs {
		c.got <- e
	}
	return nil
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.events)
}

func TestPollerLongPollLatency(t *testing.T) {
	c := origin.NewContent()
	publish(c, "old", 3)
	e := newEnv(t, c, origin.StagingConfig{Replicas: 2}, stagingclient.Config{})
	p := stagingclient.NewPoller(e.client, stagingclient.PollerConfig{Interval: 2 * time.Second, LongPoll: 20 * time.Second})
	col := newCollector()
	runPoller(t, p, c.LastSourceTime(), col.apply)

	const samples = 20
	var lat []time.Duration
	for i := range samples {
		// Let the poller's request reach the server and be held there.
		eventually(t, 5*time.Second, "a held long poll", func() bool { return e.staging.Stats().Holding == 1 })
		time.Sleep(10 * time.Millisecond)
		start := time.Now()
		ev := c.Put(origin.Document{ID: fmt.Sprintf("new%d", i), NodeType: "story"}, nil)
		select {
		case got := <-col.got:
			lat = append(lat, time.Since(start))
			if got.SourceTime != ev.SourceTime {
				t.Fatalf("got event %+v, want %+v", got, ev)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("event not delivered within 5s")
		}
	}
	slices.Sort(lat)
	t.Logf("long-poll latency publish→apply over %d samples: min %v, median %v, max %v",
		samples, lat[0], lat[samples/2], lat[samples-1])
	if lat[samples/2] > 500*time.Millisecond || lat[samples-1] > 2*time.Second {
		t.Errorf("latency median %v, max %v; want well under 500ms (the plain polling interval is 2s)", lat[samples/2], lat[samples-1])
	}
	if st := p.Stats(); !st.LongPolling || !st.Connected || st.Lag != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestPollerDegradesToPlainPolling(t *testing.T) {
	c := origin.NewContent()
	publish(c, "old", 3)
	e := newEnv(t, c, origin.StagingConfig{NoLongPoll: true}, stagingclient.Config{})
	log, logs := observed()
	const interval = 100 * time.Millisecond
	p := stagingclient.NewPoller(e.client, stagingclient.PollerConfig{Interval: interval, LongPoll: 20 * time.Second, Logger: log})
	col := newCollector()
	runPoller(t, p, 0, col.apply)

	eventually(t, 2*time.Second, "the 3 old events", func() bool { return col.count() == 3 })
	eventually(t, 2*time.Second, "fallback to plain polling", func() bool { return !p.Stats().LongPolling })
	e.resetRequests()
	time.Sleep(time.Second)
	n := len(e.requests())
	t.Logf("%d requests in 1s with interval %v", n, interval)
	if n < 5 || n > 15 {
		t.Errorf("%d requests in 1s, want about 10 (no busy loop, no stall)", n)
	}
	start := time.Now()
	c.Put(origin.Document{ID: "new", NodeType: "story"}, nil)
	eventually(t, 2*time.Second, "the new event", func() bool { return col.count() == 4 })
	t.Logf("plain polling delivered an event after %v", time.Since(start))
	if got := logs.FilterMessage("staging server answers long polls at once; polling at an interval instead").Len(); got != 1 {
		t.Errorf("fallback logged %d times, want once", got)
	}
}

func TestPollerCancellation(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(e *env) stagingclient.ApplyFunc
	}{
		{"while a long poll is held", func(e *env) stagingclient.ApplyFunc { return newCollector().apply }},
		{"while backing off after a failed apply", func(e *env) stagingclient.ApplyFunc {
			publish(e.content, "x", 2)
			return func(context.Context, []stagingclient.Event, int64) error { return errors.New("disk full") }
		}},
		{"while backing off after a failed fetch", func(e *env) stagingclient.ApplyFunc {
			_ = e.staging.SetDown(0, true)
			return newCollector().apply
		}},
		{"while apply blocks", func(e *env) stagingclient.ApplyFunc {
			publish(e.content, "x", 2)
			return func(ctx context.Context, _ []stagingclient.Event, _ int64) error {
				<-ctx.Done()
				return ctx.Err()
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Cleanup(func() { goleak.VerifyNone(t, goleak.IgnoreCurrent()) })
			e := newEnv(t, nil, origin.StagingConfig{}, stagingclient.Config{})
			apply := tc.setup(e)
			p := stagingclient.NewPoller(e.client, stagingclient.PollerConfig{LongPoll: 30 * time.Second,
				RetryBase: 10 * time.Second, RetryMax: 10 * time.Second})
			stop := runPoller(t, p, 0, apply)
			time.Sleep(150 * time.Millisecond) // let it get into the state
			took, err := stop()
			t.Logf("Run returned %v after %v", err, took)
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Run returned %v, want context.Canceled", err)
			}
			if took > 500*time.Millisecond {
				t.Errorf("Run took %v to return", took)
			}
		})
	}
}

// TestPollerNeverSkipsABatch: apply fails now and then (once, or several
// times in a row); every event must still be applied exactly once, in
// order, and a failed batch must come back unchanged.
func TestPollerNeverSkipsABatch(t *testing.T) {
	c := origin.NewContent()
	want := publish(c, "doc", 450)
	e := newEnv(t, c, origin.StagingConfig{Replicas: 3, Lags: []time.Duration{0, 0, 0}}, stagingclient.Config{})
	p := stagingclient.NewPoller(e.client, stagingclient.PollerConfig{Limit: 50, Interval: 20 * time.Millisecond,
		RetryBase: time.Millisecond, RetryMax: 5 * time.Millisecond})

	type batch struct {
		first, last, upTo int64
		n                 int
	}
	var (
		mu       sync.Mutex
		calls    int
		failed   []batch
		pending  *batch // the batch that failed last; it must come back unchanged
		applied  []stagingclient.Event
		appliedB []batch
	)
	apply := func(_ context.Context, evs []stagingclient.Event, upTo int64) error {
		mu.Lock()
		defer mu.Unlock()
		calls++
		b := batch{upTo: upTo, n: len(evs)}
		if len(evs) > 0 {
			b.first, b.last = evs[0].SourceTime, evs[len(evs)-1].SourceTime
		}
		if pending != nil && b != *pending {
			t.Errorf("after failing %+v the poller offered %+v", *pending, b)
		}
		// Fail calls 1, 4, 5, 6 and every 7th.
		if calls == 1 || calls >= 4 && calls <= 6 || calls%7 == 0 {
			failed = append(failed, b)
			pending = &b
			return fmt.Errorf("injected failure on call %d", calls)
		}
		pending = nil
		applied = append(applied, evs...)
		appliedB = append(appliedB, b)
		return nil
	}
	runPoller(t, p, 0, apply)
	eventually(t, 10*time.Second, "all events", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(applied) >= len(want)
	})
	// More events while it runs.
	want = append(want, publish(c, "more", 120)...)
	eventually(t, 10*time.Second, "the later events", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(applied) >= len(want)
	})
	time.Sleep(50 * time.Millisecond)

	mu.Lock()
	defer mu.Unlock()
	if len(applied) != len(want) {
		t.Fatalf("applied %d events, want %d", len(applied), len(want))
	}
	for i := range want {
		if applied[i].SourceTime != want[i].SourceTime || applied[i].ID != want[i].ID {
			t.Fatalf("event %d: applied %+v, want %+v", i, applied[i], want[i])
		}
	}
	for i := 1; i < len(appliedB); i++ {
		if appliedB[i].upTo <= appliedB[i-1].upTo {
			t.Errorf("upTo went from %d to %d", appliedB[i-1].upTo, appliedB[i].upTo)
		}
	}
	// Every failed batch was later applied as it was.
	for _, f := range failed {
		if !slices.Contains(appliedB, f) {
			t.Errorf("failed batch %+v was never applied as such", f)
		}
	}
	if appliedB[len(appliedB)-1].upTo != c.LastSourceTime() {
		t.Errorf("ended at %d, want %d", appliedB[len(appliedB)-1].upTo, c.LastSourceTime())
	}
	st := p.Stats()
	t.Logf("%d apply calls, %d failed; stats %+v", calls, len(failed), st)
	if st.ApplyErrors != int64(len(failed)) || st.Events != int64(len(want)) || st.Applied != c.LastSourceTime() {
		t.Errorf("stats %+v", st)
	}
}

func TestPollerResumesFromPersistedSourceTime(t *testing.T) {
	c := origin.NewContent()
	evs := publish(c, "doc", 20)
	e := newEnv(t, c, origin.StagingConfig{}, stagingclient.Config{})
	p := stagingclient.NewPoller(e.client, stagingclient.PollerConfig{Interval: 20 * time.Millisecond})
	col := newCollector()
	runPoller(t, p, evs[11].SourceTime, col.apply)
	eventually(t, 2*time.Second, "8 events", func() bool { return col.count() >= 8 })
	time.Sleep(50 * time.Millisecond)
	col.mu.Lock()
	defer col.mu.Unlock()
	if len(col.events) != 8 || col.events[0].SourceTime != evs[12].SourceTime {
		t.Errorf("applied %d events starting at %d, want 8 from %d", len(col.events), col.events[0].SourceTime, evs[12].SourceTime)
	}
	// The first request already carries the persisted source time.
	if r := e.requests()[0]; r.SourceTime != fmt.Sprint(evs[11].SourceTime) {
		t.Errorf("first request sent %s=%s", stagingclient.HeaderSourceTime, r.SourceTime)
	}
}

// TestPollerLogsStateChangesOnce: an outage is logged when it starts and
// when it ends, not for every failed poll; retries go to debug.
func TestPollerLogsStateChangesOnce(t *testing.T) {
	c := origin.NewContent()
	publish(c, "doc", 3)
	e := newEnv(t, c, origin.StagingConfig{}, stagingclient.Config{})
	log, logs := observed()
	p := stagingclient.NewPoller(e.client, stagingclient.PollerConfig{Interval: 10 * time.Millisecond,
		RetryBase: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond, Logger: log, Name: "test"})
	col := newCollector()
	runPoller(t, p, 0, col.apply)
	eventually(t, 2*time.Second, "connected", func() bool { return p.Stats().Connected && col.count() == 3 })

	_ = e.staging.SetDown(0, true)
	eventually(t, 2*time.Second, "several failed polls", func() bool { return p.Stats().FetchErrors >= 5 })
	if p.Stats().Connected {
		t.Error("still connected during the outage")
	}
	_ = e.staging.SetDown(0, false)
	publish(c, "after", 2)
	eventually(t, 2*time.Second, "restored", func() bool { return p.Stats().Connected && col.count() == 5 })
	time.Sleep(50 * time.Millisecond)

	for msg, want := range map[string]int{
		"staging connected":           1,
		"staging connection lost":     1,
		"staging connection restored": 1,
	} {
		if got := logs.FilterMessage(msg).Len(); got != want {
			t.Errorf("%q logged %d times, want %d", msg, got, want)
		}
	}
	if n := logs.FilterMessage("polling events failed, retrying").Len(); n < 4 {
		t.Errorf("%d debug lines for retries, want one per failed poll", n)
	}
	for _, entry := range logs.FilterMessage("staging connection lost").All() {
		if entry.ContextMap()["error"] == nil || entry.ContextMap()["poller"] != "test" {
			t.Errorf("lost without a reason or name: %v", entry.ContextMap())
		}
	}
	for _, entry := range logs.All() {
		if entry.Level > 0 && entry.Message != "staging connection lost" { // warn and up
			t.Errorf("unexpected %v log: %s", entry.Level, entry.Message)
		}
	}
}

func TestPollerUnauthorizedIsLoggedOnceAsError(t *testing.T) {
	e := newEnv(t, nil, origin.StagingConfig{}, stagingclient.Config{Token: "11111111-2222-3333-4444-555555555555"})
	log, logs := observed()
	p := stagingclient.NewPoller(e.client, stagingclient.PollerConfig{Interval: 10 * time.Millisecond,
		RetryBase: 5 * time.Millisecond, RetryMax: 10 * time.Millisecond, Logger: log})
	runPoller(t, p, 0, newCollector().apply)
	eventually(t, 2*time.Second, "several failed polls", func() bool { return p.Stats().FetchErrors >= 5 })
	if n := logs.FilterMessage("staging servers reject the access token; no events can be read until it is fixed").Len(); n != 1 {
		t.Errorf("logged %d times, want once", n)
	}
	if st := e.staging.Stats(); st.Unauthorized != st.Requests {
		t.Errorf("staging stats %+v", st)
	}
}

// TestPollerReportsLag: catching up on a backlog, the poller reports how
// far behind it is and when it has caught up.
func TestPollerReportsLag(t *testing.T) {
	c := origin.NewContent()
	// A backlog of 300 events; their source times are at least 1ms apart.
	publish(c, "doc", 300)
	e := newEnv(t, c, origin.StagingConfig{}, stagingclient.Config{})
	log, logs := observed()
	p := stagingclient.NewPoller(e.client, stagingclient.PollerConfig{Limit: 10, Interval: 10 * time.Millisecond,
		LagLogMinimum: 50 * time.Millisecond, Logger: log})
	var maxLag atomic.Int64
	apply := func(context.Context, []stagingclient.Event, int64) error {
		time.Sleep(2 * time.Millisecond)
		return nil
	}
	runPoller(t, p, 0, func(ctx context.Context, evs []stagingclient.Event, upTo int64) error {
		if l := int64(p.Lag()); l > maxLag.Load() {
			maxLag.Store(l)
		}
		return apply(ctx, evs, upTo)
	})
	eventually(t, 5*time.Second, "caught up", func() bool { return p.Stats().Applied == c.LastSourceTime() })
	if p.Lag() != 0 {
		t.Errorf("lag %v after catching up", p.Lag())
	}
	t.Logf("max lag seen %v; lag log lines: %d", time.Duration(maxLag.Load()), logs.FilterMessage("staging events behind").Len())
	if l := time.Duration(maxLag.Load()); l < 100*time.Millisecond || l > 10*time.Second {
		t.Errorf("max lag %v while paging through a backlog of 300 events ≥1ms apart", l)
	}
	if logs.FilterMessage("staging events behind").Len() == 0 || logs.FilterMessage("staging events caught up").Len() != 1 {
		t.Errorf("lag not logged: %v", logs.All())
	}
}

func TestPollerRunsOnce(t *testing.T) {
	e := newEnv(t, nil, origin.StagingConfig{}, stagingclient.Config{})
	p := stagingclient.NewPoller(e.client, stagingclient.PollerConfig{LongPoll: 10 * time.Second})
	runPoller(t, p, 0, newCollector().apply)
	eventually(t, time.Second, "first poll", func() bool { return p.Stats().Polls > 0 })
	if err := p.Run(context.Background(), 0, newCollector().apply); !errors.Is(err, stagingclient.ErrPollerRunning) {
		t.Errorf("second Run: %v", err)
	}
}

// TestPollerWaitsForServersThatAreBehind: after a restart with a persisted
// source time newer than any server has (say, a replica was restored from
// an old backup), the poller says so once and carries on when they catch up.
func TestPollerWaitsForServersThatAreBehind(t *testing.T) {
	c := origin.NewContent()
	evs := publish(c, "doc", 3)
	e := newEnv(t, c, origin.StagingConfig{Lag: time.Hour}, stagingclient.Config{MaxAttempts: 2})
	log, logs := observed()
	p := stagingclient.NewPoller(e.client, stagingclient.PollerConfig{Interval: 10 * time.Millisecond,
		RetryBase: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond, Logger: log})
	col := newCollector()
	runPoller(t, p, evs[0].SourceTime, col.apply)
	eventually(t, 2*time.Second, "several failed polls", func() bool { return p.Stats().FetchErrors >= 3 })
	_ = e.staging.SetLag(0, 0)
	eventually(t, 2*time.Second, "the 2 newer events", func() bool { return col.count() == 2 })
	if n := logs.FilterMessage("staging servers are behind the source time already applied; waiting for them to catch up").Len(); n != 1 {
		t.Errorf("logged %d times, want once", n)
	}
	if n := logs.FilterMessage("staging connection restored").Len(); n != 1 {
		t.Errorf("restored logged %d times", n)
	}
}
