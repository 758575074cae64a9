package cache

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/delivery-edge/edge/cache/registry"
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
	c    *checkRun
	s    *Store
	eph  map[string]bool // ephemeral files: expire without an entry
	lazy bool            // lazy removal: entries without a file are normal
	cur  *registry.EntryCursor
	name []byte // the current file's name (reused)
}

// checkDocroot walks a docroot for files the registry does not know and
// entries whose file is gone, in one read transaction.
func (c *checkRun) checkDocroot(s *Store) error {
	eph := c.ephemeral.names(s.rootID)
	return c.reg.View(func(tx *registry.Tx) error {
		w := &docrootWalk{c: c, s: s, eph: eph, lazy: c.cfg.get().LazyRemoval > 0, cur: tx.Entries(s.rootID)}
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
			if rel == "" && strings.HasPrefix(n, InternalPrefix) {
				continue // the edge's own folders, never served (a rebuild's trash)
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
	w.name = append(append(w.name[:0], rel...), name...)
	w.entriesBefore(w.name)
	if f := w.cur.File(); f != nil && bytes.Equal(f, w.name) {
		retired := w.cur.Retired()
		w.cur.Next()
		if !retired {
			w.c.rep.Files++ // (an undecodable entry is reported by the index check)
			return
		}
	}
	if companion(name, ents) {
		return
	}
	w.c.rep.Files++
	if w.eph[string(w.name)] {
		return
	}
	w.c.rep.Unregistered = append(w.c.rep.Unregistered, rel+name)
	w.c.rep.UnregisteredIDs = append(w.c.rep.UnregisteredIDs, w.s.ID(rel+name))
}

// entriesBefore passes the entries of this docroot whose file names sort
// before name (all that remain, for nil): their files are missing. An
// entry without a file is dangling unless a queued job explains it, it is
// retired, or lazy removal leaves such entries to the cleanup.
func (w *docrootWalk) entriesBefore(name []byte) {
	for f := w.cur.File(); f != nil && (name == nil || bytes.Compare(f, name) < 0); f = w.cur.File() {
		// Undecodable entries are reported by the index check.
		if !w.lazy && !w.cur.Queued() && w.cur.Live() {
			w.c.rep.Dangling = append(w.c.rep.Dangling, string(f))
			w.c.rep.DanglingIDs = append(w.c.rep.DanglingIDs, w.s.ID(string(f)))
		}
		w.cur.Next()
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
