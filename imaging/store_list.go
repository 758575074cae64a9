package imaging

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
)

// deletePrefixByList lists prefix and deletes the keys in batches of
// deleteBatch, so memory stays bounded however many objects match.
func deletePrefixByList(ctx context.Context, st Store, prefix string, del func(context.Context, []string) error) (int, error) {
	return deleteListed(ctx, st, prefix, nil, del)
}

// deleteListed is deletePrefixByList that leaves the keys keep says to.
func deleteListed(ctx context.Context, st Store, prefix string, keep func(key string) bool,
	del func(context.Context, []string) error) (int, error) {
	n := 0
	batch := make([]string, 0, deleteBatch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := del(ctx, batch); err != nil {
			return err
		}
		n += len(batch)
		batch = batch[:0]
		return nil
	}
	err := st.List(ctx, prefix, func(oi ObjectInfo) error {
		if keep != nil && keep(oi.Key) {
			return nil
		}
		batch = append(batch, oi.Key)
		if len(batch) == deleteBatch {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return n, fmt.Errorf("delete prefix %s: %w", prefix, err)
	}
	return n, nil
}

// List implements Store. Folders are walked in name order, so keys that
// share a '/'-terminated prefix are visited together. Temp and sidecar files
// (names starting with '.') are skipped. ContentType and Meta are not
// filled in.
func (s *FolderStore) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	if prefix != "" && !validPrefix(prefix) {
		return errInvalidKey("list", prefix)
	}
	start := "."
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		start = prefix[:i]
	}
	err := fs.WalkDir(s.root.FS(), start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == start && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			if errors.Is(err, fs.ErrNotExist) { // removed while walking
				return nil
			}
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if strings.HasPrefix(d.Name(), ".") && p != "." {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			// Skip folders that cannot contain a matching key.
			if p != start && !strings.HasPrefix(p+"/", prefix) && !strings.HasPrefix(prefix, p+"/") {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || !strings.HasPrefix(p, prefix) {
			return nil
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		return fn(ObjectInfo{Key: p, Size: fi.Size(), ModTime: fi.ModTime(),
			ETag: fmt.Sprintf("%x-%x", fi.ModTime().UnixNano(), fi.Size())})
	})
	if err != nil {
		return fmt.Errorf("folder store list %s: %w", prefix, err)
	}
	return nil
}
