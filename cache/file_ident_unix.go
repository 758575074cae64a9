//go:build unix

package cache

import (
	"io/fs"
	"syscall"
)

// devIno is the device and inode of a file, which tell file versions
// apart together with modification time and size.
func devIno(info fs.FileInfo) (dev, ino uint64) {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), uint64(st.Ino) //nolint:unconvert // int32 on some systems
	}
	return 0, 0
}
