package cache

import (
	"bytes"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// The hit path. A hit is what the edge does millions of times a day, so:
//
//   - plain request paths map to their file without allocating (fastFile);
//   - the hottest small files are answered from the hot set (memory), with
//     every header value precomputed (serveHot);
//   - other files go to the kernel: the open *os.File is handed to the
//     response writer's ReadFrom, which Caddy's writers pass down to
//     net/http, which uses sendfile(2) (Store.serveDisk, store_serve.go);
//   - requests with conditions or ranges take http.ServeContent.
//
// Site.ServeHTTP (site.go) takes these steps in that order.

// fastFile returns the docroot file of a plain request path — only bytes
// that Map keeps as they are, no query, no empty or dot-led segment, not
// a folder index, not a reserved name, within the bounds of what is
// stored — without allocating. Anything else
// goes through Mapper.Map, which gives the same name for such paths.
func fastFile(u *url.URL) (string, bool) {
	p := u.Path
	if u.RawQuery != "" || len(p) < 2 || len(p) > MaxPathBytes || p[0] != '/' || p[len(p)-1] == '/' ||
		strings.Count(p, "/") > MaxPathSegments {
		return "", false
	}
	start := 1
	for i := 1; i <= len(p); i++ {
		if i < len(p) && p[i] != '/' {
			if !safeByte(p[i]) {
				return "", false
			}
			continue
		}
		seg := p[start:i]
		if len(seg) == 0 || seg[0] == '.' || len(seg) > maxSegmentBytes || hasSuffixFold(seg, OldSuffix) {
			return "", false
		}
		start = i + 1
	}
	last := p[strings.LastIndexByte(p, '/')+1:]
	if last == IndexName || hasSuffixFold(last, GzipSuffix) || hasSuffixFold(last, BrotliSuffix) {
		return "", false
	}
	return p[1:], true
}

func hasSuffixFold(s, suffix string) bool {
	return len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix)
}

// newHotEntry prepares the answer for a file's content.
func newHotEntry(body, gz, br []byte, info fs.FileInfo, ctype string, ssi bool) *hotEntry {
	one := func(v string) []string { return []string{v}[:1:1] }
	etag := etagOf(info)
	e := &hotEntry{body: body, gzip: gz, brotli: br, modTime: info.ModTime(), ssi: ssi, info: info, ident: identOfInfo(info),
		etag: one(etag), lastMod: one(info.ModTime().UTC().Format(http.TimeFormat)), ctype: one(ctype),
		length: one(strconv.Itoa(len(body)))}
	if gz != nil {
		e.gzLength, e.gzEtag = one(strconv.Itoa(len(gz))), one(etag[:len(etag)-1]+`-gz"`)
	}
	if br != nil {
		e.brLength, e.brEtag = one(strconv.Itoa(len(br))), one(etag[:len(etag)-1]+`-br"`)
	}
	return e
}

// Header values shared by every answer (cap == len: an append copies).
var (
	hdrBytes      = []string{"bytes"}[:1:1]
	hdrVaryAE     = []string{"Accept-Encoding"}[:1:1]
	hdrGzip       = []string{"gzip"}[:1:1]
	hdrBrotli     = []string{"br"}[:1:1]
	hdrStaleValue = []string{"1"}[:1:1]
)

// acceptsEncoding reports whether an Accept-Encoding value allows coding
// (by name or "*") with a quality above zero.
func acceptsEncoding(ae, coding string) bool {
	for ae != "" {
		var item string
		item, ae, _ = strings.Cut(ae, ",")
		name, params, _ := strings.Cut(item, ";")
		name = strings.TrimSpace(name)
		if !strings.EqualFold(name, coding) && name != "*" {
			continue
		}
		q := strings.TrimSpace(params)
		if v, ok := strings.CutPrefix(q, "q="); ok {
			if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && f == 0 {
				return false
			}
		}
		return true
	}
	return false
}

// serveHot answers from a hot entry.
func serveHot(w http.ResponseWriter, r *http.Request, e *hotEntry) {
	h := w.Header()
	body, etag, length := e.body, e.etag, e.length
	if e.gzip != nil || e.brotli != nil {
		h["Vary"] = hdrVaryAE
		if ae := r.Header.Get("Accept-Encoding"); ae != "" {
			switch {
			case e.brotli != nil && acceptsEncoding(ae, "br"):
				body, etag, length = e.brotli, e.brEtag, e.brLength
				h["Content-Encoding"] = hdrBrotli
			case e.gzip != nil && acceptsEncoding(ae, "gzip"):
				body, etag, length = e.gzip, e.gzEtag, e.gzLength
				h["Content-Encoding"] = hdrGzip
			}
		}
	}
	h["Content-Type"] = e.ctype
	h["Etag"] = etag
	if hasConditionsOrRange(r) {
		http.ServeContent(w, r, "", e.modTime, bytes.NewReader(body))
		return
	}
	h["Last-Modified"] = e.lastMod
	h["Accept-Ranges"] = hdrBytes
	h["Content-Length"] = length
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// contentType is the type of a file: by the URL's extension, else sniffed
// from its first bytes.
func contentType(ext string, head []byte) string {
	if ct := mime.TypeByExtension(ext); ct != "" {
		return ct
	}
	return http.DetectContentType(head)
}
