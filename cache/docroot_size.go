package cache

import (
	"context"
	"hash/maphash"
	"io/fs"
	"strings"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"
)

// docrootSize is what a docroot holds on disk: the bytes and the number of
// the regular files the edge wrote (pages, ".old" copies and precompressed
// copies; the temp folder and a rebuild's trash are not part of it). The
// store keeps it up to date on every install, rename and removal, so the
// evictor learns that a limit was passed from the write that passed it,
// never by walking the tree. A walk counts it once when the store opens
// (sizeWalk).
//
// A file's size is read just before the rename or removal that changes
// it; the operations on one page and its copies hold the page's stripe of
// locks around both, so that two of them (an install and a removal of the
// same page) cannot both count the same file.
type docrootSize struct {
	bytes, files atomic.Int64
	// limit is the size past which a write wakes the evictor (0: none); the
	// evictor sets it from max_size and the free space.
	limit atomic.Int64
	wake  func() // wakes the evictor (nil: none)
	// walked is set once the start-up count is in bytes and files.
	walked atomic.Bool
	// evicted counts the files the evictor removed, evictedBytes their
	// bytes (with their copies).
	evicted, evictedBytes atomic.Int64

	seed  maphash.Seed
	locks [sizeStripes]sync.Mutex
}

// sizeStripes is the number of locks the pages of a docroot share.
const sizeStripes = 256

func newDocrootSize(wake func()) *docrootSize {
	return &docrootSize{wake: wake, seed: maphash.MakeSeed()}
}

// add changes the counts by a file operation's difference and wakes the
// evictor when a write took the docroot past its limit.
func (z *docrootSize) add(bytes, files int64) {
	if bytes == 0 && files == 0 {
		return
	}
	b := z.bytes.Add(bytes)
	z.files.Add(files)
	if bytes > 0 && z.wake != nil {
		if l := z.limit.Load(); l > 0 && b > l {
			z.wake()
		}
	}
}

// replaced counts a rename of a file of size n over a file that was there
// (had: a regular file of size old).
func (z *docrootSize) replaced(n, old int64, had bool) {
	if had {
		z.add(n-old, 0)
		return
	}
	z.add(n, 1)
}

// removed counts the removal of a regular file of size n.
func (z *docrootSize) removed(n int64) { z.add(-n, -1) }

// lock locks the stripe of page (the page's name, not that of one of its
// copies) and returns it for the caller to unlock.
func (z *docrootSize) lock(page string) *sync.Mutex {
	mu := &z.locks[maphash.String(z.seed, page)%sizeStripes]
	mu.Lock()
	return mu
}

// inTemp reports whether a docroot-relative name is in the temp folder,
// whose files are not counted until they are renamed into place.
func inTemp(name string) bool {
	return strings.HasPrefix(name, TempDir+"/")
}

// regularSize is the size of a regular file of the docroot (ok false: no
// such file, or not a regular one).
func (s *Store) regularSize(name string) (int64, bool) {
	info, err := s.root.Lstat(name)
	if err != nil || !info.Mode().IsRegular() {
		return 0, false
	}
	return info.Size(), true
}

// maxSizeWalk bounds the start-up count: past that many entries it stops
// (the counts then stay low, and the log says so).
const maxSizeWalk = 50_000_000

// walkSize counts the docroot's regular files (without the temp folder and
// a rebuild's trash) and replaces the counts with the result. Operations
// during the walk keep their differences; one that touches a folder the
// walk has not reached yet is counted twice, so the counts are exact only
// for what changed before or after the walk.
func (s *Store) walkSize(ctx context.Context) {
	b0, f0 := s.size.bytes.Load(), s.size.files.Load()
	var bytes, files, seen int64
	truncated := false
	err := fs.WalkDir(s.root.FS(), ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // gone meanwhile, or unreadable: skip it
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if seen++; seen > maxSizeWalk {
			truncated = true
			return fs.SkipAll
		}
		if d.IsDir() {
			if name != "." && !strings.Contains(name, "/") && strings.HasPrefix(name, InternalPrefix) {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil // a link (the operator's) or anything else
		}
		if !strings.Contains(name, "/") && strings.HasPrefix(name, InternalPrefix) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		bytes += info.Size()
		files++
		return nil
	})
	if err != nil {
		return // closed meanwhile
	}
	s.size.bytes.Add(bytes - b0)
	s.size.files.Add(files - f0)
	s.size.walked.Store(true)
	if truncated {
		s.log.Warn("docroot too large to count at start; its size is counted low", zap.Int64("entries", maxSizeWalk))
	}
	s.log.Info("docroot counted", zap.Int64("files", s.size.files.Load()), zap.Int64("bytes", s.size.bytes.Load()))
	if s.size.wake != nil {
		s.size.wake()
	}
}

// recountSize counts the docroot again in the background (after a rebuild
// moved its files aside).
func (s *Store) recountSize() {
	s.goBackground(func() { s.walkSize(s.ctx) })
}

// DocrootStats are the figures of one docroot's files.
type DocrootStats struct {
	Dir string
	// Files and Bytes are the regular files the edge wrote (pages, ".old"
	// and precompressed copies) and their size.
	Files, Bytes int64
	// Limit is the size the docroot is kept under (0: none), from max_size
	// and min_free.
	Limit int64
	// Evicted counts the pages the evictor removed (with their copies),
	// EvictedBytes the bytes it freed.
	Evicted, EvictedBytes int64
}

// DocrootSize returns the figures of the store's files.
func (s *Store) DocrootSize() DocrootStats {
	return DocrootStats{Dir: s.dir, Files: s.size.files.Load(), Bytes: s.size.bytes.Load(),
		Limit: s.size.limit.Load(), Evicted: s.size.evicted.Load(), EvictedBytes: s.size.evictedBytes.Load()}
}
