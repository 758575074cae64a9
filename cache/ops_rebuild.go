package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/delivery-edge/edge/cache/registry"
)

// Rebuilding the cache while it serves: every docroot's content is moved
// aside into a folder the edge never serves, the registry forgets what was
// rendered before, the queues are emptied, and readers' misses render the
// pages again. The flush log, the outbox, positions and resource hashes
// are kept. The moved content is deleted in the background at a bounded
// pace.
//
// What readers can see: a page is either still in place with its entry
// (not moved yet), or missing (a miss renders it). A file in the docroot
// without an entry, which nothing could ever invalidate, must not happen,
// so the order matters:
//
//  1. A cutoff time is taken, then every render under way is marked
//     outdated: its result becomes a ".old" copy at most and records no
//     entry. A render that starts afterwards records an entry created at
//     or after the cutoff.
//  2. The journal is applied, then the content is moved aside and the hot
//     set emptied (its copies are of files that are gone).
//  3. The registry forgets entries created before the cutoff and the jobs
//     queued before it; entries of renders since are kept. A render that
//     installed between 1 and 2 went aside with the rest: its entry stays
//     without a file until its page is read, which renders it again.

// TrashPrefix starts the name of the folder a rebuild moves a docroot's
// content into; it is internal (never served, never checked).
const TrashPrefix = InternalPrefix + "-trash-"

// trashBatch: the deletion of moved content pauses as long as each batch
// of trashBatch files took, so it takes at most half of the disk's time.
const trashBatch = 256

// RebuildResult is what a rebuild did.
type RebuildResult struct {
	Cutoff   time.Time            `json:"cutoff"`
	Docroots []RebuiltDocroot     `json:"docroots"`
	Cleared  registry.ClearReport `json:"cleared"`
	// Deleted counts the files deleted from the moved content; KeptLinks
	// the symbolic links left there (they are the operator's).
	Deleted   int64 `json:"deleted"`
	KeptLinks int   `json:"kept_links,omitempty"`
}

// RebuiltDocroot is one docroot of a rebuild.
type RebuiltDocroot struct {
	Docroot string `json:"docroot"`
	// Trash is the folder (in the docroot) the content was moved to.
	Trash string `json:"trash"`
	// Moved counts the entries of the docroot's top folder moved aside.
	Moved int `json:"moved"`
}

// Rebuild empties every docroot the registry knows, the registry's
// entries and the queues while the edge serves (see above). Phases:
// "move", "registry", "trash". When ctx ends during the registry's
// clearing, the docroots are empty already and the entries left are of
// files that are gone (found by a check as dangling; a later rebuild
// clears them); the trash is deleted by the next rebuild.
func (e *Engine) Rebuild(ctx context.Context, p Progress) (RebuildResult, error) {
	var res RebuildResult
	if p == nil {
		p = NoProgress{}
	}
	if err := e.docroots.openAll(); err != nil {
		return res, err
	}
	stores := e.docroots.all()

	p.SetPhase("move")
	cutoff := time.Now().UnixMilli() + 1
	for time.Now().UnixMilli() < cutoff {
		time.Sleep(time.Millisecond)
	}
	res.Cutoff = time.UnixMilli(cutoff).UTC()
	for _, s := range stores {
		s.flights.invalidateAll()
	}
	e.reg.Sync()
	trash := TrashPrefix + strconv.FormatInt(cutoff, 10)
	for _, s := range stores {
		moved, err := s.moveAside(trash)
		s.recountSize() // the trash is not part of the docroot's size
		res.Docroots = append(res.Docroots, RebuiltDocroot{Docroot: s.dir, Trash: trash, Moved: moved})
		if s.hot != nil {
			s.hot.clearAll()
		}
		p.Add(int64(moved))
		if err != nil {
			return res, err
		}
	}
	e.log.Info("rebuild: docroots moved aside", zap.String("trash", trash), zap.Int("docroots", len(stores)))

	p.SetPhase("registry")
	if n, err := e.reg.EntryCount(); err == nil {
		p.SetTotal(n)
	}
	cleared, err := e.reg.ClearBefore(ctx, cutoff, func(n int) { p.Add(int64(n)) })
	res.Cleared = cleared
	if err != nil {
		return res, fmt.Errorf("rebuild: clear registry: %w", err)
	}
	e.wake.notify()
	e.log.Info("rebuild: registry cleared", zap.Int("entries", cleared.Entries), zap.Int("jobs", cleared.Jobs))

	p.SetPhase("trash")
	for _, s := range stores {
		deleted, kept, err := s.deleteTrash(ctx, p)
		res.Deleted += deleted
		res.KeptLinks += kept
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// moveAside moves every entry of the docroot's top folder, except the
// edge's internal ones and the operator's links, into the folder trash.
func (s *Store) moveAside(trash string) (int, error) {
	if err := s.root.Mkdir(trash, 0o700); err != nil {
		return 0, fmt.Errorf("rebuild %s: create %s: %w", s.dir, trash, err)
	}
	top, err := s.root.Open(".")
	if err != nil {
		return 0, fmt.Errorf("rebuild %s: %w", s.dir, err)
	}
	names, err := top.Readdirnames(-1)
	top.Close()
	if err != nil {
		return 0, fmt.Errorf("rebuild %s: list: %w", s.dir, err)
	}
	moved := 0
	for _, n := range names {
		if strings.HasPrefix(n, InternalPrefix) {
			continue
		}
		info, err := s.root.Lstat(n)
		if err != nil || info.Mode()&fs.ModeSymlink != 0 {
			continue // gone meanwhile, or a link (the operator's)
		}
		if err := s.root.Rename(n, path.Join(trash, n)); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return moved, fmt.Errorf("rebuild %s: move %s aside: %w", s.dir, n, err)
		}
		moved++
	}
	return moved, nil
}

// deleteTrash deletes the regular files and folders of every rebuild's
// trash folder of the docroot, at a bounded pace; links are left (and
// their folders with them).
func (s *Store) deleteTrash(ctx context.Context, p Progress) (deleted int64, kept int, err error) {
	top, err := s.root.Open(".")
	if err != nil {
		return 0, 0, err
	}
	names, err := top.Readdirnames(-1)
	top.Close()
	if err != nil {
		return 0, 0, err
	}
	d := &trashDeleter{ctx: ctx, p: p, start: time.Now()}
	for _, n := range names {
		if !strings.HasPrefix(n, TrashPrefix) {
			continue
		}
		if err := d.folder(s.root, n); err != nil {
			return d.deleted, d.kept, fmt.Errorf("rebuild %s: delete %s: %w", s.dir, n, err)
		}
	}
	return d.deleted, d.kept, nil
}

// trashDeleter deletes a tree without following links, pausing between
// batches.
type trashDeleter struct {
	ctx     context.Context
	p       Progress
	deleted int64
	kept    int
	batch   int
	start   time.Time // of the current batch
}

// folder deletes the folder name of parent and what it holds.
func (d *trashDeleter) folder(parent *os.Root, name string) error {
	before, err := parent.Lstat(name)
	if err != nil || !before.IsDir() {
		return nil
	}
	dir, err := parent.OpenRoot(name)
	if err != nil {
		return err
	}
	defer dir.Close()
	if after, err := dir.Stat("."); err != nil || !os.SameFile(before, after) {
		return nil // replaced by something else meanwhile: leave it
	}
	f, err := dir.Open(".")
	if err != nil {
		return err
	}
	defer f.Close()
	for {
		ents, rerr := f.ReadDir(trashBatch)
		for _, ent := range ents {
			if err := d.ctx.Err(); err != nil {
				return err
			}
			switch t := ent.Type(); {
			case t&fs.ModeSymlink != 0:
				d.kept++
			case t.IsDir():
				if err := d.folder(dir, ent.Name()); err != nil {
					return err
				}
			default:
				if err := dir.Remove(ent.Name()); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return err
				}
				d.deleted++
				d.p.Add(1)
				d.pace()
			}
		}
		if errors.Is(rerr, io.EOF) || len(ents) == 0 {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	// A folder that keeps a link stays (ENOTEMPTY, EEXIST on some systems).
	if err := parent.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) &&
		!errors.Is(err, syscall.ENOTEMPTY) && !errors.Is(err, syscall.EEXIST) {
		return err
	}
	return nil
}

// pace pauses after each batch of deletions as long as the batch took.
func (d *trashDeleter) pace() {
	d.batch++
	if d.batch < trashBatch {
		return
	}
	took := time.Since(d.start)
	t := time.NewTimer(took)
	select {
	case <-d.ctx.Done():
	case <-t.C:
	}
	t.Stop()
	d.batch, d.start = 0, time.Now()
}

// invalidateAll marks every render under way as outdated (see
// flights.invalidate); it returns once none of them is installing.
func (g *flights) invalidateAll() {
	g.mu.Lock()
	all := make([]*flight, 0, len(g.m))
	for _, f := range g.m {
		all = append(all, f)
	}
	g.mu.Unlock()
	for _, f := range all {
		f.mu.Lock()
		f.invalidated = true
		f.mu.Unlock()
	}
}

// clearAll drops every file from the hot set; a copy being made of a file
// read before is not kept (every shard's epoch moves on).
func (h *HotSet) clearAll() {
	for i := range h.shards {
		sh := &h.shards[i]
		sh.epoch.Add(1)
		var names []string
		if m := sh.m.Load(); m != nil {
			for name := range *m {
				names = append(names, name)
			}
		}
		for _, name := range names {
			h.drop(name, true)
		}
	}
}
