package registry

import (
	"bytes"
	"encoding/binary"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Scheduled expiry: an entry with an Expires time has a key in the expiry
// bucket, ordered by that time, so the files that are due are the first
// keys of the bucket.

// AnyDue reports, in a read transaction, whether a file is due at now;
// the scheduler opens a write transaction only when there is work.
func (r *Registry) AnyDue(now time.Time) bool {
	limit := binary.BigEndian.AppendUint64(nil, uint64(now.UnixMilli()))
	anyDue := false
	_ = r.db.View(func(tx *bolt.Tx) error {
		k, _ := tx.Bucket(bucketExpiry).Cursor().First()
		anyDue = k != nil && bytes.Compare(k[:8], limit) <= 0
		return nil
	})
	return anyDue
}

// TakeDue deletes up to max expiry keys that are due at now and returns
// the files they belong to, leaving out keys of entries that were removed
// or rendered again since (their tombstone's sweep has not run yet).
func (tx *Tx) TakeDue(now time.Time, max int) ([]FileID, error) {
	limit := binary.BigEndian.AppendUint64(nil, uint64(now.UnixMilli()))
	b := tx.tx.Bucket(bucketExpiry)
	c := b.Cursor()
	var due []FileID
	var keys [][]byte
	for k, _ := c.First(); k != nil && len(keys) < max && bytes.Compare(k[:8], limit) <= 0; k, _ = c.Next() {
		keys = append(keys, append([]byte(nil), k...))
		id := fileIDOf(k[8:])
		if !tx.liveExpiry(id, int64(binary.BigEndian.Uint64(k[:8]))) {
			continue // a removed file's key awaiting the sweep
		}
		due = append(due, id)
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return nil, err
		}
	}
	return due, nil
}

// liveExpiry reports whether an expiry key belongs to a file's live entry;
// only a file with a tombstone can have a stale one.
func (tx *Tx) liveExpiry(id FileID, expires int64) bool {
	r := tx.r
	if !r.retired.has(id) {
		return true
	}
	v := tx.tx.Bucket(bucketEntries).Get(id.key())
	if v == nil {
		return false
	}
	c, x, err := entryTimes(v)
	return err == nil && x == expires && r.retired.visible(id, c)
}
