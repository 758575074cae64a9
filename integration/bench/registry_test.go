package bench

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/delivery-edge/edge/cache"
	"github.com/delivery-edge/edge/integration/harness"
	"github.com/delivery-edge/edge/integration/origin"
)

// registryFiles is the size of the generated registry: BENCH_REGISTRY_FILES
// (default 1,000,000; CI uses a small one as a smoke test).
func registryFiles() int {
	if n, err := strconv.Atoi(os.Getenv("BENCH_REGISTRY_FILES")); err == nil && n > 0 {
		return n
	}
	return 1_000_000
}

// hotFiles is how many files depend on each of the two "hot" documents.
func hotFiles(total int) int { return min(10_000, total/10) }

// generateRegistry writes a registry of n files with ten dependencies each
// (own story, three related stories, the section node with properties,
// yellow data, the template, two keys) straight into bbolt, and the hot
// document's files into the docroot so that removal has real files to
// rename.
func generateRegistry(b *testing.B, dataDir, docroot string, n int) (root uint16) {
	b.Helper()
	reg, err := cache.OpenRegistry(dataDir, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	defer reg.Close()
	root, err = reg.Root(docroot)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 8))
	hot := hotFiles(n)
	now := time.Now().Add(-time.Hour).UnixMilli()
	i := 0
	start := time.Now()
	count, err := reg.Import(func() (cache.ImportRecord, bool) {
		if i >= n {
			return cache.ImportRecord{}, false
		}
		section := fmt.Sprintf("/section%d", i%50)
		file := fmt.Sprintf("section%d/story%d.html", i%50, i)
		deps := []cache.Dependency{
			{Kind: cache.DepDocument, Name: fmt.Sprintf("story%d", i)},
			{Kind: cache.DepDocument, Name: fmt.Sprintf("story%d", rng.IntN(n)), Props: []string{"title", "topline"}},
			{Kind: cache.DepDocument, Name: fmt.Sprintf("story%d", rng.IntN(n)), Props: []string{"teasertext", "title"}},
			{Kind: cache.DepDocument, Name: fmt.Sprintf("story%d", rng.IntN(n)), Props: []string{"image"}},
			{Kind: cache.DepNode, Name: section, Props: []string{"name"}},
			{Kind: cache.DepYellow, Name: fmt.Sprintf("story%d", i)},
			{Kind: cache.DepResource, Name: "templates/story.tmpl", Hash: "v1"},
		}
		switch {
		case i < hot:
			deps = append(deps, cache.Dependency{Kind: cache.DepDocument, Name: "breaking", Props: []string{"title"}})
		case i < 2*hot:
			deps = append(deps, cache.Dependency{Kind: cache.DepDocument, Name: "breaking2", Props: []string{"title"}})
		default:
			deps = append(deps, cache.Dependency{Kind: cache.DepDocument, Name: fmt.Sprintf("story%d", rng.IntN(n))})
		}
		rec := cache.ImportRecord{ID: cache.FileID{Root: root, File: file}, Entry: cache.Entry{
			Key: "/" + file, Created: now, Deps: deps, Keys: []string{fmt.Sprintf("story%d", i), section}}}
		i++
		return rec, true
	})
	if err != nil {
		b.Fatal(err)
	}
	fmt.Printf("generated a registry of %d files × %d dependencies in %v\n", count, 10, time.Since(start).Round(time.Millisecond))
	for j := range 2 * hot {
		name := filepath.Join(docroot, fmt.Sprintf("section%d/story%d.html", j%50, j))
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(name, []byte("<html>story</html>\n"), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return root
}

func fileSize(name string) int64 {
	info, err := os.Stat(name)
	if err != nil {
		return 0
	}
	return info.Size()
}

// BenchmarkRegistry measures the invalidation engine on a generated
// registry of 1,000,000 files: open time, one change touching 10,000
// files (queued), the removal rate, and the RSS of the real edge process
// holding that registry.
func BenchmarkRegistry(b *testing.B) {
	for range b.N {
		n := registryFiles()
		dir := b.TempDir()
		dataDir, docroot := filepath.Join(dir, "data"), filepath.Join(dir, "docroot")
		generateRegistry(b, dataDir, docroot, n)
		dbSize := fileSize(filepath.Join(dataDir, cache.RegistryFile))
		runtime.GC()

		// Open (warm page cache, as after a restart).
		start := time.Now()
		eng, err := cache.Open(cache.Options{DataDir: dataDir, Logger: zap.NewNop()})
		if err != nil {
			b.Fatal(err)
		}
		openTime := time.Since(start)
		if _, err := eng.Store(docroot); err != nil {
			b.Fatal(err)
		}

		// One change of the hot document's title: 10,000 dependents; then
		// removal of those files, with the registry entries removed too, and
		// for the second hot document with lazy removal (rename only).
		hot := hotFiles(n)
		queueTime, removal := removeHot(b, eng, "breaking", hot)
		eng.Configure(cache.InvalidationConfig{LazyRemoval: time.Hour})
		_, lazyRemoval := removeHot(b, eng, "breaking2", hot)
		eng.Registry().Sync()
		if err := eng.Close(); err != nil {
			b.Fatal(err)
		}

		rss, startup := edgeRSS(b, dir)
		fmt.Printf("\nRegistry of %d files (%.0f MB on disk), one change touching %d files\n", n, float64(dbSize)/1e6, hot)
		fmt.Printf("| measure | value | goal |\n|---|---|---|\n")
		fmt.Printf("| registry open (in process, warm) | %v | ≤ 1 s |\n", openTime.Round(time.Millisecond))
		fmt.Printf("| edge start-up until it serves (real binary) | %v | |\n", startup.Round(time.Millisecond))
		fmt.Printf("| change → %d jobs queued | %v | ≤ 1 s |\n", hot, queueTime.Round(time.Millisecond))
		fmt.Printf("| removal (rename to .old + registry entries removed) | %.0f files/s | ≥ 20,000 files/s |\n", float64(hot)/removal.Seconds())
		fmt.Printf("| removal with lazy_removal (rename to .old only) | %.0f files/s | ≥ 20,000 files/s |\n", float64(hot)/lazyRemoval.Seconds())
		fmt.Printf("| RSS of the edge (lazy_removal) after a change of %d files | %.0f MB | ≤ 200 MB |\n", n/50, float64(rss)/1e6)
	}
}

// removeHot changes a hot document and waits until its files are renamed.
func removeHot(b *testing.B, eng *cache.Engine, doc string, hot int) (queued, removal time.Duration) {
	before := eng.Stats().Removed
	start := time.Now()
	err := eng.ApplyChanges([]cache.Change{{Kind: cache.DepDocument, ID: doc, State: cache.StatePublished,
		ChangedProps: []string{"title"}}}, "bench", 1)
	queued = time.Since(start)
	if err != nil {
		b.Fatal(err)
	}
	for eng.Stats().Removed-before < int64(hot) {
		time.Sleep(2 * time.Millisecond)
	}
	return queued, time.Since(start) - queued
}

// edgeRSS starts the real edge on the generated data folder, lets it apply
// a change of a section node (every 50th file) through the staging API
// and returns its
// resident set size afterwards and how long it took to start serving.
func edgeRSS(b *testing.B, dir string) (int64, time.Duration) {
	o := harness.StartOriginWith(b, harness.OriginOptions{})
	o.Content.Put(origin.Document{ID: "/section0", NodeType: "structureNode", Properties: map[string]any{"name": "x"}}, nil)
	start := time.Now()
	e := harness.StartEdge(b, harness.EdgeOptions{Origin: o.RenderAddr, Dir: dir,
		Global: o.StagingBlock("100ms", true) + "\nlazy_removal 10m"})
	startup := time.Since(start)
	harness.Get(b, nil, e.URL()+"/")
	o.Content.Update("/section0", map[string]any{"name": "y"}) // 1/50 of the files depend on it
	time.Sleep(3 * time.Second)
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", e.Pid()))
	if err != nil {
		b.Fatal(err)
	}
	var rss int64
	for _, line := range strings.Split(string(status), "\n") {
		for _, field := range []string{"VmRSS:", "RssAnon:", "RssFile:"} {
			if strings.HasPrefix(line, field) {
				kb, _ := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
				fmt.Printf("edge %s %.0f MB\n", field, float64(kb)/1024)
				if field == "VmRSS:" {
					rss = kb * 1024
				}
			}
		}
	}
	return rss, startup
}
