package registry

import (
	"bytes"

	bolt "go.etcd.io/bbolt"
)

// defaultPruneLimit is how many keys one prune deletes when the caller
// sets no limit.
const defaultPruneLimit = 1000

// prune deletes, in one write transaction, up to limit keys of bucket (a
// bucket created at first use: none, nothing to do) in key order: those
// pick dooms, until it says stop. del deletes the doomed keys (and what
// belongs to them elsewhere, and counts them). It returns how many keys
// it deleted, so a caller loops, between other work, until fewer than
// limit come back.
func (r *Registry) prune(bucket []byte, limit int, pick func(k, v []byte) (doomed, stop bool),
	del func(tx *bolt.Tx, doomed [][]byte) error) (int, error) {
	if limit <= 0 {
		limit = defaultPruneLimit
	}
	n := 0
	err := r.db.Update(func(tx *bolt.Tx) error {
		n = 0
		b := tx.Bucket(bucket)
		if b == nil {
			return nil
		}
		var doomed [][]byte
		c := b.Cursor()
		for k, v := c.First(); k != nil && len(doomed) < limit; k, v = c.Next() {
			remove, stop := pick(k, v)
			if stop {
				break
			}
			if remove {
				doomed = append(doomed, bytes.Clone(k))
			}
		}
		if len(doomed) == 0 {
			return nil
		}
		if err := del(tx, doomed); err != nil {
			return err
		}
		n = len(doomed)
		return nil
	})
	return n, err
}
