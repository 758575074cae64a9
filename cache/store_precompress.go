package cache

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"os"
	"strings"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
)

// Suffixes of the precompressed copies written next to a page, like the
// files nginx's gzip_static and brotli_static serve.
const (
	GzipSuffix   = ".gz"
	BrotliSuffix = ".br"
)

// minCompressSize: smaller answers gain too little to be worth a file.
const minCompressSize = 512

// compressible reports whether an answer of this type is worth compressing.
func compressible(contentType, ext string) bool {
	ct := contentType
	if ct == "" {
		ct = mime.TypeByExtension(ext)
	}
	ct, _, _ = strings.Cut(ct, ";")
	ct = strings.TrimSpace(strings.ToLower(ct))
	switch {
	case strings.HasPrefix(ct, "text/"):
		return true
	case ct == "application/json", ct == "application/javascript", ct == "application/xml",
		ct == "image/svg+xml", ct == "application/rss+xml", ct == "application/atom+xml",
		strings.HasSuffix(ct, "+json"), strings.HasSuffix(ct, "+xml"):
		return true
	}
	return false
}

// precompressed are the temp files of a page's compressed copies.
type precompressed struct{ gzip, brotli string }

// precompress writes gzip and brotli copies of a finished temp file into
// the temp folder. Each copy gets the page's modification time, which is
// how the hit path recognises a copy that belongs to the page it serves:
// a copy left over from an older version has another time and is ignored.
func (s *Store) precompress(tmpName string) (precompressed, error) {
	var out precompressed
	src, err := s.root.Open(tmpName)
	if err != nil {
		return out, err
	}
	defer src.Close()
	info, err := src.Stat()
	if err != nil {
		return out, err
	}
	if info.Size() < minCompressSize {
		return out, nil
	}
	for _, c := range []struct {
		dst *string
		new func(io.Writer) io.WriteCloser
	}{
		{&out.gzip, func(w io.Writer) io.WriteCloser {
			zw, _ := gzip.NewWriterLevel(w, gzip.DefaultCompression)
			return zw
		}},
		{&out.brotli, func(w io.Writer) io.WriteCloser { return brotli.NewWriterLevel(w, 5) }},
	} {
		if _, err := src.Seek(0, io.SeekStart); err != nil {
			return out, err
		}
		name, err := s.compressTo(src, c.new)
		if err != nil {
			s.discardPrecompressed(out)
			return precompressed{}, err
		}
		if err := s.root.Chtimes(name, info.ModTime(), info.ModTime()); err != nil {
			s.removeQuiet(name)
			s.discardPrecompressed(out)
			return precompressed{}, fmt.Errorf("date compressed copy: %w", err)
		}
		*c.dst = name
	}
	return out, nil
}

func (s *Store) compressTo(src io.Reader, newWriter func(io.Writer) io.WriteCloser) (string, error) {
	f, name, err := s.createTemp()
	if err != nil {
		return "", err
	}
	zw := newWriter(f)
	_, err = io.Copy(zw, src)
	err = errors.Join(err, zw.Close(), f.Close())
	if err != nil {
		s.removeQuiet(name)
		return "", fmt.Errorf("compress: %w", err)
	}
	return name, nil
}

func (s *Store) discardPrecompressed(p precompressed) {
	for _, n := range []string{p.gzip, p.brotli} {
		if n != "" {
			s.removeQuiet(n)
		}
	}
}

// openVariant opens the precompressed copy of name (suffix .gz or .br) if
// it belongs to the page version with modification time mod.
func (s *Store) openVariant(name, suffix string, page os.FileInfo) (*os.File, os.FileInfo, bool) {
	f, info, ok := s.openRegular(name + suffix)
	if !ok {
		return nil, nil, false
	}
	if !info.ModTime().Equal(page.ModTime()) {
		f.Close()
		return nil, nil, false
	}
	return f, info, true
}
