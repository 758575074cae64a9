package registry

import (
	"bytes"
	"context"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// Repairs of the online consistency check (the admin API's check with
// repair): the reverse index made to match the entries again. Each runs
// in write transactions of a bounded number of keys, so the journal's
// writer and the queues are held up for a moment at a time, and decides
// every change inside the transaction that makes it: what a render wrote
// meanwhile is never undone.

// repairBatch is how many keys one repair transaction looks at.
const repairBatch = 2000

// IndexRepair is what RepairIndex changed.
type IndexRepair struct {
	// Added are index keys written for live entries that lacked them.
	Added int `json:"added"`
	// Removed are index keys deleted: malformed, or their entry is gone
	// or does not have their dependency.
	Removed int `json:"removed"`
}

// RepairIndex makes the reverse index match the entries: the keys missing
// for live entries are written, and the keys whose entry is gone or lacks
// their dependency are deleted. progress (optional) is called after each
// transaction with the keys and entries it looked at. It stops between
// transactions when ctx ends.
func (r *Registry) RepairIndex(ctx context.Context, progress func(n int)) (IndexRepair, error) {
	var rep IndexRepair
	if progress == nil {
		progress = func(int) {}
	}
	var after []byte
	for {
		var n, added int
		err := r.db.Update(func(tx *bolt.Tx) error {
			var err error
			n, added, after, err = r.addMissingKeys(tx, after)
			return err
		})
		if err != nil {
			return rep, err
		}
		rep.Added += added
		progress(n)
		r.ReleaseMapping()
		if after == nil {
			break
		}
		if err := ctx.Err(); err != nil {
			return rep, err
		}
	}
	for {
		var n, removed int
		err := r.db.Update(func(tx *bolt.Tx) error {
			var err error
			n, removed, after, err = r.removeBadKeys(tx, after)
			return err
		})
		if err != nil {
			return rep, err
		}
		rep.Removed += removed
		progress(n)
		r.ReleaseMapping()
		if after == nil {
			return rep, nil
		}
		if err := ctx.Err(); err != nil {
			return rep, err
		}
	}
}

// seekAfter places c at the first key after after (nil: the first key).
func seekAfter(c *bolt.Cursor, after []byte) (k, v []byte) {
	if after == nil {
		return c.First()
	}
	k, v = c.Seek(after)
	if k != nil && bytes.Equal(k, after) {
		k, v = c.Next()
	}
	return k, v
}

// deleteBatch looks at up to limit keys of b after the key after and
// deletes those doomed says must go (after the walk: a cursor must not
// see its bucket change under it); next is the last key looked at, nil
// when there are no more.
func deleteBatch(b *bolt.Bucket, after []byte, limit int, doomed func(k, v []byte) bool) (n, deleted int, next []byte, err error) {
	var del [][]byte
	c := b.Cursor()
	k, v := seekAfter(c, after)
	for ; k != nil && n < limit; k, v = c.Next() {
		n++
		next = bytes.Clone(k)
		if doomed(k, v) {
			del = append(del, next)
		}
	}
	if k == nil {
		next = nil
	}
	for _, key := range del {
		if err := b.Delete(key); err != nil {
			return n, 0, nil, err
		}
	}
	return n, len(del), next, nil
}

// addMissingKeys writes the index keys missing for up to repairBatch
// entries after the entry key after; next is the last entry looked at,
// nil when there are no more.
func (r *Registry) addMissingKeys(tx *bolt.Tx, after []byte) (n, added int, next []byte, err error) {
	idx := tx.Bucket(bucketIndex)
	c := tx.Bucket(bucketEntries).Cursor()
	var put []kv
	k, v := seekAfter(c, after)
	for ; k != nil && n < repairBatch; k, v = c.Next() {
		n++
		next = bytes.Clone(k)
		var e Entry
		if unmarshalEntry(v, &e) != nil || !r.visible(k, e.Created) {
			continue // undecodable entries are only reported; retired ones wait for the sweep
		}
		deps := e.indexDeps()
		for i, d := range deps {
			if slices.ContainsFunc(deps[:i], func(o Dependency) bool { return o.Kind == d.Kind && o.Name == d.Name }) {
				continue
			}
			key := append(indexPrefix(d.Kind, d.Name), k...)
			if idx.Get(key) == nil {
				put = append(put, kv{key, indexValue(d, &e)})
			}
		}
	}
	if k == nil {
		next = nil
	}
	slices.SortFunc(put, func(a, b kv) int { return bytes.Compare(a.k, b.k) })
	for _, p := range put {
		if err := idx.Put(p.k, p.v); err != nil {
			return n, 0, nil, err
		}
	}
	return n, len(put), next, nil
}

// removeBadKeys deletes, of up to repairBatch index keys after after, the
// malformed ones and those whose entry is gone or lacks their dependency;
// next is the last key looked at, nil when there are no more.
func (r *Registry) removeBadKeys(tx *bolt.Tx, after []byte) (n, removed int, next []byte, err error) {
	entries := tx.Bucket(bucketEntries)
	return deleteBatch(tx.Bucket(bucketIndex), after, repairBatch, func(k, v []byte) bool {
		i := bytes.IndexByte(k, 0)
		if i < 1 || len(k) < i+3 {
			return true
		}
		fk := k[i+1:]
		if !r.visible(fk, indexCreated(v)) {
			return false // a removed file's key awaiting the sweep
		}
		raw := entries.Get(fk)
		if raw == nil {
			return true
		}
		var e Entry
		if unmarshalEntry(raw, &e) != nil {
			return false // reported by the check; its keys stay until it is rendered again
		}
		return !slices.ContainsFunc(e.indexDeps(), func(d Dependency) bool {
			return byte(d.Kind) == k[0] && d.Name == string(k[1:i])
		})
	})
}
