package cache

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
)

// Symbolic links in the docroot. The os.Root keeps every access inside the
// docroot, but a link that stays inside may still lead to a file the cache
// keeps for itself (a ".old" copy, the temp folder, a precompressed copy).
// Like nginx's disable_symlinks, a link is followed only when its target
// passes the rules a request path must pass; and the edge never writes,
// renames or deletes through a link: links are the operator's.

// deletedSuffix is what Linux appends to the path of an open file that
// has been unlinked since (no name the edge writes contains a space).
const deletedSuffix = " (deleted)"

// docrootRealPath is the real path of the open docroot as the kernel
// reports it for a descriptor, ending in "/"; "" where /proc/self/fd is not
// available (then only a link as the last component is checked on a hit).
func docrootRealPath(root *os.Root) string {
	d, err := root.Open(".")
	if err != nil {
		return ""
	}
	defer d.Close()
	var buf [4096]byte
	n, err := readFdPath(d.Fd(), buf[:])
	if err != nil || n == 0 || n == len(buf) || buf[0] != '/' {
		return ""
	}
	p := string(buf[:n])
	// The path must name this very folder in our view of the file system.
	want, err1 := d.Stat()
	got, err2 := os.Stat(p)
	if err1 != nil || err2 != nil || !os.SameFile(want, got) {
		return ""
	}
	if !strings.HasSuffix(p, "/") {
		p += "/"
	}
	return p
}

// servable reports whether a regular file just opened for name may be
// served: no link led to it, or the link's target passes the rules of a
// request path. With /proc this is one readlink of the open descriptor
// (nothing can change between the check and the read); without it, one
// Lstat of the last component.
func (s *Store) servable(f *os.File, name string) bool {
	if s.realRoot == "" {
		return s.servableNoProc(name)
	}
	var buf [512]byte
	n, err := readFdPath(f.Fd(), buf[:])
	if err != nil {
		return false
	}
	got := buf[:n]
	if n == len(buf) {
		long, err := os.Readlink("/proc/self/fd/" + strconv.FormatUint(uint64(f.Fd()), 10))
		if err != nil {
			return false
		}
		got = []byte(long)
	}
	root := s.realRoot
	if len(got) == len(root)+len(name) && string(got[:len(root)]) == root && string(got[len(root):]) == name {
		return true // the common case: no link on the way
	}
	rel, inside := strings.CutPrefix(string(got), root)
	return inside && !s.internalFile(strings.TrimSuffix(rel, deletedSuffix))
}

// servableNoProc is servable where an open file's path cannot be read:
// a link as the last component is followed only if no segment of its
// target text is internal.
func (s *Store) servableNoProc(name string) bool {
	info, err := s.root.Lstat(name)
	if err != nil {
		return false
	}
	if info.Mode()&fs.ModeSymlink == 0 {
		return true
	}
	return !s.linkToInternal(name)
}

// linkToInternal reports whether the link at name leads to a file or folder
// the cache keeps for itself (or out of the docroot). A dangling link
// leads nowhere and is not internal.
func (s *Store) linkToInternal(name string) bool {
	if s.realRoot == "" {
		target, err := s.root.Readlink(name)
		return err == nil && s.internalFile(strings.TrimPrefix(path.Clean(target), "/"))
	}
	f, err := s.root.Open(name)
	if err != nil {
		return false
	}
	defer f.Close()
	got, err := os.Readlink("/proc/self/fd/" + strconv.FormatUint(uint64(f.Fd()), 10))
	if err != nil {
		return true
	}
	rel, inside := strings.CutPrefix(got+"/", s.realRoot)
	return !inside || s.internalFile(strings.TrimSuffix(strings.TrimSuffix(rel, "/"), deletedSuffix))
}

// internalFile reports whether a docroot-relative name (as it is on disk)
// is one the cache keeps for itself: a segment that starts with
// InternalPrefix or ends in OldSuffix, or precompressed copies when a site
// of this docroot writes them. "." and ".." segments of a link's text are
// skipped; the segments they lead to are checked in their own right.
func (s *Store) internalFile(name string) bool {
	var reserved []string
	if s.precompressed.Load() {
		reserved = precompressedSuffixes
	}
	for name != "" {
		seg, rest, _ := strings.Cut(name, "/")
		if seg != "." && seg != ".." && seg != "" && reservedSegment(seg, rest == "", reserved) {
			return true
		}
		name = rest
	}
	return false
}

var precompressedSuffixes = []string{GzipSuffix, BrotliSuffix}

// pathState is what is on the way to a name's folder.
type pathState uint8

const (
	pathOK      pathState = iota // every folder exists and none is a link
	pathMissing                  // a folder does not exist (yet)
	pathBlocked                  // something other than a folder is in the way (a file)
	pathLinked                   // a folder on the way is a symbolic link
)

// walkParent opens the folder of name one segment at a time without
// following a link. For pathOK, dir is the folder (release it with
// closeDir); for pathLinked, at is the link's name.
func (s *Store) walkParent(name string) (dir *os.Root, at string, st pathState) {
	parent := path.Dir(name)
	if parent == "." {
		return s.root, "", pathOK
	}
	d, done := s.root, 0
	for done < len(parent) {
		seg, _, _ := strings.Cut(parent[done:], "/")
		info, err := d.Lstat(seg)
		st := pathOK
		switch {
		case errors.Is(err, fs.ErrNotExist):
			st = pathMissing
		case err != nil || !info.Mode().IsDir() && info.Mode()&fs.ModeSymlink == 0:
			st = pathBlocked
		case info.Mode()&fs.ModeSymlink != 0:
			st = pathLinked
		}
		var next *os.Root
		if st == pathOK {
			if next, err = d.OpenRoot(seg); err != nil {
				st = pathBlocked
				if errors.Is(err, fs.ErrNotExist) {
					st = pathMissing
				}
			}
		}
		s.closeDir(d)
		if st != pathOK {
			return nil, parent[:done+len(seg)], st
		}
		d, done = next, done+len(seg)+1
	}
	return d, "", pathOK
}

// closeDir releases a folder walkParent opened.
func (s *Store) closeDir(d *os.Root) {
	if d != nil && d != s.root {
		d.Close()
	}
}

// missAction is what a miss may do with a name.
type missAction uint8

const (
	missRender      missAction = iota // render, store and answer
	missPassThrough                   // render for this answer only
	missRefused                       // a link leads to an internal file: 404
)

// checkMiss decides, before a render, whether the name can hold a file of
// the edge: a file in the way of a folder, a folder at the name, or a link
// on the way (the render would land under another name, or replace the
// operator's link) make the request a plain pass-through; a link to an
// internal file or folder is refused.
func (s *Store) checkMiss(name string) missAction {
	d, at, st := s.walkParent(name)
	switch st {
	case pathMissing:
		return missRender // install creates the folders
	case pathBlocked:
		return missPassThrough
	case pathLinked:
		if s.linkToInternal(at) {
			return missRefused
		}
		return missPassThrough
	}
	info, err := d.Lstat(path.Base(name))
	s.closeDir(d)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return missRender
	case err != nil:
		return missPassThrough
	case info.Mode()&fs.ModeSymlink != 0:
		if s.linkToInternal(name) {
			return missRefused
		}
		return missPassThrough
	case info.Mode().IsRegular():
		return missRender // e.g. replaced since the hit path looked
	}
	return missPassThrough
}
