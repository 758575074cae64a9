package imaging

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"syscall"
)

// FolderStore is a Store in a local folder, the embedded default. An object
// is the file <dir>/<key>; its content type, metadata and tags are kept in
// a JSON sidecar <dir>/<key's folder>/.<name>.meta next to it. All access
// goes through os.Root, so no key, symlink or race can reach outside the
// folder; keys are checked with ValidKey besides.
//
// Writes are atomic (temp file + rename). The ETag is derived from the data
// file's modification time and size, read from the very file descriptor the
// data is read from, so it always matches the bytes served.
type FolderStore struct {
	dir  string
	root *os.Root
}

// sidecar is the JSON kept next to each object.
type sidecar struct {
	// ContentType is the media type given to Put.
	ContentType string `json:"contentType,omitempty"`
	// Meta is the metadata given to Put, keys lower-case.
	Meta map[string]string `json:"meta,omitempty"`
	// Tags are the tags set with SetTags.
	Tags map[string]string `json:"tags,omitempty"`
}

// NewFolderStore opens (creating it if needed) the folder dir as a store.
func NewFolderStore(dir string) (*FolderStore, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("folder store %s: %w", dir, err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("folder store %s: %w", dir, err)
	}
	return &FolderStore{dir: dir, root: root}, nil
}

// Close releases the folder handle.
func (s *FolderStore) Close() error { return s.root.Close() }

// String describes the store for logs.
func (s *FolderStore) String() string { return "folder " + s.dir }

func sidecarName(key string) string {
	dir, name := path.Split(key)
	return dir + "." + name + ".meta"
}

func (s *FolderStore) notFoundOr(op, key string, err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errNotADir) {
		return fmt.Errorf("%s %s: %w", op, key, ErrNotFound)
	}
	return fmt.Errorf("folder store %s %s: %w", op, key, err)
}

var errNotADir = errors.New("not a directory")

// Get implements Store.
func (s *FolderStore) Get(ctx context.Context, key string) (*Object, error) {
	if !ValidKey(key) {
		return nil, errInvalidKey("get", key)
	}
	f, err := s.root.Open(key)
	if err != nil {
		return nil, s.notFoundOr("get", key, notDir(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, s.notFoundOr("get", key, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("get %s: %w", key, ErrNotFound)
	}
	if fi.Size() > MaxObjectSize {
		return nil, fmt.Errorf("folder store get %s: object of %d bytes exceeds %d", key, fi.Size(), MaxObjectSize)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxObjectSize))
	if err != nil {
		return nil, fmt.Errorf("folder store get %s: %w", key, err)
	}
	info, err := s.info(key, fi)
	if err != nil {
		return nil, err
	}
	info.Size = int64(len(data))
	return &Object{ObjectInfo: *info, Data: data}, nil
}

// Stat implements Store.
func (s *FolderStore) Stat(ctx context.Context, key string) (*ObjectInfo, error) {
	if !ValidKey(key) {
		return nil, errInvalidKey("stat", key)
	}
	fi, err := s.root.Stat(key)
	if err != nil {
		return nil, s.notFoundOr("stat", key, notDir(err))
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("stat %s: %w", key, ErrNotFound)
	}
	return s.info(key, fi)
}

func (s *FolderStore) info(key string, fi fs.FileInfo) (*ObjectInfo, error) {
	sc, err := s.readSidecar(key)
	if err != nil {
		return nil, err
	}
	return &ObjectInfo{
		Key:         key,
		Size:        fi.Size(),
		ETag:        fmt.Sprintf("%x-%x", fi.ModTime().UnixNano(), fi.Size()),
		ModTime:     fi.ModTime(),
		ContentType: sc.ContentType,
		Meta:        sc.Meta,
	}, nil
}

// readSidecar returns the sidecar of key (empty if there is none).
func (s *FolderStore) readSidecar(key string) (sidecar, error) {
	var sc sidecar
	b, err := s.root.ReadFile(sidecarName(key))
	if errors.Is(err, fs.ErrNotExist) {
		return sc, nil
	}
	if err != nil {
		return sc, fmt.Errorf("folder store read metadata of %s: %w", key, err)
	}
	if err := json.Unmarshal(b, &sc); err != nil {
		return sc, fmt.Errorf("folder store metadata of %s: %w", key, err)
	}
	if sc.Meta == nil {
		sc.Meta = map[string]string{}
	}
	return sc, nil
}

// Put implements Store. The sidecar is written before the data, so a new
// object never appears without its metadata.
func (s *FolderStore) Put(ctx context.Context, key string, data []byte, contentType string, meta map[string]string) error {
	if !ValidKey(key) {
		return errInvalidKey("put", key)
	}
	if err := checkMeta(meta); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	sc, err := json.Marshal(sidecar{ContentType: contentType, Meta: lowerMeta(meta)})
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err := s.writeAtomic(sidecarName(key), sc); err != nil {
		return fmt.Errorf("folder store put %s metadata: %w", key, err)
	}
	if err := s.writeAtomic(key, data); err != nil {
		return fmt.Errorf("folder store put %s: %w", key, err)
	}
	return nil
}

// writeAtomic writes data to a temp file in name's folder and renames it
// into place. A concurrent Delete may remove the (empty) folder between
// creating it and the rename; that is retried.
func (s *FolderStore) writeAtomic(name string, data []byte) error {
	dir := path.Dir(name)
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if err = s.root.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		var tmp string
		if tmp, err = s.writeTemp(dir, data); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return err
		}
		if err = s.root.Rename(tmp, name); err != nil {
			_ = s.root.Remove(tmp)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return err
		}
		return nil
	}
	return err
}

func (s *FolderStore) writeTemp(dir string, data []byte) (string, error) {
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := path.Join(dir, ".tmp-"+hex.EncodeToString(rnd[:]))
	f, err := s.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return "", err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		_ = s.root.Remove(tmp)
		return "", err
	}
	if err := f.Close(); err != nil {
		_ = s.root.Remove(tmp)
		return "", err
	}
	return tmp, nil
}

// Delete implements Store. Emptied folders are removed.
func (s *FolderStore) Delete(ctx context.Context, key string) error {
	if !ValidKey(key) {
		return errInvalidKey("delete", key)
	}
	if err := s.root.Remove(key); err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(notDir(err), errNotADir) {
		return fmt.Errorf("folder store delete %s: %w", key, err)
	}
	if err := s.root.Remove(sidecarName(key)); err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(notDir(err), errNotADir) {
		return fmt.Errorf("folder store delete %s metadata: %w", key, err)
	}
	s.removeEmptyDirs(path.Dir(key))
	return nil
}

// removeEmptyDirs removes dir and its parents while they are empty
// (best effort: a non-empty folder simply stays).
func (s *FolderStore) removeEmptyDirs(dir string) {
	for dir != "." && dir != "/" && dir != "" {
		if s.root.Remove(dir) != nil {
			return
		}
		dir = path.Dir(dir)
	}
}

// DeletePrefix implements Store.
func (s *FolderStore) DeletePrefix(ctx context.Context, prefix string) (int, error) {
	if !validPrefix(prefix) {
		return 0, errInvalidKey("delete prefix", prefix)
	}
	return deletePrefixByList(ctx, s, prefix, s.DeleteKeys)
}

// DeleteKeys implements Store.
func (s *FolderStore) DeleteKeys(ctx context.Context, keys []string) error {
	for _, k := range keys {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.Delete(ctx, k); err != nil {
			return err
		}
	}
	return nil
}

// SetTags implements Store.
func (s *FolderStore) SetTags(ctx context.Context, key string, tags map[string]string) error {
	if !ValidKey(key) {
		return errInvalidKey("set tags", key)
	}
	if err := checkTags(tags); err != nil {
		return fmt.Errorf("set tags %s: %w", key, err)
	}
	if _, err := s.root.Stat(key); err != nil {
		return s.notFoundOr("set tags", key, notDir(err))
	}
	sc, err := s.readSidecar(key)
	if err != nil {
		return err
	}
	sc.Tags = tags
	b, err := json.Marshal(sc)
	if err != nil {
		return fmt.Errorf("set tags %s: %w", key, err)
	}
	if err := s.writeAtomic(sidecarName(key), b); err != nil {
		return fmt.Errorf("folder store set tags %s: %w", key, err)
	}
	return nil
}

// GetTags implements Store.
func (s *FolderStore) GetTags(ctx context.Context, key string) (map[string]string, error) {
	if !ValidKey(key) {
		return nil, errInvalidKey("get tags", key)
	}
	if _, err := s.root.Stat(key); err != nil {
		return nil, s.notFoundOr("get tags", key, notDir(err))
	}
	sc, err := s.readSidecar(key)
	if err != nil {
		return nil, err
	}
	if sc.Tags == nil {
		sc.Tags = map[string]string{}
	}
	return sc.Tags, nil
}

// Ping implements Store: the folder must still exist (at its path) and be
// writable.
func (s *FolderStore) Ping(ctx context.Context) error {
	fi, err := os.Stat(s.dir)
	if err != nil {
		return fmt.Errorf("folder store %s: %w", s.dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("folder store %s: not a directory", s.dir)
	}
	tmp, err := s.writeTemp(".", nil)
	if err != nil {
		return fmt.Errorf("folder store %s not writable: %w", s.dir, err)
	}
	_ = s.root.Remove(tmp)
	return nil
}

// notDir maps ENOTDIR (a key whose folder part is a file) to errNotADir so
// that it reads as "not found".
func notDir(err error) error {
	if errors.Is(err, syscall.ENOTDIR) {
		return errNotADir
	}
	return err
}
