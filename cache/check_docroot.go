package cache

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// docrootWalk compares one docroot with its registry entries. The folders
// are walked depth-first with each folder's names sorted as if folder
// names ended in "/" (as git sorts trees): then the files come in the
// byte order of their names, which is the order of the registry's keys,
// and one cursor over the entries meets every file. A file the cursor
// does not meet is unregistered; an entry no file meets is dangling. Each
// folder is opened relative to its parent (one openat, never through a
// symbolic link), and a file costs no registry lookup and no allocation
// beyond its directory entry.
type docrootWalk struct {
	c      *checkRun
	s      *Store
	eph    map[string]bool // ephemeral files: expire without an entry
	lazy   bool            // lazy removal: entries without a file are normal
	queued *bolt.Bucket
	cur    *bolt.Cursor
	k, v   []byte // the cursor's entry; k is nil past the end
	prefix []byte // the root id: the start of every key of this docroot
	key    []byte // the current file's key (reused)
}

// checkDocroot walks a docroot for files the registry does not know and
// entries whose file is gone, in one read transaction.
func (c *checkRun) checkDocroot(s *Store) error {
	eph := map[string]bool{}
	c.e.ephMu.Lock()
	for id := range c.e.ephemeral {
		if id.Root == s.rootID {
			eph[id.File] = true
		}
	}
	c.e.ephMu.Unlock()
	return c.e.reg.db.View(func(tx *bolt.Tx) error {
		w := &docrootWalk{c: c, s: s, eph: eph, lazy: c.e.config().LazyRemoval > 0,
			queued: tx.Bucket(bucketQueueFiles), cur: tx.Bucket(bucketEntries).Cursor(),
			prefix: binary.BigEndian.AppendUint16(nil, s.rootID)}
		w.k, w.v = w.cur.Seek(w.prefix)
		if err := w.folder(s.root, ".", ""); err != nil {
			return err
		}
		w.entriesBefore(nil)
		return nil
	})
}

// folder checks the folder name of dir; rel is its path in the docroot
// with a trailing "/" ("" for the docroot itself).
func (w *docrootWalk) folder(dir *os.Root, name, rel string) error {
	ents, err := readFolder(dir, name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // removed while the check ran
	}
	if err != nil {
		return fmt.Errorf("check docroot %s: list %q: %w", w.s.dir, "/"+rel, err)
	}
	w.c.done.Folders++
	w.c.step()
	slices.SortFunc(ents, func(a, b fs.DirEntry) int {
		return compareConcat(a.Name(), folderMark(a), b.Name(), folderMark(b))
	})
	var sub *os.Root // opened at the first subfolder
	defer func() {
		if sub != nil {
			sub.Close()
		}
	}()
	for _, d := range ents {
		n := d.Name()
		switch t := d.Type(); {
		case t.IsDir():
			if rel == "" && n == TempDir {
				w.tempFiles(dir)
				continue
			}
			if sub == nil {
				if sub, err = dir.OpenRoot(name); err != nil {
					return fmt.Errorf("check docroot %s: open %q: %w", w.s.dir, "/"+rel, err)
				}
			}
			if err := w.folder(sub, n, rel+n+"/"); err != nil {
				return err
			}
		case t.IsRegular():
			w.file(rel, n, ents)
		}
	}
	return nil
}

// file checks a regular file against the registry cursor; ents is its
// folder's sorted listing (to recognise companions).
func (w *docrootWalk) file(rel, name string, ents []fs.DirEntry) {
	w.c.done.Files++
	w.c.step()
	if strings.HasSuffix(name, OldSuffix) {
		return // an invalidated page, served until the new one is written
	}
	w.key = append(append(append(w.key[:0], w.prefix...), rel...), name...)
	w.entriesBefore(w.key)
	if w.k != nil && bytes.Equal(w.k, w.key) {
		created, _, err := entryTimes(w.v)
		w.k, w.v = w.cur.Next()
		if err != nil || w.c.visible(w.key, created) {
			w.c.rep.Files++ // (an undecodable entry is reported by checkEntries)
			return
		}
	}
	if companion(name, ents) {
		return
	}
	w.c.rep.Files++
	if w.eph[string(w.key[len(w.prefix):])] {
		return
	}
	w.c.rep.Unregistered = append(w.c.rep.Unregistered, rel+name)
}

// entriesBefore passes the entries of this docroot that sort before key
// (all that remain, for nil): their files are missing. An entry without a
// file is dangling unless a queued job explains it, it is retired, or
// lazy removal leaves such entries to the cleanup.
func (w *docrootWalk) entriesBefore(key []byte) {
	for ; w.k != nil && bytes.HasPrefix(w.k, w.prefix) && (key == nil || bytes.Compare(w.k, key) < 0); w.k, w.v = w.cur.Next() {
		if w.lazy || w.queued.Get(w.k) != nil {
			continue
		}
		created, _, err := entryTimes(w.v)
		if err != nil || !w.c.visible(w.k, created) {
			continue // undecodable entries are reported by checkEntries
		}
		w.c.rep.Dangling = append(w.c.rep.Dangling, string(w.k[len(w.prefix):]))
	}
}

// tempFiles reports the files in the temp folder.
func (w *docrootWalk) tempFiles(dir *os.Root) {
	f, err := dir.Open(TempDir)
	if err != nil {
		return
	}
	defer f.Close()
	names, _ := f.Readdirnames(-1)
	slices.Sort(names)
	for _, n := range names {
		w.c.rep.TempFiles = append(w.c.rep.TempFiles, path.Join(TempDir, n))
	}
}

// companion reports whether name is a precompressed copy of a page
// (or of its .old copy) in the same folder; ents is the sorted listing.
func companion(name string, ents []fs.DirEntry) bool {
	for _, suffix := range []string{GzipSuffix, BrotliSuffix} {
		if base, ok := strings.CutSuffix(name, suffix); ok && base != "" {
			return hasFile(ents, base, "") || hasFile(ents, base, OldSuffix)
		}
	}
	return false
}

// hasFile reports whether the sorted listing has a regular file named
// name+suffix.
func hasFile(ents []fs.DirEntry, name, suffix string) bool {
	i, found := slices.BinarySearchFunc(ents, 0, func(d fs.DirEntry, _ int) int {
		return compareConcat(d.Name(), folderMark(d), name, suffix)
	})
	return found && ents[i].Type().IsRegular()
}

// folderMark is what a name sorts with: "/" after a folder's.
func folderMark(d fs.DirEntry) string {
	if d.IsDir() {
		return "/"
	}
	return ""
}

// compareConcat compares a1+a2 with b1+b2 without building either.
func compareConcat(a1, a2, b1, b2 string) int {
	for {
		if a1 == "" {
			a1, a2 = a2, ""
		}
		if b1 == "" {
			b1, b2 = b2, ""
		}
		switch {
		case a1 == "" && b1 == "":
			return 0
		case a1 == "":
			return -1
		case b1 == "":
			return 1
		}
		n := min(len(a1), len(b1))
		if c := strings.Compare(a1[:n], b1[:n]); c != 0 {
			return c
		}
		a1, b1 = a1[n:], b1[n:]
	}
}
