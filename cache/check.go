package cache

import (
	"bytes"
	"fmt"
	"io/fs"
	"path"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// CheckReport lists what a consistency check of the registry against the
// docroots found. A healthy edge with drained queues reports nothing.
type CheckReport struct {
	Files, Entries int
	// Unregistered are cached files with no registry entry: nothing could
	// ever invalidate them.
	Unregistered []string
	// Dangling are entries whose file is gone and that no queue job
	// explains (with lazy removal these are normal until the cleanup runs).
	Dangling []string
	// BadIndex are reverse-index keys that do not match their entry, and
	// entries whose dependencies are missing from the index.
	BadIndex []string
	// TempFiles are files left in the temp folder.
	TempFiles []string
	// RetiredEntries and RetiredKeys count the entries and index keys of
	// removed files that wait for the background sweep (not a problem:
	// reads skip them).
	RetiredEntries, RetiredKeys int
}

// Problems is the number of findings.
func (r CheckReport) Problems() int {
	return len(r.Unregistered) + len(r.Dangling) + len(r.BadIndex) + len(r.TempFiles)
}

func (r CheckReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d files, %d entries, %d problems", r.Files, r.Entries, r.Problems())
	if r.RetiredEntries+r.RetiredKeys > 0 {
		fmt.Fprintf(&b, " (%d removed entries and %d index keys wait for the sweep)", r.RetiredEntries, r.RetiredKeys)
	}
	for _, l := range []struct {
		name string
		v    []string
	}{{"unregistered file", r.Unregistered}, {"dangling entry", r.Dangling}, {"bad index", r.BadIndex}, {"temp file", r.TempFiles}} {
		for i, v := range l.v {
			if i == 10 {
				fmt.Fprintf(&b, "\n  … %d more of %s", len(l.v)-10, l.name)
				break
			}
			fmt.Fprintf(&b, "\n  %s: %s", l.name, v)
		}
	}
	return b.String()
}

// Check compares the registry with the docroots it knows. Run it on an
// idle edge (or a stopped one's data folder): renders under way show up
// as findings.
func (e *Engine) Check() (CheckReport, error) {
	e.reg.Sync()
	var rep CheckReport
	if err := e.openAllStores(); err != nil {
		return rep, err
	}
	err := e.reg.db.View(func(tx *bolt.Tx) error {
		queued := map[string]bool{}
		if err := tx.Bucket(bucketQueueFiles).ForEach(func(k, _ []byte) error {
			queued[string(k)] = true
			return nil
		}); err != nil {
			return err
		}
		entries := tx.Bucket(bucketEntries)
		idx := tx.Bucket(bucketIndex)
		err := entries.ForEach(func(k, v []byte) error {
			rep.Entries++
			id := fileIDOf(k)
			var entry Entry
			if err := unmarshalEntry(v, &entry); err != nil {
				rep.BadIndex = append(rep.BadIndex, fmt.Sprintf("%s: undecodable entry: %v", id.File, err))
				return nil
			}
			if !e.reg.retired.visible(id, entry.Created) {
				rep.Entries--
				rep.RetiredEntries++
				return nil
			}
			for _, d := range entry.indexDeps() {
				if idx.Get(append(indexPrefix(d.Kind, d.Name), k...)) == nil {
					rep.BadIndex = append(rep.BadIndex, fmt.Sprintf("%s: %s %q not indexed", id.File, d.Kind, d.Name))
				}
			}
			store := e.storeByRoot(id.Root, false)
			if store != nil && !store.exists(id.File) && !queued[string(k)] && e.config().LazyRemoval == 0 {
				rep.Dangling = append(rep.Dangling, id.File)
			}
			return nil
		})
		if err != nil {
			return err
		}
		c := idx.Cursor()
		for k, iv := c.First(); k != nil; k, iv = c.Next() {
			i := bytes.IndexByte(k, 0)
			if i < 1 || len(k) < i+3 {
				rep.BadIndex = append(rep.BadIndex, fmt.Sprintf("malformed index key %q", k))
				continue
			}
			fk := k[i+1:]
			if !e.reg.retired.visible(fileIDOf(fk), indexCreated(iv)) {
				rep.RetiredKeys++
				continue
			}
			v := entries.Get(fk)
			if v == nil {
				rep.BadIndex = append(rep.BadIndex, fmt.Sprintf("index %c %q points to missing entry %s", k[0], k[1:i], fileIDOf(fk).File))
				continue
			}
			var entry Entry
			_ = unmarshalEntry(v, &entry)
			found := false
			for _, d := range entry.indexDeps() {
				if byte(d.Kind) == k[0] && d.Name == string(k[1:i]) {
					found = true
				}
			}
			if !found {
				rep.BadIndex = append(rep.BadIndex, fmt.Sprintf("index %c %q not in entry %s", k[0], k[1:i], fileIDOf(fk).File))
			}
		}
		return nil
	})
	if err != nil {
		return rep, err
	}
	e.mu.Lock()
	stores := make([]*Store, 0, len(e.stores))
	for _, s := range e.stores {
		stores = append(stores, s)
	}
	e.mu.Unlock()
	for _, s := range stores {
		if err := e.checkDocroot(s, &rep); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// checkDocroot walks a docroot for files the registry does not know.
func (e *Engine) checkDocroot(s *Store, rep *CheckReport) error {
	e.ephMu.Lock()
	ephemeral := map[FileID]bool{}
	for id := range e.ephemeral {
		ephemeral[id] = true
	}
	e.ephMu.Unlock()
	return fs.WalkDir(s.root.FS(), ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name == TempDir {
				entries, _ := fs.ReadDir(s.root.FS(), TempDir)
				for _, t := range entries {
					rep.TempFiles = append(rep.TempFiles, path.Join(TempDir, t.Name()))
				}
				return fs.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(name, OldSuffix) || !d.Type().IsRegular() {
			return nil
		}
		rep.Files++
		id := s.ID(name)
		if ephemeral[id] {
			return nil
		}
		if _, ok, err := e.reg.Get(id); err != nil {
			return err
		} else if !ok {
			rep.Unregistered = append(rep.Unregistered, name)
		}
		return nil
	})
}

// openAllStores opens every docroot the registry knows.
func (e *Engine) openAllStores() error {
	var dirs []string
	err := e.reg.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRoots).ForEach(func(k, _ []byte) error {
			dirs = append(dirs, string(k))
			return nil
		})
	})
	if err != nil {
		return err
	}
	for _, d := range dirs {
		if _, err := e.Store(d); err != nil {
			return err
		}
	}
	return nil
}
