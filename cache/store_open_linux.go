//go:build linux

package cache

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// The hit path's open on Linux: the docroot's folder descriptor, then one
// openat per segment with O_NOFOLLOW — what os.Root does itself when no
// link is on the way, so an ordinary hit costs no extra system call to
// know that no link led to its file. A segment that is a link fails with
// ELOOP, and only then does the caller take the careful way (os.Root,
// which follows links that stay inside, and a check of where it led).

// errLinked means a segment of the name is (or may be) a symbolic link.
var errLinked = errors.New("a symbolic link is on the way")

// openDirectDir opens the docroot's folder for openDirect.
func openDirectDir(root *os.Root) (*os.File, syscall.RawConn) { return openRootDir(root, ".") }

// openRootDir opens a folder of root with its raw descriptor, for calls
// relative to it (nil, nil where it cannot be opened).
func openRootDir(root *os.Root, name string) (*os.File, syscall.RawConn) {
	d, err := root.Open(name)
	if err != nil {
		return nil, nil
	}
	rc, err := d.SyscallConn()
	if err != nil {
		d.Close()
		return nil, nil
	}
	return d, rc
}

// openDirect opens a docroot file without following any link. It returns
// errLinked when a segment is a link and fs errors otherwise.
func (s *Store) openDirect(name string) (*os.File, error) {
	fd, err := -1, error(nil)
	// Control holds the folder's descriptor open while it is used.
	if cerr := s.direct.Control(func(root uintptr) { fd, err = openBeneath(int(root), name) }); cerr != nil {
		return nil, cerr
	}
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), name), nil
}

// openBeneath opens name below the folder root, one segment at a time,
// following no link. Names with empty, "." or ".." segments are refused.
func openBeneath(root int, name string) (int, error) {
	dir := root
	defer func() {
		if dir != root {
			syscall.Close(dir)
		}
	}()
	for {
		seg, rest, more := strings.Cut(name, "/")
		if seg == "" || seg == "." || seg == ".." {
			return -1, syscall.EINVAL
		}
		flags := syscall.O_RDONLY | syscall.O_CLOEXEC | syscall.O_NOFOLLOW
		if more {
			flags |= syscall.O_DIRECTORY
		}
		fd, err := openatRetry(dir, seg, flags)
		//nolint:errorlint // bare Errnos from the system call
		if err == syscall.ELOOP || more && err == syscall.ENOTDIR {
			// A link as the last segment fails with ELOOP; as a folder
			// (O_DIRECTORY) with ENOTDIR, as a file in the way does.
			return -1, errLinked
		}
		if err != nil {
			return -1, &os.PathError{Op: "openat", Path: name, Err: err}
		}
		if !more {
			return fd, nil
		}
		if dir != root {
			syscall.Close(dir)
		}
		dir, name = fd, rest
	}
}

func openatRetry(dir int, name string, flags int) (int, error) {
	for {
		fd, err := syscall.Openat(dir, name, flags, 0)
		if err != syscall.EINTR { //nolint:errorlint // a bare Errno from the system call
			return fd, err
		}
	}
}

// readFdPath reads the path of an open descriptor from /proc/self/fd.
func readFdPath(fd uintptr, buf []byte) (int, error) {
	var b [32]byte
	p := strconv.AppendUint(append(b[:0], "/proc/self/fd/"...), uint64(fd), 10)
	return syscall.Readlink(string(p), buf)
}
