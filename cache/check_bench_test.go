package cache

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"go.uber.org/zap"
)

// checkBenchFiles is the docroot size of BenchmarkCheck: CHECK_BENCH_FILES
// (default 2,000, a smoke test; the figures in the README are for 200,000).
func checkBenchFiles() int {
	if n, err := strconv.Atoi(os.Getenv("CHECK_BENCH_FILES")); err == nil && n > 0 {
		return n
	}
	return 2000
}

// checkData is a generated data folder and docroot for the consistency
// check.
type checkData struct {
	dataDir, docroot string
	files            []string // registered pages
}

// generateCheckData writes a docroot of files pages spread over folders of
// perFolder pages each, shaped like a news site
// (section/day/story.html), with a registry entry (four dependencies) for
// every page imported straight into bbolt. Every tenth page has gzip and
// brotli copies, every tenth an .old copy: the edge's own companions.
func generateCheckData(tb testing.TB, dir string, files, perFolder int) checkData {
	tb.Helper()
	d := checkData{dataDir: filepath.Join(dir, "data"), docroot: filepath.Join(dir, "docroot")}
	reg, err := OpenRegistry(d.dataDir, zap.NewNop())
	if err != nil {
		tb.Fatal(err)
	}
	defer reg.Close()
	root, err := reg.Root(d.docroot)
	if err != nil {
		tb.Fatal(err)
	}
	folders := max(1, files/perFolder)
	d.files = make([]string, 0, files)
	for i := range files {
		f := i % folders
		// 50 sections, then folders within a section.
		d.files = append(d.files, fmt.Sprintf("section%d/f%d/story%d.html", f%50, f/50, i))
	}
	now := time.Now().Add(-time.Hour).UnixMilli()
	i := 0
	if _, err := reg.Import(func() (ImportRecord, bool) {
		if i >= len(d.files) {
			return ImportRecord{}, false
		}
		name := d.files[i]
		rec := ImportRecord{ID: FileID{Root: root, File: name}, Entry: Entry{Key: "/" + name, Created: now,
			Deps: []Dependency{
				{Kind: DepDocument, Name: fmt.Sprintf("story%d", i)},
				{Kind: DepNode, Name: fmt.Sprintf("/section%d", i%50), Props: []string{"name"}},
				{Kind: DepResource, Name: "templates/story.tmpl", Hash: "v1"},
			},
			Keys: []string{fmt.Sprintf("story%d", i)}}}
		i++
		return rec, true
	}); err != nil {
		tb.Fatal(err)
	}
	body := []byte("<html>story</html>\n")
	made := map[string]bool{}
	for i, name := range d.files {
		full := filepath.Join(d.docroot, filepath.FromSlash(name))
		if dir := filepath.Dir(full); !made[dir] {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				tb.Fatal(err)
			}
			made[dir] = true
		}
		names := []string{full}
		if i%10 == 3 {
			names = append(names, full+GzipSuffix, full+BrotliSuffix)
		}
		if i%10 == 7 {
			names = append(names, full+OldSuffix)
		}
		for _, n := range names {
			if err := os.WriteFile(n, body, 0o644); err != nil {
				tb.Fatal(err)
			}
		}
	}
	return d
}

// BenchmarkCheck times the consistency check of a generated data folder:
// "news" spreads the pages over folders of 10, "folders" puts every page
// in a folder of its own. CHECK_BENCH_FILES=200000 is the size of a large
// news site; CHECK_BENCH_DIR keeps the generated data folders there for
// the next run (writing 200,000 files takes minutes).
func BenchmarkCheck(b *testing.B) {
	n := checkBenchFiles()
	for _, shape := range []struct {
		name      string
		perFolder int
	}{{"news", 10}, {"folders", 1}} {
		b.Run(fmt.Sprintf("%s/files=%d", shape.name, n), func(b *testing.B) {
			d := checkBenchData(b, fmt.Sprintf("%s-%d", shape.name, n), n, shape.perFolder)
			eng, err := Open(Options{DataDir: d.dataDir})
			if err != nil {
				b.Fatal(err)
			}
			defer eng.Close()
			cpu0 := cpuTime()
			b.ResetTimer()
			for b.Loop() {
				rep, err := eng.Check(nil)
				if err != nil {
					b.Fatal(err)
				}
				if rep.Files < n || rep.Entries != n {
					b.Fatalf("check saw %d files and %d entries of %d", rep.Files, rep.Entries, n)
				}
			}
			// CPU time (user + system) is steadier than wall time on a
			// shared machine.
			if cpu0 >= 0 {
				b.ReportMetric(float64((cpuTime()-cpu0).Milliseconds())/float64(b.N), "cpu-ms/op")
			}
		})
	}
}

// checkBenchData generates a data folder, or finds the one an earlier run
// left in CHECK_BENCH_DIR.
func checkBenchData(b *testing.B, name string, files, perFolder int) checkData {
	b.Helper()
	dir := os.Getenv("CHECK_BENCH_DIR")
	if dir == "" {
		dir = b.TempDir()
	}
	dir = filepath.Join(dir, name)
	complete := filepath.Join(dir, "complete")
	if _, err := os.Stat(complete); err == nil {
		return checkData{dataDir: filepath.Join(dir, "data"), docroot: filepath.Join(dir, "docroot")}
	}
	if err := os.RemoveAll(dir); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	d := generateCheckData(b, dir, files, perFolder)
	b.Logf("generated %d pages in %d folders in %v", files, max(1, files/perFolder), time.Since(start).Round(time.Millisecond))
	if err := os.WriteFile(complete, nil, 0o644); err != nil {
		b.Fatal(err)
	}
	return d
}
