// Package bench holds the benchmarks that compare the delivery edge with
// its anchors (Caddy's file_server, nginx, Varnish, vips) in one run on one
// machine. They print tables with ratios; run them with
//
//	go test ./integration/bench -run '^$' -bench . -benchtime 1x -timeout 60m
//
// BENCH_DURATION and BENCH_ROUNDS shorten or lengthen the wrk rounds.
package bench

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/delivery-edge/edge/integration/bench/benchkit"
	"github.com/delivery-edge/edge/integration/harness"
)

// BenchmarkHitPath compares cache hits of the plugin with Caddy's
// file_server and nginx on the same docroot (500 story pages of 20–60 KB,
// wrk -t1 -c32, interleaved rounds).
func BenchmarkHitPath(b *testing.B) {
	benchkit.Need(b, "wrk", "nginx")
	for range b.N {
		dir := b.TempDir()
		docroot := filepath.Join(dir, "docroot")
		paths := benchkit.StoryDocroot(b, docroot, 500, 20, 60)
		origin := httptest.NewServer(http.NotFoundHandler()) // never asked: every page is a hit
		defer origin.Close()

		cachePort, fsPort, nginxPort := harness.FreePort(b), harness.FreePort(b), harness.FreePort(b)
		caddyfile := fmt.Sprintf(`{
	admin off
	persist_config off
	delivery {
		data_dir %[1]s/data
	}
}
http://127.0.0.1:%[2]d {
	root * %[4]s
	route {
		delivery_cache
		reverse_proxy %[5]s
	}
}
http://127.0.0.1:%[3]d {
	root * %[4]s
	file_server
}
`, dir, cachePort, fsPort, docroot, strings.TrimPrefix(origin.URL, "http://"))
		c := harness.StartCaddy(b, dir, caddyfile, cachePort)
		c.WaitFor(fsPort)
		nginx := benchkit.StartNginx(b, docroot, nginxPort, "").URL

		contenders := []struct{ name, url string }{
			{"delivery_cache (hit)", c.URL()},
			{"Caddy file_server", fmt.Sprintf("http://127.0.0.1:%d", fsPort)},
			{"nginx (sendfile)", nginx},
		}
		s := benchkit.NewSeries()
		for _, ct := range contenders { // warm up page cache and connections
			benchkit.Wrk(b, ct.url, paths, 1, 32, time.Second, "")
		}
		for range benchkit.Rounds() {
			for _, ct := range contenders {
				s.Add(ct.name, benchkit.Wrk(b, ct.url, paths, 1, 32, benchkit.Duration(), ""))
			}
		}
		fmt.Print(s.Table("Hit path: 500 pages of 20-60 KB, wrk -t1 -c32, plain HTTP", "Caddy file_server"))
		hit, fs := s.Median("delivery_cache (hit)"), s.Median("Caddy file_server")
		fmt.Printf("goal hit ÷ file_server ≥ 0.95: %.2f\n", hit.RPS/fs.RPS)
	}
}

// BenchmarkRegenerationP99 measures the latency of requests while pages
// are being regenerated: a loop flushes one of 50 pages every 50 ms
// through the cache servlet (the removal queue renames it to .old); the
// render backend takes 200 ms. The edge runs in grace mode (render_wait
// 0): every reader of an invalidated page gets its .old copy at once while
// it re-renders in the background. (With the default render_wait the first
// reader of each invalidated page waits for its 200 ms render by design.)
// The p99 is compared with the p99 of plain hits on the same pages.
func BenchmarkRegenerationP99(b *testing.B) {
	benchkit.Need(b, "wrk")
	for range b.N {
		dir := b.TempDir()
		docroot := filepath.Join(dir, "docroot")
		paths := benchkit.StoryDocroot(b, docroot, 50, 20, 60)
		var renders atomic.Int64
		page := strings.Repeat("<p>regenerated story text</p>\n", 1000)
		origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			renders.Add(1)
			time.Sleep(200 * time.Millisecond)
			w.Header().Set("Content-Type", "text/html")
			w.Header().Set("Delivery-Dependencies", `"story1"`)
			w.Header().Set("Delivery-Cache-Keys", `"`+r.URL.Path+`"`)
			_, _ = w.Write([]byte(page))
		}))
		defer origin.Close()
		port := harness.FreePort(b)
		e := harness.StartEdge(b, harness.EdgeOptions{Origin: strings.TrimPrefix(origin.URL, "http://"), Port: port,
			Dir: dir, Route: "cache_servlet /system/servlet/cache.servlet", Cache: "render_wait 0"})
		for _, p := range paths { // the pages are rendered through the edge once, then hits
			if err := os.Remove(filepath.Join(e.Docroot, filepath.FromSlash(p))); err != nil {
				b.Fatal(err)
			}
			harness.Get(b, nil, e.URL()+p)
		}

		s := benchkit.NewSeries()
		benchkit.Wrk(b, e.URL(), paths, 1, 32, time.Second, "")
		for range benchkit.Rounds() {
			s.Add("hits only", benchkit.Wrk(b, e.URL(), paths, 1, 32, benchkit.Duration(), ""))
			stop := make(chan struct{})
			var invalidations atomic.Int64
			go func() {
				rng := rand.New(rand.NewPCG(3, 4))
				t := time.NewTicker(50 * time.Millisecond)
				defer t.Stop()
				for {
					select {
					case <-stop:
						return
					case <-t.C:
						flush := e.URL() + "/system/servlet/cache.servlet?action=flush&group=bench&forward=false&key=" +
							paths[rng.IntN(len(paths))]
						if resp, err := http.Get(flush); err == nil {
							resp.Body.Close()
							if resp.StatusCode == http.StatusOK {
								invalidations.Add(1)
							}
						}
					}
				}
			}()
			r := benchkit.Wrk(b, e.URL(), paths, 1, 32, benchkit.Duration(), "")
			close(stop)
			s.Add("during regeneration (.old served)", r)
			fmt.Printf("round: %d invalidations, %d renders so far\n", invalidations.Load(), renders.Load())
		}
		fmt.Print(s.Table("Regeneration: 50 pages, one invalidated every 50 ms, render 200 ms, wrk -t1 -c32",
			"hits only"))
		hit, regen := s.Median("hits only"), s.Median("during regeneration (.old served)")
		fmt.Printf("goal p99 during regeneration ≤ 2 × hit p99: %v vs %v (%.2f×)\n", regen.P99, hit.P99,
			float64(regen.P99)/float64(hit.P99))
	}
}
