package cache

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// Writing and removing: every file the edge writes is written in the temp
// folder and put in place whole (renamed; on Linux linked or exchanged,
// store_install_linux.go), and the edge removes only its own files
// (never a link, a folder or anything reached through a link).

// createTemp opens a new file in the temp folder.
func (s *Store) createTemp() (*os.File, string, error) {
	var b [8]byte
	_, _ = rand.Read(b[:])
	if s.tmpDirect != nil {
		f, err := s.createTempDirect(hex.EncodeToString(b[:]))
		if err != nil {
			return nil, "", fmt.Errorf("create temp file: %w", err)
		}
		return f, f.Name(), nil
	}
	name := path.Join(TempDir, hex.EncodeToString(b[:]))
	f, err := s.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, "", fmt.Errorf("create temp file: %w", err)
	}
	return f, name, nil
}

// errConflict means the name is taken by a folder, or a parent by a file.
var errConflict = errors.New("file and folder names conflict")

// install renames a finished temp file into place, creating folders as
// needed, and deletes the ".old" copy. Precompressed copies go into place
// first; copies of an older version are removed (they would be ignored
// anyway: a copy is served only with its page's modification time).
func (s *Store) install(tmp, name string, variants precompressed) error {
	defer s.size.lock(name).Unlock()
	if done, err := s.installDirect(tmp, name, variants); done {
		return err
	}
	if err := s.makeRoomFor(name); err != nil {
		s.discardPrecompressed(variants)
		return err
	}
	s.installVariant(variants.gzip, name+GzipSuffix)
	s.installVariant(variants.brotli, name+BrotliSuffix)
	n, _ := s.regularSize(tmp)
	old, had := s.regularSize(name)
	if err := s.root.Rename(tmp, name); err != nil {
		if errors.Is(err, syscall.EISDIR) || errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.EEXIST) ||
			errors.Is(err, syscall.ENOTEMPTY) {
			return errConflict
		}
		return fmt.Errorf("rename into place %s: %w", name, err)
	}
	s.size.replaced(n, old, had)
	s.dropHot(name)
	s.removeQuiet(name + OldSuffix)
	return nil
}

// makeRoomFor creates the folders of name as needed. It never writes
// through a link, nor over one: the file would land under another name, or
// replace the operator's link.
func (s *Store) makeRoomFor(name string) error {
	d, _, st := s.walkParent(name)
	switch st {
	case pathBlocked, pathLinked:
		return errConflict
	case pathOK:
		info, err := d.Lstat(path.Base(name))
		s.closeDir(d)
		if err == nil && info.Mode()&fs.ModeSymlink != 0 {
			return errConflict
		}
		return nil
	}
	if err := s.root.MkdirAll(path.Dir(name), 0o755); err != nil {
		if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, fs.ErrExist) {
			return errConflict
		}
		return fmt.Errorf("create folder for %s: %w", name, err)
	}
	return nil
}

// installVariant puts a precompressed copy in place, or removes an old one.
func (s *Store) installVariant(tmp, name string) {
	if tmp == "" {
		if s.precompressed.Load() {
			s.removeQuiet(name)
		}
		return
	}
	n, _ := s.regularSize(tmp)
	old, had := s.regularSize(name)
	if err := s.root.Rename(tmp, name); err != nil {
		s.removeQuiet(tmp)
		s.removeQuiet(name)
		return
	}
	s.size.replaced(n, old, had)
}

// keepAsOld renames a finished temp file to the ".old" copy of name.
func (s *Store) keepAsOld(tmp, name string) {
	defer s.size.lock(name).Unlock()
	n, _ := s.regularSize(tmp)
	old, had := s.regularSize(name + OldSuffix)
	if err := s.root.Rename(tmp, name+OldSuffix); err != nil {
		s.removeQuiet(tmp)
		return
	}
	s.size.replaced(n, old, had)
}

// Invalidate renames a file to its ".old" copy; a render in progress for
// it is marked outdated. It reports whether there was a file.
func (s *Store) Invalidate(name string) (bool, error) {
	s.flights.invalidate(name)
	defer s.size.lock(name).Unlock()
	old, had := s.regularSize(name + OldSuffix)
	err := s.root.Rename(name, name+OldSuffix)
	s.dropHot(name)
	switch {
	case err == nil:
		if had {
			s.size.removed(old) // the ".old" copy it replaced
		}
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case errors.Is(err, syscall.EISDIR) || errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.ENOTEMPTY):
		// ".old" is taken by something else: the page must go anyway.
		s.removeQuiet(name)
		return true, nil
	}
	return false, fmt.Errorf("invalidate %s: %w", name, err)
}

// Purge deletes a file and its ".old" and precompressed copies (the
// document is gone).
func (s *Store) Purge(name string) { s.purge(name) }

// purge deletes what the edge wrote for exactly name: regular files only
// (never a link, a folder or anything reached through a link). It reports
// false when name cannot be a file at all (a file is in the way of one of
// its folders).
func (s *Store) purge(name string) bool {
	s.flights.invalidate(name)
	defer s.size.lock(name).Unlock()
	d, _, st := s.walkParent(name)
	s.dropHot(name)
	if st != pathOK {
		return st != pathBlocked
	}
	defer s.closeDir(d)
	base := path.Base(name)
	for _, suffix := range []string{"", OldSuffix, GzipSuffix, BrotliSuffix} {
		s.removeRegular(d, base+suffix, name+suffix)
	}
	return true
}

// removeRegular removes a regular file of folder d, and nothing else.
func (s *Store) removeRegular(d *os.Root, base, name string) {
	info, err := d.Lstat(base)
	if err != nil || !info.Mode().IsRegular() {
		if err != nil && !quietRemoveError(err) {
			s.log.Warn("cannot remove file", zap.String("file", name), zap.Error(err))
		}
		return
	}
	if err := d.Remove(base); err != nil {
		if !quietRemoveError(err) {
			s.log.Warn("cannot remove file", zap.String("file", name), zap.Error(err))
		}
		return
	}
	s.size.removed(info.Size())
}

// removeQuiet removes a file (or an empty folder); a regular file outside
// the temp folder is taken off the docroot's size. Callers that remove a
// page's file hold the page's size lock.
func (s *Store) removeQuiet(name string) {
	n, counted := int64(0), false
	if !inTemp(name) {
		n, counted = s.regularSize(name)
	}
	if err := s.root.Remove(name); err != nil {
		if !quietRemoveError(err) {
			s.log.Warn("cannot remove file", zap.String("file", name), zap.Error(err))
		}
		return
	}
	if counted {
		s.size.removed(n)
	}
}

// quietRemoveError: there is no such file (or cannot be: a file is where
// a folder would be), which is what removing it was for.
func quietRemoveError(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// batchDirs are the folders a removal batch has opened, by docroot and
// name, so that each is opened once per batch. The docroot is part of the
// key: two docroots have folders of the same name.
type batchDirs map[batchDir]*os.Root

type batchDir struct {
	root uint16
	dir  string
}

// close closes every folder of the batch.
func (b batchDirs) close() {
	for _, d := range b {
		if d != nil {
			d.Close()
		}
	}
}

// renameToOld renames a queued file to its ".old" copy unless it was
// written after enqueued (Unix ms): rendered again since the job was
// queued. dirs holds the folders the removal batch has opened. gone
// reports whether the file's registry entry is to go (renamed, or no file
// any more); err is set when even the slow path (Invalidate) could not
// rename it.
func (s *Store) renameToOld(dirs batchDirs, name string, enqueued int64) (gone bool, err error) {
	dir, base := path.Split(name)
	key := batchDir{root: s.rootID, dir: dir}
	d, ok := dirs[key]
	if !ok {
		var err error
		if dir == "" {
			d, err = s.root.OpenRoot(".")
		} else {
			d, err = s.root.OpenRoot(path.Clean(dir))
		}
		if err != nil {
			d = nil // the folder is gone: so is the file
		}
		dirs[key] = d
	}
	if d == nil {
		return true, nil
	}
	info, err := d.Lstat(base)
	if err != nil {
		return true, nil // no file (e.g. renamed before a crash)
	}
	if info.ModTime().UnixMilli() > enqueued {
		return false, nil // rendered again since the job was queued
	}
	s.flights.invalidate(name)
	mu := s.size.lock(name)
	oldInfo, oerr := d.Lstat(base + OldSuffix)
	err = d.Rename(base, base+OldSuffix)
	if err == nil && oerr == nil && oldInfo.Mode().IsRegular() {
		s.size.removed(oldInfo.Size()) // the ".old" copy it replaced
	}
	mu.Unlock()
	s.dropHot(name)
	if err != nil {
		if _, err := s.Invalidate(name); err != nil { // the slow path sorts out odd cases
			return false, err
		}
	}
	return true, nil
}

// removeLeftovers removes what is left of a page that is gone: its
// precompressed copies (served only next to the page they belong to, so
// of no use without it) and its ".old" copy if that was written before
// cutoff. Like purge, it removes regular files only.
func (s *Store) removeLeftovers(name string, cutoff time.Time) {
	defer s.size.lock(name).Unlock()
	d, _, st := s.walkParent(name)
	if st != pathOK {
		return
	}
	defer s.closeDir(d)
	base := path.Base(name)
	if info, err := d.Lstat(base + OldSuffix); err == nil && info.ModTime().Before(cutoff) {
		s.removeRegular(d, base+OldSuffix, name+OldSuffix)
	}
	for _, suffix := range precompressedSuffixes {
		s.removeRegular(d, base+suffix, name+suffix)
	}
}
