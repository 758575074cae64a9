package cache

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Sitemaps (sitemaps.org) for warming: a urlset lists pages, a
// sitemapindex lists sitemaps. Both come from outside and are read with
// bounds on size, count, nesting and time; gzip-compressed files are read
// too.

// SitemapLimits bound reading sitemaps; zero fields take the defaults.
type SitemapLimits struct {
	// MaxBytes bounds one sitemap, uncompressed (default 50 MiB, the most
	// sitemaps.org allows).
	MaxBytes int64
	// MaxURLs bounds the page URLs taken from all sitemaps (default
	// 100,000).
	MaxURLs int
	// MaxSitemaps bounds the sitemaps fetched, the first included (default
	// 100).
	MaxSitemaps int
	// MaxDepth bounds nesting: 1 reads one sitemap, 2 (the default) an
	// index and its sitemaps.
	MaxDepth int
	// Timeout bounds all fetches together (default 2 minutes).
	Timeout time.Duration
}

// Defaults of SitemapLimits.
const (
	DefaultSitemapBytes    = 50 << 20
	DefaultSitemapURLs     = 100_000
	DefaultSitemapSitemaps = 100
	DefaultSitemapDepth    = 2
	DefaultSitemapTimeout  = 2 * time.Minute
	// maxLocBytes bounds one <loc>; a longer one is skipped.
	maxLocBytes = 4096
)

func (l SitemapLimits) withDefaults() SitemapLimits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultSitemapBytes
	}
	if l.MaxURLs <= 0 {
		l.MaxURLs = DefaultSitemapURLs
	}
	if l.MaxSitemaps <= 0 {
		l.MaxSitemaps = DefaultSitemapSitemaps
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultSitemapDepth
	}
	if l.Timeout <= 0 {
		l.Timeout = DefaultSitemapTimeout
	}
	return l
}

// Names of the sitemap bounds, as SitemapResult.Limits reports them.
const (
	LimitSitemapURLs     = "sitemap_urls"
	LimitSitemapSitemaps = "sitemap_sitemaps"
	LimitSitemapDepth    = "sitemap_depth"
	LimitSitemapLoc      = "sitemap_loc_bytes"
)

// ErrNotSitemap: the document is neither a urlset nor a sitemapindex.
var ErrNotSitemap = errors.New("not a sitemap (want <urlset> or <sitemapindex>)")

// ErrSitemapTooLarge: a sitemap is larger than MaxBytes.
var ErrSitemapTooLarge = errors.New("sitemap larger than the limit")

// ParsedSitemap is one sitemap document.
type ParsedSitemap struct {
	// Index is set for a sitemapindex: Locs are sitemaps, not pages.
	Index bool
	Locs  []string
	// Truncated: more than maxLocs locs; the rest were not read.
	Truncated bool
	// LongLocs counts locs skipped for being longer than maxLocBytes.
	LongLocs int
}

// ParseSitemap reads a sitemap or sitemap index, up to maxLocs locations.
func ParseSitemap(r io.Reader, maxLocs int) (ParsedSitemap, error) {
	var ps ParsedSitemap
	d := xml.NewDecoder(r)
	depth := 0
	root, inLoc := false, false
	var loc strings.Builder
	long := false
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			if !root {
				return ps, ErrNotSitemap // empty document
			}
			return ps, nil
		}
		if err != nil {
			return ps, fmt.Errorf("sitemap: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			switch {
			case depth == 1 && t.Name.Local == "urlset":
				root = true
			case depth == 1 && t.Name.Local == "sitemapindex":
				root, ps.Index = true, true
			case depth == 1:
				return ps, ErrNotSitemap
			case depth == 3 && t.Name.Local == "loc":
				inLoc, long = true, false
				loc.Reset()
			}
		case xml.CharData:
			if inLoc && !long {
				if loc.Len()+len(t) > maxLocBytes {
					long = true
				} else {
					loc.Write(t)
				}
			}
		case xml.EndElement:
			if inLoc && depth == 3 {
				inLoc = false
				switch s := strings.TrimSpace(loc.String()); {
				case long:
					ps.LongLocs++
				case s == "":
				case len(ps.Locs) >= maxLocs:
					ps.Truncated = true
					return ps, nil
				default:
					ps.Locs = append(ps.Locs, s)
				}
			}
			depth--
		}
	}
}

// SitemapResult is what fetching a sitemap (and the sitemaps of an index)
// found.
type SitemapResult struct {
	// URLs are the page locations, as written (absolute URLs).
	URLs []string `json:"-"`
	// Sitemaps counts the sitemaps read.
	Sitemaps int `json:"sitemaps"`
	// Limits names the bounds that were hit (SitemapLimit*).
	Limits []string `json:"limits,omitempty"`
	// Errors are sitemaps of an index that could not be read.
	Errors []string `json:"errors,omitempty"`
}

// FetchSitemap reads a sitemap from an http(s) URL; a sitemap index's
// sitemaps are read too when they are on the same host (bounded by l).
// client nil: a client of its own. An error is returned when the first
// sitemap cannot be read.
func FetchSitemap(ctx context.Context, client *http.Client, rawURL string, l SitemapLimits) (SitemapResult, error) {
	var res SitemapResult
	l = l.withDefaults()
	root, err := url.Parse(rawURL)
	if err != nil || (root.Scheme != "http" && root.Scheme != "https") || root.Host == "" {
		return res, fmt.Errorf("sitemap %q: not an http(s) URL", rawURL)
	}
	if client == nil {
		client = sitemapClient()
	}
	ctx, cancel := context.WithTimeout(ctx, l.Timeout)
	defer cancel()
	limit := func(name string) {
		for _, n := range res.Limits {
			if n == name {
				return
			}
		}
		res.Limits = append(res.Limits, name)
	}
	type item struct {
		url   string
		depth int
	}
	queue := []item{{root.String(), 1}}
	for len(queue) > 0 {
		it := queue[0]
		queue = queue[1:]
		if res.Sitemaps >= l.MaxSitemaps {
			limit(LimitSitemapSitemaps)
			break
		}
		res.Sitemaps++
		ps, err := fetchOne(ctx, client, it.url, l.MaxBytes, l.MaxURLs-len(res.URLs))
		if err != nil {
			if it.depth == 1 {
				return res, err
			}
			res.Errors = append(res.Errors, err.Error())
			continue
		}
		if ps.LongLocs > 0 {
			limit(LimitSitemapLoc)
		}
		if ps.Index {
			if it.depth >= l.MaxDepth {
				limit(LimitSitemapDepth)
				continue
			}
			for _, loc := range ps.Locs {
				u, err := url.Parse(loc)
				if err != nil || (u.Scheme != "http" && u.Scheme != "https") || !strings.EqualFold(u.Host, root.Host) {
					res.Errors = append(res.Errors, fmt.Sprintf("sitemap %q: not on the host of %s", loc, root.Host))
					continue
				}
				queue = append(queue, item{u.String(), it.depth + 1})
			}
			if ps.Truncated {
				limit(LimitSitemapSitemaps)
			}
			continue
		}
		res.URLs = append(res.URLs, ps.Locs...)
		if ps.Truncated || len(res.URLs) >= l.MaxURLs {
			limit(LimitSitemapURLs)
			break
		}
	}
	if len(res.Errors) > 100 {
		res.Errors = append(res.Errors[:100], fmt.Sprintf("… and %d more", len(res.Errors)-100))
	}
	return res, ctx.Err()
}

// fetchOne fetches and parses one sitemap.
func fetchOne(ctx context.Context, client *http.Client, u string, maxBytes int64, maxLocs int) (ParsedSitemap, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return ParsedSitemap{}, fmt.Errorf("sitemap %s: %w", u, err)
	}
	req.Header.Set("User-Agent", "delivery-edge-warm")
	resp, err := client.Do(req)
	if err != nil {
		return ParsedSitemap{}, fmt.Errorf("sitemap %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return ParsedSitemap{}, fmt.Errorf("sitemap %s: status %d", u, resp.StatusCode)
	}
	if resp.ContentLength > maxBytes {
		return ParsedSitemap{}, fmt.Errorf("sitemap %s: %w (%d bytes)", u, ErrSitemapTooLarge, maxBytes)
	}
	body, tooLarge, err := sitemapBody(resp.Body, maxBytes)
	if err != nil {
		return ParsedSitemap{}, fmt.Errorf("sitemap %s: %w", u, err)
	}
	ps, err := ParseSitemap(body, max(maxLocs, 0))
	if err != nil && tooLarge() {
		return ps, fmt.Errorf("sitemap %s: %w (%d bytes)", u, ErrSitemapTooLarge, maxBytes)
	}
	if err != nil {
		return ps, fmt.Errorf("sitemap %s: %w", u, err)
	}
	return ps, nil
}

var errTooLarge = errors.New("too large")

// boundedReader reads at most n bytes and then fails, remembering that it
// did (a truncated document must not pass for a complete one).
type boundedReader struct {
	r    io.Reader
	n    int64
	over bool
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.n <= 0 {
		// One byte more tells whether there was more.
		var one [1]byte
		n, err := b.r.Read(one[:])
		if n > 0 {
			b.over = true
			return 0, errTooLarge
		}
		if err == nil {
			err = io.EOF
		}
		return 0, err
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	n, err := b.r.Read(p)
	b.n -= int64(n)
	return n, err
}

// sitemapBody is the sitemap's XML, bounded to maxBytes (compressed and
// uncompressed), gunzipped when the file is gzip-compressed (a .xml.gz
// served as is); tooLarge tells after a read error whether a bound was
// the cause.
func sitemapBody(r io.Reader, maxBytes int64) (body io.Reader, tooLarge func() bool, err error) {
	raw := &boundedReader{r: r, n: maxBytes}
	br := bufio.NewReader(raw)
	magic, _ := br.Peek(2)
	if !bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		return br, func() bool { return raw.over }, nil
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		return nil, nil, err
	}
	plain := &boundedReader{r: zr, n: maxBytes}
	return plain, func() bool { return raw.over || plain.over }, nil
}

// sitemapClient fetches sitemaps: no proxy from the environment (the
// sitemap is normally the site's own), bounded waits, few redirects.
func sitemapClient() *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: 15 * time.Second,
			MaxIdleConnsPerHost:   2,
			IdleConnTimeout:       30 * time.Second,
		},
		CheckRedirect: func(_ *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("more than 5 redirects")
			}
			return nil
		},
	}
}

// SitePaths keeps the URLs whose host is one of hosts (names compared
// without port, whatever the case) and returns them as request paths
// (path and query); foreign counts the others (and unusable ones).
func SitePaths(urls []string, hosts []string) (paths []string, foreign int) {
	want := map[string]bool{}
	for _, h := range hosts {
		want[hostName(h)] = true
	}
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || !want[hostName(u.Host)] {
			foreign++
			continue
		}
		p := u.EscapedPath()
		if p == "" {
			p = "/"
		}
		if u.RawQuery != "" {
			p += "?" + u.RawQuery
		}
		paths = append(paths, p)
	}
	return paths, foreign
}

// hostName is a host without its port, lower case.
func hostName(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	return strings.ToLower(strings.Trim(h, "[]"))
}
