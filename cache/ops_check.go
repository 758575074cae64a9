package cache

import (
	"context"
	"time"

	"github.com/delivery-edge/edge/cache/registry"
)

// The consistency check on a running edge, and its repair. The check
// reads while the edge serves, so a file being installed at that moment
// may show up as a finding; the repair therefore decides every change
// again when it makes it, and never touches what a render wrote since
// the check started.

// repairBatch is how many findings one repair transaction handles.
const repairBatch = 500

// RepairResult is what a repair changed.
type RepairResult struct {
	// DanglingRemoved are entries whose file was gone, removed (with a
	// tombstone, as the removal queue does).
	DanglingRemoved int `json:"dangling_removed"`
	// UnregisteredRenamed are files without an entry, renamed to ".old"
	// (served only while the page renders again).
	UnregisteredRenamed int `json:"unregistered_renamed"`
	// Index is what the index repair added and removed.
	Index registry.IndexRepair `json:"index"`
	// Skipped are findings that were no longer true, or that a render
	// changed since the check started.
	Skipped int `json:"skipped"`
}

// Repair repairs what a check that started at since found: dangling
// entries are removed, unregistered files renamed to ".old", and, when
// the index had findings, the index made to match the entries. It stops
// between batches when ctx ends.
func (e *Engine) Repair(ctx context.Context, rep CheckReport, since time.Time, p Progress) (RepairResult, error) {
	var res RepairResult
	if p == nil {
		p = NoProgress{}
	}
	if err := e.docroots.openAll(); err != nil {
		return res, err
	}
	p.SetPhase("repair")
	p.SetTotal(int64(len(rep.DanglingIDs) + len(rep.UnregisteredIDs)))
	for start := 0; start < len(rep.DanglingIDs); start += repairBatch {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		batch := rep.DanglingIDs[start:min(start+repairBatch, len(rep.DanglingIDs))]
		removed, err := e.removeDangling(batch)
		if err != nil {
			return res, err
		}
		res.DanglingRemoved += removed
		res.Skipped += len(batch) - removed
		p.Add(int64(len(batch)))
	}
	for start := 0; start < len(rep.UnregisteredIDs); start += repairBatch {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		batch := rep.UnregisteredIDs[start:min(start+repairBatch, len(rep.UnregisteredIDs))]
		renamed := e.renameUnregistered(batch, since, p)
		res.UnregisteredRenamed += renamed
		res.Skipped += len(batch) - renamed
		p.Add(int64(len(batch)))
	}
	if len(rep.BadIndex) > 0 {
		p.SetPhase("index")
		ir, err := e.reg.RepairIndex(ctx, func(n int) { p.Add(int64(n)) })
		res.Index = ir
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// removeDangling retires the entries of files that are still missing,
// not queued and not being recorded; it returns how many.
func (e *Engine) removeDangling(ids []FileID) (int, error) {
	var ret registry.Retirement
	forget := map[FileID]int64{}
	err := e.reg.Update(func(tx *registry.Tx) error {
		clear(forget)
		for _, id := range ids {
			if e.reg.HasPending(id) {
				continue // a render is recording it right now
			}
			entry, found, err := tx.Get(id)
			if err != nil {
				return err
			}
			if !found {
				continue
			}
			if _, _, queued := tx.Queued(registry.QueuedJob{Root: id.Root, File: id.File}); queued {
				continue // a job explains it
			}
			if s := e.docroots.byID(id.Root, false); s == nil || s.hasRegular(id.File) {
				continue // its docroot cannot be opened, or the file is back
			}
			forget[id] = entry.Created
		}
		// The tombstone hides exactly the entry found: a render recorded
		// meanwhile is newer and stays.
		return tx.RetireFiles(forget, &ret)
	})
	if err != nil {
		e.reg.Unretire(&ret)
		return 0, err
	}
	return len(forget), nil
}

// renameUnregistered renames the files that are still regular files
// without an entry, not held as ephemeral and not written since the check
// started, to ".old"; it returns how many.
func (e *Engine) renameUnregistered(ids []FileID, since time.Time, p Progress) int {
	renamed := 0
	dirs := batchDirs{} // keyed by docroot and folder
	defer dirs.close()
	for _, id := range ids {
		s := e.docroots.byID(id.Root, true)
		if s == nil || !s.hasRegular(id.File) || e.reg.HasPending(id) || s.ephemeral.names(id.Root)[id.File] {
			continue
		}
		if _, found, err := e.reg.Get(id); err != nil || found {
			continue
		}
		// Not if written after the check started: a render that installed
		// since (its entry then exists) must stay.
		gone, err := s.renameToOld(dirs, id.File, since.UnixMilli())
		switch {
		case err != nil:
			p.Error(err)
		case gone && !s.hasRegular(id.File):
			renamed++
		}
	}
	return renamed
}

// hasRegular reports whether the docroot holds a regular file of that
// name (not a link: links are the operator's).
func (s *Store) hasRegular(name string) bool {
	info, err := s.root.Lstat(name)
	return err == nil && info.Mode().IsRegular()
}
