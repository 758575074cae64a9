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

// BenchmarkEvictScan times one scan of a docroot's registry entries for
// the least recently read pages (what each eviction round did before a
// scan kept candidates for the rounds after it): EVICT_BENCH_FILES
// entries (default 20,000; a large news site has 200,000 to 1,000,000).
func BenchmarkEvictScan(b *testing.B) {
	n := 20_000
	if v, err := strconv.Atoi(os.Getenv("EVICT_BENCH_FILES")); err == nil && v > 0 {
		n = v
	}
	dir := b.TempDir()
	docroot := filepath.Join(dir, "docroot")
	if err := os.MkdirAll(docroot, 0o755); err != nil {
		b.Fatal(err)
	}
	reg, err := OpenRegistry(filepath.Join(dir, "data"), zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	root, err := reg.Root(docroot)
	if err != nil {
		b.Fatal(err)
	}
	created := time.Now().Add(-time.Hour).UnixMilli()
	i := 0
	if _, err := reg.Import(func() (ImportRecord, bool) {
		if i == n {
			return ImportRecord{}, false
		}
		name := fmt.Sprintf("section%d/f%d/story%d.html", i%50, i/500, i)
		rec := ImportRecord{ID: FileID{Root: root, File: name}, Entry: Entry{Key: "/" + name, Created: created + int64(i%1000),
			Deps: []Dependency{{Kind: DepDocument, Name: fmt.Sprintf("story%d", i)}}}}
		i++
		return rec, true
	}); err != nil {
		b.Fatal(err)
	}
	reg.Close()
	eng, err := Open(Options{DataDir: filepath.Join(dir, "data"), Logger: zap.NewNop()})
	if err != nil {
		b.Fatal(err)
	}
	defer eng.Close()
	s, err := eng.Store(docroot)
	if err != nil {
		b.Fatal(err)
	}
	cpu0 := cpuTime()
	b.ResetTimer()
	for b.Loop() {
		cands, err := eng.evictor.oldest(s, evictMaxBatch)
		if err != nil || len(cands) != min(n, evictMaxBatch) {
			b.Fatalf("scan: %d candidates, %v", len(cands), err)
		}
	}
	if cpu0 >= 0 {
		b.ReportMetric(float64((cpuTime()-cpu0).Milliseconds())/float64(b.N), "cpu-ms/op")
	}
}
