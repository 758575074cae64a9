//go:build !linux

package cache

import (
	"errors"
	"os"
	"syscall"
)

// openTempDir: no writes by descriptor here; every write goes through the
// os.Root.
func openTempDir(*os.Root) (*os.File, syscall.RawConn) { return nil, nil }

func (s *Store) createTempDirect(string) (*os.File, error) { return nil, errors.ErrUnsupported }

func (s *Store) installDirect(string, string, precompressed) (bool, error) { return false, nil }
