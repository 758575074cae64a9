package caddymodule

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/delivery-edge/edge/cache"
	"github.com/delivery-edge/edge/imaging"
	"github.com/delivery-edge/edge/integration/origin"
	"github.com/delivery-edge/edge/internal/stagingtest"
)

// TestImageMetricsCollector: with an image store in use and the update
// service following the events, a pedantic registry (as Caddy's) gathers
// the image metrics without error: requests by outcome (all outcomes
// present), the generation histogram and the update lag.
func TestImageMetricsCollector(t *testing.T) {
	_, client := stagingtest.Demo(t)
	a := &App{dataDir: t.TempDir(), log: zap.NewNop(),
		ImageUpdates: &StagingConfig{URLs: []string{client.BaseURL()}, Token: origin.DemoToken}}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	f, err := provisionImageUpdates(a, ctx)
	if err != nil {
		t.Fatal(err)
	}
	a.imageUpdates = f
	eng, err := cache.Open(cache.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	f.start(t.Context(), eng)
	defer f.stop()

	reg := prometheus.NewPedanticRegistry()
	if err := registerMetrics(reg, imageMetricsCollector{a}); err != nil {
		t.Fatal(err)
	}
	// A second app of the same config registers again: left alone.
	if err := registerMetrics(reg, imageMetricsCollector{a}); err != nil {
		t.Fatalf("second registration: %v", err)
	}

	// What ImageService.Provision does, and one request for an image the
	// CMS does not know.
	store, err := acquireImageStore(a)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Release()
	access := imaging.NewAccess(imaging.AccessConfig{Prefix: "/image"}, store, imaging.NewStagingCMS(client), nil,
		imaging.WithMetrics(imageMetrics))
	before := imageMetrics.Snapshot().Requests[imaging.OutcomeNotFound]
	u := imaging.BuildURL("/image", imaging.URLParts{UUID: origin.DemoUUID("unknown-for-metrics"), ImageModified: 1,
		Variant: imaging.VariantOriginal, Format: "png"})
	rec := httptest.NewRecorder()
	access.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, u, nil))
	if rec.Code != http.StatusNotFound {
		t.Fatalf("unknown image answered %d, want 404", rec.Code)
	}

	// Gathered until the update service has started (it takes its lease
	// and reads its position first).
	mfs, err := reg.Gather()
	find := func(name string) int {
		for i, mf := range mfs {
			if mf.GetName() == name {
				return i
			}
		}
		return -1
	}
	for deadline := time.Now().Add(10 * time.Second); err == nil && find("delivery_image_updates_lag_seconds") < 0 &&
		time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		mfs, err = reg.Gather()
	}
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, name := range []string{"delivery_image_requests_total", "delivery_image_generation_duration_seconds",
		"delivery_image_updates_lag_seconds"} {
		if find(name) < 0 {
			t.Errorf("%s not gathered", name)
		}
	}
	if i := find("delivery_image_requests_total"); i >= 0 {
		ms := mfs[i].GetMetric()
		if len(ms) != len(imaging.Outcomes) {
			t.Errorf("%d outcomes exported, want %d", len(ms), len(imaging.Outcomes))
		}
		for _, m := range ms {
			if m.GetLabel()[0].GetValue() == imaging.OutcomeNotFound && m.GetCounter().GetValue() < float64(before+1) {
				t.Errorf("not_found %g, want at least %d", m.GetCounter().GetValue(), before+1)
			}
		}
	}
	if i := find("delivery_image_generation_duration_seconds"); i >= 0 {
		if n := len(mfs[i].GetMetric()[0].GetHistogram().GetBucket()); n != len(imaging.GenerationBuckets) {
			t.Errorf("%d buckets, want %d", n, len(imaging.GenerationBuckets))
		}
	}
}
