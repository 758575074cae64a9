package cache

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/delivery-edge/edge/cache/ssi"
)

// ssiHangPages are the pages of the sequence that once left answers that
// never ended: assembled pages, plain pages larger and smaller than what is
// kept per file version, an assembled page larger than the hot set's files
// and one with more includes than an answer may resolve.
func ssiHangPages() (pages, want map[string]string, order []string) {
	const frag = "<b>fragment</b>"
	inc := `<!--#include virtual="/f/frag.html" -->`
	many := strings.Repeat(inc, 7000)
	manyWant := strings.Repeat(frag, ssiMaxParts) +
		strings.Repeat(ssi.Comment("/f/frag.html", "skipped: too many includes"), 7000-ssiMaxParts)
	big := strings.Repeat("z", 1<<20)
	pages = map[string]string{
		"/f/frag.html": frag,
		"/a.html":      "<p>A</p>" + inc + "<p>end</p>",
		"/p64.html":    strings.Repeat("x", 64<<10),
		"/p300.html":   strings.Repeat("y", 300<<10),
		"/big.html":    big + inc + "<p>end</p>",
		"/many.html":   many,
	}
	want = map[string]string{
		"/a.html":    "<p>A</p>" + frag + "<p>end</p>",
		"/p64.html":  pages["/p64.html"],
		"/p300.html": pages["/p300.html"],
		"/big.html":  big + frag + "<p>end</p>",
		"/many.html": manyWant,
	}
	order = []string{"/a.html", "/p64.html", "/p300.html", "/a.html", "/big.html", "/many.html", "/p300.html"}
	return pages, want, order
}

// renderPages answers from a map in pieces of 16 KB, as a backend streams.
func renderPages(pages map[string]string) RenderFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		body, ok := pages[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return nil
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set(HeaderDependencies, strconv.Quote("doc"+r.URL.Path))
		w.WriteHeader(http.StatusOK)
		for len(body) > 0 {
			n := min(16<<10, len(body))
			if _, err := w.Write([]byte(body[:n])); err != nil {
				return err
			}
			body = body[n:]
		}
		return nil
	}
}

// serveWithin serves one request on its own goroutine and fails the test
// when it has not ended within d (its context is cancelled then, and it
// gets a moment more to see that).
func serveWithin(t *testing.T, s *Site, render RenderFunc, target string, d time.Duration) *httptest.ResponseRecorder {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	req := httptest.NewRequest(http.MethodGet, target, nil).WithContext(ctx)
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.ServeHTTP(rec, req, render); err != nil {
			rec.Code = statusOf(err)
		}
	}()
	select {
	case <-done:
		return rec
	case <-time.After(d + 2*time.Second):
		t.Fatalf("GET %s did not end within %v", target, d)
		return nil
	}
}

// TestSSISequenceNeverHangs: an assembled page, then plain pages of 64 KB
// and 300 KB and an assembled page of 1 MB, five times each, with the hot
// set on and off. Once, the hash of an assembled page's ETag put its
// scratch buffer back into the pool of read buffers with length zero, and
// the next large read with that buffer read nothing, forever.
func TestSSISequenceNeverHangs(t *testing.T) {
	for _, hot := range []bool{true, false} {
		t.Run(fmt.Sprintf("hot=%v", hot), func(t *testing.T) {
			s := newSSISite(t, 0)
			if !hot {
				s.Store.hot = nil
			}
			pages, want, order := ssiHangPages()
			render := renderPages(pages)
			for round := range 5 {
				for _, p := range order {
					rec := serveWithin(t, s, render, p, 10*time.Second)
					if rec.Code != 200 || rec.Body.String() != want[p] {
						t.Fatalf("round %d, %s: %d, %d bytes, want %d", round, p, rec.Code, rec.Body.Len(), len(want[p]))
					}
				}
			}
		})
	}
}

// cancelWriter is a client that goes away (its request's context is
// cancelled) once it has got its first bytes.
type cancelWriter struct {
	h       http.Header
	cancel  context.CancelFunc
	code    int
	written int
}

func (c *cancelWriter) Header() http.Header { return c.h }
func (c *cancelWriter) WriteHeader(code int) {
	if c.code == 0 {
		c.code = code
	}
}

func (c *cancelWriter) Write(p []byte) (int, error) {
	c.written += len(p)
	c.cancel()
	return len(p), nil
}

// TestSSIAssemblyStopsWhenClientGoes: an answer assembled from a file, and
// one assembled as it streams from the backend, stop being written when
// the client goes away, though writing to it does not fail.
func TestSSIAssemblyStopsWhenClientGoes(t *testing.T) {
	s := newSSISite(t, 0)
	big := strings.Repeat("z", 2<<20)
	page := big + `<!--#include virtual="/f.html" -->` + big
	pages := map[string]string{"/f.html": "F", "/big.html": page}
	for _, c := range []struct{ name, target string }{
		{"from the file", "/big.html"},
		{"streamed", "/big.html?nocache=1"}, // not cacheable: assembled as it streams
	} {
		t.Run(c.name, func(t *testing.T) {
			var renderErr error
			render := func(w http.ResponseWriter, r *http.Request) error {
				err := renderPages(pages)(w, r)
				if r.URL.RawQuery != "" {
					renderErr = err
				}
				return err
			}
			// Stored first, so that the next GET is assembled from the file.
			if rec := serveWithin(t, s, render, "/big.html", 10*time.Second); rec.Body.String() != big+"F"+big {
				t.Fatalf("first GET: %d bytes", rec.Body.Len())
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			w := &cancelWriter{h: http.Header{}, cancel: cancel}
			done := make(chan struct{})
			go func() {
				defer close(done)
				_ = s.ServeHTTP(w, httptest.NewRequest(http.MethodGet, c.target, nil).WithContext(ctx), render)
			}()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("the answer did not end")
			}
			if w.code != 200 || w.written == 0 || w.written > len(big)/2 {
				t.Fatalf("%d: %d bytes written after the client went away after the first", w.code, w.written)
			}
			if c.target != "/big.html" && renderErr == nil {
				t.Fatal("the backend's answer was taken in full")
			}
		})
	}
}
