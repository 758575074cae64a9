package cache

import (
	"context"
	"encoding/json"
	"time"

	"go.uber.org/zap"

	"github.com/delivery-edge/edge/cache/registry"
)

const expiryBatch = 1000

// expiryLoop invalidates files whose max-age or Expires has passed, by the
// same rules as a content change.
func (e *Engine) expiryLoop(ctx context.Context) {
	defer e.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			for {
				n, err := e.runExpiry(now)
				if err != nil {
					e.log.Error("scheduled invalidation", zap.Error(err))
				}
				if n < expiryBatch || err != nil {
					break
				}
			}
			e.expireEphemeral(now)
		}
	}
}

// runExpiry queues up to expiryBatch files that are due.
func (e *Engine) runExpiry(now time.Time) (int, error) {
	if !e.reg.AnyDue(now) { // a write transaction only when there is work
		return 0, nil
	}
	var due []FileID
	err := e.reg.Update(func(tx *registry.Tx) error {
		var err error
		if due, err = tx.TakeDue(now, expiryBatch); err != nil || len(due) == 0 {
			return err
		}
		return e.queueFiles(tx, Job{Files: due, Priority: PriorityFor(len(due))}, false, now)
	})
	if err != nil {
		return 0, err
	}
	if len(due) > 0 {
		e.markOutdated(due)
		e.wakeWorkers()
	}
	return len(due), nil
}

// noteResources compares the resource hashes a render reported with the
// newest known ones; a new hash invalidates every file rendered with
// another one.
func (e *Engine) noteResources(deps []Dependency) {
	for _, d := range deps {
		if d.Kind != DepResource {
			continue
		}
		e.resMu.Lock()
		old, known := e.resources[d.Name]
		changed := known && old != d.Hash
		e.resources[d.Name] = d.Hash
		e.resMu.Unlock()
		if changed {
			select {
			case e.resourceChanges <- d:
			default:
				e.log.Warn("resource change queue full; invalidating on the next render", zap.String("resource", d.Name))
				e.resMu.Lock()
				e.resources[d.Name] = old
				e.resMu.Unlock()
			}
		}
	}
}

// loadResources reads the newest known hash of every resource.
func (e *Engine) loadResources() error {
	hashes, err := e.reg.ResourceHashes()
	if err != nil {
		return err
	}
	e.resources = hashes
	return nil
}

// resourceLoop queues the files of resources whose content changed.
func (e *Engine) resourceLoop(ctx context.Context) {
	defer e.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case d := <-e.resourceChanges:
			if err := e.invalidateResource(d); err != nil {
				e.log.Error("resource invalidation", zap.String("resource", d.Name), zap.Error(err))
			}
		}
	}
}

func (e *Engine) invalidateResource(d Dependency) error {
	e.applyMu.Lock()
	defer e.applyMu.Unlock()
	var files []FileID
	err := e.reg.Update(func(tx *registry.Tx) error {
		files = files[:0]
		err := tx.Find(DepResource, d.Name, func(id FileID, dep Dependency) bool {
			if dep.Hash != d.Hash {
				files = append(files, id)
			}
			return true
		})
		if err != nil || len(files) == 0 {
			return err
		}
		return e.queueFiles(tx, Job{Files: files, Priority: PriorityFor(len(files))}, false, time.Now())
	})
	if err == nil && len(files) > 0 {
		e.log.Info("resource changed", zap.String("resource", d.Name), zap.String("hash", d.Hash), zap.Int("files", len(files)))
		e.markOutdated(files)
		e.wakeWorkers()
	}
	return err
}

const cleanupBatch = 500

// cleanupLoop removes, with lazy removal on, the registry entries of files
// that are no longer in the docroot, and .old copies nobody asked for
// within the interval, in bounded batches.
func (e *Engine) cleanupLoop(ctx context.Context) {
	defer e.wg.Done()
	for {
		every := e.config().LazyRemoval
		wait := every
		if wait <= 0 {
			wait = time.Minute // off: look at the setting again later
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if every > 0 {
			n, err := e.Cleanup(ctx, every)
			if err != nil {
				e.log.Error("registry cleanup", zap.Error(err))
			} else if n > 0 {
				e.log.Info("registry cleanup removed dangling entries", zap.Int("entries", n))
			}
		}
	}
}

// Cleanup walks the registry in batches and removes the entries of files
// that are gone from the docroot; a .old copy older than keepOld is
// removed with its entry. It returns the number of entries removed.
func (e *Engine) Cleanup(ctx context.Context, keepOld time.Duration) (int, error) {
	var after *FileID
	removed := 0
	for ctx.Err() == nil {
		batch, err := e.reg.ListFiles(after, cleanupBatch)
		if err != nil {
			return removed, err
		}
		if len(batch) > 0 {
			after = &batch[len(batch)-1]
		}
		for _, id := range batch {
			store := e.storeByRoot(id.Root, true)
			if store == nil || store.exists(id.File) {
				continue
			}
			if info, err := store.root.Stat(id.File + OldSuffix); err == nil && time.Since(info.ModTime()) > keepOld {
				store.removeQuiet(id.File + OldSuffix)
			}
			if err := e.reg.Remove(id); err != nil {
				return removed, err
			}
			removed++
		}
		if len(batch) < cleanupBatch {
			break
		}
		time.Sleep(10 * time.Millisecond) // leave the disk to the readers
	}
	return removed, ctx.Err()
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

// addEphemeral holds an entry in memory and in the backup file.
func (e *Engine) addEphemeral(id FileID, entry Entry) {
	e.ephMu.Lock()
	defer e.ephMu.Unlock()
	eph := ephemeralEntry{Root: id.Root, File: id.File, Key: entry.Key, Host: entry.Host, Created: entry.Created,
		Expires: entry.Expires}
	e.ephemeral[id] = eph
	e.writeEphemeralBackup()
}

// expireEphemeral invalidates the ephemeral files that are due.
func (e *Engine) expireEphemeral(now time.Time) {
	e.ephMu.Lock()
	var due []ephemeralEntry
	for id, eph := range e.ephemeral {
		if eph.Expires <= now.UnixMilli() {
			due = append(due, eph)
			delete(e.ephemeral, id)
		}
	}
	if len(due) > 0 {
		e.writeEphemeralBackup()
	}
	e.ephMu.Unlock()
	for _, eph := range due {
		if s := e.storeByRoot(eph.Root, true); s != nil {
			if _, err := s.Invalidate(eph.File); err != nil {
				e.log.Warn("expiring ephemeral file", zap.String("file", eph.File), zap.Error(err))
			}
		}
	}
}

// writeEphemeralBackup rewrites the backup file; called with ephMu held.
func (e *Engine) writeEphemeralBackup() {
	list := make([]ephemeralEntry, 0, len(e.ephemeral))
	for _, eph := range e.ephemeral {
		list = append(list, eph)
	}
	data, _ := json.Marshal(list)
	if err := writeFileAtomic(e.ephemeralPath, data); err != nil {
		e.log.Warn("writing ephemeral backup", zap.Error(err))
	}
}

// recoverEphemeral invalidates the files a crash left in the ephemeral
// backup: their short lives are over or nearly so.
func (e *Engine) recoverEphemeral() {
	data, err := readFileIfExists(e.ephemeralPath)
	if err != nil || len(data) == 0 {
		return
	}
	var list []ephemeralEntry
	if json.Unmarshal(data, &list) != nil {
		return
	}
	for _, eph := range list {
		if s := e.storeByRoot(eph.Root, true); s != nil {
			_, _ = s.Invalidate(eph.File)
		}
	}
	if len(list) > 0 {
		e.log.Info("invalidated ephemeral files after restart", zap.Int("files", len(list)))
	}
	_ = writeFileAtomic(e.ephemeralPath, []byte("[]"))
}
