package imaging

import (
	"net/http"
	"testing"
	"time"

	"go.uber.org/zap"
)

// TestAccessMetricsByOutcome: every kind of answer is counted under its
// outcome, a variant made for the request as generated and the same one
// asked again as stored; each generation lands in the histogram once.
func TestAccessMetricsByOutcome(t *testing.T) {
	f := newAccessFixture(t, AccessConfig{})
	m := new(Metrics)
	f.access = NewAccess(AccessConfig{Prefix: "/image", Widths: []int{100, 200}}, f.store, f.cms, zap.NewNop(),
		WithMetrics(m))
	if f.access.Metrics() != m {
		t.Fatal("WithMetrics not used")
	}
	const gone = "00000000-0000-4000-8000-000000000002"
	f.cms.setImage(gone, imgMod, nil, f.jpg)
	f.cms.mu.Lock()
	f.cms.images[gone].State = StateDeleted
	f.cms.mu.Unlock()
	goneURL := BuildURL("/image", URLParts{UUID: gone, ImageModified: imgMod, VariantModified: 1000,
		Variant: "16x9-768", Format: "jpg"})
	u := f.url("16x9-768", "jpg", imgMod, 1000, 0)

	steps := []struct {
		name   string
		do     func() *http.Response
		status int
	}{
		{"generated", func() *http.Response { return f.get(u).Result() }, 200},
		{"stored", func() *http.Response { return f.get(u).Result() }, 200},
		{"stored (304)", func() *http.Response {
			etag := f.get(u).Header().Get("ETag") // counted as stored too
			return f.get(u, "If-None-Match", etag).Result()
		}, http.StatusNotModified},
		{"bad url", func() *http.Response { return f.get(u[:len(u)-len("jpg")] + "xyz").Result() }, 400},
		{"method", func() *http.Response { return f.do(http.MethodPost, u).Result() }, 405},
		{"unknown image", func() *http.Response { return f.get(unknownURL(1, "16x9-768")).Result() }, 404},
		{"not directly under the prefix", func() *http.Response { return f.get("/image/x/" + u[len("/image/"):]).Result() }, 404},
		{"deleted", func() *http.Response { return f.get(goneURL).Result() }, 410},
		{"store down", func() *http.Response {
			f.store.down.Store(true)
			defer f.store.down.Store(false)
			return f.get(u).Result()
		}, 503},
	}
	for _, s := range steps {
		if r := s.do(); r.StatusCode != s.status {
			t.Fatalf("%s: status %d, want %d", s.name, r.StatusCode, s.status)
		}
	}
	snap := m.Snapshot()
	want := map[string]uint64{OutcomeGenerated: 1, OutcomeStored: 3, OutcomeBadRequest: 2, OutcomeNotFound: 2,
		OutcomeGone: 1, OutcomeRefused: 0, OutcomeUnavailable: 1, OutcomeError: 0}
	if len(snap.Requests) != len(Outcomes) {
		t.Fatalf("snapshot has %d outcomes, want all %d: %v", len(snap.Requests), len(Outcomes), snap.Requests)
	}
	for o, n := range want {
		if snap.Requests[o] != n {
			t.Errorf("outcome %s: %d, want %d (all: %v)", o, snap.Requests[o], n, snap.Requests)
		}
	}
	if snap.Generations != 1 || snap.GenerationSeconds <= 0 {
		t.Fatalf("generations %d taking %gs, want 1 taking some time", snap.Generations, snap.GenerationSeconds)
	}
	if last := snap.GenerationCumulative[len(GenerationBuckets)-1]; last > snap.Generations {
		t.Fatalf("cumulative count %d above the total %d", last, snap.Generations)
	}
}

// TestAccessMetricsRefusedNotTimed: a refused original is counted as
// refused, and a generation that failed is not in the histogram.
func TestAccessMetricsRefusedNotTimed(t *testing.T) {
	f := newAccessFixture(t, AccessConfig{})
	m := new(Metrics)
	f.access = NewAccess(AccessConfig{Prefix: "/image"}, f.store, f.cms, nil, WithMetrics(m))
	f.cms.setImage(testUUID, imgMod, nil, pngHeader(30000, 30000, 64<<10))
	wantStatus(t, f.get(f.url("16x9-768", "jpg", imgMod, 1000, 0)), http.StatusUnprocessableEntity)
	snap := m.Snapshot()
	if snap.Requests[OutcomeRefused] != 1 || snap.Generations != 0 {
		t.Fatalf("refused %d, generations %d; want 1 and 0", snap.Requests[OutcomeRefused], snap.Generations)
	}
}

// TestGenerationHistogramBuckets: durations land in the first bucket whose
// bound they do not exceed; the cumulative counts and the sum follow.
func TestGenerationHistogramBuckets(t *testing.T) {
	var m Metrics
	for _, d := range []time.Duration{-time.Second, 10 * time.Millisecond, 11 * time.Millisecond, 3 * time.Second,
		2 * time.Minute} {
		m.observeGeneration(d)
	}
	s := m.Snapshot()
	if s.Generations != 5 {
		t.Fatalf("count %d, want 5", s.Generations)
	}
	// Bounds: 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5 10 30 60.
	want := [len(GenerationBuckets)]uint64{2, 3, 3, 3, 3, 3, 3, 3, 4, 4, 4, 4}
	if s.GenerationCumulative != want {
		t.Fatalf("cumulative %v, want %v", s.GenerationCumulative, want)
	}
	if got := s.GenerationSeconds; got < 123.02 || got > 123.022 {
		t.Fatalf("sum %gs, want 123.021s", got)
	}
}

// TestOutcomeIndex: each status maps to the outcome its doc comment names.
func TestOutcomeIndex(t *testing.T) {
	for _, tc := range []struct {
		status    int
		generated bool
		want      string
	}{
		{200, false, OutcomeStored}, {206, false, OutcomeStored}, {304, false, OutcomeStored},
		{200, true, OutcomeGenerated}, {400, false, OutcomeBadRequest}, {405, false, OutcomeBadRequest},
		{404, false, OutcomeNotFound}, {410, false, OutcomeGone}, {422, false, OutcomeRefused},
		{503, false, OutcomeUnavailable}, {500, false, OutcomeError}, {418, false, OutcomeError},
	} {
		if got := Outcomes[outcomeIndex(tc.status, tc.generated)]; got != tc.want {
			t.Errorf("status %d generated %v: %s, want %s", tc.status, tc.generated, got, tc.want)
		}
	}
}
