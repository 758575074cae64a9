package imaging

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestVariantCacheDuringACMSOutage: with definitions cached, a CMS that is
// down is asked at most once per minVariantRefresh however many requests
// come, none of them fails, the outage is logged once, and its end once.
func TestVariantCacheDuringACMSOutage(t *testing.T) {
	ctx := context.Background()
	cms := newFakeCMS()
	core, logs := observer.New(zapcore.InfoLevel)
	c := &variantCache{cms: cms, store: newTestFolderStore(t), ttl: time.Nanosecond, log: zap.New(core)}
	if _, err := c.get(ctx, "16x9-768", 0); err != nil {
		t.Fatal(err)
	}
	cms.setDown(true)
	before := cms.variantCalls.Load()
	start := time.Now()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for time.Since(start) < 1500*time.Millisecond {
				if _, err := c.get(ctx, "16x9-768", 0); err != nil {
					t.Errorf("get during the outage: %v", err)
					return
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
	wg.Wait()
	// 1.5 s of stale definitions: at most one attempt per second (two,
	// with the one at the start).
	if n := cms.variantCalls.Load() - before; n < 1 || n > 2 {
		t.Errorf("CMS asked %d times in 1.5 s of requests, want 1 or 2", n)
	}
	if n := logs.FilterMessageSnippet("refresh failed").Len(); n != 1 {
		t.Errorf("outage logged %d times, want once", n)
	}
	cms.setDown(false)
	time.Sleep(minVariantRefresh)
	if _, err := c.get(ctx, "16x9-768", 0); err != nil {
		t.Fatal(err)
	}
	if n := logs.FilterMessage("variant definitions refreshed again").Len(); n != 1 {
		t.Errorf("recovery logged %d times, want once", n)
	}
}
