package cache

import (
	"io/fs"
	"net/url"
	"os"
	"sync"
	"sync/atomic"

	"github.com/delivery-edge/edge/cache/ssi"
)

// The parts of assembled pages.
//
// Assembling a page touches many small files, and opening one through the
// docroot's os.Root walks its path with an openat per folder — more
// system calls than serving a whole page. Parts that fit come from the
// store's hot set (hotset.go), which holds them with their parsed
// directives and is told of every change, so a part in memory costs no
// system call. For the others (too large, or no hot set), the directives
// of a file are kept by file version — device, inode, size, modification
// and change time, read from the file each assembly opens: a file replaced
// or edited in place by another process is a new version, parsed again.
// What include paths map to is kept too, so a page's includes are not
// parsed and mapped on every hit.

const (
	ssiMaxBodyBytes   = 256 << 10 // larger files are read from disk each time
	ssiMaxCachedBytes = 128 << 20
	ssiMaxBodies      = 50000
	ssiMaxTargets     = 100000
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

// ssiBodies keeps bodies by file version.
type ssiBodies struct {
	m     sync.Map // ssiFileKey -> *ssi.Body
	n     atomic.Int64
	bytes atomic.Int64
}

// get returns the body of the open file f.
func (c *ssiBodies) get(f *os.File, info fs.FileInfo, name string) (*ssi.Body, error) {
	marked := ssi.Marked(info)
	if !marked && info.Size() > ssiMaxBodyBytes {
		return &ssi.Body{}, nil // copied from the file as it is
	}
	k := ssiKeyOf(info, name)
	if v, ok := c.m.Load(k); ok {
		return v.(*ssi.Body), nil
	}
	b, err := ssi.ReadBody(f, info.Size(), marked, ssiMaxBodyBytes)
	if err != nil {
		return nil, err
	}
	if c.n.Add(1) > ssiMaxBodies || c.bytes.Add(int64(len(b.Data))) > ssiMaxCachedBytes {
		c.evict()
	}
	if v, loaded := c.m.LoadOrStore(k, b); loaded {
		c.n.Add(-1)
		c.bytes.Add(-int64(len(b.Data)))
		return v.(*ssi.Body), nil
	}
	return b, nil
}

// evict drops about half of the bodies (the map's order is random).
func (c *ssiBodies) evict() {
	var n int64
	c.m.Range(func(k, v any) bool {
		if c.m.CompareAndDelete(k, v) {
			c.n.Add(-1)
			c.bytes.Add(-int64(len(v.(*ssi.Body).Data)))
			n++
		}
		return n < ssiMaxBodies/2 && c.bytes.Load() > ssiMaxCachedBytes/2
	})
}

// ssiTargets keeps what include paths map to (the mapping is fixed for a
// Site).
type ssiTargets struct {
	m sync.Map // ssiTargetKey -> *ssiTarget
	n atomic.Int64
}

type ssiTargetKey struct {
	dir  string // the including document's folder, for file="…"
	path string
}

type ssiTarget struct {
	u   *url.URL
	t   Target
	err error
}

func (c *ssiTargets) resolve(m *Mapper, key string, ref ssi.Ref) (*url.URL, Target, error) {
	k := ssiTargetKey{path: ref.Path}
	if ref.File {
		k.dir = ssi.Folder(key)
	}
	if v, ok := c.m.Load(k); ok {
		r := v.(*ssiTarget)
		return r.u, r.t, r.err
	}
	r := &ssiTarget{}
	r.u, r.err = ssi.IncludeURL(key, ref)
	if r.err == nil {
		r.t, r.err = m.Map(r.u)
	}
	if c.n.Add(1) > ssiMaxTargets {
		c.m.Range(func(k, _ any) bool { c.m.Delete(k); return true })
		c.n.Store(0)
	}
	c.m.Store(k, r)
	return r.u, r.t, r.err
}
