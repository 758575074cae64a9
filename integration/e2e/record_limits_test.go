package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/delivery-edge/edge/cache"
	"github.com/delivery-edge/edge/integration/harness"
	"go.uber.org/zap"
)

// limitsBackend is a render backend whose answers carry whatever
// Delivery-* headers a test sets per path, and counts its renders.
type limitsBackend struct {
	mu      sync.Mutex
	headers map[string]http.Header
	renders map[string]int
}

func (b *limitsBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	b.renders[r.URL.Path]++
	h := b.headers[r.URL.Path]
	b.mu.Unlock()
	for k, v := range h {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, "<html><body>page %s</body></html>\n", r.URL.Path)
}

func (b *limitsBackend) count(path string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.renders[path]
}

func startLimitsBackend(t *testing.T, headers map[string]http.Header) (*limitsBackend, string) {
	t.Helper()
	b := &limitsBackend{headers: headers, renders: map[string]int{}}
	srv := httptest.NewServer(b) // listens on 127.0.0.1
	t.Cleanup(srv.Close)
	return b, srv.Listener.Addr().String()
}

func header(name, value string) http.Header { return http.Header{name: {value}} }

// oversizedAnswers are render answers whose registry record could not be
// stored, or that report more than the edge accepts from a backend.
func oversizedAnswers() map[string]http.Header {
	manyKeys := make([]string, 1001)
	for i := range manyKeys {
		manyKeys[i] = fmt.Sprintf("%q", "key-"+strconv.Itoa(i))
	}
	// 700 dependencies of 100 bytes: every item and the count are within
	// the limits, the header as a whole (about 72 KB) is not.
	bulky := make([]string, 700)
	for i := range bulky {
		bulky[i] = fmt.Sprintf("%q", fmt.Sprintf("doc-%04d-%s", i, strings.Repeat("x", 88)))
	}
	return map[string]http.Header{
		"/limits/key-32k.html":     header(cache.HeaderCacheKeys, `"`+strings.Repeat("k", 32768)+`"`),
		"/limits/dep-40k.html":     header(cache.HeaderDependencies, `"`+strings.Repeat("d", 40000)+`"`),
		"/limits/keys-1001.html":   header(cache.HeaderCacheKeys, strings.Join(manyKeys, ", ")),
		"/limits/headers-65k.html": header(cache.HeaderDependencies, strings.Join(bulky, ", ")),
	}
}

// metricValue reads one sample of the edge's metrics endpoint.
func metricValue(t *testing.T, e *harness.Edge, sample string) float64 {
	t.Helper()
	status, _, body := harness.Get(t, nil, e.URL()+"/metrics")
	if status != 200 {
		t.Fatalf("/metrics: %d", status)
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		return 0
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatalf("%s: %v", sample, err)
	}
	return v
}

const overLimitsMetric = `delivery_cache_uncacheable_total{reason="record_over_limits"}`

// TestRecordLimitsOversizedAnswersPassThrough: answers whose record the
// registry cannot hold reach the client but are not cached, each logged
// once; after a crash the edge starts and caches normal pages.
func TestRecordLimitsOversizedAnswersPassThrough(t *testing.T) {
	answers := oversizedAnswers()
	answers["/limits/normal.html"] = header(cache.HeaderCacheKeys, `"normal"`)
	answers["/limits/after.html"] = header(cache.HeaderCacheKeys, `"after"`)
	b, addr := startLimitsBackend(t, answers)
	dir := t.TempDir()
	opts := harness.EdgeOptions{Origin: addr, Dir: dir, Port: harness.FreePort(t), Route: "metrics /metrics"}
	e := harness.StartEdge(t, opts)

	get := func(path string) {
		t.Helper()
		status, h, body := harness.Get(t, nil, e.URL()+path)
		if status != 200 || body != fmt.Sprintf("<html><body>page %s</body></html>\n", path) {
			t.Fatalf("%s: %d %q", path, status, body[:min(len(body), 100)])
		}
		for _, name := range []string{cache.HeaderDependencies, cache.HeaderCacheKeys} {
			if h.Get(name) != "" {
				t.Errorf("%s leaked %s to the client", path, name)
			}
		}
	}
	file := func(path string) string { return strings.TrimPrefix(path, "/") }
	for path := range oversizedAnswers() {
		get(path)
		get(path)
		if n := b.count(path); n != 2 {
			t.Errorf("%s: %d renders for two requests, want 2 (not cached)", path, n)
		}
		if e.Exists(file(path)) {
			t.Errorf("%s: cached in the docroot", path)
		}
	}
	get("/limits/normal.html")
	get("/limits/normal.html")
	if n := b.count("/limits/normal.html"); n != 1 || !e.Exists("limits/normal.html") {
		t.Fatalf("normal page: %d renders, in docroot %v; want 1 and cached", n, e.Exists("limits/normal.html"))
	}
	if v := metricValue(t, e, overLimitsMetric); v != 8 {
		t.Errorf("%s = %v, want 8 (four answers, twice each)", overLimitsMetric, v)
	}
	log := e.Log()
	for path := range oversizedAnswers() {
		if n := countLines(log, "render record over limits; not cached", `"url":"`+path+`"`); n != 1 {
			t.Errorf("%s logged %d times, want once", path, n)
		}
	}
	if strings.Contains(log, "applying registry journal failed") {
		t.Error("the journal failed to apply")
	}

	e.Kill()
	e.Start() // fails the test if the edge does not start
	get("/limits/normal.html")
	if n := b.count("/limits/normal.html"); n != 1 {
		t.Errorf("normal page after restart: %d renders, want 1 (served from the docroot)", n)
	}
	get("/limits/after.html")
	get("/limits/after.html")
	if n := b.count("/limits/after.html"); n != 1 || !e.Exists("limits/after.html") {
		t.Errorf("new page after restart: %d renders, in docroot %v; want 1 and cached", n, e.Exists("limits/after.html"))
	}
	get("/limits/key-32k.html")
	if e.Exists("limits/key-32k.html") {
		t.Error("oversized answer cached after restart")
	}
	e.Stop()
	if _, err := os.Stat(filepath.Join(e.DataDir, cache.JournalRejectedFile)); err == nil {
		t.Error("records were moved aside although none was refused by the registry")
	}
	reg, err := cache.OpenRegistry(e.DataDir, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	for _, key := range []string{"normal", "after"} {
		if files := registryFiles(t, reg, cache.DepKey, key); len(files) != 1 {
			t.Errorf("key %s registered for %v, want one file", key, files)
		}
	}
}

func countLines(log string, parts ...string) int {
	n := 0
	for line := range strings.SplitSeq(log, "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			n++
		}
	}
	return n
}

func registryFiles(t *testing.T, reg *cache.Registry, kind cache.DepKind, name string) []string {
	t.Helper()
	var files []string
	err := reg.Find(kind, name, func(id cache.FileID, _ cache.Dependency) bool {
		files = append(files, id.File)
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestRecordLimitsPoisonedJournalDoesNotStopStart: a journal record that
// bbolt cannot store (written there before the edge starts, as an older
// edge could) is moved aside at start-up; the records around it are
// applied and the edge serves and caches pages.
func TestRecordLimitsPoisonedJournalDoesNotStopStart(t *testing.T) {
	b, addr := startLimitsBackend(t, map[string]http.Header{"/limits/normal.html": header(cache.HeaderCacheKeys, `"normal"`)})
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o750); err != nil {
		t.Fatal(err)
	}
	type entry struct {
		Key     string   `json:"k"`
		Created int64    `json:"c"`
		Keys    []string `json:"y"`
	}
	type record struct {
		Seq   uint64 `json:"s"`
		Root  uint16 `json:"r"`
		File  string `json:"f"`
		Entry entry  `json:"e"`
	}
	var journal strings.Builder
	for _, rec := range []record{
		{1, 1, "before.html", entry{"/before.html", 1, []string{"before"}}},
		{2, 1, "poison.html", entry{"/poison.html", 1, []string{strings.Repeat("k", 40000)}}},
		{3, 1, "after.html", entry{"/after.html", 1, []string{"after"}}},
	} {
		line, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		journal.Write(append(line, '\n'))
	}
	if err := os.WriteFile(filepath.Join(data, "journal.log"), []byte(journal.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	e := harness.StartEdge(t, harness.EdgeOptions{Origin: addr, Dir: dir, Port: harness.FreePort(t), Route: "metrics /metrics"})
	for range 2 {
		if status, _, _ := harness.Get(t, nil, e.URL()+"/limits/normal.html"); status != 200 {
			t.Fatalf("normal page: %d", status)
		}
	}
	if n := b.count("/limits/normal.html"); n != 1 || !e.Exists("limits/normal.html") {
		t.Fatalf("normal page: %d renders, in docroot %v; want 1 and cached", n, e.Exists("limits/normal.html"))
	}
	if v := metricValue(t, e, "delivery_registry_journal_rejected_total"); v != 1 {
		t.Errorf("delivery_registry_journal_rejected_total = %v, want 1", v)
	}
	if n := countLines(e.Log(), cache.JournalRejectedFile); n != 1 {
		t.Errorf("the moved-aside record was logged %d times, want once", n)
	}
	e.Kill()
	e.Start()
	e.Stop()

	f, err := os.Open(filepath.Join(data, cache.JournalRejectedFile))
	if err != nil {
		t.Fatalf("no %s: %v", cache.JournalRejectedFile, err)
	}
	defer f.Close()
	var rejected []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s line: %v", cache.JournalRejectedFile, err)
		}
		rejected = append(rejected, m)
	}
	if len(rejected) != 1 || !strings.Contains(fmt.Sprint(rejected[0]["record"]), "poison.html") ||
		fmt.Sprint(rejected[0]["error"]) == "" {
		t.Fatalf("%s holds %d records, want the poisoned one with its error: %.300v", cache.JournalRejectedFile, len(rejected), rejected)
	}

	reg, err := cache.OpenRegistry(data, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	for key, want := range map[string]string{"before": "before.html", "after": "after.html", "normal": "limits/normal.html"} {
		if files := registryFiles(t, reg, cache.DepKey, key); len(files) != 1 || files[0] != want {
			t.Errorf("key %s registered for %v, want %s", key, files, want)
		}
	}
}
