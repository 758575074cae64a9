package cache

import (
	"io"
	"io/fs"
	"os"
	"path"
	"sync"
	"sync/atomic"
	"time"
)

// The parts of assembled pages, kept in memory.
//
// Assembling a page touches many small files, and opening one through the
// docroot's os.Root walks its path with an openat per folder — more
// system calls than serving a whole page. So:
//
//   - A body (the content of a small file and where its directives are)
//     is kept by file version: device, inode, modification time and size.
//     A new version is a new file (the cache renames files into place), so
//     a body never changes; it is parsed and read once.
//   - A folder snapshot remembers which version of each file of a folder
//     was found there. It holds while the folder's own identity and
//     modification time stay the same: the cache changes the docroot only
//     by renaming (into place, to ".old") and deleting, and each of those
//     changes the folder's modification time. So one stat of the folder
//     stands for looking up every file in it. A folder changed within the
//     last ssiRacyWindow is not trusted (timestamps are coarse), and a
//     file seen longer than ssiRecheck ago is looked up again anyway (a
//     file changed in place by someone else).
//
// Only what was found is remembered: a missing file or a ".old" copy is
// always looked up on disk.

const (
	ssiMaxBodyBytes   = 256 << 10 // larger files are read from disk each time
	ssiMaxCachedBytes = 128 << 20
	ssiMaxBodies      = 50000
	ssiMaxFolders     = 10000
	ssiRacyWindow     = 100 * time.Millisecond
	ssiRecheck        = time.Second
)

// ssiFileKey names one version of a file.
type ssiFileKey struct {
	dev, ino    uint64
	mtime, size int64
	name        string // only where there are no inode numbers
}

func ssiKeyOf(info fs.FileInfo, name string) ssiFileKey {
	k := ssiFileKey{mtime: info.ModTime().UnixNano(), size: info.Size()}
	k.dev, k.ino = ssiFileID(info)
	if k.ino == 0 {
		k.name = name
	}
	return k
}

// ssiLayout is where the directives of one file version are.
type ssiLayout struct {
	dirs []ssiDirective
}

// ssiBody is what is kept of one file version.
type ssiBody struct {
	lay  *ssiLayout // its directives; nil for a file without the mark
	data []byte     // its content; nil when too large to keep
}

// ssiBodies keeps bodies by file version.
type ssiBodies struct {
	m     sync.Map // ssiFileKey -> *ssiBody
	n     atomic.Int64
	bytes atomic.Int64
}

// get returns the body of the open file f.
func (c *ssiBodies) get(f *os.File, info fs.FileInfo, name string) (*ssiBody, error) {
	marked := info.Mode()&ssiMarkBit != 0
	if !marked && info.Size() > ssiMaxBodyBytes {
		return &ssiBody{}, nil // copied from the file as it is
	}
	k := ssiKeyOf(info, name)
	if v, ok := c.m.Load(k); ok {
		return v.(*ssiBody), nil
	}
	b, err := readBody(f, info.Size(), marked)
	if err != nil {
		return nil, err
	}
	if c.n.Add(1) > ssiMaxBodies || c.bytes.Add(int64(len(b.data))) > ssiMaxCachedBytes {
		c.evict()
	}
	if v, loaded := c.m.LoadOrStore(k, b); loaded {
		c.n.Add(-1)
		c.bytes.Add(-int64(len(b.data)))
		return v.(*ssiBody), nil
	}
	return b, nil
}

// evict drops about half of the bodies (the map's order is random).
func (c *ssiBodies) evict() {
	var n int64
	c.m.Range(func(k, v any) bool {
		if c.m.CompareAndDelete(k, v) {
			c.n.Add(-1)
			c.bytes.Add(-int64(len(v.(*ssiBody).data)))
			n++
		}
		return n < ssiMaxBodies/2 && c.bytes.Load() > ssiMaxCachedBytes/2
	})
}

// readBody reads a file once: whole when it is small, else in chunks for
// its directives only.
func readBody(f *os.File, size int64, marked bool) (*ssiBody, error) {
	b := &ssiBody{}
	var p ssiParser
	if marked {
		b.lay = &ssiLayout{}
		p.directive = func(d ssiDirective) { b.lay.dirs = append(b.lay.dirs, d) }
	}
	if size <= ssiMaxBodyBytes {
		b.data = make([]byte, size)
		if n, err := f.ReadAt(b.data, 0); int64(n) < size {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if marked {
			p.Write(b.data)
			p.End()
		}
		return b, nil
	}
	bp := ssiBufPool.Get().(*[]byte)
	defer ssiBufPool.Put(bp)
	buf := *bp
	for off := int64(0); off < size; {
		m := int(min(size-off, int64(len(buf))))
		k, err := f.ReadAt(buf[:m], off)
		p.Write(buf[:k])
		off += int64(k)
		if k < m {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	p.End()
	return b, nil
}

// ssiFolders keeps folder snapshots by folder name.
type ssiFolders struct {
	m sync.Map // string -> *ssiFolder
	n atomic.Int64
}

// ssiFolder is a snapshot of the files found in one folder version.
type ssiFolder struct {
	key   ssiFileKey
	mu    sync.Mutex
	files map[string]ssiSeen
}

// ssiSeen is a file as it was found.
type ssiSeen struct {
	info fs.FileInfo
	body *ssiBody
	at   time.Time
}

// valid returns the snapshot of a folder if the folder can be trusted,
// starting a new one when the folder changed.
func (c *ssiFolders) valid(root *os.Root, name string, now time.Time) *ssiFolder {
	info, err := root.Stat(name)
	if err != nil || !info.IsDir() || now.Sub(info.ModTime()) < ssiRacyWindow {
		return nil
	}
	k := ssiKeyOf(info, name)
	if v, ok := c.m.Load(name); ok && v.(*ssiFolder).key == k {
		return v.(*ssiFolder)
	}
	d := &ssiFolder{key: k, files: map[string]ssiSeen{}}
	if _, loaded := c.m.Swap(name, d); !loaded && c.n.Add(1) > ssiMaxFolders {
		c.m.Range(func(k, _ any) bool { c.m.Delete(k); return true })
		c.n.Store(0)
	}
	return d
}

func (d *ssiFolder) get(name string, now time.Time) (ssiSeen, bool) {
	d.mu.Lock()
	s, ok := d.files[name]
	d.mu.Unlock()
	return s, ok && now.Sub(s.at) < ssiRecheck
}

func (d *ssiFolder) put(name string, s ssiSeen) {
	d.mu.Lock()
	d.files[name] = s
	d.mu.Unlock()
}

// splitFolder splits a docroot file name into its folder ("." at the
// top) and base name.
func splitFolder(name string) (string, string) {
	dir, base := path.Split(name)
	if dir == "" {
		return ".", base
	}
	return dir[:len(dir)-1], base
}
