package cache

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkMiss measures a miss that is rendered and stored: a new page
// in a folder that exists, its render answered at once (the handler's
// and the store's own work: temp file, journal record, rename). Its
// system calls per miss: strace -f -c the test binary with -benchtime Nx.
func BenchmarkMiss(b *testing.B) {
	s, root := newHitSite(b, -1)
	if err := os.MkdirAll(filepath.Join(root, "politik"), 0o755); err != nil {
		b.Fatal(err)
	}
	body := strings.Repeat("<p>page</p>", 300)
	render := func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "text/html")
		_, err := w.Write([]byte(body))
		return err
	}
	w := &discardResponse{h: http.Header{}}
	b.ReportAllocs()
	for i := range b.N {
		clear(w.h)
		req, _ := http.NewRequest("GET", fmt.Sprintf("/politik/story%d.html", i), nil)
		if err := s.ServeHTTP(w, req, render); err != nil {
			b.Fatal(err)
		}
	}
}
