//go:build linux

package cache

import "golang.org/x/sys/unix"

// statFreeSpace reports the size of dir's file system and the space an
// unprivileged process may still use on it.
func statFreeSpace(dir string) (total, avail int64, err error) {
	var st unix.Statfs_t
	for {
		err = unix.Statfs(dir, &st)
		if err != unix.EINTR { //nolint:errorlint // a bare Errno from the system call
			break
		}
	}
	if err != nil {
		return 0, 0, err
	}
	return int64(st.Blocks) * st.Bsize, int64(st.Bavail) * st.Bsize, nil
}
