package cache

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"go.uber.org/zap"
)

// newValidSite is a site with a hot set whose entries are checked against
// the disk every valid (negative: every hit).
func newValidSite(t testing.TB, valid time.Duration) (*Site, string) {
	t.Helper()
	dir := t.TempDir()
	eng, err := Open(Options{DataDir: filepath.Join(dir, "data"), Logger: zap.NewNop(), HotBytes: 16 << 20, HotValid: valid})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	store, err := eng.Store(filepath.Join(dir, "docroot"))
	if err != nil {
		t.Fatal(err)
	}
	return &Site{Store: store, Precompress: true}, store.Dir()
}

// TestHotSetSeesChangesOnDisk: a page held in memory that another process
// replaces, edits, deletes or renames is served right within the interval:
// its new content, or a miss that renders it.
func TestHotSetSeesChangesOnDisk(t *testing.T) {
	const v1 = "<p>version one of the page</p>"
	rendered := strings.Repeat("<p>rendered by the backend</p>", 40)
	write := func(t *testing.T, name, body string) {
		t.Helper()
		if err := os.WriteFile(name, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, root string)
		want   string
	}{
		{"replaced by rename", func(t *testing.T, root string) {
			write(t, filepath.Join(root, "new.tmp"), "<p>replaced</p>")
			if err := os.Rename(filepath.Join(root, "new.tmp"), filepath.Join(root, "p.html")); err != nil {
				t.Fatal(err)
			}
		}, "<p>replaced</p>"},
		{"edited in place, new length", func(t *testing.T, root string) {
			f, err := os.OpenFile(filepath.Join(root, "p.html"), os.O_WRONLY|os.O_TRUNC, 0)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = f.WriteString("<p>edited in place, longer than before</p>")
			f.Close()
		}, "<p>edited in place, longer than before</p>"},
		{"edited in place, same length and time", func(t *testing.T, root string) {
			name := filepath.Join(root, "p.html")
			info, _ := os.Stat(name)
			f, err := os.OpenFile(name, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = f.WriteAt([]byte("<p>VERSION ONE"), 0)
			f.Close()
			if err := os.Chtimes(name, info.ModTime(), info.ModTime()); err != nil { // only ctime tells
				t.Fatal(err)
			}
		}, "<p>VERSION ONE of the page</p>"},
		{"deleted", func(t *testing.T, root string) {
			if err := os.Remove(filepath.Join(root, "p.html")); err != nil {
				t.Fatal(err)
			}
		}, rendered},
		{"renamed to .old", func(t *testing.T, root string) {
			if err := os.Rename(filepath.Join(root, "p.html"), filepath.Join(root, "p.html.old")); err != nil {
				t.Fatal(err)
			}
		}, rendered},
	} {
		for _, valid := range []time.Duration{-1, 100 * time.Millisecond} {
			t.Run(fmt.Sprintf("%s/valid=%v", tc.name, valid), func(t *testing.T) {
				s, root := newValidSite(t, valid)
				write(t, filepath.Join(root, "p.html"), v1)
				backend := func(w http.ResponseWriter, r *http.Request) error {
					w.Header().Set("Content-Type", "text/html")
					_, _ = io.WriteString(w, rendered)
					return nil
				}
				get := func() (string, bool) {
					rec := httptest.NewRecorder()
					if err := s.ServeHTTP(rec, httptest.NewRequest("GET", "/p.html", nil), backend); err != nil {
						t.Fatal(err)
					}
					return rec.Body.String(), rec.Header().Get(HeaderStale) != ""
				}
				for range 3 {
					if b, _ := get(); b != v1 {
						t.Fatalf("before: %q", b)
					}
				}
				if s.Store.hot.get("p.html") == nil {
					t.Fatal("the page is not in memory")
				}
				tc.change(t, root)
				changed := time.Now()
				for {
					b, stale := get()
					if b == tc.want && !stale {
						break
					}
					if stale {
						time.Sleep(10 * time.Millisecond)
						continue // the .old copy, marked, while the page renders
					}
					if b != v1 {
						t.Fatalf("got %q", b)
					}
					if valid < 0 || time.Since(changed) > 10*valid+time.Second {
						t.Fatalf("still the first version %v after the change (valid %v)", time.Since(changed), valid)
					}
					time.Sleep(10 * time.Millisecond)
				}
				s.Store.bg.Wait()
			})
		}
	}
}

// TestHotSetPrecompressedReplacedByHand: a precompressed page replaced by
// hand is served as the new page; its old copies are never served again.
func TestHotSetPrecompressedReplacedByHand(t *testing.T) {
	s, root := newValidSite(t, 50*time.Millisecond)
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
	get("")
	for range 3 {
		if rec := get("gzip"); rec.Header().Get("Content-Encoding") != "gzip" {
			t.Fatalf("no gzip answer: %v", rec.Header())
		}
	}
	if e := s.Store.hot.get("p.html"); e == nil || e.gzip == nil {
		t.Fatal("the page and its copy are not in memory")
	}
	if err := os.WriteFile(filepath.Join(root, "new.tmp"), []byte("<p>by hand</p>"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(root, "new.tmp"), filepath.Join(root, "p.html")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(60 * time.Millisecond)
	for _, ae := range []string{"gzip", "br", ""} {
		rec := get(ae)
		plain := rec.Body.Bytes()
		if rec.Header().Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(bytes.NewReader(plain))
			if err != nil {
				t.Fatal(err)
			}
			plain, _ = io.ReadAll(zr)
		}
		if string(plain) != "<p>by hand</p>" || rec.Header().Get("Content-Encoding") != "" {
			t.Fatalf("Accept-Encoding %q: %v %q", ae, rec.Header(), plain[:min(len(plain), 40)])
		}
	}
}

// TestHotHitAllocatesNothing: the check against the disk, also on every
// hit, costs no allocation.
func TestHotHitAllocatesNothing(t *testing.T) {
	for _, valid := range []time.Duration{-1, DefaultHotValid} {
		s, root := newValidSite(t, valid)
		if err := os.MkdirAll(filepath.Join(root, "politik"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "politik", "story100.html"), bytes.Repeat([]byte("x"), 30<<10), 0o644); err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest("GET", "/politik/story100.html", nil)
		w := &discardResponse{h: http.Header{}}
		_ = s.ServeHTTP(w, req, nil) // fill
		if s.Store.hot.get("politik/story100.html") == nil {
			t.Fatal("not in memory")
		}
		allocs := testing.AllocsPerRun(1000, func() {
			clear(w.h)
			if err := s.ServeHTTP(w, req, nil); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("valid=%v: %.1f allocations per hit", valid, allocs)
		}
	}
}

// TestHotSetSSISeesChangesOnDisk: SSI parts and a page's directive layout
// held in memory follow the files on disk.
func TestHotSetSSISeesChangesOnDisk(t *testing.T) {
	s, root := newValidSite(t, 50*time.Millisecond)
	s.SSI = &SSIConfig{}
	write := func(name, body string, mode os.FileMode) {
		t.Helper()
		tmp := filepath.Join(root, "by-hand.tmp")
		if err := os.WriteFile(tmp, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(tmp, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	write("page.html", `<p><!--#include virtual="/a.html" --></p>`, 0o744) // marked: it has directives
	write("a.html", "part a", 0o644)
	write("b.html", "part b", 0o644)
	get := func() string {
		rec := httptest.NewRecorder()
		if err := s.ServeHTTP(rec, httptest.NewRequest("GET", "/page.html", nil), nil); err != nil {
			t.Fatal(err)
		}
		return rec.Body.String()
	}
	eventually := func(want string) {
		t.Helper()
		for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			got := get()
			if got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("got %q, want %q", got, want)
			}
		}
	}
	for range 3 {
		if got := get(); got != "<p>part a</p>" {
			t.Fatalf("assembled: %q", got)
		}
	}
	if s.Store.hot.get("a.html") == nil || s.Store.hot.get("page.html") == nil {
		t.Fatal("page and part are not in memory")
	}
	write("a.html", "part A, new", 0o644)
	eventually("<p>part A, new</p>")
	write("page.html", `<p><!--#include virtual="/b.html" --></p>`, 0o744)
	eventually("<p>part b</p>")
}
