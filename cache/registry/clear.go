package registry

import (
	"bytes"
	"context"
	"encoding/json"

	bolt "go.etcd.io/bbolt"
)

// Clearing the registry for a rebuild of the cache while it serves: what
// the registry knows of the files rendered before a cutoff time goes —
// entries with their reverse-index, expiry and access keys, the jobs
// queued before the cutoff, the tombstones of such entries — and what
// renders record from the cutoff on stays. Docroots, the flush log, the
// outbox, positions and resource hashes are kept. It runs in write
// transactions of a bounded number of keys, in key order (each page of
// the file is visited once), so readers and the journal's writer go on.

// clearBatch is how many keys one clearing transaction looks at.
const clearBatch = 5000

// ClearReport is what ClearBefore deleted.
type ClearReport struct {
	Entries   int `json:"entries"`
	IndexKeys int `json:"index_keys"`
	Jobs      int `json:"jobs"`
	Retired   int `json:"tombstones"`
}

// ClearBefore deletes what the registry knows of files whose entries were
// created before cutoff (Unix ms), and the jobs queued before it.
// Records still in the journal are not seen: Sync first. progress
// (optional) is called after each transaction with the keys it looked at.
// It stops between transactions when ctx ends (what is done stays done).
func (r *Registry) ClearBefore(ctx context.Context, cutoff int64, progress func(n int)) (ClearReport, error) {
	var rep ClearReport
	if progress == nil {
		progress = func(int) {}
	}
	steps := []func(tx *bolt.Tx, after []byte) (n, deleted int, next []byte, err error){
		func(tx *bolt.Tx, after []byte) (int, int, []byte, error) { return r.clearEntries(tx, after, cutoff) },
		func(tx *bolt.Tx, after []byte) (int, int, []byte, error) { return clearIndex(tx, after, cutoff) },
		func(tx *bolt.Tx, after []byte) (int, int, []byte, error) {
			return clearQueue(tx, QueueRemoval, after, cutoff)
		},
		func(tx *bolt.Tx, after []byte) (int, int, []byte, error) {
			return clearQueue(tx, QueuePregen, after, cutoff)
		},
		func(tx *bolt.Tx, after []byte) (int, int, []byte, error) {
			return clearParked(tx, QueuePregen, after, cutoff)
		},
		func(tx *bolt.Tx, after []byte) (int, int, []byte, error) {
			return clearParked(tx, QueueRemoval, after, cutoff)
		},
		func(tx *bolt.Tx, after []byte) (int, int, []byte, error) { return r.clearRetired(tx, after, cutoff) },
	}
	counts := []*int{&rep.Entries, &rep.IndexKeys, &rep.Jobs, &rep.Jobs, &rep.Jobs, &rep.Jobs, &rep.Retired}
	for i, step := range steps {
		var after []byte
		for {
			var n, deleted int
			err := r.db.Update(func(tx *bolt.Tx) error {
				var err error
				n, deleted, after, err = step(tx, after)
				return err
			})
			if err != nil {
				return rep, err
			}
			*counts[i] += deleted
			progress(n)
			r.ReleaseMapping()
			if after == nil {
				break
			}
			if err := ctx.Err(); err != nil {
				return rep, err
			}
		}
	}
	return rep, nil
}

// clearEntries deletes, of up to clearBatch entries after after, those
// created before cutoff (and undecodable ones), with their expiry and
// access keys. Their index keys carry the same creation time and go in
// clearIndex.
func (r *Registry) clearEntries(tx *bolt.Tx, after []byte, cutoff int64) (n, deleted int, next []byte, err error) {
	c := tx.Bucket(bucketEntries).Cursor()
	var del, expiry [][]byte
	k, v := seekAfter(c, after)
	for ; k != nil && n < clearBatch; k, v = c.Next() {
		n++
		next = bytes.Clone(k)
		created, expires, err := entryTimes(v)
		if err == nil && created >= cutoff {
			continue
		}
		del = append(del, next)
		if err == nil && expires > 0 {
			expiry = append(expiry, expiryKey(expires, next))
		}
	}
	if k == nil {
		next = nil
	}
	entries, access, exp := tx.Bucket(bucketEntries), tx.Bucket(bucketAccess), tx.Bucket(bucketExpiry)
	for _, key := range del {
		if err := entries.Delete(key); err != nil {
			return n, 0, nil, err
		}
		if err := access.Delete(key); err != nil {
			return n, 0, nil, err
		}
	}
	for _, key := range expiry {
		if err := exp.Delete(key); err != nil {
			return n, 0, nil, err
		}
	}
	r.entries.commit(tx, -int64(len(del)))
	return n, len(del), next, nil
}

// clearIndex deletes, of up to clearBatch index keys after after, those
// of entries created before cutoff, and malformed ones.
func clearIndex(tx *bolt.Tx, after []byte, cutoff int64) (n, deleted int, next []byte, err error) {
	return deleteBatch(tx.Bucket(bucketIndex), after, clearBatch, func(_, v []byte) bool {
		return len(v) < 2 || indexCreated(v) < cutoff
	})
}

// clearQueue takes off, of up to clearBatch jobs of a queue after the
// order key after, those queued before cutoff (and undecodable ones).
func clearQueue(tx *bolt.Tx, q QueueKind, after []byte, cutoff int64) (n, deleted int, next []byte, err error) {
	byPrio, fifo := queueBuckets(q)
	c := tx.Bucket(byPrio).Cursor()
	type doomed struct{ order, dk []byte }
	var del []doomed
	k, v := seekAfter(c, after)
	for ; k != nil && n < clearBatch; k, v = c.Next() {
		n++
		next = bytes.Clone(k)
		var j QueuedJob
		if json.Unmarshal(v, &j) != nil {
			del = append(del, doomed{order: next})
			continue
		}
		if j.Enqueued < cutoff {
			del = append(del, doomed{order: next, dk: j.dedupKey()})
		}
	}
	if k == nil {
		next = nil
	}
	for _, d := range del {
		var err error
		if d.dk == nil {
			if err = tx.Bucket(byPrio).Delete(d.order); err == nil {
				err = tx.Bucket(fifo).Delete(d.order[1:])
			}
			if err == nil {
				err = addQueueLength(tx, q, -1)
			}
		} else {
			err = dequeue(tx, q, d.order, d.dk)
		}
		if err != nil {
			return n, 0, nil, err
		}
	}
	return n, len(del), next, nil
}

// clearParked takes off, of up to clearBatch parked jobs of a queue after
// the parked key after, those queued before cutoff (and undecodable ones):
// a parked job would otherwise come back when its docroot gets a renderer.
func clearParked(tx *bolt.Tx, q QueueKind, after []byte, cutoff int64) (n, deleted int, next []byte, err error) {
	b := tx.Bucket(parkedBucket(q))
	if b == nil {
		return 0, 0, nil, nil
	}
	c := b.Cursor()
	type doomed struct{ key, dk []byte }
	var del []doomed
	k, v := seekAfter(c, after)
	for ; k != nil && n < clearBatch; k, v = c.Next() {
		n++
		next = bytes.Clone(k)
		var j QueuedJob
		switch {
		case len(k) != 9 || json.Unmarshal(v, &j) != nil:
			del = append(del, doomed{key: next})
		case j.Enqueued < cutoff:
			del = append(del, doomed{key: next, dk: j.dedupKey()})
		}
	}
	if k == nil {
		next = nil
	}
	for _, d := range del {
		var err error
		if d.dk == nil {
			if err = b.Delete(d.key); err == nil {
				err = addQueueLength(tx, q, -1)
			}
		} else {
			err = dequeue(tx, q, orderOfParked(d.key), d.dk)
		}
		if err != nil {
			return n, 0, nil, err
		}
	}
	return n, len(del), next, nil
}

// clearRetired deletes, of up to clearBatch tombstones after after, those
// of entries created before cutoff: the entries are gone already.
func (r *Registry) clearRetired(tx *bolt.Tx, after []byte, cutoff int64) (n, deleted int, next []byte, err error) {
	var ids []FileID
	var created []int64
	n, deleted, next, err = deleteBatch(tx.Bucket(bucketRetired), after, clearBatch, func(_, v []byte) bool {
		fk, cr, err := splitRetired(v)
		if err != nil {
			return true
		}
		if cr >= cutoff {
			return false
		}
		ids, created = append(ids, fileIDOf(fk)), append(created, cr)
		return true
	})
	if err != nil {
		return n, 0, nil, err
	}
	tx.OnCommit(func() {
		for i, id := range ids {
			r.retired.done(id, created[i])
		}
	})
	return n, deleted, next, nil
}
