package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/delivery-edge/edge/cache"
	"github.com/delivery-edge/edge/integration/bench/benchkit"
)

// stormTemplate is the resource every page of the storm is rendered with.
const stormTemplate = "templates/page.tmpl"

// stormBackend is a render backend with a fixed capacity: `workers`
// renders at a time, each taking `render`; further requests wait for a
// worker. Every page reports its document and the template's hash.
//
// It keeps how long its workers were taken (busy) and how long a render
// held one (held): on a machine it shares with the edge, a render takes
// longer than `render` when the CPUs are busy, and the backend's capacity
// falls with it.
type stormBackend struct {
	workers chan struct{}
	render  time.Duration
	version atomic.Int64 // of the template
	renders atomic.Int64
	busy    atomic.Int64 // ns of worker time taken
	held    benchkit.Histogram
}

func newStormBackend(workers int, render time.Duration) *stormBackend {
	sb := &stormBackend{workers: make(chan struct{}, workers), render: render}
	sb.version.Store(1)
	return sb
}

func (sb *stormBackend) templateHash() string { return fmt.Sprintf("v%d", sb.version.Load()) }

// stormPage is the HTML of a page (about 2 KB).
func stormPage(path, hash string) string {
	return fmt.Sprintf("<!DOCTYPE html><html><head><title>%s</title></head><body><main>\n%s</main>"+
		"<footer>template %s</footer></body></html>\n", path,
		strings.Repeat("<p>Lorem ipsum dolor sit amet, consectetur adipiscing elit.</p>\n", 30), hash)
}

func (sb *stormBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	select {
	case sb.workers <- struct{}{}:
	case <-r.Context().Done():
		return
	}
	t0 := time.Now()
	time.Sleep(sb.render)
	<-sb.workers
	took := time.Since(t0)
	sb.busy.Add(int64(took))
	sb.held.Record(took)
	sb.renders.Add(1)
	hash := sb.templateHash()
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set(cache.HeaderDependencies, fmt.Sprintf("%q, %q;type=resource;hash=%q", r.URL.Path, stormTemplate, hash))
	_, _ = io.WriteString(w, stormPage(r.URL.Path, hash))
}

// stormFiles is the size of the storm: BENCH_STORM_FILES (default
// 100,000; CI smokes it small).
func stormFiles() int { return envInt("BENCH_STORM_FILES", 100_000) }

// stormPath is the URL path of seeded page k.
func stormPath(k int) string { return fmt.Sprintf("/s/%d/p%d.html", k/1000, k) }

// seedStorm writes n pages rendered with the template's first version
// into the docroot and registry of an edge: each depends on its own
// document and on the template, and asks to be pre-generated when it is
// invalidated (Delivery-Pregenerate), as pages a newsroom keeps fresh do.
func seedStorm(b *testing.B, dir string, n int) {
	b.Helper()
	start := time.Now()
	docroot := filepath.Join(dir, "docroot")
	made := map[string]bool{}
	for k := range n {
		name := filepath.Join(docroot, filepath.FromSlash(stormPath(k)))
		if d := filepath.Dir(name); !made[d] {
			if err := os.MkdirAll(d, 0o755); err != nil {
				b.Fatal(err)
			}
			made[d] = true
		}
		if err := os.WriteFile(name, []byte(stormPage(stormPath(k), "v1")), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	created := time.Now().Add(-time.Hour).UnixMilli()
	k := 0
	err := importSeed(filepath.Join(dir, "data"), docroot, 0, func(root uint16) func() (cache.ImportRecord, bool) {
		return func() (cache.ImportRecord, bool) {
			if k == n {
				return cache.ImportRecord{}, false
			}
			p := stormPath(k)
			k++
			return cache.ImportRecord{ID: cache.FileID{Root: root, File: strings.TrimPrefix(p, "/")}, Entry: cache.Entry{
				Key: p, Created: created, Force: true, Deps: []cache.Dependency{
					{Kind: cache.DepDocument, Name: p},
					{Kind: cache.DepResource, Name: stormTemplate, Hash: "v1"},
				}}}, true
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	fmt.Printf("seeded %d pages into the docroot and registry in %v\n", n, time.Since(start).Round(100*time.Millisecond))
}

// pacedHits asks for paths at a fixed rate (open loop: a slow answer does
// not slow the next request) until ctx ends, and records the latencies.
func pacedHits(ctx context.Context, client *http.Client, base string, paths []string, rate int, h *benchkit.Histogram,
	errs *atomic.Int64) {
	const workers = 8
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			every := time.Duration(float64(time.Second) * workers / float64(rate))
			next := time.Now().Add(time.Duration(rng.Int64N(int64(every))))
			for sleepCtx(ctx, time.Until(next)) {
				next = next.Add(every)
				if time.Since(next) > time.Second {
					next = time.Now()
				}
				t0 := time.Now()
				resp, err := client.Get(base + paths[rng.IntN(len(paths))])
				if err != nil {
					if ctx.Err() == nil {
						errs.Add(1)
					}
					continue
				}
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK {
					errs.Add(1)
					continue
				}
				h.Record(time.Since(t0))
			}
		})
	}
	wg.Wait()
}
