//go:build !linux || !(amd64 || arm64)

package cache

import "io/fs"

// sysIdent: device and inode come from devIno where the system has
// them; the change time is not read here.
func sysIdent(info fs.FileInfo) (dev, ino uint64, ctime int64) {
	dev, ino = devIno(info)
	return dev, ino, 0
}

// statIdent stats a docroot file through the docroot's os.Root.
func (s *Store) statIdent(name string, _ []byte) (fileIdent, bool) {
	info, err := s.root.Stat(name)
	if err != nil || !info.Mode().IsRegular() {
		return fileIdent{}, false
	}
	return identOfInfo(info), true
}
