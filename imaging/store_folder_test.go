package imaging

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func newTestFolderStore(t *testing.T) *FolderStore {
	s, err := NewFolderStore(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestFolderStoreSuite(t *testing.T) {
	runStoreSuite(t, func(t *testing.T) Store { return newTestFolderStore(t) })
}

func TestFolderStoreSymlinkCannotLeaveFolder(t *testing.T) {
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := newTestFolderStore(t)
	if err := os.Symlink(outside, filepath.Join(s.dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(s.dir, "file")); err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	if keys := listKeys(t, s, ""); len(keys) != 0 {
		t.Fatalf("List followed symlinks: %v", keys)
	}
	for _, key := range []string{"link/secret", "file"} {
		if obj, err := s.Get(ctx, key); err == nil {
			t.Fatalf("Get(%q) read %q from outside the folder", key, obj.Data)
		}
	}
	if err := s.Put(ctx, "link/secret", []byte("x"), "", nil); err == nil {
		t.Fatal("Put through a symlinked folder succeeded")
	}
	// Writing "file" replaces the link itself (rename), never its target.
	_ = s.Put(ctx, "file", []byte("x"), "", nil)
	if b, _ := os.ReadFile(filepath.Join(outside, "secret")); string(b) != "secret" {
		t.Fatalf("outside file changed to %q", b)
	}
}

func TestFolderStoreHidesTempAndSidecarFiles(t *testing.T) {
	s := newTestFolderStore(t)
	ctx := testCtx(t)
	if err := s.Put(ctx, "a/b", []byte("a/b"), "text/plain", map[string]string{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.dir, "a", ".b.meta")); err != nil {
		t.Fatalf("sidecar missing: %v", err)
	}
	if err := os.WriteFile(filepath.Join(s.dir, "a", ".tmp-leftover"), []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	if keys := listKeys(t, s, ""); !slices.Equal(keys, []string{"a/b"}) {
		t.Fatalf("List = %v, want only a/b", keys)
	}
	if err := s.Delete(ctx, "a/b"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.dir, "a", ".b.meta")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("sidecar left after Delete: %v", err)
	}
}

func TestFolderStoreRemovesEmptyFolders(t *testing.T) {
	s := newTestFolderStore(t)
	ctx := testCtx(t)
	putKeys(t, s, []string{"img/u1/v/1-2/144.jpg", "img/u2/v/1-2/144.jpg"})
	if _, err := s.DeletePrefix(ctx, "img/u1/"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.dir, "img", "u1")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("empty folder img/u1 left: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.dir, "img", "u2", "v", "1-2", "144.jpg")); err != nil {
		t.Fatal(err)
	}
}

func TestFolderStorePingFailsWhenFolderGone(t *testing.T) {
	s := newTestFolderStore(t)
	if err := s.Ping(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(s.dir); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(testCtx(t)); err == nil {
		t.Fatal("Ping succeeded after the folder was removed")
	}
}
