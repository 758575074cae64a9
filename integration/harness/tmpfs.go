package harness

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
)

// Tmpfs mounts a tmpfs file system of size bytes at dir (created if
// needed): a small file system of the test's own, to fill. It needs root
// on Linux; otherwise the test is skipped with a message. The file system
// is unmounted when the test ends (registered before the edge that uses
// it is started, it goes after the edge has stopped), also on failure.
func Tmpfs(t testing.TB, dir string, size int64) {
	t.Helper()
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		t.Skip("skipped: mounting a small tmpfs file system to fill needs root on Linux (CI runs as root)")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV,
		fmt.Sprintf("size=%d,mode=0755", size)); err != nil {
		t.Skipf("skipped: cannot mount a tmpfs file system at %s: %v", dir, err)
	}
	t.Cleanup(func() {
		err := syscall.Unmount(dir, 0)
		if errors.Is(err, syscall.EBUSY) {
			err = syscall.Unmount(dir, syscall.MNT_DETACH) // gone once its last user is
		}
		if err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
}

// Ballast is a file that fills a file system.
type Ballast struct {
	t    testing.TB
	path string
	// Size is how many bytes it took.
	Size int64
}

// Fill writes a ballast file into dir until its file system has no space
// left (the last write fails with ENOSPC).
func Fill(t testing.TB, dir string) *Ballast {
	t.Helper()
	path := filepath.Join(dir, "ballast")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := &Ballast{t: t, path: path}
	if info, err := f.Stat(); err == nil {
		b.Size = info.Size()
	}
	// Large writes first, then ever smaller ones for the rest; bounded
	// by the chunk sizes (each ends at its first ENOSPC).
	for chunk := 1 << 20; chunk >= 512; chunk /= 8 {
		buf := make([]byte, chunk)
		for range 1 << 16 {
			n, err := f.Write(buf)
			b.Size += int64(n)
			if errors.Is(err, syscall.ENOSPC) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	return b
}

// Refill fills up again what the file system has freed since.
func (b *Ballast) Refill() { Fill(b.t, filepath.Dir(b.path)) }

// Remove deletes the ballast: the space is free again.
func (b *Ballast) Remove() {
	if err := os.Remove(b.path); err != nil {
		b.t.Fatal(err)
	}
}
