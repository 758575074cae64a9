package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/delivery-edge/edge/integration/harness"
)

// ssiHangBackend serves the pages of TestSSISequenceCompletesAndEdgeStops:
// assembled pages, plain pages of 64 KB and 300 KB, an assembled page of
// 1 MB with one include and one with 7,000 includes. want is what the edge
// answers for each.
func ssiHangBackend(t *testing.T) (srv *httptest.Server, want map[string]string) {
	t.Helper()
	const frag = "<b>fragment</b>"
	inc := func(p string) string { return `<!--#include virtual="` + p + `" -->` }
	big := strings.Repeat("z", 1<<20)
	// An answer resolves at most 1,000 includes; the rest become comments.
	skipped := `<!-- ssi: include "/f/frag.html" skipped: too many includes -->`
	pages := map[string]string{
		"/f/frag.html":  frag,
		"/f/other.html": "<i>other</i>",
		"/a.html":       "<p>A</p>" + inc("/f/frag.html") + "<p>end</p>",
		"/b.html":       inc("/f/other.html") + strings.Repeat("b", 2000) + inc("/f/frag.html"),
		"/p64.html":     strings.Repeat("x", 64<<10),
		"/p300.html":    strings.Repeat("y", 300<<10),
		"/big.html":     big + inc("/f/frag.html") + "<p>end</p>",
		"/many.html":    strings.Repeat(inc("/f/frag.html"), 7000),
		// Larger than what the sockets between edge and client hold: a
		// client that stops reading leaves in the middle of it.
		"/f/mb.html": strings.Repeat("m", 1<<20),
		"/huge.html": strings.Repeat(inc("/f/mb.html"), 16),
	}
	want = map[string]string{
		"/a.html":    "<p>A</p>" + frag + "<p>end</p>",
		"/b.html":    "<i>other</i>" + strings.Repeat("b", 2000) + frag,
		"/p64.html":  pages["/p64.html"],
		"/p300.html": pages["/p300.html"],
		"/big.html":  big + frag + "<p>end</p>",
		"/many.html": strings.Repeat(frag, 1000) + strings.Repeat(skipped, 6000),
		"/huge.html": strings.Repeat(pages["/f/mb.html"], 16),
	}
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := pages[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, want
}

// TestSSISequenceCompletesAndEdgeStops: with SSI on, assembled pages, then
// plain pages of 64 KB and 300 KB, an assembled page of 1 MB and one of
// 7,000 includes, five times each: every answer is complete within
// seconds. Then a client goes away in the middle of a page of 16 MB, and
// the edge stops within seconds of SIGTERM. Once, the ETag hash of an
// assembled page left a zero-length buffer in the pool of read buffers:
// the next large read spun forever, answers hung with 0 bytes, and the
// stuck handlers kept Caddy from shutting down.
func TestSSISequenceCompletesAndEdgeStops(t *testing.T) {
	for _, c := range []struct{ name, global string }{{"hot", ""}, {"disk", "hot_cache off"}} {
		t.Run(c.name, func(t *testing.T) {
			backend, want := ssiHangBackend(t)
			e := harness.StartEdge(t, harness.EdgeOptions{Origin: strings.TrimPrefix(backend.URL, "http://"),
				Cache: "ssi", Global: c.global})
			client := &http.Client{Timeout: 10 * time.Second}
			defer client.CloseIdleConnections()
			order := []string{"/a.html", "/p64.html", "/p300.html", "/b.html", "/p300.html", "/big.html",
				"/many.html", "/a.html", "/p64.html"}
			begin, answers := time.Now(), 0
		rounds:
			for round := range 5 {
				for _, p := range order {
					if err := ssiGetComplete(client, e.URL()+p, want[p]); err != nil {
						t.Errorf("round %d: %v", round, err)
						break rounds // the rest would hang the same way
					}
					answers++
				}
			}
			t.Logf("%d complete answers in %v", answers, time.Since(begin).Round(time.Millisecond))
			if err := ssiGetComplete(client, e.URL()+"/huge.html", want["/huge.html"]); err != nil {
				t.Error(err)
			}
			ssiLeaveMidAnswer(t, e.Port, "/huge.html")

			start := time.Now()
			e.Stop() // SIGTERM; the harness kills after 20 s
			took := time.Since(start)
			t.Logf("stopped %v after SIGTERM", took.Round(time.Millisecond))
			if took > 5*time.Second {
				t.Errorf("the edge took %v to stop after SIGTERM", took.Round(100*time.Millisecond))
			}
			if strings.Contains(e.Log(), "WARNING: DATA RACE") { // an edge built with -race
				t.Error("the race detector reported a data race in the edge")
			}
		})
	}
}

// ssiGetComplete fetches url and checks that the whole body came.
func ssiGetComplete(client *http.Client, url, want string) error {
	start := time.Now()
	resp, err := client.Get(url)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("GET %s: %d bytes after %v: %w", url, len(body), time.Since(start).Round(time.Millisecond), err)
	}
	if resp.StatusCode != 200 || string(body) != want {
		return fmt.Errorf("GET %s: %d, %d bytes, want 200 and %d bytes", url, resp.StatusCode, len(body), len(want))
	}
	return nil
}

// ssiLeaveMidAnswer asks for path over a raw connection, reads the start
// of the answer and goes away.
func ssiLeaveMidAnswer(t *testing.T, port int, path string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path); err != nil {
		t.Fatal(err)
	}
	var head [4096]byte
	if _, err := io.ReadFull(bufio.NewReader(conn), head[:]); err != nil {
		t.Errorf("start of %s: %v", path, err)
	}
}
