//go:build linux

package registry

import (
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// releaseMapping drops the registry file's pages from this process's
// memory map (madvise MADV_DONTNEED). bbolt reads the file through a
// shared, read-only mapping, and a fault there maps a whole page-cache
// folio (up to megabytes), so a change touching a few thousand scattered
// entries would otherwise keep hundreds of megabytes of the file counted
// as the process's resident memory. The pages stay in the kernel's page
// cache; the next read faults them back in. The read transaction holds
// bbolt's mapping lock, so the mapping cannot be replaced meanwhile.
func releaseMapping(db *bolt.DB) error {
	return db.View(func(tx *bolt.Tx) error {
		data, size := db.Info().Data, tx.Size()
		if data == 0 || size <= 0 {
			return nil
		}
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, data, uintptr(size), unix.MADV_DONTNEED); errno != 0 {
			return errno
		}
		return nil
	})
}
