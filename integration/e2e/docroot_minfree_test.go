package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/delivery-edge/edge/integration/harness"
)

// freeSpace is the total and available bytes of the file system of dir.
func freeSpace(t *testing.T, dir string) (total, avail int64) {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Blocks) * st.Bsize, int64(st.Bavail) * st.Bsize
}

// TestDocrootMinFreeEvicts: with the docroot on a file system of its own
// (an 8 MiB tmpfs) and min_free 50%, a flood of unique pages that would
// fill three quarters of it makes the edge evict the least recently read
// pages until half of the file system is free again; every request is
// answered whole meanwhile, the pages read most stay, and the eviction is
// logged once and counted.
func TestDocrootMinFreeEvicts(t *testing.T) {
	dir := t.TempDir()
	harness.Tmpfs(t, filepath.Join(dir, "docroot"), tmpfsSize)
	addr := startFloodBackend(t)
	e := harness.StartEdge(t, harness.EdgeOptions{Dir: dir, Origin: addr, Route: "metrics /metrics",
		Global: "min_free 50%"})
	get := floodGetter(t, e)
	total, _ := freeSpace(t, e.Docroot)
	want := total / 2
	// Three quarters of the file system in pages of 4 KB.
	flood := int(total * 3 / 4 / floodPageBytes)
	low := total
	hot := floodPages(flood, get, func(int) {
		_, avail := freeSpace(t, e.Docroot)
		low = min(low, avail)
	})
	var avail int64
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, avail = freeSpace(t, e.Docroot); avail >= want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d bytes free 15 s after the flood, min_free %d", avail, total, want)
		}
	}
	for _, p := range hot {
		if !e.Exists(p[1:]) {
			t.Errorf("%s was read after every 50 pages but was evicted", p)
		}
	}
	evicted := metricValue(t, e, fmt.Sprintf(`delivery_evicted_total{docroot=%q}`, e.Docroot))
	if evicted < float64(total/4/floodPageBytes) {
		t.Errorf("delivery_evicted_total %v, want at least a quarter of the file system's worth of pages", evicted)
	}
	if n := strings.Count(e.Log(), "docroot over its size limit"); n != 1 {
		t.Errorf("the limit was logged %d times, want once", n)
	}
	t.Logf("file system %d bytes, min_free %d: lowest free during the flood %d, now %d; %d pages written, %v evicted",
		total, want, low, avail, flood, evicted)
}
