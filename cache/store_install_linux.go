//go:build linux

package cache

import (
	"os"
	"path"
	"strings"
	"syscall"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// The miss path's writes on Linux, by descriptor: the temp folder stays
// open, a temp file is one openat in it, and installing a page opens its
// folder once (one openat per segment, following no link) and renames and
// removes relative to it (a stat before each rename over a file and each
// removal keeps the docroot's size). Through the os.Root every one of these calls
// walked the whole name again (about a dozen openat per miss).

// openTempDir opens the temp folder for createTempDirect (nil where it
// cannot be opened: the os.Root way is taken).
func openTempDir(root *os.Root) (*os.File, syscall.RawConn) { return openRootDir(root, TempDir) }

// createTempDirect creates the temp file base in the open temp folder.
func (s *Store) createTempDirect(base string) (*os.File, error) {
	fd, err := -1, error(nil)
	if cerr := s.tmpDirect.Control(func(dir uintptr) {
		fd, err = openatMode(int(dir), base, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o644)
	}); cerr != nil {
		return nil, cerr
	}
	if err != nil {
		return nil, &os.PathError{Op: "openat", Path: path.Join(TempDir, base), Err: err}
	}
	return os.NewFile(uintptr(fd), path.Join(TempDir, base)), nil
}

// installDirect is install when the page's folder exists and no link is
// on the way; done is false when it is not (nothing was changed then, and
// install takes the os.Root way, which creates folders and sorts out
// conflicts).
func (s *Store) installDirect(tmp, name string, variants precompressed) (done bool, err error) {
	if s.direct == nil || s.tmpDirect == nil || path.Dir(tmp) != TempDir {
		return false, nil
	}
	dfd := -1
	var oerr error
	if cerr := s.direct.Control(func(root uintptr) { dfd, oerr = openDirBeneath(int(root), path.Dir(name)) }); cerr != nil || oerr != nil {
		return false, nil
	}
	defer syscall.Close(dfd)
	base := path.Base(name)
	var st unix.Stat_t
	serr := unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	if serr == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
		s.discardPrecompressed(variants)
		return true, errConflict // never replace the operator's link
	}
	old, had := st.Size, serr == nil && st.Mode&unix.S_IFMT == unix.S_IFREG
	var n int64
	cerr := s.tmpDirect.Control(func(tdir uintptr) {
		s.installVariantAt(int(tdir), variants.gzip, dfd, base+GzipSuffix, name+GzipSuffix)
		s.installVariantAt(int(tdir), variants.brotli, dfd, base+BrotliSuffix, name+BrotliSuffix)
		n, _ = regularSizeAt(int(tdir), path.Base(tmp))
		err = replaceAt(int(tdir), path.Base(tmp), dfd, base, had)
	})
	if cerr != nil {
		return true, cerr
	}
	if err != nil {
		//nolint:errorlint // bare Errnos from the system call
		if err == syscall.EISDIR || err == syscall.ENOTDIR || err == syscall.EEXIST || err == syscall.ENOTEMPTY {
			return true, errConflict
		}
		return true, &os.PathError{Op: "rename into place", Path: name, Err: err}
	}
	s.size.replaced(n, old, had)
	s.dropHot(name)
	s.unlinkQuietAt(dfd, base+OldSuffix, name+OldSuffix)
	return true, nil
}

// installVariantAt puts a precompressed copy in place, or removes an old
// one (like installVariant, by descriptor).
func (s *Store) installVariantAt(tdir int, tmp string, dfd int, base, name string) {
	if tmp == "" {
		if s.precompressed.Load() {
			s.unlinkQuietAt(dfd, base, name)
		}
		return
	}
	n, _ := regularSizeAt(tdir, path.Base(tmp))
	old, had := regularSizeAt(dfd, base)
	if replaceAt(tdir, path.Base(tmp), dfd, base, had) != nil {
		s.removeQuiet(tmp)
		s.unlinkQuietAt(dfd, base, name)
		return
	}
	s.size.replaced(n, old, had)
}

// regularSizeAt is the size of the regular file base in folder dfd (ok
// false: none, or not a regular file).
func regularSizeAt(dfd int, base string) (int64, bool) {
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return 0, false
	}
	return st.Size, true
}

// unlinkQuietAt removes base in folder dfd (an empty folder too, as
// os.Root.Remove does); no such file is what it was for.
func (s *Store) unlinkQuietAt(dfd int, base, name string) {
	var st unix.Stat_t
	err := unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	//nolint:errorlint // bare Errnos from the system call
	if err == syscall.ENOENT || err == syscall.ENOTDIR {
		return // nothing there: the stat saves the unlink
	}
	n, counted := st.Size, err == nil && st.Mode&unix.S_IFMT == unix.S_IFREG
	err = unix.Unlinkat(dfd, base, 0)
	if err == nil && counted {
		s.size.removed(n)
	}
	//nolint:errorlint // bare Errnos from the system call
	if err == syscall.EISDIR || err == syscall.EPERM {
		err = unix.Unlinkat(dfd, base, unix.AT_REMOVEDIR)
	}
	//nolint:errorlint // bare Errnos from the system call
	if err != nil && err != syscall.ENOENT && err != syscall.ENOTDIR {
		s.log.Warn("cannot remove file", zap.String("file", name), zap.Error(err))
	}
}

// openDirBeneath opens the folder dir below root, one segment at a time,
// following no link ("." is root itself, duplicated). Names with empty,
// "." or ".." segments are refused.
func openDirBeneath(root int, dir string) (int, error) {
	if dir == "." {
		return openatMode(root, ".", syscall.O_RDONLY|syscall.O_CLOEXEC|syscall.O_DIRECTORY, 0)
	}
	fd := root
	for {
		seg, rest, more := strings.Cut(dir, "/")
		if seg == "" || seg == "." || seg == ".." {
			if fd != root {
				syscall.Close(fd)
			}
			return -1, syscall.EINVAL
		}
		next, err := openatMode(fd, seg, syscall.O_RDONLY|syscall.O_CLOEXEC|syscall.O_NOFOLLOW|syscall.O_DIRECTORY, 0)
		if fd != root {
			syscall.Close(fd)
		}
		if err != nil {
			return -1, err
		}
		if !more {
			return next, nil
		}
		fd, dir = next, rest
	}
}

func openatMode(dir int, name string, flags int, mode uint32) (int, error) {
	for {
		fd, err := syscall.Openat(dir, name, flags, mode)
		if err != syscall.EINTR { //nolint:errorlint // a bare Errno from the system call
			return fd, err
		}
	}
}

// replaceAt renames the temp file tmp (in folder tdir) to base (in folder
// dfd). Over a page that is there (exists) it exchanges the two names
// (renameat2 RENAME_EXCHANGE: base is never missing, as with a rename) and
// removes the temp name, which then holds the old page. ext4 writes out a
// file renamed over another one before the rename, with both folders
// locked (auto_da_alloc), which made renames the storm's bottleneck (a
// cross-folder rename also takes the file system's rename lock); an
// exchange does not. Where exchanging is not supported, or base is gone
// meanwhile, it is a plain rename.
//
// A new page is linked into its folder and the temp name removed: a
// rename from one folder to another takes the file system's rename lock,
// and with it the misses of a storm of new pages waited for each other;
// a link locks only the page's folder.
func replaceAt(tdir int, tmp string, dfd int, base string, exists bool) error {
	if !exists {
		err := linkatRetry(tdir, tmp, dfd, base)
		//nolint:errorlint // bare Errnos from the system call
		switch err {
		case nil:
			// A temp name left here by a crash is removed with the temp
			// folder at the next start.
			_ = unix.Unlinkat(tdir, tmp, 0)
			return nil
		case syscall.EEXIST:
			return replaceAt(tdir, tmp, dfd, base, true) // something came in meanwhile
		case syscall.EPERM, syscall.EOPNOTSUPP, syscall.EMLINK, syscall.ENOSYS:
			return renameatRetry(tdir, tmp, dfd, base) // no hard links here
		default:
			return err
		}
	}
	err := renameat2Retry(tdir, tmp, dfd, base, unix.RENAME_EXCHANGE)
	//nolint:errorlint // bare Errnos from the system call
	switch err {
	case nil:
	case syscall.ENOENT, syscall.EINVAL, syscall.ENOSYS, syscall.EOPNOTSUPP:
		return renameatRetry(tdir, tmp, dfd, base)
	default:
		return err
	}
	// tmp is what base was: a regular file when it was looked at. Should
	// anything else have come in meanwhile (a folder, the operator's link),
	// it goes back, as a rename over it would have failed.
	var st unix.Stat_t
	if err := unix.Fstatat(tdir, tmp, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil && st.Mode&unix.S_IFMT != unix.S_IFREG {
		if err := renameat2Retry(tdir, tmp, dfd, base, unix.RENAME_EXCHANGE); err != nil {
			return err
		}
		return syscall.EISDIR
	}
	// An old page left here by a crash is removed with the temp folder at
	// the next start.
	_ = unix.Unlinkat(tdir, tmp, 0)
	return nil
}

func renameat2Retry(from int, fromName string, to int, toName string, flags uint) error {
	return retryEINTR(func() error { return unix.Renameat2(from, fromName, to, toName, flags) })
}

func linkatRetry(from int, fromName string, to int, toName string) error {
	return retryEINTR(func() error { return unix.Linkat(from, fromName, to, toName, 0) })
}

func renameatRetry(from int, fromName string, to int, toName string) error {
	return retryEINTR(func() error { return syscall.Renameat(from, fromName, to, toName) })
}

// retryEINTR calls a system call again while it is interrupted.
func retryEINTR(call func() error) error {
	for {
		if err := call(); err != syscall.EINTR { //nolint:errorlint // a bare Errno from the system call
			return err
		}
	}
}
