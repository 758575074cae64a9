package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"

	"github.com/delivery-edge/edge/integration/bench/benchkit"
	"github.com/delivery-edge/edge/integration/harness"
)

const (
	stormWorkers = 16
	stormRender  = 5 * time.Millisecond
	stormHitRate = 200 // hits per second while measuring hit latency
)

// BenchmarkStorm: a template deploy invalidates every page of a docroot
// (BENCH_STORM_FILES, default 100,000) with pre-generation on (16
// workers, BENCH_STORM_PREGEN), in front of a render backend that renders in 5 ms with 16
// workers. It reports
//
//   - the re-render rate until the pre-generation queue drains, against
//     the backend's own capacity (16 concurrent clients straight at it,
//     wrk): goal ≥ 0.9×;
//   - the p99 of hits (200/s, open loop) during the storm against idle:
//     goal ≤ 2×;
//   - misses per second through delivery_cache against a plain
//     reverse_proxy to the same backend (wrk -c16, unique paths, rounds
//     interleaved): goal ≥ 0.9×.
func BenchmarkStorm(b *testing.B) {
	benchkit.Need(b, "wrk")
	for range b.N {
		runStorm(b, stormFiles())
	}
}

func runStorm(b *testing.B, n int) {
	backend := newStormBackend(stormWorkers, stormRender)
	srv := httptest.NewServer(backend)
	b.Cleanup(srv.Close)
	backendAddr := srv.Listener.Addr().String()
	d := benchkit.Duration()

	// The backend's own capacity.
	capacity := benchkit.NewSeries()
	for r := range benchkit.Rounds() {
		capacity.Add("backend", benchkit.Wrk(b, srv.URL, missPaths("cap", r), 1, stormWorkers, d, ""))
	}
	backendRate := capacity.Median("backend").RPS

	// The edge over a seeded docroot, and a plain reverse proxy.
	dir := b.TempDir()
	seedStorm(b, dir, n)
	// The edge's pre-generation workers, its renders at the backend at once
	// (BENCH_STORM_PREGEN, default as many as the backend has): more hide
	// each render's round trip, at the hits' cost.
	pregenWorkers := envInt("BENCH_STORM_PREGEN", stormWorkers)
	profile := os.Getenv("BENCH_STORM_PROFILE")          // a file: the edge's CPU profile of the storm's first 30 s
	missProfile := os.Getenv("BENCH_STORM_MISS_PROFILE") // a file: its profile while stored misses run
	var adminAddr string
	if profile != "" || missProfile != "" {
		adminAddr = fmt.Sprintf("127.0.0.1:%d", harness.FreePort(b))
	}
	edge := harness.StartEdge(b, harness.EdgeOptions{Origin: backendAddr, Dir: dir, Admin: adminAddr,
		Global: fmt.Sprintf("pregenerate {\nworkers %d\n}", pregenWorkers),
		Route:  "metrics /metrics\nreverse_proxy " + plainPrefix + "* " + backendAddr})
	proxyDir := b.TempDir()
	proxyPort := harness.FreePort(b)
	proxy := harness.StartCaddy(b, proxyDir, fmt.Sprintf(`{
	admin off
	persist_config off
	storage file_system %[1]s/storage
}
http://127.0.0.1:%[2]d {
	reverse_proxy %[3]s
}
`, proxyDir, proxyPort, backendAddr), proxyPort)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: 30 * time.Second}
	b.Cleanup(client.CloseIdleConnections)
	metrics := &http.Client{Timeout: 5 * time.Second}
	scrape := func() benchkit.Metrics {
		m, err := benchkit.Scrape(context.Background(), metrics, edge.URL()+"/metrics")
		if err != nil {
			b.Fatalf("edge metrics: %v", err)
		}
		return m
	}

	// The edge learns the template's hash from a render (a deploy is
	// noticed by the first render after it that reports another hash).
	if status, _, _ := harness.Get(b, client, edge.URL()+"/m/before-deploy.html"); status != 200 {
		b.Fatalf("render before the deploy: %d", status)
	}
	hits := make([]string, 0, 1000)
	for k := 0; k < n && len(hits) < 1000; k += max(1, n/1000) {
		hits = append(hits, stormPath(k))
	}
	var idle benchkit.Histogram
	var hitErrs atomic.Int64
	hitsFor(d, client, edge.URL(), hits, &idle, &hitErrs)

	// The deploy: the template's hash changes; the next render reports it.
	before := scrape()
	rendersBefore, busyBefore := backend.renders.Load(), backend.busy.Load()
	idleHeld := backend.held.Swap().Quantile(0.5) // a render's time with the backend alone (wrk) and idle hits
	backend.version.Add(1)
	start := time.Now()
	if status, _, _ := harness.Get(b, client, edge.URL()+"/m/after-deploy.html"); status != 200 {
		b.Fatalf("render after the deploy: %d", status)
	}
	profiled := profileFor(b, adminAddr, profile, 30*time.Second)
	var during benchkit.Histogram
	stopHits := startHits(client, edge.URL(), hits, &during, &hitErrs)
	var queued, drained time.Duration
	var peak float64
	limit := 2*time.Minute + time.Duration(n)*10*time.Millisecond // a bound, not a goal: 100 renders/s
	for {
		m := scrape()
		q := m[`delivery_queue_length{queue="pregeneration"}`]
		done := m["delivery_pregenerated_total"] - before["delivery_pregenerated_total"]
		peak = max(peak, q)
		if queued == 0 && q+done >= float64(n) {
			queued = time.Since(start)
		}
		if queued > 0 && q == 0 {
			drained = time.Since(start)
			break
		}
		if time.Since(start) > limit {
			stopHits()
			b.Fatalf("pre-generation did not drain within %v: %.0f queued, %.0f of %d done", limit, q, done, n)
		}
		time.Sleep(250 * time.Millisecond) // the queue length costs the edge a walk of the queue
	}
	stopHits()
	<-profiled
	after := scrape()
	pregenerated := after["delivery_pregenerated_total"] - before["delivery_pregenerated_total"]
	failed := after[`delivery_cache_renders_total{outcome="failed"}`] - before[`delivery_cache_renders_total{outcome="failed"}`]
	rerenderRate := pregenerated / drained.Seconds()
	backendRenders := backend.renders.Load() - rendersBefore
	// How much of its capacity the edge kept in use, and how long a render
	// took meanwhile.
	busy := float64(backend.busy.Load()-busyBefore) / float64(int64(stormWorkers)*int64(drained))
	stormHeld := backend.held.Quantile(0.5)

	// The hits while the same edge only proxies as much as the backend
	// can answer (a route of its own, nothing stored): what a storm at the
	// backend's capacity costs the hits at the least on this machine. (wrk
	// itself takes some of the machine's CPU, which a storm does not.)
	var proxied benchkit.Histogram
	stopHits = startHits(client, edge.URL(), hits, &proxied, &hitErrs)
	plain := benchkit.Wrk(b, edge.URL(), plainPaths(), 1, stormWorkers, d, "")
	stopHits()

	// The hits while stored misses run through the same edge at the
	// backend's capacity: the shape nginx's anchor below can be put in.
	var beside benchkit.Histogram
	stopHits = startHits(client, edge.URL(), hits, &beside, &hitErrs)
	missProfiled := profileFor(b, adminAddr, missProfile, d-time.Second)
	stored := benchkit.Wrk(b, edge.URL(), missPaths("s", 0), 1, stormWorkers, d, "")
	<-missProfiled
	stopHits()

	// Misses: unique paths through the edge and through the plain proxy.
	misses := benchkit.NewSeries()
	for r := range benchkit.Rounds() {
		misses.Add("render backend (16 clients, its capacity)", benchkit.Wrk(b, srv.URL, missPaths("b", r), 1, stormWorkers, d, ""))
		misses.Add("reverse_proxy", benchkit.Wrk(b, proxy.URL(), missPaths("p", r), 1, stormWorkers, d, ""))
		misses.Add("delivery_cache miss", benchkit.Wrk(b, edge.URL(), missPaths("e", r), 1, stormWorkers, d, ""))
	}
	fmt.Print(misses.Table(fmt.Sprintf("Misses: unique pages, wrk -t1 -c%d, backend %v per render with %d workers",
		stormWorkers, stormRender, stormWorkers), "reverse_proxy"))
	missRatio := misses.Median("delivery_cache miss").RPS / misses.Median("reverse_proxy").RPS

	// nginx's proxy_cache under the same two loads, where it is installed.
	var ngx *nginxStorm
	if _, err := exec.LookPath("nginx"); err == nil {
		ngx = runNginxStorm(b, backendAddr, hits, d)
		fmt.Print(ngx.misses.Table("Misses through nginx: unique pages, wrk -t1 -c16", "nginx proxy_pass"))
	}

	idleP99, stormP99 := idle.Quantile(0.99), during.Quantile(0.99)
	fmt.Printf("\nRender storm: a template deploy invalidates %d pages, pregenerate { workers %d }, backend %v × %d workers\n",
		n, pregenWorkers, stormRender, stormWorkers)
	fmt.Printf("| measure | value | goal |\n|---|---|---|\n")
	fmt.Printf("| backend capacity (wrk -c%d straight at it, median of %d) | %.0f renders/s | |\n", stormWorkers,
		benchkit.Rounds(), backendRate)
	fmt.Printf("| deploy → %d jobs queued | %v (peak queue %.0f) | |\n", n, queued.Round(time.Millisecond), peak)
	fmt.Printf("| deploy → queue drained | %v: %.0f pre-generated, %.0f failed, %d backend renders | |\n",
		drained.Round(time.Millisecond), pregenerated, failed, backendRenders)
	fmt.Printf("| re-render rate | %.0f pages/s = %.2f × capacity | ≥ 0.9× |\n", rerenderRate, rerenderRate/backendRate)
	fmt.Printf("| the backend's %d workers busy during the storm | %.0f %% (a render held one for %v, p50; %v before the storm) | |\n",
		stormWorkers, 100*busy, stormHeld.Round(10*time.Microsecond), idleHeld.Round(10*time.Microsecond))
	fmt.Printf("| hit p99 idle / during the storm (%d/s open loop) | %v / %v = %.2f× (p50 %v / %v) | ≤ 2× |\n",
		stormHitRate, idleP99.Round(10*time.Microsecond), stormP99.Round(10*time.Microsecond),
		float64(stormP99)/float64(max(idleP99, 1)), idle.Quantile(0.5).Round(10*time.Microsecond),
		during.Quantile(0.5).Round(10*time.Microsecond))
	fmt.Printf("| hit p99 while the edge only proxies at the backend's capacity (wrk -c%d, %.0f req/s, nothing stored) | %v = %.2f× idle | |\n",
		stormWorkers, plain.RPS, proxied.Quantile(0.99).Round(10*time.Microsecond),
		float64(proxied.Quantile(0.99))/float64(max(idleP99, 1)))
	fmt.Printf("| hit p99 while %d stored misses run through the edge (wrk -c%d, %.0f req/s) | %v = %.2f× idle | |\n",
		stormWorkers, stormWorkers, stored.RPS, beside.Quantile(0.99).Round(10*time.Microsecond),
		float64(beside.Quantile(0.99))/float64(max(idleP99, 1)))
	fmt.Printf("| misses/s delivery_cache ÷ reverse_proxy | %.2f | ≥ 0.9× |\n", missRatio)
	fmt.Printf("| hit errors | %d | none |\n", hitErrs.Load())
	if ngx != nil {
		ngx.print()
	}
	if hitErrs.Load() > 0 {
		b.Errorf("%d hits failed", hitErrs.Load())
	}
	if pregenerated+failed < float64(n) {
		b.Errorf("the queue drained with %.0f of %d pages pre-generated (%.0f failed)", pregenerated, n, failed)
	}
}

// missPaths are unique page paths for one wrk run (more than it can ask
// for), in folders of 1,000.
func missPaths(tag string, round int) []string {
	const n = 60_000
	paths := make([]string, n)
	for k := range paths {
		paths[k] = fmt.Sprintf("/m/%s%d/%d/p%d.html", tag, round, k/1000, k)
	}
	return paths
}

// startHits asks for paths at stormHitRate on goroutines of their own
// (pacedHits) until the returned function is called, which waits for them.
func startHits(client *http.Client, base string, paths []string, h *benchkit.Histogram, errs *atomic.Int64) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		pacedHits(ctx, client, base, paths, stormHitRate, h, errs)
	}()
	return func() {
		cancel()
		<-done
	}
}

// plainPrefix is the edge's route that only proxies (nothing stored).
const plainPrefix = "/plain/"

// plainPaths are unique paths on the edge's plain proxy route.
func plainPaths() []string { return prefixed(missPaths("x", 0)) }

// prefixed puts paths on the plain proxy's prefix.
func prefixed(paths []string) []string {
	out := make([]string, len(paths))
	for k, p := range paths {
		out[k] = plainPrefix + p[1:]
	}
	return out
}

// hitsFor asks for paths at stormHitRate for d (pacedHits) and returns
// when the time is up.
func hitsFor(d time.Duration, client *http.Client, base string, paths []string, h *benchkit.Histogram, errs *atomic.Int64) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	pacedHits(ctx, client, base, paths, stormHitRate, h, errs)
}

// fetchProfile saves the answer of a pprof URL to file.
func fetchProfile(url, file string) error {
	resp, err := (&http.Client{Timeout: 2 * time.Minute}).Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, resp.Body)
	return errors.Join(err, f.Close())
}

// profileFor saves the edge's CPU profile of the next d to file on a
// goroutine of its own (nothing without a file); the channel closes when
// it is written.
func profileFor(b *testing.B, adminAddr, file string, d time.Duration) <-chan struct{} {
	done := make(chan struct{})
	if file == "" {
		close(done)
		return done
	}
	go func() {
		defer close(done)
		url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", adminAddr, max(1, int(d.Seconds())))
		if err := fetchProfile(url, file); err != nil {
			b.Logf("CPU profile: %v", err)
		}
	}()
	return done
}
