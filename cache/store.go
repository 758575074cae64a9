package cache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sync"
	"sync/atomic"
	"syscall"

	"go.uber.org/zap"
)

// Store is one docroot: the files the cache wrote, their ".old" copies and
// a folder for files being written. Every access goes through an os.Root,
// so no name and no symbolic link can lead outside the docroot. A Store is
// shared by every handler (and every config generation) that serves the
// same docroot, so renders of one file are coalesced across all of them.
type Store struct {
	dir    string
	rootID uint16
	root   *os.Root
	// realRoot is the docroot's real path ending in "/" as /proc/self/fd
	// reports it, to tell in one call where a link led ("" where that is
	// not available; docroot_links.go).
	realRoot string
	// rootDir is the docroot's folder and direct its descriptor, for
	// opening a file to serve without following links (nil where that is
	// not available; docroot_open_linux.go).
	rootDir *os.File
	direct  syscall.RawConn
	// dirfd is rootDir's descriptor, for the hit path's allocation-free
	// stat of a file held in memory (file_ident.go).
	dirfd   uintptr
	e       *Engine
	reg     *Registry
	access  *AccessLog
	rend    atomic.Pointer[rendererRef]
	log     *zap.Logger
	flights *flights
	// hot holds the hottest small files in memory (nil: off).
	hot *HotSet
	// precompressed is set once a site writes gzip/brotli copies here.
	precompressed atomic.Bool
	ctx           context.Context // cancelled when the store closes
	cancel        context.CancelFunc
	bg            sync.WaitGroup // renders no client waits for
}

type rendererRef struct {
	r    Renderer
	host string
}

// SetRenderer sets how pre-generation renders pages of this docroot;
// host is used for work that has none of its own. The newest config's
// handler sets it (old and new configs overlap during a reload).
func (s *Store) SetRenderer(r Renderer, host string) {
	s.rend.Store(&rendererRef{r: r, host: host})
	s.e.wakeWorkers()
}

func (s *Store) renderer() (Renderer, string) {
	if ref := s.rend.Load(); ref != nil {
		return ref.r, ref.host
	}
	return nil, ""
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

func openStore(dir string, rootID uint16, e *Engine, log *zap.Logger) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create docroot: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open docroot: %w", err)
	}
	if err := root.MkdirAll(TempDir, 0o700); err != nil {
		root.Close()
		return nil, fmt.Errorf("create %s in docroot: %w", TempDir, err)
	}
	s := &Store{dir: dir, rootID: rootID, root: root, realRoot: docrootRealPath(root), e: e, reg: e.reg,
		access: e.access, log: log.With(zap.String("docroot", dir)), flights: newFlights()}
	s.rootDir, s.direct = openDirectDir(root)
	if s.rootDir != nil {
		s.dirfd = s.rootDir.Fd()
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if e.opts.HotBytes > 0 {
		s.hot = NewHotSet(e.opts.HotBytes, e.opts.HotMaxFile, e.opts.HotValid)
	}
	s.removeStaleTemp()
	return s, nil
}

// Dir is the docroot's path.
func (s *Store) Dir() string { return s.dir }

// ID returns the registry id of a file of this docroot.
func (s *Store) ID(file string) FileID { return FileID{Root: s.rootID, File: file} }

func (s *Store) close() error {
	s.cancel()
	s.bg.Wait()
	if s.rootDir != nil {
		s.rootDir.Close()
	}
	return s.root.Close()
}

// goBackground runs fn as background work of the store; close waits for it.
func (s *Store) goBackground(fn func()) {
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		fn()
	}()
}

// removeStaleTemp deletes files a crash left in the temp folder; they are
// never part of the docroot.
func (s *Store) removeStaleTemp() {
	entries, err := fs.ReadDir(s.root.FS(), TempDir)
	if err != nil {
		s.log.Warn("cannot list temp folder", zap.Error(err))
		return
	}
	for _, e := range entries {
		if err := s.root.Remove(path.Join(TempDir, e.Name())); err != nil {
			s.log.Warn("cannot remove stale temp file", zap.String("file", e.Name()), zap.Error(err))
		}
	}
	if len(entries) > 0 {
		s.log.Info("removed files of interrupted renders", zap.Int("count", len(entries)))
	}
}

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

// createTemp opens a new file in the temp folder.
func (s *Store) createTemp() (*os.File, string, error) {
	var b [8]byte
	_, _ = rand.Read(b[:])
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
	if err := s.makeRoomFor(name); err != nil {
		s.discardPrecompressed(variants)
		return err
	}
	s.installVariant(variants.gzip, name+GzipSuffix)
	s.installVariant(variants.brotli, name+BrotliSuffix)
	if err := s.root.Rename(tmp, name); err != nil {
		if errors.Is(err, syscall.EISDIR) || errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.EEXIST) ||
			errors.Is(err, syscall.ENOTEMPTY) {
			return errConflict
		}
		return fmt.Errorf("rename into place %s: %w", name, err)
	}
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
	if err := s.root.Rename(tmp, name); err != nil {
		s.removeQuiet(tmp)
		s.removeQuiet(name)
	}
}

// dropHot forgets the in-memory copy of a file after it changed on disk.
func (s *Store) dropHot(name string) {
	if s.hot != nil {
		s.hot.invalidate(name)
	}
}

// keepAsOld renames a finished temp file to the ".old" copy of name.
func (s *Store) keepAsOld(tmp, name string) {
	if err := s.root.Rename(tmp, name+OldSuffix); err != nil {
		s.removeQuiet(tmp)
	}
}

// Invalidate renames a file to its ".old" copy; a render in progress for
// it is marked outdated. It reports whether there was a file.
func (s *Store) Invalidate(name string) (bool, error) {
	s.flights.invalidate(name)
	err := s.root.Rename(name, name+OldSuffix)
	s.dropHot(name)
	switch {
	case err == nil:
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
	if err := d.Remove(base); err != nil && !quietRemoveError(err) {
		s.log.Warn("cannot remove file", zap.String("file", name), zap.Error(err))
	}
}

func (s *Store) removeQuiet(name string) {
	if err := s.root.Remove(name); err != nil && !quietRemoveError(err) {
		s.log.Warn("cannot remove file", zap.String("file", name), zap.Error(err))
	}
}

// quietRemoveError: there is no such file (or cannot be: a file is where
// a folder would be), which is what removing it was for.
func quietRemoveError(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// writeFileAtomic replaces a small file (temp file + rename).
func writeFileAtomic(name string, data []byte) error {
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}

func readFileIfExists(name string) ([]byte, error) {
	b, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}
