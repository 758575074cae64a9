//go:build !unix

package cache

import (
	"io/fs"
	"os"
)

// readFolder lists the folder name of dir.
func readFolder(dir *os.Root, name string) ([]fs.DirEntry, error) {
	f, err := dir.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.ReadDir(-1)
}
