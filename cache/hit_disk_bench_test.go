package cache

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkDiskHit measures the handler's own work for a hit from disk (no
// hot set): open, checks, headers and the hand-over to ReadFrom.
func BenchmarkDiskHit(b *testing.B) {
	s, root := newHitSite(b, -1)
	if err := os.MkdirAll(filepath.Join(root, "politik"), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "politik", "story100.html"), bytes.Repeat([]byte("x"), 30<<10), 0o644); err != nil {
		b.Fatal(err)
	}
	// HEAD leaves out the body copy, which would hide the cost of opening
	// and checking the file in the noise.
	for _, method := range []string{"HEAD", "GET"} {
		b.Run(method, func(b *testing.B) {
			req := httptest.NewRequest(method, "/politik/story100.html", nil)
			w := &discardResponse{h: http.Header{}}
			b.ReportAllocs()
			for range b.N {
				clear(w.h)
				if err := s.ServeHTTP(w, req, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
