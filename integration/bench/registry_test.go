package bench

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
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
		sweepStart := time.Now()
		for eng.Registry().Retired() > 0 {
			time.Sleep(5 * time.Millisecond)
		}
		sweep := time.Since(sweepStart)
		if left := rawIndexKeys(b, eng, cache.DepDocument, "breaking"); left != 0 {
			b.Fatalf("after the sweep %d index keys of removed files are left", left)
		}
		eng.Configure(cache.InvalidationConfig{LazyRemoval: time.Hour})
		_, lazyRemoval := removeHot(b, eng, "breaking2", hot)
		eng.Registry().Sync()
		if err := eng.Close(); err != nil {
			b.Fatal(err)
		}

		rss, startup := edgeRSS(b, dir, n/50)
		fmt.Printf("\nRegistry of %d files (%.0f MB on disk), one change touching %d files\n", n, float64(dbSize)/1e6, hot)
		fmt.Printf("| measure | value | goal |\n|---|---|---|\n")
		fmt.Printf("| registry open (in process, warm) | %v | ≤ 1 s |\n", openTime.Round(time.Millisecond))
		fmt.Printf("| edge start-up until it serves (real binary) | %v | |\n", startup.Round(time.Millisecond))
		fmt.Printf("| change → %d jobs queued | %v | ≤ 1 s |\n", hot, queueTime.Round(time.Millisecond))
		fmt.Printf("| removal (rename to .old, registry entries retired in the same transaction) | %.0f files/s | ≥ 20,000 files/s |\n", float64(hot)/removal.Seconds())
		fmt.Printf("| then, while the queue is idle: their entries and index keys deleted (sweep) | %.0f files/s | |\n", float64(hot)/sweep.Seconds())
		fmt.Printf("| removal with lazy_removal (rename to .old only) | %.0f files/s | ≥ 20,000 files/s |\n", float64(hot)/lazyRemoval.Seconds())
		fmt.Printf("| peak RSS of the edge while it removes %d files and sweeps their entries | %.0f MB | ≤ 200 MB |\n", n/50, float64(rss)/1e6)
	}
}

// rawIndexKeys counts the reverse-index keys of a dependency as stored,
// including keys of removed files that wait for the sweep.
func rawIndexKeys(b *testing.B, eng *cache.Engine, kind cache.DepKind, name string) int {
	prefix := append(append([]byte{byte(kind)}, name...), 0)
	n := 0
	err := eng.Registry().DB().View(func(tx *bolt.Tx) error {
		c := tx.Bucket([]byte("index")).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			n++
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return n
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

// edgeRSS starts the real edge on the generated data folder (default,
// eager removal), lets it apply a change of a section node (every 50th
// file) through the staging API, and samples its resident set size while
// it removes those files and sweeps their entries. It returns the peak
// VmRSS and how long the edge took to start serving.
func edgeRSS(b *testing.B, dir string, files int) (int64, time.Duration) {
	o := harness.StartOriginWith(b, harness.OriginOptions{})
	o.Content.Put(origin.Document{ID: "/section0", NodeType: "structureNode", Properties: map[string]any{"name": "x"}}, nil)
	start := time.Now()
	e := harness.StartEdge(b, harness.EdgeOptions{Origin: o.RenderAddr, Dir: dir,
		Global: o.StagingBlock("100ms", true)})
	startup := time.Since(start)
	harness.Get(b, nil, e.URL()+"/")
	o.Content.Update("/section0", map[string]any{"name": "y"}) // 1/50 of the files depend on it
	// Removal takes about a second; the sweep of the entries runs at
	// ~600 files/s on the development machine: sample until it is done.
	var peak, last memFields
	for deadline := time.Now().Add(3*time.Second + time.Duration(files/400)*time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		last = readMem(b, e.Pid())
		if last.vmRSS > peak.vmRSS {
			peak = last
		}
	}
	for _, m := range []struct {
		name string
		f    memFields
	}{{"peak", peak}, {"at the end", last}} {
		fmt.Printf("edge %s: VmRSS %.0f MB (RssAnon %.0f MB, RssFile %.0f MB)\n", m.name,
			float64(m.f.vmRSS)/1e6, float64(m.f.anon)/1e6, float64(m.f.file)/1e6)
	}
	return peak.vmRSS, startup
}

type memFields struct{ vmRSS, anon, file int64 }

func readMem(b *testing.B, pid int) memFields {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	var m memFields
	for _, line := range strings.Split(string(status), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			m.vmRSS = kb * 1024
		case "RssAnon:":
			m.anon = kb * 1024
		case "RssFile:":
			m.file = kb * 1024
		}
	}
	return m
}
