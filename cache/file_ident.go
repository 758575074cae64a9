package cache

import (
	"io/fs"
	"time"
)

// Files changed behind the edge's back.
//
// The docroot belongs to the edge, but it is a folder on disk: deploy tools
// put robots.txt and assets there, an operator deletes or renames a page to
// have it rendered again, a backup comes back with rsync. The files on disk
// are the truth. What the edge keeps of a file in memory (the hot set, with
// a page's precompressed copies and its SSI directives) carries the
// identity of the file it was read from — device, inode, size,
// modification and change time — and a hit checks it against the disk
// with one stat at most once per HotValid, as nginx's
// open_file_cache_valid does. A file that is not the one in memory any
// more is dropped and served from disk (or rendered) instead. An edit in
// place changes the change time whatever else it keeps.

// DefaultHotValid is how long a file in memory is served without looking
// at the disk.
const DefaultHotValid = time.Second

// fileIdent tells one version of a file from another.
type fileIdent struct {
	dev, ino           uint64
	size, mtime, ctime int64
}

// monoStart anchors monoNow.
var monoStart = time.Now()

// monoNow is a monotonic clock in nanoseconds; reading it allocates
// nothing and touches no shared state.
func monoNow() int64 { return int64(time.Since(monoStart)) }

// identOfInfo is the identity of a file from what Stat returned.
func identOfInfo(info fs.FileInfo) fileIdent {
	id := fileIdent{size: info.Size(), mtime: info.ModTime().UnixNano()}
	id.dev, id.ino, id.ctime = sysIdent(info)
	return id
}
