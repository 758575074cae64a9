package caddymodule

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestFlattenFigures(t *testing.T) {
	s := Snapshot{Time: time.Unix(1, 0), Cache: CacheStats{Hits: 7, Renders: map[string]int64{"stored": 3, "failed": 1}},
		Staging:       &StagingStats{Connected: true, LagSeconds: 1.5},
		Invalidations: InvalidationStats{Total: 2, Recent: []InvalidationStat{{Files: 9}}}}
	got, err := flattenFigures(s)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		"cache.hits": 7, "cache.renders.stored": 3, "cache.renders.failed": 1, "cache.removed": 0, "cache.pregenerated": 0,
		"queues.removal.length": 0, "queues.pregeneration.length": 0,
		"registry.retired": 0, "registry.over_limits": 0, "registry.journal_rejected": 0,
		"staging.connected": 1, "staging.lag_seconds": 1.5, "staging.applied_source_time_ms": 0, "staging.events": 0,
		"invalidations.total": 2, // the list is not a figure
	}
	// Every number of the snapshot is a figure (other parts add theirs);
	// these must be there with their values, and no list is flattened.
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	for k := range got {
		if strings.HasPrefix(k, "invalidations.recent") {
			t.Errorf("list flattened into figure %s", k)
		}
	}
}

// testSampler samples a snapshot the test sets.
func testSampler(every time.Duration, snap *Snapshot, log *zap.Logger) *statusSampler {
	return &statusSampler{hist: new(statusHistory), every: every, log: log, snapshot: func() Snapshot { return *snap }}
}

func TestStatusHistoryKeepsTheLastTenMinutes(t *testing.T) {
	snap := Snapshot{Cache: CacheStats{Renders: map[string]int64{}}}
	s := testSampler(statusSampleEvery, &snap, zap.NewNop())
	start := time.Unix(1_000_000, 0)
	for i := range statusSamples + 15 {
		snap.Cache.Hits = int64(i)
		if i == statusSamples+10 {
			snap.Staging = &StagingStats{LagSeconds: 4} // appears late
		}
		s.sample(start.Add(time.Duration(i) * statusSampleEvery))
		// A second sampler during a reload: too soon, not kept.
		s.sample(start.Add(time.Duration(i)*statusSampleEvery + statusSampleEvery/3))
	}
	h := s.history()
	if len(h.Times) != statusSamples {
		t.Fatalf("%d samples kept", len(h.Times))
	}
	hits := h.Series["cache.hits"]
	for j, at := range h.Times {
		i := 15 + j
		if at != start.Add(time.Duration(i)*statusSampleEvery).UnixMilli() || hits[j] == nil || *hits[j] != float64(i) {
			t.Fatalf("sample %d: time %d hits %v, want sample %d", j, at, hits[j], i)
		}
	}
	lag := h.Series["staging.lag_seconds"]
	if len(lag) != statusSamples || lag[statusSamples-6] != nil || lag[statusSamples-5] == nil || *lag[statusSamples-1] != 4 {
		t.Fatalf("a figure that appears late: %v", lag)
	}
}

func TestStatusHistoryBoundsTheFigures(t *testing.T) {
	snap := Snapshot{Cache: CacheStats{Renders: map[string]int64{}}}
	for i := range statusMaxFigures + 100 {
		snap.Cache.Renders[fmt.Sprintf("outcome%04d", i)] = int64(i)
	}
	core, logs := observer.New(zapcore.WarnLevel)
	s := testSampler(time.Second, &snap, zap.New(core))
	all, _ := flattenFigures(snap)
	over := len(all) - statusMaxFigures
	s.sample(time.Unix(100, 0))
	s.sample(time.Unix(200, 0))
	h := s.history()
	if len(h.Series) != statusMaxFigures {
		t.Fatalf("%d figures kept, want %d", len(h.Series), statusMaxFigures)
	}
	if _, ok := h.Series["cache.hits"]; !ok {
		t.Fatal("the first figures in path order were not kept")
	}
	if n := logs.FilterMessageSnippet("more figures than its history keeps").Len(); n != 1 {
		t.Fatalf("logged %d times, want once", n)
	}
	ch := make(chan prometheus.Metric, 1)
	newStatusMetrics(s).Collect(ch)
	var m dto.Metric
	if err := (<-ch).Write(&m); err != nil {
		t.Fatal(err)
	}
	if got := m.GetCounter().GetValue(); got != float64(2*over) {
		t.Fatalf("metric %v, want %d", got, 2*over)
	}
}

// TestStatusSamplerFollowsItsContext: the sampler samples at once, ends
// with the app's context, and stop waits for it.
func TestStatusSamplerFollowsItsContext(t *testing.T) {
	snap := Snapshot{Cache: CacheStats{Renders: map[string]int64{}}}
	for _, how := range []string{"context", "stop"} {
		t.Run(how, func(t *testing.T) {
			s := testSampler(time.Hour, &snap, zap.NewNop())
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			s.start(ctx)
			for deadline := time.Now().Add(5 * time.Second); len(s.history().Times) == 0; time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("no sample at start")
				}
			}
			if how == "context" {
				cancel()
				select {
				case <-s.done:
				case <-time.After(5 * time.Second):
					t.Fatal("the sampler outlived its context")
				}
			}
			s.stop()
			select {
			case <-s.done:
			default:
				t.Fatal("stop returned while the sampler runs")
			}
		})
	}
}
