package bench

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/delivery-edge/edge/integration/bench/benchkit"
	"github.com/delivery-edge/edge/integration/harness"
	"github.com/delivery-edge/edge/integration/origin"
	"github.com/delivery-edge/edge/integration/versitygw"
)

// soakConfig is the shape of a soak run. Every interval scales with the
// duration, so a short run (BENCH_SOAK=2m in CI) still has every phase:
// five kills, faults of every kind, image changes.
type soakConfig struct {
	Duration      time.Duration // BENCH_SOAK (default 30m)
	RPS           int           // reader requests per second, BENCH_SOAK_RPS (default 400)
	Workers       int           // reader goroutines
	Pages         int           // generated stories, BENCH_SOAK_PAGES (default 50,000)
	ChangesPerSec float64       // CMS changes
	FlushesPerSec float64       // cache servlet flushes
	KillEvery     time.Duration // one edge killed (SIGKILL) and restarted
	FaultEvery    time.Duration // a fault from the proxy starts
	FaultFor      time.Duration // and lasts
	LagEvery      time.Duration // the staging replicas get new lags (0–2 s)
	ImageEvery    time.Duration // an image gets a new original
	SampleEvery   time.Duration // process figures, req/s, p99
	Quiet         time.Duration // no fault or kill starts in the last stretch
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

func soakConfigFromEnv() soakConfig {
	d := 30 * time.Minute
	if v, err := time.ParseDuration(os.Getenv("BENCH_SOAK")); err == nil && v > 0 {
		d = v
	}
	c := soakConfig{
		Duration:      d,
		RPS:           envInt("BENCH_SOAK_RPS", 400),
		Workers:       64,
		Pages:         envInt("BENCH_SOAK_PAGES", 50_000),
		ChangesPerSec: 10,
		FlushesPerSec: 1,
		KillEvery:     d / 6,                     // 5 min of 30: five kills in any run
		FaultEvery:    max(10*time.Second, d/10), // 3 min of 30: every kind at least once
		LagEvery:      10 * time.Second,
		ImageEvery:    max(15*time.Second, d/6),
		SampleEvery:   max(2*time.Second, d/300), // 300 samples
		Quiet:         max(15*time.Second, d/10), // the end is for draining
	}
	c.FaultFor = min(20*time.Second, c.FaultEvery/2)
	return c
}

// soakEdge is one edge of the group with what the soak watches of it.
type soakEdge struct {
	*harness.Edge
	index   int
	name    string
	up      atomic.Bool
	applied appliedLog
}

func (e *soakEdge) metricsURL() string { return e.URL() + "/metrics" }

// soakSite is everything a soak runs against: the sample origin (render
// backend and two lagging staging replicas), S3 on versitygw, a fault link
// in front of each of the three, and three edges in a group.
type soakSite struct {
	cfg                                   soakConfig
	content                               *origin.Content
	origin                                *harness.Origin
	s3                                    *versitygw.Server
	renderLink, stagingLink, s3Link       faultLink
	edges                                 []*soakEdge
	pages                                 []soakPage
	stories                               []soakPage // pages with a document (changes, flushes)
	readClient, pollClient, metricsClient *http.Client
	rr                                    atomic.Uint64
	timeline                              *soakTimeline
	stats                                 *soakStats
	fresh                                 *soakFresh
}

const soakPassword = "soak"

func startSoakSite(b *testing.B, cfg soakConfig) *soakSite {
	b.Helper()
	start := time.Now()
	c, generated := seedContent(cfg.Pages)
	s := &soakSite{cfg: cfg, content: c, timeline: &soakTimeline{}, stats: newSoakStats(),
		fresh: newSoakFresh(3)}
	s.pages = soakPages(c, generated)
	for _, p := range s.pages {
		if p.id != "" {
			s.stories = append(s.stories, p)
		}
	}
	s.origin = harness.StartOriginWith(b, harness.OriginOptions{
		Render:  origin.RenderConfig{SSI: true, ImageURL: soakImageURL(c)},
		Staging: origin.StagingConfig{Replicas: 2, Lags: []time.Duration{0, 2 * time.Second}},
		Content: c,
	})
	s.s3 = versitygw.Start(b, versitygw.Options{})
	stagingHost := strings.TrimPrefix(s.origin.StagingURL, "http://")
	s3Host := strings.TrimPrefix(s.s3.Endpoint, "http://")
	s.renderLink = mustLink(b, s.origin.RenderAddr)
	s.stagingLink = mustLink(b, stagingHost)
	s.s3Link = mustLink(b, s3Host)

	tr := &http.Transport{MaxIdleConnsPerHost: cfg.Workers * 2, DisableCompression: true, IdleConnTimeout: 30 * time.Second}
	s.readClient = &http.Client{Transport: tr, Timeout: 30 * time.Second}
	// The trackers' polls come in bursts (a staging outage's changes are
	// applied at once when it ends): without an idle timeout of its own the
	// client kept a burst's connections until the edges' idle timeout
	// (Caddy's default, 5 minutes), a plateau of goroutines and open files
	// on the edges that the flatness figures took for growth.
	s.pollClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true,
		IdleConnTimeout: 30 * time.Second}, Timeout: 30 * time.Second}
	s.metricsClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}, Timeout: 2 * time.Second}
	b.Cleanup(func() {
		tr.CloseIdleConnections()
		s.pollClient.CloseIdleConnections()
		s.metricsClient.CloseIdleConnections()
	})

	ports := []int{harness.FreePort(b), harness.FreePort(b), harness.FreePort(b)}
	dirs := []string{b.TempDir(), b.TempDir(), b.TempDir()}
	seeded := seedEdges(b, s.origin.Render, c, s.pages, dirs, ports)
	for i := range ports {
		o := s.edgeOptions(ports, i)
		o.Dir = dirs[i]
		e := harness.StartEdge(b, o)
		se := &soakEdge{Edge: e, index: i, name: string(rune('A' + i))}
		se.up.Store(true)
		s.edges = append(s.edges, se)
	}
	// The edges start where the seed left them: every event applied.
	for _, e := range s.edges {
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
			m, ok := s.scrape(context.Background(), e)
			if ok && m["delivery_staging_applied_source_time_ms"] >= float64(c.LastSourceTime()) {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("edge %s did not report the seeded events as applied within a minute", e.name)
			}
		}
	}
	fmt.Printf("soak site up in %v: %d pages (%d generated stories), %d files per edge, 3 edges on :%d :%d :%d\n",
		time.Since(start).Round(100*time.Millisecond), len(s.pages), cfg.Pages, seeded, ports[0], ports[1], ports[2])
	return s
}

// edgeOptions is the configuration of edge i: staging, S3 and the render
// backend through the fault links; a group of all three (the peers
// directly); pre-generation; the first edge follows the image updates.
func (s *soakSite) edgeOptions(ports []int, i int) harness.EdgeOptions {
	var peers []string
	for j, p := range ports {
		if j != i {
			peers = append(peers, fmt.Sprintf("http://127.0.0.1:%d", p))
		}
	}
	global := []string{
		"staging http://" + s.stagingLink.Addr() + " {",
		"token " + origin.DemoToken,
		"poll_interval 200ms",
		"long_poll 10s",
		"}",
		"pregenerate {",
		"workers 4",
		"}",
		"servlet_password " + soakPassword,
		"group live {",
		"peer " + strings.Join(peers, " "),
		"}",
		"image_store s3 {",
		"bucket " + s.s3.Bucket,
		"endpoint http://" + s.s3Link.Addr(),
		"region " + s.s3.Region,
		"path_style",
		"access_key " + s.s3.AccessKey,
		"secret_key " + s.s3.SecretKey,
		"}",
	}
	if i == 0 {
		global = append(global, "image_updates")
	}
	return harness.EdgeOptions{
		Origin: s.renderLink.Addr(),
		Port:   ports[i],
		Global: strings.Join(global, "\n"),
		Route: strings.Join([]string{
			"metrics /metrics",
			"cache_servlet " + benchServlet,
			"image_service /image/* {",
			"widths 320 640 960 1280",
			"}",
		}, "\n"),
		Cache: "precompress\nssi\nquery_params page",
	}
}

// flushURL is the servlet request of a flush of key for group live.
func flushURL(key string) string {
	q := url.Values{"action": {"flush"}, "key": {key}, "group": {"live"}, "password": {soakPassword}}
	return benchServlet + "?" + q.Encode()
}

// scrape reads an edge's metrics; ok is false while it is down.
func (s *soakSite) scrape(ctx context.Context, e *soakEdge) (benchkit.Metrics, bool) {
	m, err := benchkit.Scrape(ctx, s.metricsClient, e.metricsURL())
	return m, err == nil
}
