package registry

import (
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// A removal decided on an entry must end that entry and no newer one: the
// removal queue renames a page away, the next reader renders it again, and
// that render's entry describes a file that is in the docroot. Removed
// blindly, the file would be there without an entry, so no change would
// ever find it again (it would stay stale until evicted).

// FinishRetirement ends, after the commit of a removal batch's
// transaction, the entries that were still in the journal when the batch
// retired them (see RemoveEnded).
func (r *Registry) FinishRetirement(ret *Retirement) error {
	return r.RemoveEnded(ret.viaJournal)
}

// RemoveEnded removes the entries of files (file -> creation time of the
// newest entry to end) unless the file has an entry created later, which
// stays. An entry whose newest record is still in the journal is removed
// through the journal, in order after it; one already in the database
// gets a tombstone, which hides exactly the entries up to its time.
func (r *Registry) RemoveEnded(ends map[FileID]int64) error {
	var errs []error
	tombstones := map[FileID]int64{}
	for id, upTo := range ends {
		switch journaled, err := r.removeIfPending(id, upTo); {
		case err != nil:
			errs = append(errs, fmt.Errorf("remove registry entry of %s: %w", id.File, err))
		case !journaled:
			tombstones[id] = upTo
		}
	}
	if len(tombstones) > 0 {
		err := r.db.Update(func(tx *bolt.Tx) error { return r.retire(tx, tombstones) })
		if err != nil {
			r.unretire(tombstones)
			errs = append(errs, fmt.Errorf("retire %d registry entries: %w", len(tombstones), err))
		}
	}
	return errors.Join(errs...)
}

// removeIfPending decides the removal of a file whose newest record is in
// the journal: it journals the removal if that record is an entry created
// at or before upTo, and does nothing if it is a newer entry or a
// removal. It reports false if the journal holds no record of the file.
func (r *Registry) removeIfPending(id FileID, upTo int64) (decided bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.pending[id]
	switch {
	case !ok:
		return false, nil
	case p.entry == nil || p.entry.Created > upTo:
		return true, nil
	}
	return true, r.submitLocked(id, nil)
}
