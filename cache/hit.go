package cache

import (
	"bytes"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/delivery-edge/edge/cache/ssi"
)

// The hit path. A hit is what the edge does millions of times a day, so:
//
//   - plain request paths map to their file without allocating (fastFile);
//   - the hottest small files are answered from the hot set (memory), with
//     every header value precomputed;
//   - other files go to the kernel: the open *os.File is handed to the
//     response writer's ReadFrom, which Caddy's writers pass down to
//     net/http, which uses sendfile(2);
//   - requests with conditions or ranges take http.ServeContent.

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

// readHot reads a file (and its precompressed copies of the same version)
// into a hot entry; a file marked for SSI is kept with its directives,
// whichever site reads it first.
func (s *Store) readHot(f *os.File, info fs.FileInfo, t Target) (*hotEntry, bool) {
	marked := ssi.Marked(info)
	part, err := ssi.ReadBody(f, info.Size(), marked, s.hot.maxEntry)
	if err != nil || part.Data == nil {
		return nil, false
	}
	body := part.Data
	var variants [2][]byte
	if s.precompressed.Load() {
		for i, suffix := range []string{GzipSuffix, BrotliSuffix} {
			if vf, vinfo, ok := s.openVariant(t.File, suffix, info); ok {
				b := make([]byte, vinfo.Size())
				if n, _ := vf.ReadAt(b, 0); int64(n) == vinfo.Size() {
					variants[i] = b
				}
				vf.Close()
			}
		}
	}
	e := newHotEntry(body, variants[0], variants[1], info, contentType(t.Ext, body[:min(len(body), 512)]), marked)
	e.part = part
	return e, true
}

// serveDisk answers from an open file that is not (or cannot be) held in
// memory: headers, then the file handed to the writer's ReadFrom, which
// reaches sendfile(2) through Caddy's response writers.
func (s *Store) serveDisk(w http.ResponseWriter, r *http.Request, f *os.File, info fs.FileInfo, t Target, stale bool) {
	h := w.Header()
	if stale {
		h[HeaderStale] = hdrStaleValue
	}
	if !stale && s.precompressed.Load() {
		if ae := r.Header.Get("Accept-Encoding"); ae != "" {
			for _, v := range []struct{ coding, suffix string }{{"br", BrotliSuffix}, {"gzip", GzipSuffix}} {
				if !acceptsEncoding(ae, v.coding) {
					continue
				}
				if vf, vinfo, ok := s.openVariant(t.File, v.suffix, info); ok {
					defer vf.Close()
					h["Content-Encoding"] = []string{v.coding}
					h["Vary"] = hdrVaryAE
					etag := etagOf(info)
					f, info, etag = vf, vinfo, etag[:len(etag)-1]+"-"+v.coding[:2]+`"`
					s.writeFile(w, r, f, info, t, etag)
					return
				}
			}
		}
	}
	s.writeFile(w, r, f, info, t, etagOf(info))
}

func (s *Store) writeFile(w http.ResponseWriter, r *http.Request, f *os.File, info fs.FileInfo, t Target, etag string) {
	h := w.Header()
	if _, set := h["Content-Type"]; !set && h.Get("Content-Encoding") == "" {
		var head [512]byte
		n, _ := f.ReadAt(head[:], 0)
		h.Set("Content-Type", contentType(t.Ext, head[:n]))
	} else if !set {
		h.Set("Content-Type", contentType(t.Ext, nil))
	}
	h.Set("Etag", etag)
	if hasConditionsOrRange(r) {
		http.ServeContent(w, r, "", info.ModTime(), f)
		return
	}
	h.Set("Last-Modified", info.ModTime().UTC().Format(http.TimeFormat))
	h["Accept-Ranges"] = hdrBytes
	h.Set("Content-Length", strconv.FormatInt(info.Size(), 10))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	// The *os.File itself goes to ReadFrom: net/http turns that into
	// sendfile (io.Copy would hide the file behind a wrapper first).
	if rf, ok := w.(io.ReaderFrom); ok {
		_, _ = rf.ReadFrom(f)
		return
	}
	_, _ = io.Copy(w, f)
}

// touch records a read of a file for the queue choice.
func (s *Store) touch(file string, now time.Time) {
	s.access.Touch(FileID{Root: s.rootID, File: file}, now.UnixMilli())
}
