package benchkit

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestVarnishHitsAreIdentityCopies checks the Varnish anchor's setup: in
// front of nginx with gzip_static (as in the anchors benchmark), a warmed
// page asked for without Accept-Encoding is a hit, served as stored,
// without a gunzip per request.
func TestVarnishHitsAreIdentityCopies(t *testing.T) {
	for _, tool := range []string{"nginx", "varnishd", "varnishstat"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found (Debian: apt-get install nginx-light varnish)", tool)
		}
	}
	docroot := filepath.Join(t.TempDir(), "docroot")
	if err := os.MkdirAll(docroot, 0o755); err != nil {
		t.Fatal(err)
	}
	page := bytes.Repeat([]byte("<p>story</p>\n"), 2000)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(page)
	zw.Close()
	for name, body := range map[string][]byte{"a.html": page, "a.html.gz": gz.Bytes()} {
		if err := os.WriteFile(filepath.Join(docroot, name), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	nginx := StartNginx(t, docroot, freePort(t), "gzip_static on;")
	v := StartVarnish(t, fmt.Sprintf("127.0.0.1:%d", nginx.Port), freePort(t))
	v.Warm(t, []string{"/a.html"})
	before := v.Stats(t)
	const n = 3
	for range n {
		req, _ := http.NewRequest(http.MethodGet, v.URL+"/a.html", nil)
		req.Header.Set("Accept-Encoding", "identity") // as wrk: no gzip
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(body, page) || resp.Header.Get("Content-Encoding") != "" {
			t.Fatalf("GET /a.html: %d, %d bytes, Content-Encoding %q, %v; want the %d plain bytes",
				resp.StatusCode, len(body), resp.Header.Get("Content-Encoding"), err, len(page))
		}
	}
	got := v.Stats(t).Sub(before)
	if got.Hit != n || got.Miss != 0 || got.Gunzip != 0 {
		t.Fatalf("%d warmed requests: %v; want %d hits, no miss, no gunzip", n, got, n)
	}
}

func TestParseVarnishStat(t *testing.T) {
	out := `MAIN.cache_hit           47136       581.93 Cache hits
MAIN.cache_miss               501         6.19 Cache misses
MAIN.n_gunzip               47636       588.10 Gunzip operations
`
	got := parseVarnishStat(t, out)
	if got != (VarnishStats{Hit: 47136, Miss: 501, Gunzip: 47636}) {
		t.Fatalf("parseVarnishStat: %+v", got)
	}
	if r := got.HitRatio(); r < 0.989 || r > 0.99 {
		t.Fatalf("HitRatio %f", r)
	}
}
