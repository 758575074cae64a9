package cache

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
)

// countingProgress records what an operation reports.
type countingProgress struct {
	mu     sync.Mutex
	done   int64
	total  int64
	phases []string
	errs   []string
}

func (c *countingProgress) SetPhase(s string) {
	c.mu.Lock()
	c.phases = append(c.phases, s)
	c.done, c.total = 0, 0
	c.mu.Unlock()
}
func (c *countingProgress) SetTotal(n int64) { c.mu.Lock(); c.total = n; c.mu.Unlock() }
func (c *countingProgress) Add(n int64)      { c.mu.Lock(); c.done += n; c.mu.Unlock() }
func (c *countingProgress) Error(err error) {
	c.mu.Lock()
	c.errs = append(c.errs, err.Error())
	c.mu.Unlock()
}

func TestWarm(t *testing.T) {
	f := newEngineFixture(t, InvalidationConfig{})
	f.ensure("/s1.html")
	p := &countingProgress{}
	urls := []string{"/s1.html", "/s2.html", "/list.html", "/list.html", "/gone.html", "/a//b", "http://x/y"}
	res, err := f.eng.Warm(t.Context(), f.site, urls, WarmOptions{Concurrency: 2}, p)
	if err != nil {
		t.Fatal(err)
	}
	want := WarmResult{URLs: 6, Rendered: 2, Cached: 1, Uncacheable: 2, Gone: 1}
	if res != want {
		t.Fatalf("warm %+v, want %+v", res, want)
	}
	if p.total != 4 || p.done != 4 || len(p.errs) != 1 || !strings.Contains(p.errs[0], "/gone.html") {
		t.Fatalf("progress %+v", p)
	}
	for _, name := range []string{"s2.html", "list.html"} {
		if _, ok := f.file(name); !ok {
			t.Errorf("%s not warmed", name)
		}
	}
	if n := f.pages.count("/s1.html"); n != 1 {
		t.Errorf("a cached page was rendered again (%d renders)", n)
	}
	// A docroot without a renderer cannot be warmed.
	f.site.Store.SetRenderer(nil, "")
	if _, err := f.eng.Warm(t.Context(), f.site, urls, WarmOptions{}, nil); !errors.Is(err, ErrNoRenderer) {
		t.Fatalf("without a renderer: %v", err)
	}
}

func TestWarmStopsWhenCancelled(t *testing.T) {
	f := newEngineFixture(t, InvalidationConfig{})
	var urls []string
	f.pages.set(func(p *pages) {
		for i := range 50 {
			path := fmt.Sprintf("/w%d.html", i)
			p.deps[path] = `"x"`
			urls = append(urls, path)
		}
	})
	ctx, cancel := context.WithCancel(t.Context())
	p := &countingProgress{}
	var once sync.Once
	f.site.Store.SetRenderer(cancellingRenderer{siteRenderer{f.site, f.pages}, func() { once.Do(cancel) }}, "")
	_, err := f.eng.Warm(ctx, f.site, urls, WarmOptions{Concurrency: 1}, p)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("warm ended with %v", err)
	}
	if p.done > 2 {
		t.Fatalf("%d URLs done after the cancel", p.done)
	}
}

type cancellingRenderer struct {
	siteRenderer
	cancel func()
}

func (c cancellingRenderer) Regenerate(ctx context.Context, host, key string) (int, error) {
	c.cancel()
	return c.siteRenderer.Regenerate(ctx, host, key)
}

func TestParseSitemap(t *testing.T) {
	tests := []struct {
		name  string
		doc   string
		max   int
		want  ParsedSitemap
		isErr bool
	}{
		{"urlset", `<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
			<url><loc> https://a.example/x </loc><lastmod>2024-01-01</lastmod></url>
			<url><loc>https://a.example/y?p=1&amp;q=2</loc><image:image xmlns:image="i"><image:loc>https://a.example/i.jpg</image:loc></image:image></url>
			</urlset>`, 10, ParsedSitemap{Locs: []string{"https://a.example/x", "https://a.example/y?p=1&q=2"}}, false},
		{"index", `<sitemapindex><sitemap><loc>https://a.example/s1.xml</loc></sitemap></sitemapindex>`, 10,
			ParsedSitemap{Index: true, Locs: []string{"https://a.example/s1.xml"}}, false},
		{"empty urlset", `<urlset></urlset>`, 10, ParsedSitemap{}, false},
		{"truncated", `<urlset><url><loc>a</loc></url><url><loc>b</loc></url><url><loc>c</loc></url></urlset>`, 2,
			ParsedSitemap{Locs: []string{"a", "b"}, Truncated: true}, false},
		{"long loc", `<urlset><url><loc>` + strings.Repeat("x", maxLocBytes+1) + `</loc></url></urlset>`, 2,
			ParsedSitemap{LongLocs: 1}, false},
		{"html", `<html><body>no</body></html>`, 10, ParsedSitemap{}, true},
		{"empty", ``, 10, ParsedSitemap{}, true},
		{"broken", `<urlset><url><loc>a</loc>`, 10, ParsedSitemap{Locs: []string{"a"}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSitemap(strings.NewReader(tt.doc), tt.max)
			if (err != nil) != tt.isErr {
				t.Fatalf("error %v, want error %v", err, tt.isErr)
			}
			if got.Index != tt.want.Index || got.Truncated != tt.want.Truncated || got.LongLocs != tt.want.LongLocs ||
				!slices.Equal(got.Locs, tt.want.Locs) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func FuzzParseSitemap(f *testing.F) {
	f.Add([]byte(`<urlset><url><loc>https://a.example/x</loc></url></urlset>`))
	f.Add([]byte(`<sitemapindex><sitemap><loc>https://a.example/s.xml</loc></sitemap></sitemapindex>`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		ps, _ := ParseSitemap(bytes.NewReader(doc), 5)
		if len(ps.Locs) > 5 {
			t.Fatalf("%d locs, more than the bound", len(ps.Locs))
		}
		for _, l := range ps.Locs {
			if len(l) > maxLocBytes || l == "" {
				t.Fatalf("loc of %d bytes", len(l))
			}
		}
	})
}

func gzipped(t *testing.T, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(s))
	zw.Close()
	return b.Bytes()
}

func TestFetchSitemap(t *testing.T) {
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/index.xml":
			fmt.Fprintf(w, `<sitemapindex><sitemap><loc>%[1]s/a.xml</loc></sitemap><sitemap><loc>%[1]s/b.xml.gz</loc></sitemap>
				<sitemap><loc>https://elsewhere.example/c.xml</loc></sitemap><sitemap><loc>%[1]s/missing.xml</loc></sitemap>
				<sitemap><loc>%[1]s/nested.xml</loc></sitemap></sitemapindex>`, srv.URL)
		case "/a.xml":
			fmt.Fprint(w, `<urlset><url><loc>https://www.example/a1</loc></url><url><loc>https://www.example/a2</loc></url></urlset>`)
		case "/b.xml.gz":
			w.Write(gzipped(t, `<urlset><url><loc>https://www.example/b1</loc></url></urlset>`))
		case "/nested.xml":
			fmt.Fprintf(w, `<sitemapindex><sitemap><loc>%s/a.xml</loc></sitemap></sitemapindex>`, srv.URL)
		case "/big.xml":
			fmt.Fprint(w, `<urlset>`+strings.Repeat(`<url><loc>https://www.example/x</loc></url>`, 1000)+`</urlset>`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	res, err := FetchSitemap(t.Context(), srv.Client(), srv.URL+"/index.xml", SitemapLimits{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"https://www.example/a1", "https://www.example/a2", "https://www.example/b1"}
	if !slices.Equal(res.URLs, want) || res.Sitemaps != 5 || len(res.Errors) != 2 ||
		!slices.Equal(res.Limits, []string{LimitSitemapDepth}) {
		t.Fatalf("got %+v", res)
	}

	res, err = FetchSitemap(t.Context(), srv.Client(), srv.URL+"/index.xml", SitemapLimits{MaxSitemaps: 2, MaxURLs: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.URLs) != 1 || !slices.Contains(res.Limits, LimitSitemapURLs) {
		t.Fatalf("bounded: %+v", res)
	}
	if _, err := FetchSitemap(t.Context(), srv.Client(), srv.URL+"/big.xml", SitemapLimits{MaxBytes: 1000}); !errors.Is(err, ErrSitemapTooLarge) {
		t.Fatalf("too large: %v", err)
	}
	if _, err := FetchSitemap(t.Context(), srv.Client(), srv.URL+"/missing.xml", SitemapLimits{}); err == nil {
		t.Fatal("a missing sitemap must fail")
	}
	if _, err := FetchSitemap(t.Context(), nil, "file:///etc/passwd", SitemapLimits{}); err == nil {
		t.Fatal("only http(s) URLs")
	}
}

func TestSitePaths(t *testing.T) {
	paths, foreign := SitePaths([]string{"https://WWW.example.com/a?x=1", "http://www.example.com:8080/b/",
		"https://www.example.com", "https://other.example/c", "mailto:x@www.example.com", "::"},
		[]string{"www.example.com:443"})
	if want := []string{"/a?x=1", "/b/", "/"}; !slices.Equal(paths, want) || foreign != 3 {
		t.Fatalf("paths %v foreign %d", paths, foreign)
	}
}
