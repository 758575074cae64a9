package cache

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
)

func TestFastFileAgreesWithMap(t *testing.T) {
	m := &Mapper{ReservedSuffixes: []string{".gz", ".br"}}
	for _, target := range []string{
		"/a.html", "/politik/story100.html", "/a/b/c", "/x-y_z~1.html", "/a.html?x=1", "/", "/dir/",
		"/dir/index.html", "/a%20b.html", "/.hidden", "/a/../b", "/a//b", "/x.old", "/x.OLD/y", "/x.gz",
		"/x.Br", "/@user:1", "/" + strings.Repeat("x", 300), deepPath(16), deepPath(17),
		"/d0" + strings.Repeat("/a", 999), longPath(MaxPathBytes), longPath(MaxPathBytes + 1),
	} {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			t.Fatal(err)
		}
		file, ok := fastFile(u)
		if !ok {
			continue
		}
		want, err := m.Map(u)
		if err != nil || want.File != file {
			t.Errorf("%s: fast path %q, Map %q (%v)", target, file, want.File, err)
		}
	}
}

// FuzzFastFile checks that the allocation-free path never disagrees with
// the full mapping.
func FuzzFastFile(f *testing.F) {
	f.Add("/politik/story100.html")
	f.Add("/a/.b")
	f.Add(deepPath(MaxPathSegments + 1))
	f.Add(longPath(MaxPathBytes + 1))
	m := &Mapper{ReservedSuffixes: []string{".gz", ".br"}}
	f.Fuzz(func(t *testing.T, target string) {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return
		}
		file, ok := fastFile(u)
		if !ok {
			return
		}
		want, err := m.Map(u)
		if err != nil || want.File != file {
			t.Fatalf("%q: fast path %q, Map %q (%v)", target, file, want.File, err)
		}
	})
}

// readFromRecorder is a response writer that records what ReadFrom got.
type readFromRecorder struct {
	*httptest.ResponseRecorder
	gotFile bool
}

func (r *readFromRecorder) ReadFrom(src io.Reader) (int64, error) {
	_, r.gotFile = src.(*os.File)
	return io.Copy(r.ResponseRecorder, src)
}

func newHitSite(t testing.TB, hot int64) (*Site, string) {
	t.Helper()
	dir := t.TempDir()
	eng, err := Open(Options{DataDir: filepath.Join(dir, "data"), Logger: zap.NewNop(), HotBytes: hot})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	store, err := eng.Store(filepath.Join(dir, "docroot"))
	if err != nil {
		t.Fatal(err)
	}
	return &Site{Store: store}, store.Dir()
}

func TestDiskHitGoesToSendfile(t *testing.T) {
	s, root := newHitSite(t, -1) // no hot set: every hit from disk
	body := strings.Repeat("<p>page</p>", 3000)
	if err := os.WriteFile(filepath.Join(root, "p.html"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	rec := &readFromRecorder{ResponseRecorder: httptest.NewRecorder()}
	if err := s.ServeHTTP(rec, httptest.NewRequest("GET", "/p.html", nil), nil); err != nil {
		t.Fatal(err)
	}
	if !rec.gotFile {
		t.Fatal("the open *os.File did not reach ReadFrom (no sendfile)")
	}
	if rec.Body.String() != body || rec.Header().Get("Content-Length") != fmt.Sprint(len(body)) ||
		rec.Header().Get("Etag") == "" || rec.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("answer: %v %d bytes", rec.Header(), rec.Body.Len())
	}
}

func TestHotHitAnswersFromMemory(t *testing.T) {
	s, root := newHitSite(t, 1<<20)
	name := filepath.Join(root, "p.html")
	if err := os.WriteFile(name, []byte("version 1"), 0o644); err != nil {
		t.Fatal(err)
	}
	get := func(header ...string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", "/p.html", nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		rec := httptest.NewRecorder()
		if err := s.ServeHTTP(rec, req, nil); err != nil {
			t.Fatal(err)
		}
		return rec
	}
	first := get()
	if st := s.Store.hot.Stats(); st.Fills != 1 {
		t.Fatalf("not filled: %+v", st)
	}
	second := get()
	if st := s.Store.hot.Stats(); st.Hits != 1 || second.Body.String() != "version 1" ||
		second.Header().Get("Etag") != first.Header().Get("Etag") {
		t.Fatalf("hot hit: %+v %q", st, second.Body)
	}
	if rec := get("If-None-Match", first.Header().Get("Etag")); rec.Code != http.StatusNotModified {
		t.Fatalf("If-None-Match on a hot hit: %d", rec.Code)
	}
	if rec := get("Range", "bytes=0-6"); rec.Code != http.StatusPartialContent || rec.Body.String() != "version" {
		t.Fatalf("Range on a hot hit: %d %q", rec.Code, rec.Body)
	}
	// Every change of the file goes through the store, which drops the copy.
	if _, err := s.Store.Invalidate("p.html"); err != nil {
		t.Fatal(err)
	}
	if s.Store.hot.get("p.html") != nil {
		t.Fatal("invalidated file still in memory")
	}
}

func TestPrecompressedCopies(t *testing.T) {
	for _, hot := range []int64{-1, 1 << 20} {
		t.Run(fmt.Sprintf("hot=%d", hot), func(t *testing.T) {
			s, root := newHitSite(t, hot)
			s.Precompress = true
			body := strings.Repeat("<p>Lorem ipsum dolor sit amet.</p>\n", 200)
			render := func(w http.ResponseWriter, r *http.Request) error {
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				_, _ = io.WriteString(w, body)
				return nil
			}
			get := func(ae string) *httptest.ResponseRecorder {
				req := httptest.NewRequest("GET", "/p.html", nil)
				req.Header.Set("Accept-Encoding", ae)
				rec := httptest.NewRecorder()
				if err := s.ServeHTTP(rec, req, render); err != nil {
					t.Fatal(err)
				}
				return rec
			}
			get("") // the miss writes the page and its copies
			for _, suffix := range []string{GzipSuffix, BrotliSuffix} {
				if _, err := os.Stat(filepath.Join(root, "p.html"+suffix)); err != nil {
					t.Fatalf("no %s copy: %v", suffix, err)
				}
			}
			for range 2 { // from disk, then (with a hot set) from memory
				gz := get("gzip")
				zr, err := gzip.NewReader(gz.Body)
				if err != nil {
					t.Fatal(err)
				}
				plain, _ := io.ReadAll(zr)
				if gz.Header().Get("Content-Encoding") != "gzip" || string(plain) != body ||
					gz.Header().Get("Vary") != "Accept-Encoding" {
					t.Fatalf("gzip answer: %v", gz.Header())
				}
				br := get("gzip, br")
				if br.Header().Get("Content-Encoding") != "br" || br.Body.Len() >= len(body) ||
					br.Header().Get("Etag") == gz.Header().Get("Etag") {
					t.Fatalf("brotli answer: %v", br.Header())
				}
				id := get("br;q=0, identity")
				if id.Header().Get("Content-Encoding") != "" || id.Body.String() != body {
					t.Fatalf("identity answer: %v", id.Header())
				}
			}
			// A copy of another version of the page is never served.
			if err := os.WriteFile(filepath.Join(root, "p.html"), []byte("new version"), 0o644); err != nil {
				t.Fatal(err)
			}
			s.Store.dropHot("p.html")
			if rec := get("gzip, br"); rec.Header().Get("Content-Encoding") != "" || rec.Body.String() != "new version" {
				t.Fatalf("stale copy served: %v %q", rec.Header(), rec.Body)
			}
			if rec := get("gzip"); !bytes.Equal(rec.Body.Bytes(), []byte("new version")) {
				t.Fatalf("second answer: %q", rec.Body)
			}
		})
	}
}

// TestHitsAndInvalidationsRace serves and invalidates the same pages at
// once; a (non-stale) answer never carries a version older than the last
// invalidation completed before the request began. 30 s unless -short.
func TestHitsAndInvalidationsRace(t *testing.T) {
	duration := 30 * time.Second
	if testing.Short() {
		duration = 2 * time.Second
	}
	s, _ := newHitSite(t, 1<<20)
	const pages = 4
	var version [pages]atomic.Int64     // the backend's current version
	var invalidated [pages]atomic.Int64 // newest version whose predecessor was invalidated
	render := func(w http.ResponseWriter, r *http.Request) error {
		var i int
		fmt.Sscanf(r.URL.Path, "/p%d.html", &i)
		w.Header().Set(HeaderDependencies, fmt.Sprintf(`"doc%d"`, i))
		fmt.Fprintf(w, "%d", version[i].Load())
		return nil
	}
	stop := time.Now().Add(duration)
	var wg sync.WaitGroup
	var answers, stale atomic.Int64
	wg.Add(1)
	go func() { // the changes: new version at the backend, then invalidation
		defer wg.Done()
		for i := 0; time.Now().Before(stop); i = (i + 1) % pages {
			v := version[i].Add(1)
			if _, err := s.Store.Invalidate(fmt.Sprintf("p%d.html", i)); err != nil {
				t.Error(err)
				return
			}
			invalidated[i].Store(v)
			time.Sleep(time.Millisecond)
		}
	}()
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; time.Now().Before(stop); j++ {
				i := j % pages
				floor := invalidated[i].Load()
				rec := httptest.NewRecorder()
				if err := s.ServeHTTP(rec, httptest.NewRequest("GET", fmt.Sprintf("/p%d.html", i), nil), render); err != nil {
					t.Error(err)
					return
				}
				answers.Add(1)
				if rec.Header().Get(HeaderStale) != "" {
					stale.Add(1)
					continue // an old copy, marked as such, while the new one renders
				}
				var got int64
				fmt.Sscanf(rec.Body.String(), "%d", &got)
				if got < floor {
					t.Errorf("p%d: answered version %d after version %d was in place", i, got, floor)
					return
				}
			}
		}()
	}
	wg.Wait()
	st := s.Store.hot.Stats()
	t.Logf("%d answers (%d stale) in %v; hot set: %d hits, %d fills, %d fills refused after a change",
		answers.Load(), stale.Load(), duration, st.Hits, st.Fills, st.Rejected)
}

// BenchmarkHotHit measures the handler's own work for a hit from memory:
// the allocation count is what the hit path costs the garbage collector.
func BenchmarkHotHit(b *testing.B) {
	s, root := newHitSite(b, 16<<20)
	if err := os.MkdirAll(filepath.Join(root, "politik"), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "politik", "story100.html"), bytes.Repeat([]byte("x"), 30<<10), 0o644); err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/politik/story100.html", nil)
	w := &discardResponse{h: http.Header{}}
	_ = s.ServeHTTP(w, req, nil) // fill
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		clear(w.h)
		if err := s.ServeHTTP(w, req, nil); err != nil {
			b.Fatal(err)
		}
	}
}

type discardResponse struct{ h http.Header }

func (d *discardResponse) Header() http.Header         { return d.h }
func (d *discardResponse) WriteHeader(int)             {}
func (d *discardResponse) Write(p []byte) (int, error) { return len(p), nil }

// TestHotSetHoldsFilesUpToItsLimit: a file larger than what SSI keeps of a
// part (256 KB) but within hot_max_file is served from memory.
func TestHotSetHoldsFilesUpToItsLimit(t *testing.T) {
	s, root := newHitSite(t, 16<<20)
	body := bytes.Repeat([]byte("y"), 600<<10)
	if err := os.WriteFile(filepath.Join(root, "big.html"), body, 0o644); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		rec := httptest.NewRecorder()
		if err := s.ServeHTTP(rec, httptest.NewRequest("GET", "/big.html", nil), nil); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(rec.Body.Bytes(), body) {
			t.Fatalf("body of %d bytes", rec.Body.Len())
		}
	}
	if s.Store.hot.get("big.html") == nil {
		t.Fatal("a 600 KB file is not held in memory with a 1 MiB limit")
	}
}
