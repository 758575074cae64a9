package imaging

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLazyStore: nothing is opened (no folder created) until the first
// use; a failed open is retried by the next use; Close closes the store,
// and a later use opens it again.
func TestLazyStore(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "images")
	opens, fail := 0, true
	s := NewLazyStore("folder "+dir, func() (Store, error) {
		opens++
		if fail {
			return nil, errors.New("not yet")
		}
		return NewFolderStore(dir)
	})
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) || opens != 0 {
		t.Fatalf("made: folder %v, %d opens", err, opens)
	}
	if err := s.Ping(ctx); err == nil || !strings.Contains(err.Error(), "image store folder "+dir) {
		t.Fatalf("failed open: %v, want an error naming the store", err)
	}
	fail = false
	if err := s.Put(ctx, "sys/x", []byte("x"), "text/plain", nil); err != nil {
		t.Fatal(err)
	}
	if obj, err := s.Get(ctx, "sys/x"); err != nil || string(obj.Data) != "x" {
		t.Fatalf("Get = %v, %v", obj, err)
	}
	if n, err := s.DeletePrefix(ctx, "sys/"); err != nil || n != 1 {
		t.Fatalf("DeletePrefix = %d, %v", n, err)
	}
	if opens != 2 {
		t.Fatalf("%d opens, want 2 (one failed, one kept)", opens)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(ctx, "sys/x"); !errors.Is(err, ErrNotFound) || opens != 3 {
		t.Fatalf("after Close: %v, %d opens; want ErrNotFound from a store opened again", err, opens)
	}
	if s.String() != "folder "+dir {
		t.Fatalf("String = %q", s.String())
	}
	_ = s.Close()
}
