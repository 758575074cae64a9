package bench

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/delivery-edge/edge/integration/bench/benchkit"
	"github.com/delivery-edge/edge/integration/harness"
)

// ssiDocroot writes a section page that includes n teaser fragments by
// SSI (marked with the user-execute bit, as the cache marks what it
// renders), the fragments, and the same page pre-assembled as one file.
func ssiDocroot(tb testing.TB, docroot string, n int) (page, flat string) {
	tb.Helper()
	write := func(name, body string, mode os.FileMode) {
		full := filepath.Join(docroot, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(body), mode); err != nil {
			tb.Fatal(err)
		}
		if err := os.Chmod(full, mode); err != nil {
			tb.Fatal(err)
		}
	}
	var head strings.Builder
	head.WriteString("<!DOCTYPE html>\n<html lang=\"de\"><head><meta charset=\"utf-8\"><title>Politik</title></head><body>\n")
	head.WriteString("<nav><a href=\"/\">Startseite</a> | <a href=\"/politik/\">Politik</a> | <a href=\"/sport/\">Sport</a></nav>\n")
	for i := range 20 {
		fmt.Fprintf(&head, "<link rel=\"preload\" href=\"/assets/style-%d.css\" as=\"style\">\n", i)
	}
	head.WriteString("<main><h1>Politik – aktuelle Nachrichten</h1>\n")
	foot := "</main>\n<footer>" + strings.Repeat("Impressum · Datenschutz · Kontakt · ", 40) + "</footer>\n</body></html>\n"
	var withIncludes, assembled strings.Builder
	withIncludes.WriteString(head.String())
	assembled.WriteString(head.String())
	for i := range n {
		frag := fmt.Sprintf("<article class=\"teaser\"><a href=\"/politik/story%d.html\"><img src=\"/image/%d/16x9-768.jpg\" alt=\"Symbolbild\">"+
			"<span class=\"topline\">Topline %d</span><h2>Politik: Meldung %d</h2></a><p>%s</p></article>\n",
			100+i, i, i, i, strings.Repeat("Kurz gesagt: was in Politik heute passiert ist. ", 16))
		name := fmt.Sprintf("fragments/teaser/story%d.html", 100+i)
		write(name, frag, 0o644)
		fmt.Fprintf(&withIncludes, "<!--#include virtual=\"/%s\" -->\n", name)
		assembled.WriteString(frag + "\n")
	}
	withIncludes.WriteString(foot)
	assembled.WriteString(foot)
	write("politik/index.html", withIncludes.String(), 0o755) // marked: has directives
	write("flat/politik.html", assembled.String(), 0o644)
	return "/politik/", "/flat/politik.html"
}

// BenchmarkSSI compares a page assembled from 20 fragment hits with the
// same page pre-assembled as one file (a plain plugin hit), and with
// nginx `ssi on` assembling it from the same docroot (wrk -t1 -c32,
// interleaved rounds).
func BenchmarkSSI(b *testing.B) {
	benchkit.Need(b, "wrk", "nginx")
	for range b.N {
		dir := b.TempDir()
		docroot := filepath.Join(dir, "docroot")
		page, flat := ssiDocroot(b, docroot, 20)
		// nginx started as root reads as nobody: open the test folders.
		for d := docroot; strings.HasPrefix(d, os.TempDir()) && d != os.TempDir(); d = filepath.Dir(d) {
			if err := os.Chmod(d, 0o755); err != nil {
				b.Fatal(err)
			}
		}
		origin := httptest.NewServer(http.NotFoundHandler()) // never asked: every part is a hit
		defer origin.Close()

		cachePort, nginxPort := harness.FreePort(b), harness.FreePort(b)
		caddyfile := fmt.Sprintf(`{
	admin off
	persist_config off
	delivery {
		data_dir %[1]s/data
	}
}
http://127.0.0.1:%[2]d {
	root * %[3]s
	route {
		delivery_cache {
			ssi
		}
		reverse_proxy %[4]s
	}
}
`, dir, cachePort, docroot, strings.TrimPrefix(origin.URL, "http://"))
		c := harness.StartCaddy(b, dir, caddyfile, cachePort)
		nginx := benchkit.StartNginx(b, docroot, nginxPort, "ssi on;").URL

		// All three answer the same bytes.
		_, _, want := harness.Get(b, nil, c.URL()+flat)
		for _, u := range []string{c.URL() + page, nginx + page, nginx + flat} {
			status, _, got := harness.Get(b, nil, u)
			if status != 200 || got != want {
				b.Fatalf("%s: %d, %d bytes, want the %d bytes of the pre-assembled page", u, status, len(got), len(want))
			}
		}

		contenders := []struct{ name, url, path string }{
			{"delivery_cache ssi (20 fragment hits)", c.URL(), page},
			{"delivery_cache hit (pre-assembled)", c.URL(), flat},
			{"nginx ssi on (20 fragments)", nginx, page},
			{"nginx (pre-assembled, sendfile)", nginx, flat},
		}
		s := benchkit.NewSeries()
		for _, ct := range contenders { // warm up page cache and connections
			benchkit.Wrk(b, ct.url, []string{ct.path}, 1, 32, time.Second, "")
		}
		for range benchkit.Rounds() {
			for _, ct := range contenders {
				s.Add(ct.name, benchkit.Wrk(b, ct.url, []string{ct.path}, 1, 32, benchkit.Duration(), ""))
			}
		}
		fmt.Print(s.Table(fmt.Sprintf("SSI: a %d KB page of 20 fragments, wrk -t1 -c32, plain HTTP", len(want)/1024),
			"delivery_cache hit (pre-assembled)"))
		ssi, one, ngx := s.Median(contenders[0].name), s.Median(contenders[1].name), s.Median(contenders[2].name)
		fmt.Printf("goal assembled ÷ single-file hit ≥ 0.5: %.2f\n", ssi.RPS/one.RPS)
		fmt.Printf("goal assembled ÷ nginx ssi ≥ 1: %.2f\n", ssi.RPS/ngx.RPS)
	}
}
