package e2e

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/delivery-edge/edge/integration/harness"
	"github.com/delivery-edge/edge/integration/origin"
)

// dashboardFile is the Grafana dashboard shipped with the edge.
var dashboardFile = filepath.Join(harness.RepoRoot(), "contrib", "grafana", "delivery-edge.json")

// metricName finds the delivery_* metric names in a PromQL expression.
var metricName = regexp.MustCompile(`\bdelivery_[a-z0-9_]+\b`)

// dashboardMetrics returns the metric names the dashboard's queries (panel
// targets and template variables) use, sorted.
func dashboardMetrics(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	seen := map[string]bool{}
	var walk func(v any, key string)
	walk = func(v any, key string) {
		switch v := v.(type) {
		case map[string]any:
			for k, c := range v {
				walk(c, k)
			}
		case []any:
			for _, c := range v {
				walk(c, key)
			}
		case string:
			if key == "expr" || key == "query" || key == "definition" {
				for _, m := range metricName.FindAllString(v, -1) {
					seen[m] = true
				}
			}
		}
	}
	walk(doc, "")
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// exposedMetrics returns the sample names of a Prometheus text exposition;
// a histogram's family name counts as exposed with its _bucket series.
func exposedMetrics(body string) map[string]bool {
	out := map[string]bool{}
	for line := range strings.SplitSeq(body, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name := line[:strings.IndexAny(line+" ", "{ ")]
		out[name] = true
		if fam, ok := strings.CutSuffix(name, "_bucket"); ok {
			out[fam] = true
		}
	}
	return out
}

func TestDashboardParsesAndNamesMetrics(t *testing.T) {
	names := dashboardMetrics(t)
	if len(names) < 20 {
		t.Fatalf("the dashboard queries only %d delivery_* metrics: %v", len(names), names)
	}
	exposed := exposedMetrics("# HELP x\ndelivery_a_total 1\ndelivery_h_bucket{le=\"1\"} 2\ndelivery_h_sum 3\n")
	for _, n := range []string{"delivery_a_total", "delivery_h", "delivery_h_bucket", "delivery_h_sum"} {
		if !exposed[n] {
			t.Errorf("%s not found in the sample exposition", n)
		}
	}
}

// TestDashboardMetricsExist: every metric the Grafana dashboard queries is
// on the metrics endpoint of a running edge once each subsystem has done
// something: a miss and a hit (renders), a CMS change (staging events,
// invalidation, an event of an unknown kind), a flush with a peer that is down (outbox), a wrong
// password (servlet refusals), image requests (generation) and the image
// update service. Missing names are reported together.
func TestDashboardMetricsExist(t *testing.T) {
	names := dashboardMetrics(t)
	o := startImageOrigin(t, nil)
	down := harness.FreePort(t) // a peer that is not there: its outbox fills
	global := o.stagingBlock() + `
servlet_password ` + servletPassword + `
group live {
	peer http://127.0.0.1:` + strconv.Itoa(down) + `
}
pregenerate {
	workers 1
}
image_store file ` + filepath.Join(t.TempDir(), "images") + `
image_updates`
	e := harness.StartEdge(t, harness.EdgeOptions{Origin: o.RenderAddr, Global: global,
		Route: "metrics /metrics\ncache_servlet " + servletPath + "\n" + imageRoute})

	pages := []string{"/", "/politik/", "/politik/story100.html", "/sport/story105.html"}
	for _, p := range pages {
		harness.Get(t, nil, e.URL()+p) // misses: renders
		harness.Get(t, nil, e.URL()+p) // hits
	}
	// An image generated, asked again (stored), and an unknown one.
	img := o.imageURL(t, origin.ImageID(0), "16x9-768", "jpg", 0)
	for range 2 {
		if status, _, body := harness.Get(t, nil, e.URL()+img); status != 200 {
			t.Fatalf("%s: %d %q", img, status, body)
		}
	}
	harness.Get(t, nil, e.URL()+"/image/00000000-0000-4000-8000-000000000000/1/1/16x9-768.jpg")
	// A CMS change of a cached page and of an image.
	o.Content.Update("story100", map[string]any{"copytext": "neuer Text"})
	o.Content.Update(origin.ImageID(0), map[string]any{"caption": "neu"})
	o.Content.AppendEvents(origin.Event{Kind: "teaserGroup", ID: "tg1", State: "frozen"}) // unknown to the edge
	// A flush forwarded to the peer that is down, and a wrong password.
	status, body := servlet(t, e, url.Values{"action": {"flush"}, "key": {"/politik/"}, "group": {"live"},
		"password": {servletPassword}})
	if status != 200 {
		t.Fatalf("flush: %d %q", status, body)
	}
	servlet(t, e, url.Values{"action": {"flush"}, "key": {"/"}, "group": {"live"}, "password": {"wrong"}})

	// The queues, the poller and the outbox work in the background: scrape
	// until every name is there or the deadline passes.
	var missing []string
	for deadline := time.Now().Add(15 * time.Second); ; {
		status, _, metrics := harness.Get(t, nil, e.URL()+"/metrics")
		if status != 200 {
			t.Fatalf("/metrics: %d", status)
		}
		exposed := exposedMetrics(metrics)
		missing = missing[:0]
		for _, n := range names {
			if !exposed[n] {
				missing = append(missing, n)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(missing) > 0 {
		t.Fatalf("%d of the %d metrics the dashboard queries are not on /metrics: %s",
			len(missing), len(names), strings.Join(missing, ", "))
	}
}
