package cache

import (
	"io"
	"io/fs"
	"net/http"
	"os"
	"strconv"
)

// Answers from an open file that is not (or cannot be) held in memory.

// serveDisk answers from an open file that is not (or cannot be) held in
// memory: headers, then the file handed to the writer's ReadFrom, which
// reaches sendfile(2) through Caddy's response writers. stale marks a
// ".old" copy (its precompressed copies are not its own); the caller sets
// the answer's status, Delivery-Stale included.
func (s *Store) serveDisk(w http.ResponseWriter, r *http.Request, f *os.File, info fs.FileInfo, t Target, stale bool) {
	h := w.Header()
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
