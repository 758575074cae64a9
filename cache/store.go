package cache

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/delivery-edge/edge/cache/registry"
)

// Store is one docroot: the files the cache wrote, their ".old" copies and
// a folder for files being written. Every access goes through an os.Root,
// so no name and no symbolic link can lead outside the docroot. A Store is
// shared by every handler (and every config generation) that serves the
// same docroot, so renders of one file are coalesced across all of them.
//
// Its methods are in the store*.go files: reading (store_read.go), the hot
// set (store_hot.go), answers from a file (store_serve.go), writing and
// removing (store_write.go), symbolic links (store_links.go, and
// store_open_linux.go for the hit path's open), precompressed copies
// (store_precompress.go).
type Store struct {
	dir    string
	rootID uint16
	root   *os.Root
	// realRoot is the docroot's real path ending in "/" as /proc/self/fd
	// reports it, to tell in one call where a link led ("" where that is
	// not available; store_links.go).
	realRoot string
	// rootDir is the docroot's folder and direct its descriptor, for
	// opening a file to serve without following links (nil where that is
	// not available; store_open_linux.go).
	rootDir *os.File
	direct  syscall.RawConn
	// dirfd is rootDir's descriptor, for the hit path's allocation-free
	// stat of a file held in memory (store_hot.go).
	dirfd uintptr
	// tmpDir is the open temp folder and tmpDirect its descriptor, for
	// creating and installing files by descriptor (nil where that is not
	// available; store_install_linux.go).
	tmpDir    *os.File
	tmpDirect syscall.RawConn
	// What the engine gave it (storeDeps).
	reg       *registry.Registry
	access    *AccessLog
	ephemeral *ephemeralFiles
	resources *resourceHashes
	changes   *recentChanges
	workers   *broadcast
	rend      atomic.Pointer[rendererRef]
	log       *zap.Logger
	flights   *flights
	// hot holds the hottest small files in memory (nil: off).
	hot *HotSet
	// precompressed is set once a site writes gzip/brotli copies here.
	precompressed atomic.Bool
	// size is what the docroot holds on disk (docroot_size.go).
	size   *docrootSize
	ctx    context.Context // cancelled when the store closes
	cancel context.CancelFunc
	bg     sync.WaitGroup // renders no client waits for

	// space follows writes that fail for want of space (space.go).
	space *registry.Space
}

// storeDeps is what a Store is given by the engine that opens it: where
// its renders are recorded, where its hits are counted, the engine's parts
// a render reports to, and the size of its hot set. They are values, so a
// Store never calls back into the Engine.
type storeDeps struct {
	reg    *registry.Registry
	access *AccessLog
	// ephemeral keeps renders that expire too soon for the registry.
	ephemeral *ephemeralFiles
	// resources notices resource hashes that changed.
	resources *resourceHashes
	// changes are the changes applied during the renders under way.
	changes *recentChanges
	// workers wakes the queue workers (a renderer for queued work is set).
	workers *broadcast
	// sizeWake wakes the evictor when a write passed a docroot's limit.
	sizeWake func()
	log      *zap.Logger
	// The hot set of each docroot (HotBytes <= 0: none).
	hotBytes, hotMaxFile int64
	hotValid             time.Duration
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
	s.workers.notify()
}

func (s *Store) renderer() (Renderer, string) {
	if ref := s.rend.Load(); ref != nil {
		return ref.r, ref.host
	}
	return nil, ""
}

func openStore(dir string, rootID uint16, deps storeDeps) (*Store, error) {
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
	s := &Store{dir: dir, rootID: rootID, root: root, realRoot: docrootRealPath(root), reg: deps.reg,
		access: deps.access, ephemeral: deps.ephemeral, resources: deps.resources, changes: deps.changes, workers: deps.workers,
		log: deps.log.With(zap.String("docroot", dir)), flights: newFlights(), size: newDocrootSize(deps.sizeWake)}
	s.space = registry.NewSpace("docroot", dir, s.log)
	s.space.WithProbe(s.probeWrite) // in the temp folder, not among the pages
	s.rootDir, s.direct = openDirectDir(root)
	if s.rootDir != nil {
		s.dirfd = s.rootDir.Fd()
	}
	if s.rootDir != nil {
		s.tmpDir, s.tmpDirect = openTempDir(root)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if deps.hotBytes > 0 {
		s.hot = NewHotSet(deps.hotBytes, deps.hotMaxFile, deps.hotValid)
	}
	s.removeStaleTemp()
	s.goBackground(func() { s.walkSize(s.ctx) })
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
	if s.tmpDir != nil {
		s.tmpDir.Close()
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
