package bench

import (
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/delivery-edge/edge/integration/bench/benchkit"
	"github.com/delivery-edge/edge/integration/harness"
)

// BenchmarkHitPathAnchors puts the edge's hit path next to its anchors on
// one docroot of 500 story pages (20–60 KB), in one run with interleaved
// rounds: the plugin from memory (identity and gzip), from disk
// (sendfile), Caddy's file_server, a bare Go net/http server (sendfile and
// memory), Varnish and nginx — over HTTP with wrk, and over HTTPS with
// wrk (HTTP/1.1) and h2load (HTTP/2).
func BenchmarkHitPathAnchors(b *testing.B) {
	benchkit.Need(b, "wrk", "nginx")
	for range b.N {
		dir := b.TempDir()
		src := filepath.Join(dir, "source")
		paths := benchkit.StoryDocroot(b, src, 500, 20, 60)
		origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Delivery-Dependencies", `"story1"`)
			http.ServeFile(w, r, filepath.Join(src, filepath.FromSlash(r.URL.Path)))
		}))
		defer origin.Close()
		originAddr := strings.TrimPrefix(origin.URL, "http://")

		// Edge A: hot set on, precompressed copies, plus file_server and
		// HTTPS sites on the same docroot.
		docroot := filepath.Join(dir, "a", "docroot")
		pA, pFS, pAS, pFSS := harness.FreePort(b), harness.FreePort(b), harness.FreePort(b), harness.FreePort(b)
		pR, pRS := harness.FreePort(b), harness.FreePort(b) // Caddy's respond: its lightest handler
		caddyA := harness.StartCaddy(b, mkdir(b, dir, "a"), fmt.Sprintf(`%[10]s
{
	admin off
	persist_config off
	skip_install_trust
	local_certs
	storage file_system %[1]s/a/storage
	default_sni 127.0.0.1
	delivery {
		data_dir %[1]s/a/data
		hot_cache 128MiB
	}
}
http://127.0.0.1:%[2]d {
	root * %[6]s
	route {
		delivery_cache {
			precompress
		}
		reverse_proxy %[7]s
	}
}
http://127.0.0.1:%[3]d {
	root * %[6]s
	file_server
}
https://127.0.0.1:%[4]d {
	tls internal
	root * %[6]s
	route {
		delivery_cache {
			precompress
		}
		reverse_proxy %[7]s
	}
}
https://127.0.0.1:%[5]d {
	tls internal
	root * %[6]s
	file_server
}
http://127.0.0.1:%[8]d {
	import respond_body
}
https://127.0.0.1:%[9]d {
	tls internal
	import respond_body
}
`, dir, pA, pFS, pAS, pFSS, docroot, originAddr, pR, pRS, respondSnippet(b, src, paths)), pA)
		caddyA.WaitFor(pFS)
		caddyA.WaitFor(pR)
		caddyA.WaitFor(pRS)
		caddyA.WaitFor(pAS)
		caddyA.WaitFor(pFSS)
		for _, p := range paths { // every page rendered once through the edge
			harness.Get(b, nil, caddyA.URL()+p)
		}
		time.Sleep(200 * time.Millisecond)

		// Edge B: the same docroot with the hot set off (sendfile path).
		pB := harness.FreePort(b)
		caddyB := harness.StartCaddy(b, mkdir(b, dir, "b"), fmt.Sprintf(`{
	admin off
	persist_config off
	delivery {
		data_dir %[1]s/b/data
		hot_cache off
	}
}
http://127.0.0.1:%[2]d {
	root * %[3]s
	route {
		delivery_cache {
			precompress
		}
		reverse_proxy %[4]s
	}
}
`, dir, pB, docroot, originAddr), pB)

		bareSF, bareMem := harness.FreePort(b), harness.FreePort(b)
		bare := buildBare(b, dir)
		benchkit.StartProcess(b, bareSF, bare, "-listen", fmt.Sprintf("127.0.0.1:%d", bareSF), "-root", docroot)
		benchkit.StartProcess(b, bareMem, bare, "-listen", fmt.Sprintf("127.0.0.1:%d", bareMem), "-root", docroot, "-memory")

		pN, pNS := harness.FreePort(b), harness.FreePort(b)
		cert, key := benchkit.SelfSigned(b, dir)
		bareTLS := harness.FreePort(b)
		benchkit.StartProcess(b, bareTLS, bare, "-listen", fmt.Sprintf("127.0.0.1:%d", bareTLS), "-root", docroot, "-memory",
			"-cert", cert, "-key", key)
		nginx := benchkit.StartNginx(b, docroot, pN, fmt.Sprintf(`gzip_static on;
		}
		server {
			listen 127.0.0.1:%d ssl http2;
			ssl_certificate %s;
			ssl_certificate_key %s;
			root %s;
			gzip_static on;`, pNS, cert, key, docroot)).URL
		nginxTLS := fmt.Sprintf("https://127.0.0.1:%d", pNS)
		var varnish *benchkit.Varnish
		if _, err := exec.LookPath("varnishd"); err == nil {
			varnish = benchkit.StartVarnish(b, fmt.Sprintf("127.0.0.1:%d", pN), harness.FreePort(b))
			varnish.Warm(b, paths)
		}

		type contender struct{ name, url, header string }
		plain := []contender{
			{"delivery_cache hit, memory", caddyA.URL(), ""},
			{"delivery_cache hit, memory, gzip", caddyA.URL(), "Accept-Encoding: gzip"},
			{"delivery_cache hit, memory, brotli", caddyA.URL(), "Accept-Encoding: br"},
			{"delivery_cache hit, disk (sendfile)", caddyB.URL(), ""},
			{"Caddy file_server", fmt.Sprintf("http://127.0.0.1:%d", pFS), ""},
			{"Caddy respond, one 40 KB body in memory", fmt.Sprintf("http://127.0.0.1:%d", pR), ""},
			{"bare Go net/http, sendfile", fmt.Sprintf("http://127.0.0.1:%d", bareSF), ""},
			{"bare Go net/http, memory", fmt.Sprintf("http://127.0.0.1:%d", bareMem), ""},
			{"nginx (sendfile)", nginx, ""},
			{"nginx gzip_static, gzip", nginx, "Accept-Encoding: gzip"},
		}
		const varnishRow = "Varnish 7 (malloc, warm)"
		if varnish != nil {
			plain = append(plain, contender{varnishRow, varnish.URL, ""})
		}
		tls1 := []contender{
			{"delivery_cache hit, HTTPS h1", fmt.Sprintf("https://127.0.0.1:%d", pAS), ""},
			{"Caddy file_server, HTTPS h1", fmt.Sprintf("https://127.0.0.1:%d", pFSS), ""},
			{"Caddy respond, 40 KB in memory, HTTPS h1", fmt.Sprintf("https://127.0.0.1:%d", pRS), ""},
			{"bare Go net/http, memory, HTTPS h1", fmt.Sprintf("https://127.0.0.1:%d", bareTLS), ""},
			{"nginx, HTTPS h1", nginxTLS, ""},
		}
		h2 := []contender{
			{"delivery_cache hit, HTTPS h2", fmt.Sprintf("https://127.0.0.1:%d", pAS), ""},
			{"Caddy file_server, HTTPS h2", fmt.Sprintf("https://127.0.0.1:%d", pFSS), ""},
			{"Caddy respond, 40 KB in memory, HTTPS h2", fmt.Sprintf("https://127.0.0.1:%d", pRS), ""},
			{"bare Go net/http, memory, HTTPS h2", fmt.Sprintf("https://127.0.0.1:%d", bareTLS), ""},
			{"nginx, HTTPS h2", nginxTLS, ""},
		}
		_, errH2 := exec.LookPath("h2load")

		sHTTP, sTLS, sH2 := benchkit.NewSeries(), benchkit.NewSeries(), benchkit.NewSeries()
		for _, c := range append(append([]contender{}, plain...), tls1...) { // warm-up
			benchkit.Wrk(b, c.url, paths, 1, 32, time.Second, c.header)
		}
		var varnishBefore benchkit.VarnishStats
		if varnish != nil {
			varnishBefore = varnish.Stats(b)
		}
		d := benchkit.Duration()
		for range benchkit.Rounds() {
			for _, c := range plain {
				sHTTP.Add(c.name, benchkit.Wrk(b, c.url, paths, 1, 32, d, c.header))
			}
			for _, c := range tls1 {
				sTLS.Add(c.name, benchkit.Wrk(b, c.url, paths, 1, 32, d, c.header))
			}
			if errH2 == nil {
				for _, c := range h2 {
					sH2.Add(c.name, benchkit.H2load(b, c.url, paths, 32, d))
				}
			}
		}
		fmt.Print(sHTTP.Table("Hit path, plain HTTP: 500 pages of 20-60 KB, wrk -t1 -c32", "Caddy file_server"))
		if varnish != nil {
			checkVarnishHits(b, varnishBefore, varnish.Stats(b), sHTTP.Requests(varnishRow))
		}
		hit, fsrv, bareM := sHTTP.Median("delivery_cache hit, memory"), sHTTP.Median("Caddy file_server"),
			sHTTP.Median("bare Go net/http, memory")
		fmt.Printf("goal hit ÷ file_server ≥ 2.0: %.2f; hit ÷ bare Go (memory) ≥ 0.90: %.2f; p99 %v vs bare Go %v; hit ÷ Caddy respond %.2f\n",
			hit.RPS/fsrv.RPS, hit.RPS/bareM.RPS, hit.P99, bareM.P99, hit.RPS/sHTTP.Median("Caddy respond, one 40 KB body in memory").RPS)
		fmt.Print(sTLS.Table("Hit path, HTTPS HTTP/1.1 (wrk -t1 -c32)", "Caddy file_server, HTTPS h1"))
		hitS := sTLS.Median("delivery_cache hit, HTTPS h1")
		fmt.Printf("goal HTTPS hit ÷ file_server ≥ 1.3: %.2f; ceiling bare Go (memory, HTTPS) ÷ file_server: %.2f; hit ÷ bare Go: %.2f\n",
			hitS.RPS/sTLS.Median("Caddy file_server, HTTPS h1").RPS,
			sTLS.Median("bare Go net/http, memory, HTTPS h1").RPS/sTLS.Median("Caddy file_server, HTTPS h1").RPS,
			hitS.RPS/sTLS.Median("bare Go net/http, memory, HTTPS h1").RPS)
		if errH2 == nil {
			fmt.Print(sH2.Table("Hit path, HTTPS HTTP/2 (h2load -c32 -m1; p50 = mean, p99 = max)", "Caddy file_server, HTTPS h2"))
			hit2, fs2 := sH2.Median("delivery_cache hit, HTTPS h2"), sH2.Median("Caddy file_server, HTTPS h2")
			fmt.Printf("HTTP/2: hit ÷ file_server %.2f; hit ÷ Caddy respond %.2f; hit ÷ bare Go %.2f\n", hit2.RPS/fs2.RPS,
				hit2.RPS/sH2.Median("Caddy respond, 40 KB in memory, HTTPS h2").RPS,
				hit2.RPS/sH2.Median("bare Go net/http, memory, HTTPS h2").RPS)
		}
		plainBytes, gzBytes, brBytes := docrootBytes(b, docroot)
		fmt.Printf("precompressed copies: %d pages, %.1f MB plain, %.1f MB gzip (%.0f%% saved), %.1f MB brotli (%.0f%% saved)\n",
			len(paths), float64(plainBytes)/1e6, float64(gzBytes)/1e6, 100*(1-float64(gzBytes)/float64(plainBytes)),
			float64(brBytes)/1e6, 100*(1-float64(brBytes)/float64(plainBytes)))
	}
}

// checkVarnishHits prints Varnish's counters around the timed rounds and
// fails the benchmark when a timed request was not a hit: the row is the
// anchor for a hit path only if every request was one.
func checkVarnishHits(b *testing.B, before, after benchkit.VarnishStats, wrkRequests int64) {
	b.Helper()
	timed := after.Sub(before)
	fmt.Printf("Varnish before the timed rounds: %v\nVarnish after the timed rounds:  %v\n", before, after)
	fmt.Printf("Varnish timed rounds: %d hits, %d misses (hit ratio %.4f%%), %d gunzips; wrk counted %d requests\n",
		timed.Hit, timed.Miss, 100*timed.HitRatio(), timed.Gunzip, wrkRequests)
	if timed.Miss > 0 {
		b.Errorf("Varnish missed %d timed requests: its row is not a hit-path figure", timed.Miss)
	}
	if timed.Hit < wrkRequests {
		b.Errorf("Varnish counted %d hits for %d requests that wrk completed: some were not looked up in the cache",
			timed.Hit, wrkRequests)
	}
}

// respondSnippet is a Caddyfile snippet (respond_body) answering every
// request with the docroot page closest to 40 KB from memory: Caddy's
// lightest handler, the ceiling of any handler inside Caddy.
func respondSnippet(tb testing.TB, src string, paths []string) string {
	tb.Helper()
	var body []byte
	for _, p := range paths {
		b, err := os.ReadFile(filepath.Join(src, filepath.FromSlash(p)))
		if err != nil {
			tb.Fatal(err)
		}
		if body == nil || abs(len(b)-40<<10) < abs(len(body)-40<<10) {
			body = b
		}
	}
	// No placeholders in the body, and no line that could end the heredoc.
	text := strings.NewReplacer("{", "(", "}", ")", "BODY", "body").Replace(strings.TrimRight(string(body), "\n"))
	return "(respond_body) {\n\theader Content-Type \"text/html; charset=utf-8\"\n\trespond <<BODY\n" + text + "\nBODY 200\n}\n"
}

func abs(n int) int { return max(n, -n) }

func mkdir(tb testing.TB, parts ...string) string {
	tb.Helper()
	d := filepath.Join(parts...)
	if err := os.MkdirAll(d, 0o755); err != nil {
		tb.Fatal(err)
	}
	return d
}

// buildBare builds the bare Go server of the anchors.
func buildBare(tb testing.TB, dir string) string {
	tb.Helper()
	out := filepath.Join(dir, "bare-server")
	cmd := exec.Command("go", "build", "-o", out, "./integration/bench/cmd/bare-server")
	cmd.Dir = harness.RepoRoot()
	if msg, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("build bare server: %v\n%s", err, msg)
	}
	return out
}

// docrootBytes sums the sizes of pages and their compressed copies.
func docrootBytes(tb testing.TB, docroot string) (plain, gz, br int64) {
	tb.Helper()
	err := filepath.WalkDir(docroot, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch filepath.Ext(p) {
		case ".html":
			plain += info.Size()
		case ".gz":
			gz += info.Size()
		case ".br":
			br += info.Size()
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return plain, gz, br
}
