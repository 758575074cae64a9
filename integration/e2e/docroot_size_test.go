package e2e

import (
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/delivery-edge/edge/cache"
	"github.com/delivery-edge/edge/integration/harness"
)

// floodPageBytes is the size of each page of the flood backend.
const floodPageBytes = 4096

// startFloodBackend renders a cacheable page of floodPageBytes for every
// path.
func startFloodBackend(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set(cache.HeaderDependencies, `"doc-`+strings.Trim(r.URL.Path, "/")+`"`)
		head := fmt.Sprintf("<html><body>page %s ", r.URL.Path)
		fmt.Fprint(w, head+strings.Repeat(".", floodPageBytes-len(head)))
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// floodGetter returns a function that requests a page of the flood
// backend from e and fails the test unless it is answered whole.
func floodGetter(t *testing.T, e *harness.Edge) func(path string) {
	client := &http.Client{Timeout: 10 * time.Second}
	return func(path string) {
		t.Helper()
		status, _, body := harness.Get(t, client, e.URL()+path)
		if status != 200 || len(body) != floodPageBytes {
			t.Fatalf("%s: %d, %d bytes", path, status, len(body))
		}
	}
}

// floodPages reads 20 hot pages, then n unique flood pages, reading the
// hot pages again after every 50 of them and calling each then with the
// number of flood pages so far. It returns the hot pages.
func floodPages(n int, get func(path string), each func(done int)) []string {
	hot := make([]string, 20)
	for i := range hot {
		hot[i] = fmt.Sprintf("/hot/page-%02d.html", i)
		get(hot[i])
	}
	for i := range n {
		get(fmt.Sprintf("/flood/%d/page-%d.html", i%50, i))
		if i%50 == 49 {
			for _, p := range hot {
				get(p)
			}
			each(i + 1)
		}
	}
	return hot
}

// docrootUsage walks a docroot as du would (without the edge's internal
// folders): its regular files and their bytes.
func docrootUsage(t *testing.T, dir string) (files, bytes int64) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // removed while walking
		}
		if d.IsDir() && filepath.Dir(p) == dir && strings.HasPrefix(d.Name(), cache.InternalPrefix) {
			return fs.SkipDir
		}
		if !d.Type().IsRegular() {
			return nil
		}
		if info, err := d.Info(); err == nil {
			files++
			bytes += info.Size()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files, bytes
}

// TestDocrootSizeFloodStaysWithinMaxSize: a flood of unique cacheable URLs
// against a docroot with max_size 2MB stays within it (with the slack of
// the writes that come while a batch is evicted), the pages read most stay
// cached, and the metrics report the size the disk has and the evictions.
func TestDocrootSizeFloodStaysWithinMaxSize(t *testing.T) {
	const maxSize = 2_000_000
	const slack = 400_000 // writes while the evictor runs a batch
	addr := startFloodBackend(t)
	e := harness.StartEdge(t, harness.EdgeOptions{Origin: addr, Route: "metrics /metrics",
		Global: "max_size 2MB\nmin_free 0"})
	get := floodGetter(t, e)
	// 2,000 unique pages of 4 KB are 8 MB, four times max_size.
	const flood = 2000
	var peak int64
	hot := floodPages(flood, get, func(done int) {
		_, bytes := docrootUsage(t, e.Docroot)
		peak = max(peak, bytes)
		if bytes > maxSize+slack {
			t.Fatalf("after %d pages the docroot holds %d bytes, max_size %d", done, bytes, maxSize)
		}
	})
	// Within a few seconds it is under max_size, and the counts agree with
	// the disk.
	var files, bytes int64
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		files, bytes = docrootUsage(t, e.Docroot)
		metricBytes := metricValue(t, e, fmt.Sprintf(`delivery_docroot_bytes{docroot=%q}`, e.Docroot))
		metricFiles := metricValue(t, e, fmt.Sprintf(`delivery_docroot_files{docroot=%q}`, e.Docroot))
		if bytes <= maxSize && int64(metricBytes) == bytes && int64(metricFiles) == files {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the disk has %d files, %d bytes; the metrics say %v files, %v bytes; max_size %d",
				files, bytes, metricFiles, metricBytes, maxSize)
		}
	}
	for _, p := range hot {
		if !e.Exists(p[1:]) {
			t.Errorf("%s was read after every 50 pages but was evicted", p)
		}
	}
	evicted := metricValue(t, e, fmt.Sprintf(`delivery_evicted_total{docroot=%q}`, e.Docroot))
	if min := float64(flood*floodPageBytes-maxSize) / floodPageBytes; evicted < min {
		t.Fatalf("delivery_evicted_total %v, want at least %v", evicted, min)
	}
	if n := strings.Count(e.Log(), "docroot over its size limit"); n != 1 {
		t.Errorf("the limit was logged %d times, want once", n)
	}
	t.Logf("peak %d bytes (max_size %d); now %d files, %d bytes; %v pages evicted", peak, maxSize, files, bytes, evicted)
}
