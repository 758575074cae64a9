package registry

import (
	"bytes"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// ImportRecord is one file for Import.
type ImportRecord struct {
	ID    FileID
	Entry Entry
}

// importBatch is how many entries one Import transaction writes.
const importBatch = 20000

// Import writes many entries straight into the database, bypassing the
// journal: for building or migrating large registries (and for the
// benchmarks' generator). next returns records until ok is false. The
// entries must be new (Import does not unindex older versions). Reverse
// index keys are sorted per batch so the B+tree pages fill densely.
func (r *Registry) Import(next func() (ImportRecord, bool)) (int, error) {
	n := 0
	for {
		var entries, index []kv
		for len(entries) < importBatch {
			rec, ok := next()
			if !ok {
				break
			}
			key := rec.ID.key()
			entries = append(entries, kv{key, marshalEntry(&rec.Entry)})
			for _, d := range rec.Entry.indexDeps() {
				index = append(index, kv{append(indexPrefix(d.Kind, d.Name), key...), indexValue(d, &rec.Entry)})
			}
			if rec.Entry.Expires > 0 {
				index = append(index, kv{append([]byte{0}, expiryKey(rec.Entry.Expires, key)...), nil})
			}
		}
		if len(entries) == 0 {
			return n, nil
		}
		cmp := func(a, b kv) int { return bytes.Compare(a.k, b.k) }
		slices.SortFunc(entries, cmp)
		slices.SortFunc(index, cmp)
		err := r.db.Update(func(tx *bolt.Tx) error {
			eb, ib, xb := tx.Bucket(bucketEntries), tx.Bucket(bucketIndex), tx.Bucket(bucketExpiry)
			eb.FillPercent, ib.FillPercent, xb.FillPercent = 0.9, 0.9, 0.9
			r.entries.commit(tx, int64(len(entries)))
			for _, e := range entries {
				if err := eb.Put(e.k, e.v); err != nil {
					return err
				}
			}
			for _, x := range index {
				if x.k[0] == 0 { // expiry
					if err := xb.Put(x.k[1:], nil); err != nil {
						return err
					}
					continue
				}
				if err := ib.Put(x.k, x.v); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return n, fmt.Errorf("import batch: %w", err)
		}
		n += len(entries)
	}
}
