package cache

import (
	"errors"
	"io/fs"
	"os"
	"time"
)

// Reading the docroot.

// openRegular opens a file for serving; ok is false when there is none
// (or it is not a regular file, e.g. a folder of deeper pages, or a link
// led to a file the cache keeps for itself).
func (s *Store) openRegular(name string) (*os.File, fs.FileInfo, bool) {
	var f *os.File
	err, linked := errLinked, false
	if s.direct != nil {
		// No link on the way: nothing to check (the common case).
		f, err = s.openDirect(name)
	}
	if errors.Is(err, errLinked) {
		f, err = s.root.Open(name)
		linked = true
	}
	if err != nil {
		return nil, nil, false
	}
	info, err := f.Stat()
	if err != nil || !info.Mode().IsRegular() || linked && !s.servable(f, name) {
		f.Close()
		return nil, nil, false
	}
	return f, info, true
}

// openServe opens a docroot file for serving. The hot set's epoch is read
// first: a copy made from this file is kept only if nothing changed the
// file since.
func (s *Store) openServe(name string) (*os.File, fs.FileInfo, uint64, bool) {
	var epoch uint64
	if s.hot != nil {
		epoch = s.hot.epoch(name)
	}
	f, info, ok := s.openRegular(name)
	return f, info, epoch, ok
}

// writtenSince reports whether a file was written after ms (Unix ms).
func (s *Store) writtenSince(name string, ms int64) bool {
	info, err := s.root.Lstat(name)
	return err == nil && info.ModTime().UnixMilli() > ms
}

// exists reports whether a docroot file exists.
func (s *Store) exists(name string) bool {
	_, err := s.root.Stat(name)
	return err == nil
}

// touch records a read of a file for the queue choice.
func (s *Store) touch(file string, now time.Time) {
	s.access.Touch(FileID{Root: s.rootID, File: file}, now.UnixMilli())
}
