//go:build !linux

package cache

import (
	"errors"
	"os"
	"syscall"
)

var errLinked = errors.New("a symbolic link is on the way")

// openDirectDir: there is no direct open here; every file is opened
// through the os.Root and checked with an Lstat of its last component.
func openDirectDir(*os.Root) (*os.File, syscall.RawConn) { return nil, nil }

func (s *Store) openDirect(string) (*os.File, error) { return nil, errors.ErrUnsupported }

// readFdPath: an open file's path cannot be read here.
func readFdPath(uintptr, []byte) (int, error) { return 0, errors.ErrUnsupported }
