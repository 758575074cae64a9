package registry

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Access times: when each cached file was last read, for the choice
// between pre-generation and removal. The hit path collects them in
// memory (cache.AccessLog); they are written here in batches.

// WriteAccess stores access times (file -> Unix ms) in one transaction;
// a time older than the stored one is skipped.
func (r *Registry) WriteAccess(times map[FileID]int64) error {
	err := r.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAccess)
		for id, ms := range times {
			k := id.key()
			if old := b.Get(k); len(old) == 8 && int64(binary.BigEndian.Uint64(old)) >= ms {
				continue
			}
			if err := b.Put(k, binary.BigEndian.AppendUint64(nil, uint64(ms))); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("write access times: %w", err)
	}
	return nil
}

// LastAccess is the stored access time of a file (Unix ms, 0: none).
func (tx *Tx) LastAccess(id FileID) int64 {
	if v := tx.tx.Bucket(bucketAccess).Get(id.key()); len(v) == 8 {
		return int64(binary.BigEndian.Uint64(v))
	}
	return 0
}
