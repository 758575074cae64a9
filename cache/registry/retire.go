package registry

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"
)

// Eager removal retires a file's registry entry in the removal batch's
// own transaction: a tombstone (the file and the creation time of the
// entry it ends) is appended to the retired bucket, and from that commit on
// every read treats the entry and its reverse-index keys as gone. Deleting
// them for real — the entry plus a dozen index keys spread over the whole
// index, a dozen B+tree pages per file — is left to a sweep that runs while
// the removal queue is idle. So removal costs about what a rename costs,
// reads are exact at once, and a crash in between loses nothing: the
// tombstones are in the same file as the entries.
var bucketRetired = []byte("retired") // sequence -> file key + created (8 bytes)

// retiredSet holds the tombstones in memory: file -> creation time of the
// newest retired entry. An entry (or index key) is visible only if it was
// created after its file's tombstone.
type retiredSet struct {
	n   atomic.Int64 // len(ids), readable without the lock
	mu  sync.Mutex
	ids map[FileID]int64
}

func (s *retiredSet) add(id FileID, created int64) {
	s.mu.Lock()
	if s.ids == nil {
		s.ids = map[FileID]int64{}
	}
	if cur, ok := s.ids[id]; !ok || created > cur {
		s.ids[id] = created
	}
	s.n.Store(int64(len(s.ids)))
	s.mu.Unlock()
}

// done drops a tombstone once swept, unless a newer one replaced it.
func (s *retiredSet) done(id FileID, created int64) {
	s.mu.Lock()
	if cur, ok := s.ids[id]; ok && cur <= created {
		delete(s.ids, id)
	}
	s.n.Store(int64(len(s.ids)))
	s.mu.Unlock()
}

// visible reports whether an entry of id created at created is live.
func (s *retiredSet) visible(id FileID, created int64) bool {
	if s.n.Load() == 0 {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.ids[id]
	return !ok || created > cur
}

// after returns a creation time for a new entry of id that its file's
// tombstone cannot hide (the wall clock may have stepped back since).
func (s *retiredSet) after(id FileID, created int64) int64 {
	if s.n.Load() == 0 {
		return created
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.ids[id]; ok && created <= cur {
		return cur + 1
	}
	return created
}

// has reports whether id has a tombstone not swept yet.
func (s *retiredSet) has(id FileID) bool {
	if s.n.Load() == 0 {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.ids[id]
	return ok
}

// Retired is the number of files whose retired entries wait for the sweep.
func (r *Registry) Retired() int { return int(r.retired.n.Load()) }

func retiredRecord(fileKey []byte, created int64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte(nil), fileKey...), uint64(created))
}

func splitRetired(v []byte) (fileKey []byte, created int64, err error) {
	if len(v) < 2+8 {
		return nil, 0, fmt.Errorf("malformed retired record")
	}
	return v[:len(v)-8], int64(binary.BigEndian.Uint64(v[len(v)-8:])), nil
}

// loadRetired fills the in-memory set from the bucket after a start.
func (r *Registry) loadRetired(tx *bolt.Tx) error {
	return tx.Bucket(bucketRetired).ForEach(func(_, v []byte) error {
		fk, created, err := splitRetired(v)
		if err != nil {
			return err
		}
		r.retired.add(fileIDOf(fk), created)
		return nil
	})
}

// Retirement is what one removal batch did to the registry: the entries
// it retired, and the files whose removal must go through the journal.
type Retirement struct {
	retired map[FileID]int64
	// viaJournal are files whose newest record was still in the journal,
	// with the creation time of the newest entry to end: FinishRetirement
	// ends them after the commit, so the removal keeps the journal's order.
	viaJournal map[FileID]int64
}

// RetireFiles ends the entries of files whose files a removal batch has
// renamed or purged (file -> the creation time of the entry the job was
// queued for, 0 if unknown) with tombstones in the transaction, so that
// every read treats them as gone from the commit on. An entry created
// after the one a job was queued for (rendered again since) stays. Where
// the job knew the entry's creation time the entry is not read at all (a
// random page of a large file). If the transaction fails, Unretire takes
// the tombstones back.
func (tx *Tx) RetireFiles(forget map[FileID]int64, ret *Retirement) error {
	r := tx.r
	if ret.retired == nil {
		ret.retired = make(map[FileID]int64, len(forget))
		ret.viaJournal = map[FileID]int64{}
	}
	clear(ret.retired)
	clear(ret.viaJournal)
	for id, created := range forget {
		if created != 0 && !r.HasPending(id) {
			// The tombstone hides exactly the entries up to the one the
			// job was queued for, so a newer render stays.
			ret.retired[id] = created
			continue
		}
		switch entry, ok, err := tx.Get(id); {
		case err != nil:
			return err
		case !ok || (created != 0 && entry.Created > created):
			// gone already, or a newer render's entry: keep it
		case r.HasPending(id):
			ret.viaJournal[id] = max(entry.Created, created) // keep the journal's order
		default:
			ret.retired[id] = entry.Created
		}
	}
	return r.retire(tx.tx, ret.retired)
}

// Unretire takes back the tombstones of a Retirement whose transaction
// failed.
func (r *Registry) Unretire(ret *Retirement) { r.unretire(ret.retired) }

// retire records tombstones for entries (file -> creation time of the
// entry to end) in tx. The set knows them before the commit: the batch's
// files are already renamed, so hiding their entries a moment early is
// right; if the commit fails, forget undoes it.
func (r *Registry) retire(tx *bolt.Tx, entries map[FileID]int64) error {
	b := tx.Bucket(bucketRetired)
	for id, created := range entries {
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		if err := b.Put(binary.BigEndian.AppendUint64(nil, seq), retiredRecord(id.key(), created)); err != nil {
			return err
		}
		r.retired.add(id, created)
	}
	return nil
}

// unretire takes back the tombstones of a failed transaction.
func (r *Registry) unretire(entries map[FileID]int64) {
	for id, created := range entries {
		r.retired.done(id, created)
	}
}

// sweepReleaseEvery is how many tombstones the sweep reads between two
// releases of the mapped registry pages (about a dozen scattered pages
// each).
const sweepReleaseEvery = 8

// SweepRetired deletes, in key order, the entries, index and expiry keys
// that up to max tombstones end, unless a newer render of the file has
// replaced them already. It returns how many tombstones it took.
func (r *Registry) SweepRetired(max int) (int, error) {
	type swept struct {
		id      FileID
		created int64
	}
	var done []swept
	err := r.db.Update(func(tx *bolt.Tx) error {
		done = done[:0]
		entries, idx := tx.Bucket(bucketEntries), tx.Bucket(bucketIndex)
		var del sortedOps
		var seqs [][]byte
		c := tx.Bucket(bucketRetired).Cursor()
		for k, v := c.First(); k != nil && len(seqs) < max; k, v = c.Next() {
			if len(seqs)%sweepReleaseEvery == sweepReleaseEvery-1 {
				r.ReleaseMapping() // the reads below touch pages all over the file
			}
			seqs = append(seqs, k)
			fk, created, err := splitRetired(v)
			if err != nil {
				return err
			}
			done = append(done, swept{fileIDOf(fk), created})
			raw := entries.Get(fk)
			if raw == nil {
				continue // removed through the journal meanwhile
			}
			var old Entry
			if err := unmarshalEntry(raw, &old); err != nil {
				return fmt.Errorf("decode retired entry: %w", err)
			}
			if old.Created > created {
				continue // rendered again: the live entry replaced the retired one
			}
			fk = slices.Clone(fk)
			for _, d := range old.indexDeps() {
				ik := append(indexPrefix(d.Kind, d.Name), fk...)
				if v := idx.Get(ik); v != nil && indexCreated(v) <= created {
					del.add(bucketIndex, ik, nil)
				}
			}
			if old.Expires > 0 {
				del.add(bucketExpiry, expiryKey(old.Expires, fk), nil)
			}
			del.add(bucketEntries, fk, nil)
			del.add(bucketAccess, fk, nil)
		}
		r.entries.commit(tx, -int64(len(del[string(bucketEntries)])))
		if err := del.apply(tx, true, r.ReleaseMapping); err != nil {
			return err
		}
		b := tx.Bucket(bucketRetired)
		for _, k := range seqs {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("sweep retired entries: %w", err)
	}
	for _, s := range done {
		r.retired.done(s.id, s.created)
	}
	return len(done), nil
}
