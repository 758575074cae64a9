package cache

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Ephemeral files: a render that expires sooner than the Ephemeral
// setting after it was written is not worth a registry entry (written,
// indexed, swept). It is held in memory until it expires, with a backup
// file in the data folder so that a crash cannot leave it in the docroot
// for ever: at the next start, every file the backup names is
// invalidated, their short lives being over or nearly so.

// ephemeralFiles are the ephemeral files of every docroot.
type ephemeralFiles struct {
	cfg  *settings
	log  *zap.Logger
	path string // the backup file

	mu    sync.Mutex
	files map[FileID]ephemeralEntry
}

// ephemeralEntry is a file that expires too soon to be worth a registry
// entry.
type ephemeralEntry struct {
	Root    uint16 `json:"r"`
	File    string `json:"f"`
	Key     string `json:"k"`
	Host    string `json:"h,omitempty"`
	Created int64  `json:"c"`
	Expires int64  `json:"e"`
}

func newEphemeralFiles(dataDir string, cfg *settings, log *zap.Logger) *ephemeralFiles {
	return &ephemeralFiles{cfg: cfg, log: log, path: filepath.Join(dataDir, "ephemeral.json"),
		files: map[FileID]ephemeralEntry{}}
}

// holds reports whether a render with this entry is kept out of the
// registry.
func (f *ephemeralFiles) holds(e Entry) bool {
	limit := f.cfg.get().Ephemeral
	return e.Expires > 0 && limit > 0 && e.Expires-e.Created < limit.Milliseconds()
}

// keep holds an entry in memory and in the backup file.
func (f *ephemeralFiles) keep(id FileID, entry Entry) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.files[id] = ephemeralEntry{Root: id.Root, File: id.File, Key: entry.Key, Host: entry.Host,
		Created: entry.Created, Expires: entry.Expires}
	f.writeBackup()
}

// names returns the ephemeral files of a docroot.
func (f *ephemeralFiles) names(root uint16) map[string]bool {
	names := map[string]bool{}
	f.mu.Lock()
	for id := range f.files {
		if id.Root == root {
			names[id.File] = true
		}
	}
	f.mu.Unlock()
	return names
}

// expire invalidates the ephemeral files that are due.
func (f *ephemeralFiles) expire(now time.Time, docroots *docroots) {
	f.mu.Lock()
	var due []ephemeralEntry
	for id, eph := range f.files {
		if eph.Expires <= now.UnixMilli() {
			due = append(due, eph)
			delete(f.files, id)
		}
	}
	if len(due) > 0 {
		f.writeBackup()
	}
	f.mu.Unlock()
	for _, eph := range due {
		if s := docroots.byID(eph.Root, true); s != nil {
			if _, err := s.Invalidate(eph.File); err != nil {
				f.log.Warn("expiring ephemeral file", zap.String("file", eph.File), zap.Error(err))
			}
		}
	}
}

// writeBackup rewrites the backup file; called with mu held.
func (f *ephemeralFiles) writeBackup() {
	list := make([]ephemeralEntry, 0, len(f.files))
	for _, eph := range f.files {
		list = append(list, eph)
	}
	data, _ := json.Marshal(list)
	if err := writeFileAtomic(f.path, data); err != nil {
		f.log.Warn("writing ephemeral backup", zap.Error(err))
	}
}

// recover invalidates the files a crash left in the backup.
func (f *ephemeralFiles) recover(docroots *docroots) {
	data, err := readFileIfExists(f.path)
	if err != nil || len(data) == 0 {
		return
	}
	var list []ephemeralEntry
	if json.Unmarshal(data, &list) != nil {
		return
	}
	for _, eph := range list {
		if s := docroots.byID(eph.Root, true); s != nil {
			_, _ = s.Invalidate(eph.File)
		}
	}
	if len(list) > 0 {
		f.log.Info("invalidated ephemeral files after restart", zap.Int("files", len(list)))
	}
	_ = writeFileAtomic(f.path, []byte("[]"))
}

// writeFileAtomic replaces a small file (temp file + rename).
func writeFileAtomic(name string, data []byte) error {
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}

func readFileIfExists(name string) ([]byte, error) {
	b, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}
