package cache

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/delivery-edge/edge/cache/registry"
)

// Lazy cleanup: with lazy removal on, removal only renames files, and a
// cleanup job at that interval removes the registry entries of files
// that are no longer in the docroot, with .old copies nobody asked for
// within the interval and the page's precompressed copies, in bounded
// batches.

const cleanupBatch = 500

// cleanupMinAge is how old an entry must be before the cleanup looks for
// its file.
const cleanupMinAge = time.Minute

// cleaner is the lazy cleanup job.
type cleaner struct {
	reg      *registry.Registry
	docroots *docroots
	cfg      *settings
	log      *zap.Logger
	// minAge is how old an entry must be before the cleanup looks for
	// its file (cleanupMinAge; tests set less).
	minAge time.Duration
}

func (c *cleaner) run(ctx context.Context) {
	for {
		every := c.cfg.get().LazyRemoval
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
			n, err := c.cleanup(ctx, every)
			if err != nil {
				c.log.Error("registry cleanup", zap.Error(err))
			} else if n > 0 {
				c.log.Info("registry cleanup removed dangling entries", zap.Int("entries", n))
			}
		}
	}
}

// Cleanup walks the registry in batches and removes the entries of files
// that are gone from the docroot, with their precompressed copies and a
// .old copy older than keepOld. It returns the number of entries removed.
func (e *Engine) Cleanup(ctx context.Context, keepOld time.Duration) (int, error) {
	return e.cleaner.cleanup(ctx, keepOld)
}

func (c *cleaner) cleanup(ctx context.Context, keepOld time.Duration) (int, error) {
	var after *FileID
	removed := 0
	for ctx.Err() == nil {
		batch, err := c.reg.ListFiles(after, cleanupBatch)
		if err != nil {
			return removed, err
		}
		if len(batch) > 0 {
			after = &batch[len(batch)-1]
		}
		ends, err := c.gone(batch, keepOld)
		if err != nil {
			return removed, err
		}
		if err := c.reg.RemoveEnded(ends); err != nil {
			return removed, err
		}
		removed += len(ends)
		if len(batch) < cleanupBatch {
			break
		}
		time.Sleep(10 * time.Millisecond) // leave the disk to the readers
	}
	return removed, ctx.Err()
}

// gone finds the files of a batch that are no longer in their docroot and
// removes their leftovers; it returns their entries' creation times. The
// entries are read (in one transaction, without file system calls in it)
// before the files are looked for, so a render that journals a newer
// entry from then on keeps it (RemoveEnded). A render's record goes into
// the journal just before its file goes into place, so the file of an
// entry younger than minAge may still be on its way.
func (c *cleaner) gone(batch []FileID, keepOld time.Duration) (map[FileID]int64, error) {
	created := make(map[FileID]int64, len(batch))
	err := c.reg.View(func(tx *registry.Tx) error {
		for _, id := range batch {
			e, ok, err := tx.Get(id)
			if err != nil {
				return err
			}
			if ok && time.Since(time.UnixMilli(e.Created)) >= c.minAge {
				created[id] = e.Created
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for id := range created {
		store := c.docroots.byID(id.Root, true)
		if store == nil || store.exists(id.File) {
			delete(created, id)
			continue
		}
		store.removeLeftovers(id.File, time.Now().Add(-keepOld))
	}
	return created, nil
}
