package bench

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/delivery-edge/edge/cache"
	"github.com/delivery-edge/edge/integration/origin"
)

// Positions of the event streams in an edge's registry (as the edge names
// them): the staging poller's and the image update service's.
const (
	positionStaging      = "staging"
	positionImageUpdates = "image-updates"
)

// seedContent fills the store with the demo and n generated stories,
// stamped with a clock in the past so the seed does not run the source
// times ahead of the replicas that lag.
func seedContent(n int) (*origin.Content, []soakPage) {
	c := origin.NewContent()
	base := time.Now().Add(-time.Duration(2*n)*time.Millisecond - 10*time.Second)
	tick := 0
	c.SetClock(func() time.Time { tick++; return base.Add(time.Duration(tick) * time.Millisecond) })
	origin.SeedDemo(c)
	generated := seedSoakStories(c, n)
	c.SetClock(time.Now)
	return c, generated
}

// seedEdges puts every page of the site and every story's teaser fragment
// into the docroot and registry of each edge (folders dirs, ports for the
// Host the pages were rendered for), as the edges would have stored them
// after a long time in service, and records the event streams as applied
// up to the newest change: the soak starts from warm edges, so that its
// reads are hits but for the 1 % misses and what the changes invalidate.
// Each page is rendered once by the render backend; the precompressed
// copies are left out (the edges write them when they render a page).
func seedEdges(b *testing.B, rd *origin.Render, c *origin.Content, pages []soakPage, dirs []string, ports []int) int {
	b.Helper()
	start := time.Now()
	var paths []string
	for _, p := range pages {
		paths = append(paths, p.path)
		if p.id != "" {
			paths = append(paths, "/fragments/teaser/"+p.id+".html")
		}
	}
	type seeded struct {
		file  string
		entry cache.Entry
	}
	type write struct {
		file string
		body []byte
		mode os.FileMode
	}
	// One writer per docroot (creating files is most of the time); the
	// renders are made here, once for all of them.
	var (
		writers  sync.WaitGroup
		writeErr = make([]error, len(dirs))
		queues   = make([]chan write, len(dirs))
	)
	for i, dir := range dirs {
		queues[i] = make(chan write, 256)
		writers.Go(func() {
			made := map[string]bool{}
			for w := range queues[i] {
				if writeErr[i] != nil {
					continue
				}
				name := filepath.Join(dir, "docroot", filepath.FromSlash(w.file))
				if d := filepath.Dir(name); !made[d] {
					if writeErr[i] = os.MkdirAll(d, 0o755); writeErr[i] != nil {
						continue
					}
					made[d] = true
				}
				// A umask never takes the user-execute bit, the SSI mark.
				writeErr[i] = os.WriteFile(name, w.body, w.mode)
			}
		})
	}
	closeQueues := sync.OnceFunc(func() {
		for _, q := range queues {
			close(q)
		}
		writers.Wait()
	})
	defer closeQueues() // also when a render fails the benchmark
	var files []seeded
	now := time.Now()
	for _, path := range paths {
		rec := httptest.NewRecorder()
		rd.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != http.StatusOK {
			b.Fatalf("seed: render %s: %d", path, rec.Code)
		}
		info, err := cache.ParseRenderInfo(rec.Header(), now)
		if err != nil || info.Uncacheable {
			b.Fatalf("seed: %s: %v (uncacheable: %v)", path, err, info.Uncacheable)
		}
		file := strings.TrimPrefix(path, "/")
		if file == "" || strings.HasSuffix(file, "/") {
			file += "index.html"
		}
		if key, ok := cache.KeyForFile(file); !ok || key != path {
			b.Fatalf("seed: file %s maps to %q, not %s", file, key, path)
		}
		body := rec.Body.Bytes()
		mode := os.FileMode(0o644)
		if strings.Contains(string(body), "<!--#") {
			mode |= 0o100 // marked, as the edge marks its renders with SSI directives
		}
		for _, q := range queues {
			q <- write{file, body, mode}
		}
		files = append(files, seeded{file, cache.Entry{Key: path, Created: now.UnixMilli(), Deps: info.Deps, Keys: info.Keys,
			Force: info.Pregenerate}})
	}
	closeQueues()
	for i, err := range writeErr {
		if err != nil {
			b.Fatalf("seed docroot of %s: %v", dirs[i], err)
		}
	}
	applied := c.LastSourceTime()
	importErr := make([]error, len(dirs))
	var imports sync.WaitGroup
	for i, dir := range dirs {
		imports.Go(func() {
			importErr[i] = importSeed(filepath.Join(dir, "data"), filepath.Join(dir, "docroot"), applied, func(root uint16) func() (cache.ImportRecord, bool) {
				host := fmt.Sprintf("127.0.0.1:%d", ports[i])
				k := 0
				return func() (cache.ImportRecord, bool) {
					if k == len(files) {
						return cache.ImportRecord{}, false
					}
					f := files[k]
					k++
					f.entry.Host = host
					return cache.ImportRecord{ID: cache.FileID{Root: root, File: f.file}, Entry: f.entry}, true
				}
			})
		})
	}
	imports.Wait()
	for i, err := range importErr {
		if err != nil {
			b.Fatalf("seed registry of %s: %v", dirs[i], err)
		}
	}
	fmt.Printf("seeded %d files into %d docroots and registries in %v\n", len(files), len(dirs),
		time.Since(start).Round(100*time.Millisecond))
	return len(files)
}

// importSeed writes the seeded entries into an edge's registry and, when
// applied is set, records the event streams as applied up to it.
func importSeed(dataDir, docroot string, applied int64, records func(root uint16) func() (cache.ImportRecord, bool)) error {
	eng, err := cache.Open(cache.Options{DataDir: dataDir, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	root, err := eng.Registry().Root(docroot)
	if err == nil {
		_, err = eng.Registry().Import(records(root))
	}
	if err == nil && applied > 0 {
		err = eng.SetPosition(positionStaging, applied)
	}
	if err == nil && applied > 0 {
		err = eng.SetPosition(positionImageUpdates, applied)
	}
	if cerr := eng.Close(); err == nil {
		err = cerr
	}
	return err
}
