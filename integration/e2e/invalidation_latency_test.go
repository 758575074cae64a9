package e2e

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/delivery-edge/edge/integration/harness"
)

// TestInvalidationLatencyIsExported: a CMS change that reaches a cached
// page is recorded in delivery_invalidation_latency_seconds, from the
// event's source time to the page renamed or rendered again.
func TestInvalidationLatencyIsExported(t *testing.T) {
	o := harness.StartOriginWith(t, harness.OriginOptions{})
	e := harness.StartEdge(t, harness.EdgeOptions{Origin: o.RenderAddr, Global: o.StagingBlock("100ms", true),
		Route: "metrics /metrics"})
	harness.Get(t, nil, e.URL()+storyPath)
	settle()
	countRe := regexp.MustCompile(`(?m)^delivery_invalidation_latency_seconds_count (\d+)$`)
	count := func() int {
		_, _, metrics := harness.Get(t, nil, e.URL()+"/metrics")
		m := countRe.FindStringSubmatch(metrics)
		if m == nil {
			t.Fatalf("no delivery_invalidation_latency_seconds_count in the metrics")
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	if n := count(); n != 0 {
		t.Fatalf("%d latencies recorded before any change", n)
	}
	title := fmt.Sprintf("Titel %d", rand.Int())
	o.Content.Update("story100", map[string]any{"title": title})
	waitFor(t, 10*time.Second, "the new title on the story page", func() bool {
		_, _, body := harness.Get(t, nil, e.URL()+storyPath)
		return strings.Contains(body, title)
	})
	waitFor(t, 5*time.Second, "a latency recorded", func() bool { return count() >= 1 })
	_, _, metrics := harness.Get(t, nil, e.URL()+"/metrics")
	if !strings.Contains(metrics, `delivery_invalidation_latency_seconds_bucket{le="+Inf"}`) {
		t.Errorf("no +Inf bucket:\n%s", metrics)
	}
}
