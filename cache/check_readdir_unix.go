//go:build unix

package cache

import (
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// readFolder lists the folder name of dir. A folder opened through an
// os.Root lists with an lstat per name (the os package cannot resolve a
// name in a Root later), which doubled the cost of a walk; the listing is
// read through a duplicate of its descriptor instead, which takes the
// types from the directory entries. Names are still resolved relative to
// that descriptor when the file system gives no type.
func readFolder(dir *os.Root, name string) ([]fs.DirEntry, error) {
	f, err := dir.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	dup, dupErr := -1, error(nil)
	if err := rc.Control(func(fd uintptr) { dup, dupErr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return nil, err
	}
	if dupErr != nil {
		return nil, dupErr
	}
	d := os.NewFile(uintptr(dup), f.Name())
	defer d.Close()
	return d.ReadDir(-1)
}
