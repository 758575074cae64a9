package cache

import (
	"io/fs"
	"os"

	"github.com/delivery-edge/edge/cache/ssi"
)

// The store's use of its hot set (hotset.go): files read into memory, and
// checked against the disk before they are served (file_ident.go).

// hotGet returns the in-memory copy of a file if it is still the file on
// disk; a copy of a file that changed is dropped.
func (s *Store) hotGet(name string) *hotEntry {
	e := s.hot.get(name)
	if e == nil || s.hot.fresh(e) {
		return e
	}
	if id, ok := s.statIdent(name, e.cname); ok && id == e.ident {
		return e
	}
	s.hot.invalidate(name)
	return nil
}

// dropHot forgets the in-memory copy of a file after it changed on disk.
func (s *Store) dropHot(name string) {
	if s.hot != nil {
		s.hot.invalidate(name)
	}
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

// statIdent is the identity of a docroot file as it is on disk now. Where
// it can, it stats the file with one fstatat relative to the docroot,
// allocating nothing (cname is the name NUL-terminated, made once when
// the file was read into memory); else through the os.Root.
func (s *Store) statIdent(name string, cname []byte) (fileIdent, bool) {
	if haveStatAt && s.rootDir != nil {
		return statAt(s.dirfd, cname)
	}
	info, err := s.root.Stat(name)
	if err != nil || !info.Mode().IsRegular() {
		return fileIdent{}, false
	}
	return identOfInfo(info), true
}
