package bench

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/delivery-edge/edge/integration/bench/benchkit"
	"github.com/delivery-edge/edge/integration/harness"
)

// nginxStorm is what nginx's own cache shows on this machine for the
// storm's two load goals: how much slower its hits get while misses
// stream through it at the backend's capacity, each stored in its
// proxy_cache, and how many misses it stores per second against its own
// proxy_pass that stores nothing.
type nginxStorm struct {
	idle, during benchkit.Histogram // hits of cached pages, alone and beside the misses
	stored       benchkit.Result    // the misses (stored) that ran beside the hits
	misses       *benchkit.Series   // stored misses and plain proxying, rounds interleaved
	hitErrs      atomic.Int64
}

// runNginxStorm puts nginx with a proxy_cache (temp files on the cache's
// own file system, as its docs advise) in front of the storm's backend,
// caches the hit pages and measures them like the edge's.
func runNginxStorm(b *testing.B, backendAddr string, hits []string, d time.Duration) *nginxStorm {
	b.Helper()
	cacheDir := b.TempDir()
	port := harness.FreePort(b)
	nginx := benchkit.StartNginx(b, b.TempDir(), port, fmt.Sprintf(`
		location / {
			proxy_pass http://storm_backend;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_cache storm;
			proxy_cache_valid 200 1d;
		}
		location %[3]s {
			proxy_pass http://storm_backend/;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
		}
	}
	proxy_cache_path %[1]s levels=1:2 keys_zone=storm:64m inactive=1d use_temp_path=off;
	upstream storm_backend {
		server %[2]s;
		keepalive 64;`, cacheDir, backendAddr, plainPrefix))
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: 30 * time.Second}
	b.Cleanup(client.CloseIdleConnections)
	warmNginx(b, client, nginx.URL, hits)

	ns := &nginxStorm{misses: benchkit.NewSeries()}
	hitsFor(d, client, nginx.URL, hits, &ns.idle, &ns.hitErrs)
	stop := startHits(client, nginx.URL, hits, &ns.during, &ns.hitErrs)
	ns.stored = benchkit.Wrk(b, nginx.URL, missPaths("ns", 0), 1, stormWorkers, d, "")
	stop()
	for r := range benchkit.Rounds() {
		ns.misses.Add("nginx proxy_pass", benchkit.Wrk(b, nginx.URL, prefixed(missPaths("np", r)), 1, stormWorkers, d, ""))
		ns.misses.Add("nginx proxy_cache miss", benchkit.Wrk(b, nginx.URL, missPaths("nc", r), 1, stormWorkers, d, ""))
	}
	return ns
}

// warmNginx asks for every hit page once (16 at a time) and checks that
// the next answer of one comes from nginx's cache.
func warmNginx(b *testing.B, client *http.Client, base string, paths []string) {
	b.Helper()
	var wg sync.WaitGroup
	next := make(chan string)
	for range stormWorkers {
		wg.Go(func() {
			for p := range next {
				harness.Get(b, client, base+p)
			}
		})
	}
	for _, p := range paths {
		next <- p
	}
	close(next)
	wg.Wait()
	if status, _, body := harness.Get(b, client, base+paths[0]); status != http.StatusOK || body == "" {
		b.Fatalf("nginx cache: %d for a warmed page", status)
	}
}

// print writes nginx's rows beside the edge's figures.
func (ns *nginxStorm) print() {
	idle, during := ns.idle.Quantile(0.99), ns.during.Quantile(0.99)
	fmt.Printf("| nginx anchor: hit p99 idle / while %d stored misses run (wrk -c%d, %.0f req/s) | %v / %v = %.2f× | |\n",
		stormWorkers, stormWorkers, ns.stored.RPS, idle.Round(10*time.Microsecond), during.Round(10*time.Microsecond),
		float64(during)/float64(max(idle, 1)))
	fmt.Printf("| nginx anchor: misses/s proxy_cache ÷ proxy_pass | %.2f | |\n",
		ns.misses.Median("nginx proxy_cache miss").RPS/ns.misses.Median("nginx proxy_pass").RPS)
	fmt.Printf("| nginx anchor: hit errors | %d | none |\n", ns.hitErrs.Load())
}
