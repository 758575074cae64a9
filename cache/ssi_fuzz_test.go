package cache

import (
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
)

var ssiFuzzSeeds = []string{
	`<html><!--#include virtual="/f/a.html" --></html>`,
	`a<!--#include virtual="/n/0.html" -->b<!--#include file="x.html" -->`,
	`<!--#exec cmd="touch /tmp/pwned" --><!--#include virtual="/c.html" -->`,
	`<!--#include virtual="/f/a.html" virtual='/f/b.html' --><!--#include virtual=/f/c.html -->`,
	`<!--#include virtual="/f/a.html" <!--#include virtual="/f/b.html" -->-->`,
	`<!--#include virtual="/f/` + strings.Repeat("z", 5000) + `" -->`,
	`<!--#if expr="1" --><!--#include virtual="/missing.html" --><!--#endif --><!--`,
	`<!--#include virtual="/../etc/passwd" --><!--#include virtual="/x.html.old" --><!--#`,
}

// ssiFuzzBackend renders /f/* as a leaf, /n/<k>.html as a chain that goes
// 12 deep, /c.html as a page that includes itself, /pt/* as the fuzzed
// page (uncacheable, so assembled as it streams); everything else is 404.
func ssiFuzzBackend(pages *atomic.Pointer[map[string]string]) RenderFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		p := r.URL.Path
		h := w.Header()
		h.Set("Content-Type", "text/html")
		switch {
		case strings.HasPrefix(p, "/f/"):
			fmt.Fprintf(w, "[%s]", strconv.Quote(p))
		case strings.HasPrefix(p, "/n/"):
			k, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(p, "/n/"), ".html"))
			if err != nil {
				http.NotFound(w, r)
				return nil
			}
			fmt.Fprintf(w, `n%d<!--#include virtual="/n/%d.html" -->`, k, (k+1)%12)
		case p == "/c.html":
			fmt.Fprint(w, `c<!--#include virtual="/c.html" -->`)
		case strings.HasPrefix(p, "/pt/"):
			body, ok := (*pages.Load())[p]
			if !ok {
				http.NotFound(w, r)
				return nil
			}
			h.Set("Cache-Control", "private")
			for len(body) > 0 {
				n := min(len(body), 5)
				_, _ = w.Write([]byte(body[:n]))
				body = body[n:]
			}
		default:
			http.NotFound(w, r)
		}
		return nil
	}
}

// FuzzSSIAssemble serves a fuzzed page two ways — as a cached, marked file
// (assembled from its parts) and as an uncacheable answer (assembled as
// it streams) — and twice each: never a hang, never a non-200, the same
// body every time, and a Content-Length that matches.
func FuzzSSIAssemble(f *testing.F) {
	for _, s := range ssiFuzzSeeds {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	eng, err := Open(Options{DataDir: filepath.Join(dir, "data"), Logger: zap.NewNop()})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { eng.Close() })
	site := func(name string) *Site {
		st, err := eng.Store(filepath.Join(dir, name))
		if err != nil {
			f.Fatal(err)
		}
		return &Site{Store: st, RenderTimeout: 5 * time.Second, SSI: &SSIConfig{}}
	}
	cached, streamed := site("cached"), site("streamed")
	var pages atomic.Pointer[map[string]string]
	pages.Store(&map[string]string{})
	render := ssiFuzzBackend(&pages)
	var n atomic.Int64

	get := func(t *testing.T, s *Site, target string) string {
		t.Helper()
		done := make(chan *httptest.ResponseRecorder, 1)
		go func() {
			rec := httptest.NewRecorder()
			if err := s.ServeHTTP(rec, httptest.NewRequest("GET", target, nil), render); err != nil {
				rec.Code = statusOf(err)
			}
			done <- rec
		}()
		select {
		case rec := <-done:
			if rec.Code != 200 {
				t.Fatalf("%s: status %d", target, rec.Code)
			}
			if cl := rec.Header().Get("Content-Length"); cl != "" && cl != strconv.Itoa(rec.Body.Len()) {
				t.Fatalf("%s: Content-Length %s, body %d bytes", target, cl, rec.Body.Len())
			}
			return rec.Body.String()
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: hangs", target)
			return ""
		}
	}

	f.Fuzz(func(t *testing.T, page []byte) {
		i := n.Add(1)
		name := fmt.Sprintf("pt/%d.html", i)
		if err := os.MkdirAll(filepath.Join(cached.Store.Dir(), "pt"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(cached.Store.Dir(), name), page, 0o744); err != nil {
			t.Fatal(err)
		}
		// Both sites know every page so far (a page may include another).
		m := maps.Clone(*pages.Load())
		m["/"+name] = string(page)
		pages.Store(&m)
		a1 := get(t, cached, "/"+name)
		a2 := get(t, cached, "/"+name)
		s1 := get(t, streamed, "/"+name)
		s2 := get(t, streamed, "/"+name)
		if a1 != a2 || a1 != s1 || s1 != s2 {
			t.Fatalf("bodies differ:\nfile 1 %q\nfile 2 %q\nstream 1 %q\nstream 2 %q", a1, a2, s1, s2)
		}
	})
}
