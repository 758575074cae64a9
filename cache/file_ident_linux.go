//go:build linux && (amd64 || arm64)

package cache

import (
	"io/fs"
	"syscall"
	"unsafe"
)

// sysIdent reads device, inode and change time from a FileInfo.
func sysIdent(info fs.FileInfo) (dev, ino uint64, ctime int64) {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), uint64(st.Ino), st.Ctim.Nano() //nolint:unconvert // differs by architecture
	}
	return 0, 0, 0
}

// haveStatAt: statAt is available here.
const haveStatAt = true

// statAt stats a file by name with one fstatat relative to the folder
// dirfd, allocating nothing: cname is the name NUL-terminated. ok is
// false when there is no such regular file.
func statAt(dirfd uintptr, cname []byte) (fileIdent, bool) {
	var st syscall.Stat_t
	_, _, errno := syscall.Syscall6(sysFstatat, dirfd, uintptr(unsafe.Pointer(&cname[0])),
		uintptr(unsafe.Pointer(&st)), 0, 0, 0)
	if errno != 0 || st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return fileIdent{}, false
	}
	return fileIdent{dev: uint64(st.Dev), ino: uint64(st.Ino), size: st.Size, //nolint:unconvert // differs by architecture
		mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano()}, true
}
