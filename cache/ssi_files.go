package cache

import (
	"io"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
)

// The parts of assembled pages.
//
// Assembling a page touches many small files, and opening one through the
// docroot's os.Root walks its path with an openat per folder — more
// system calls than serving a whole page. Parts that fit come from the
// store's hot set (hit.go), which holds them with their parsed directives
// and is told of every change, so a part in memory costs no system call.
// For the others (too large, or no hot set), the directives of a file are
// kept by file version — device, inode, size, modification and change
// time, read from the file each assembly opens: a file replaced or edited
// in place by another process is a new version, parsed again.

const (
	ssiMaxBodyBytes   = 256 << 10 // larger files are read from disk each time
	ssiMaxCachedBytes = 128 << 20
	ssiMaxBodies      = 50000
)

// ssiFileKey names one version of a file: its identity (file_ident.go),
// whose change time also tells an edit in place.
type ssiFileKey struct {
	fileIdent
	name string // only where there are no inode numbers
}

func ssiKeyOf(info fs.FileInfo, name string) ssiFileKey {
	k := ssiFileKey{fileIdent: identOfInfo(info)}
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
	b, err := readBody(f, info.Size(), marked, ssiMaxBodyBytes)
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

// readBody reads a file once: whole when it is at most keep bytes, else in
// chunks for its directives only (a larger file without the mark is not
// read at all).
func readBody(f *os.File, size int64, marked bool, keep int64) (*ssiBody, error) {
	b := &ssiBody{}
	if !marked && size > keep {
		return b, nil
	}
	var p ssiParser
	if marked {
		b.lay = &ssiLayout{}
		p.directive = func(d ssiDirective) { b.lay.dirs = append(b.lay.dirs, d) }
	}
	if size <= keep {
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
	if err := readChunks(f, 0, size, func(c []byte) error { p.Write(c); return nil }); err != nil {
		return nil, err
	}
	p.End()
	return b, nil
}
