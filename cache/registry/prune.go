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
// pick dooms, until it says stop. also, if set, runs before each key is
// deleted (to delete what belongs to it elsewhere). It returns how many
// keys it deleted, so a caller loops, between other work, until fewer
// than limit come back.
func (r *Registry) prune(bucket []byte, limit int, pick func(k, v []byte) (doomed, stop bool),
	also func(tx *bolt.Tx, k []byte) error) (int, error) {
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
			del, stop := pick(k, v)
			if stop {
				break
			}
			if del {
				doomed = append(doomed, bytes.Clone(k))
			}
		}
		for _, k := range doomed {
			if also != nil {
				if err := also(tx, k); err != nil {
					return err
				}
			}
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		n = len(doomed)
		return nil
	})
	return n, err
}
