package cache

import (
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/delivery-edge/edge/cache/registry"
)

// Flush applies an explicit flush of a cache key, once. In one
// transaction it checks the flush log for the same key and time, records
// the flush, queues the invalidation of every file registered under the
// key (Delivery-Cache-Keys) and, when forwardTo names peers, puts the
// flush into the persistent outbox for each of them. A flush that is
// already in the log is not applied again (applied is false); it is only
// added to the group's index if it was logged under another group.
//
// A key that names a document (see queueFlushTx) is pre-generated,
// not renamed, when pre-generation is on, whether or not its files were
// read recently: every file the flush invalidates under the key, and the
// document's own pages (the files with a full dependency on it).
func (e *Engine) Flush(key, group string, ts int64, forwardTo []string) (applied bool, err error) {
	return e.inval.flush(Flush{Key: key, Group: group, Time: ts}, forwardTo)
}

func (v *invalidator) flush(f Flush, forwardTo []string) (applied bool, err error) {
	if !validFlush(f) {
		return false, invalidFlush(f)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	var touched []FileID
	err = v.reg.Update(func(tx *registry.Tx) error {
		now := time.Now()
		var err error
		m := v.record.mark()
		applied, touched, err = v.applyFlushTx(tx, f, now)
		if err != nil || !applied {
			return err
		}
		v.record.note(tx, m, flushRecord(SourceFlush, f, f.Group, len(touched)))
		return tx.QueueForwards(f, forwardTo, now)
	})
	if err != nil {
		return false, err
	}
	v.queued(touched)
	return applied, nil
}

// ApplySync applies the flushes a peer listed in its answer to a sync of
// group, each at most once, and records the newest time among them as the
// peer's sync position, in the same transactions (batches of 256), so a
// crash halfway resumes where it stopped. Nothing is forwarded. It
// returns how many flushes were new.
func (e *Engine) ApplySync(group, peer string, flushes []Flush) (applied int, err error) {
	const batch = 256
	for start := 0; start < len(flushes); start += batch {
		part := flushes[start:min(start+batch, len(flushes))]
		n, touched, err := e.inval.applySyncBatch(group, peer, part)
		applied += n
		e.inval.queued(touched)
		if err != nil {
			return applied, err
		}
	}
	return applied, nil
}

func (v *invalidator) applySyncBatch(group, peer string, flushes []Flush) (int, []FileID, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	var n int
	var touched []FileID
	err := v.reg.Update(func(tx *registry.Tx) error {
		n, touched = 0, touched[:0]
		now := time.Now()
		pos := tx.SyncPosition(group, peer)
		for _, f := range flushes {
			f.Group = group
			if !validFlush(f) {
				continue
			}
			m := v.record.mark()
			ok, files, err := v.applyFlushTx(tx, f, now)
			if err != nil {
				return err
			}
			if ok {
				n++
				v.record.note(tx, m, flushRecord(SourceSync, f, peer, len(files)))
			}
			touched = append(touched, files...)
			pos = max(pos, f.Time)
		}
		return tx.SetSyncPosition(group, peer, pos)
	})
	if err != nil {
		return 0, nil, err
	}
	return n, touched, nil
}

// applyFlushTx records a flush and queues its jobs unless it is in the
// log already.
func (v *invalidator) applyFlushTx(tx *registry.Tx, f Flush, now time.Time) (bool, []FileID, error) {
	if isNew, err := tx.LogFlush(f); err != nil || !isNew {
		return false, nil, err
	}
	files, err := v.queueFlushTx(tx, f.Key, f.Time, now)
	return true, files, err
}

// queueFlushTx queues the invalidation of the files registered under key
// and returns them; source is the flush's time (for the latency). Each file goes where its use calls for, except when
// pre-generation is on and the key names a document: then those files and
// the document's own pages (full dependency) are queued for
// pre-generation whatever their use (a queued purge stays a purge).
//
// A key names a document when some file depends on a document of that
// name (the registry's document index has it: the render backend reported
// it as a document ID or UUID), or when it has the shape of a UUID, so
// that the UUID of a document that cached files only register as a key
// counts too. Every other key ("section:/politik", "home", …) is plain.
func (v *invalidator) queueFlushTx(tx *registry.Tx, key string, source int64, now time.Time) ([]FileID, error) {
	files, meta, err := v.affected(tx, Change{Kind: DepKey, ID: key, State: StatePublished})
	if err != nil {
		return nil, err
	}
	force := map[FileID]bool{}
	if v.cfg.get().Pregenerate {
		doc := looksLikeUUID(key)
		var pages []FileID
		err := tx.Find(DepDocument, key, func(id FileID, d Dependency) bool {
			doc = true
			if d.Full() {
				pages = append(pages, id)
			}
			return true
		})
		if err != nil {
			return nil, err
		}
		if doc {
			for _, id := range files {
				force[id] = true
			}
			for _, id := range pages {
				if !force[id] {
					force[id] = true
					files = append(files, id)
				}
			}
			sortFileIDs(files)
		}
	}
	for _, job := range SplitJobs(files, key) {
		for _, id := range job.Files {
			if force[id] {
				err = v.forcePregenTx(tx, id, job.Priority, source, now)
			} else {
				err = v.queueFilesMeta(tx, Job{Files: []FileID{id}, Priority: job.Priority, Source: source}, false, now, meta)
			}
			if err != nil {
				return nil, err
			}
		}
	}
	return files, nil
}

// looksLikeUUID reports whether s has the canonical textual form of a
// UUID (8-4-4-4-12 hexadecimal digits).
func looksLikeUUID(s string) bool { return len(s) == 36 && uuid.Validate(s) == nil }

// forcePregenTx queues a file for pre-generation whatever its use; a
// rename of the same file that waits in the removal queue is replaced
// (keeping the higher priority), a purge (the content is gone) is not.
func (v *invalidator) forcePregenTx(tx *registry.Tx, id FileID, prio int, source int64, now time.Time) error {
	entry, found, err := tx.Get(id)
	if err != nil {
		return err
	}
	if !found || entry.Key == "" {
		return v.queueFilesMeta(tx, Job{Files: []FileID{id}, Priority: prio, Source: source}, false, now, nil)
	}
	j := registry.QueuedJob{Root: id.Root, File: id.File, Op: registry.OpRender, Priority: prio, Enqueued: now.UnixMilli(),
		Created: entry.Created, Key: entry.Key, Host: entry.Host, Source: source}
	if q, cur, ok := tx.Queued(j); ok && q == registry.QueueRemoval {
		if cur.Op == registry.OpPurge {
			v.record.queued(registry.QueueRemoval)
			return nil
		}
		j.Priority = max(j.Priority, cur.Priority)
		if cur.Source > 0 && (j.Source == 0 || cur.Source < j.Source) {
			j.Source = cur.Source // the latency runs from the first change
		}
		if err := tx.Complete(registry.QueueRemoval, cur); err != nil {
			return err
		}
	}
	v.record.queued(registry.QueuePregen)
	_, err = tx.Enqueue(registry.QueuePregen, j)
	return err
}

// ErrInvalidFlush is returned for a flush without key or group or with a
// time that is not positive.
var ErrInvalidFlush = errors.New("invalid flush")

func validFlush(f Flush) bool { return f.Key != "" && f.Group != "" && f.Time > 0 }

func invalidFlush(f Flush) error {
	return fmt.Errorf("%w: key %q, group %q, time %d", ErrInvalidFlush, f.Key, f.Group, f.Time)
}
