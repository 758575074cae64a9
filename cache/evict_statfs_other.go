//go:build !linux

package cache

import "errors"

// statFreeSpace: the free space is read on Linux only; elsewhere min_free
// is not watched (logged once).
func statFreeSpace(string) (total, avail int64, err error) {
	return 0, 0, errors.ErrUnsupported
}
