//go:build linux

package cache

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestReplaceAt: a temp file goes onto a page by exchange (the page is
// never missing) and the old page leaves the temp folder; with nothing
// there it is linked in and its temp name removed; a folder or a link
// that came in after the page was looked at stays where it is, and so
// does the temp file.
func TestReplaceAt(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, page string) // what is at the page's name
		exists  bool                            // what the caller saw there
		wantErr bool
	}{
		{name: "over a page", exists: true, setup: func(t *testing.T, page string) { writeFile(t, page, "old") }},
		{name: "nothing there", exists: false, setup: func(*testing.T, string) {}},
		{name: "page gone meanwhile", exists: true, setup: func(*testing.T, string) {}},
		{name: "page came in meanwhile", exists: false, setup: func(t *testing.T, page string) { writeFile(t, page, "other") }},
		{name: "folder came in meanwhile", exists: false, wantErr: true, setup: func(t *testing.T, page string) {
			if err := os.Mkdir(page, 0o755); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "folder came in", exists: true, wantErr: true, setup: func(t *testing.T, page string) {
			if err := os.Mkdir(page, 0o755); err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(page, "child.html"), "child")
		}},
		{name: "link came in", exists: true, wantErr: true, setup: func(t *testing.T, page string) {
			target := filepath.Join(t.TempDir(), "elsewhere")
			writeFile(t, target, "elsewhere")
			if err := os.Symlink(target, page); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, tmpDir := t.TempDir(), t.TempDir()
			page, tmp := filepath.Join(dir, "p.html"), filepath.Join(tmpDir, "t1")
			tt.setup(t, page)
			writeFile(t, tmp, "new")
			before, _ := os.Lstat(page)
			dfd, tfd := openDir(t, dir), openDir(t, tmpDir)
			err := replaceAt(tfd, "t1", dfd, "p.html", tt.exists)
			if tt.wantErr {
				if err == nil {
					t.Fatal("replaced a folder or a link")
				}
				after, lerr := os.Lstat(page)
				if lerr != nil || !os.SameFile(before, after) || after.Mode() != before.Mode() {
					t.Fatalf("the page's name changed: %v", lerr)
				}
				if b, _ := os.ReadFile(tmp); string(b) != "new" {
					t.Fatalf("temp file = %q, want it untouched", b)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if b, _ := os.ReadFile(page); string(b) != "new" {
				t.Fatalf("page = %q, want new", b)
			}
			if left, _ := os.ReadDir(tmpDir); len(left) != 0 {
				t.Fatalf("temp folder keeps %d files", len(left))
			}
		})
	}
}

func writeFile(t *testing.T, name, body string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func openDir(t *testing.T, dir string) int {
	t.Helper()
	fd, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	return fd
}
