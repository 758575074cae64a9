package cache

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"
)

type discardRW struct {
	h    http.Header
	code int
}

func (d *discardRW) Header() http.Header         { return d.h }
func (d *discardRW) WriteHeader(c int)           { d.code = c }
func (d *discardRW) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkSSIHit serves a page assembled from 20 fragment hits, in
// process, against a plain hit of the same page pre-assembled.
func BenchmarkSSIHit(b *testing.B) {
	eng, err := Open(Options{DataDir: filepath.Join(b.TempDir(), "data"), Logger: zap.NewNop()})
	if err != nil {
		b.Fatal(err)
	}
	defer eng.Close()
	store, err := eng.Store(filepath.Join(b.TempDir(), "docroot"))
	if err != nil {
		b.Fatal(err)
	}
	s := &Site{Store: store, SSI: &SSIConfig{}}
	dir := s.Store.Dir()
	var page, flat strings.Builder
	page.WriteString(strings.Repeat("<p>head</p>\n", 200))
	flat.WriteString(strings.Repeat("<p>head</p>\n", 200))
	for i := range 20 {
		frag := fmt.Sprintf("<article>%d %s</article>\n", i, strings.Repeat("teaser text ", 60))
		name := filepath.Join(dir, "fragments", "teaser", fmt.Sprintf("s%d.html", i))
		os.MkdirAll(filepath.Dir(name), 0o755)
		os.WriteFile(name, []byte(frag), 0o644)
		fmt.Fprintf(&page, "<!--#include virtual=\"/fragments/teaser/s%d.html\" -->", i)
		flat.WriteString(frag)
	}
	os.MkdirAll(filepath.Join(dir, "politik"), 0o755)
	os.WriteFile(filepath.Join(dir, "politik", "index.html"), []byte(page.String()), 0o755)
	os.WriteFile(filepath.Join(dir, "flat.html"), []byte(flat.String()), 0o644)
	render := func(w http.ResponseWriter, r *http.Request) error { return &StatusError{Code: 404} }
	for _, c := range []struct{ name, target string }{{"assembled", "/politik/"}, {"flat", "/flat.html"}} {
		target := c.target
		b.Run(c.name, func(b *testing.B) {
			req := httptest.NewRequest("GET", target, nil)
			b.ReportAllocs()
			for range b.N {
				w := &discardRW{h: http.Header{}}
				if err := s.ServeHTTP(w, req, render); err != nil || w.code != 200 {
					b.Fatal(err, w.code)
				}
			}
		})
	}
}
