//go:build !linux || !(amd64 || arm64)

package cache

import "io/fs"

// sysIdent: device and inode come from devIno where the system has them;
// the change time is not read here.
func sysIdent(info fs.FileInfo) (dev, ino uint64, ctime int64) {
	dev, ino = devIno(info)
	return dev, ino, 0
}

// haveStatAt: a file is stated through the docroot's os.Root here.
const haveStatAt = false

func statAt(uintptr, []byte) (fileIdent, bool) { return fileIdent{}, false }
