package e2e

import (
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/delivery-edge/edge/integration/harness"
	"github.com/delivery-edge/edge/integration/origin"
)

// TestMetricsAcrossReloads: the edge's collectors are registered with
// every config's registry without errors, so after two reloads through
// the admin API (/load) the metrics endpoint still answers with every
// delivery metric it had, and counters kept across reloads (hits in the
// shared engine, image requests in the process) have not gone back.
func TestMetricsAcrossReloads(t *testing.T) {
	o := startImageOrigin(t, nil)
	dir := t.TempDir()
	port, admin := harness.FreePort(t), harness.FreePort(t)
	opts := harness.EdgeOptions{Origin: o.RenderAddr, Route: "metrics /metrics\n" + imageRoute,
		Global: o.stagingBlock() + "\nimage_store file " + filepath.Join(dir, "images") + "\nimage_updates"}
	caddyfile := strings.Replace(opts.Caddyfile(dir, port), "admin off", "admin 127.0.0.1:"+strconv.Itoa(admin), 1)
	if caddyfile == opts.Caddyfile(dir, port) {
		t.Fatal("the harness Caddyfile no longer turns the admin API off; this test cannot enable it")
	}
	c := harness.StartCaddy(t, dir, caddyfile, port)
	base := c.URL()

	harness.Get(t, nil, base+"/politik/story100.html")
	harness.Get(t, nil, base+"/politik/story100.html")
	img := o.imageURL(t, origin.ImageID(0), "16x9-768", "jpg", 0)
	if status, _, body := harness.Get(t, nil, base+img); status != 200 {
		t.Fatalf("%s: %d %q", img, status, body)
	}
	const hits, images = "delivery_cache_hits_total", `delivery_image_requests_total{outcome="generated"}`
	// A reload closes the old server's idle connections: every request
	// here gets a connection of its own.
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}
	scrape := func(when string) (string, map[string]bool) {
		t.Helper()
		status, _, body := harness.Get(t, fresh, base+"/metrics")
		if status != 200 {
			t.Fatalf("%s: /metrics answered %d: %q", when, status, body)
		}
		return body, exposedMetrics(body)
	}
	body, first := scrape("before reloads")
	hitsBefore, imagesBefore := sampleValue(t, body, hits), sampleValue(t, body, images)
	if hitsBefore < 1 || imagesBefore < 1 {
		t.Fatalf("before reloads: %s %g, %s %g; want at least 1 each", hits, hitsBefore, images, imagesBefore)
	}

	for i := 1; i <= 2; i++ {
		req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:"+strconv.Itoa(admin)+"/load", strings.NewReader(caddyfile))
		req.Header.Set("Content-Type", "text/caddyfile")
		req.Header.Set("Cache-Control", "must-revalidate") // load even though the config is the same
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("reload %d: %d %s", i, resp.StatusCode, msg)
		}
		harness.Get(t, fresh, base+"/politik/story100.html")
		body, now := scrape("after reload " + strconv.Itoa(i))
		for name := range first {
			if strings.HasPrefix(name, "delivery_") && !now[name] {
				t.Errorf("after reload %d: %s is gone", i, name)
			}
		}
		if v := sampleValue(t, body, hits); v < hitsBefore+1 {
			t.Errorf("after reload %d: %s %g, want at least %g", i, hits, v, hitsBefore+1)
		}
		if v := sampleValue(t, body, images); v < imagesBefore {
			t.Errorf("after reload %d: %s went back from %g to %g", i, images, imagesBefore, v)
		}
	}
	for _, bad := range []string{"registering metrics", "registering image metrics", "duplicate metrics collector",
		"was collected before"} {
		if strings.Contains(c.Log(), bad) {
			t.Errorf("the log reports %q", bad)
		}
	}
}

// sampleValue reads one sample of a metrics exposition (0 when absent).
func sampleValue(t *testing.T, body, sample string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		return 0
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatalf("%s: %v", sample, err)
	}
	return v
}
