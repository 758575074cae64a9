package registry

import (
	"bytes"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Parked jobs: a pre-generation job whose docroot has no renderer yet (no
// config serves it since a restart or a reload) cannot run, and left at
// the head of its queue it would be taken again and again while the jobs
// of other docroots wait behind it. Such a job is parked: moved out of
// its queue's buckets into the queue's parked bucket, in one step per job
// (never a scan of the queue), and put back when its docroot gets a
// renderer (Unpark, a scan of the parked jobs only). A parked job still
// counts as waiting and still holds its file's place in queue-files, so
// a new job for the file replaces it (dequeue finds it parked) or is
// dropped as usual.

func parkedBucket(q QueueKind) []byte { return []byte("queue-" + q.String() + "-parked") }

// parkedKey orders parked jobs by age (the sequence number of the order
// key, then its priority byte), so the first is the oldest.
func parkedKey(order []byte) []byte {
	k := make([]byte, 0, 9)
	return append(append(k, order[1:]...), order[0])
}

func orderOfParked(k []byte) []byte {
	o := make([]byte, 0, 9)
	return append(append(o, k[8]), k[:8]...)
}

// Park moves a job that was taken from queue q out of its way until
// Unpark. A job that is no longer queued as it was taken (done, or
// replaced meanwhile) is left alone; parked reports whether it was moved.
func (tx *Tx) Park(q QueueKind, j QueuedJob) (parked bool, err error) {
	if len(j.order) != 9 {
		return false, nil
	}
	cur := tx.tx.Bucket(bucketQueueFiles).Get(j.dedupKey())
	if len(cur) != 10 || cur[0] != byte(q) || !bytes.Equal(cur[1:], j.order) {
		return false, nil
	}
	byPrio, fifo := queueBuckets(q)
	v := tx.tx.Bucket(byPrio).Get(j.order)
	if v == nil {
		return false, nil // parked already
	}
	if err := tx.tx.Bucket(parkedBucket(q)).Put(parkedKey(j.order), bytes.Clone(v)); err != nil {
		return false, err
	}
	if err := tx.tx.Bucket(byPrio).Delete(j.order); err != nil {
		return false, err
	}
	return true, tx.tx.Bucket(fifo).Delete(j.order[1:])
}

// unparkBatch bounds the jobs one Unpark transaction moves back.
const unparkBatch = 10_000

// Unpark puts the parked jobs of queue q whose docroot is root back into
// the queue, in their old places; it returns how many.
func (r *Registry) Unpark(q QueueKind, root uint16) (int, error) {
	total := 0
	var after []byte
	for {
		n, last, err := r.unparkSome(q, root, after)
		total += n
		if err != nil || last == nil {
			return total, err
		}
		after = last
	}
}

// unparkSome moves back up to unparkBatch parked jobs of root after the
// parked key after; last is the last key looked at when there may be
// more.
func (r *Registry) unparkSome(q QueueKind, root uint16, after []byte) (n int, last []byte, err error) {
	err = r.db.Update(func(tx *bolt.Tx) error {
		n, last = 0, nil
		parked := tx.Bucket(parkedBucket(q))
		byPrio, fifo := queueBuckets(q)
		var back [][2][]byte // parked key, value
		c := parked.Cursor()
		k, v := c.First()
		if after != nil {
			k, v = c.Seek(after)
			if k != nil && bytes.Equal(k, after) {
				k, v = c.Next()
			}
		}
		seen := 0
		var prev []byte
		for ; k != nil; k, v = c.Next() {
			if seen == unparkBatch {
				last = prev // more may follow: the next batch starts after it
				break
			}
			seen++
			prev = bytes.Clone(k)
			var j QueuedJob
			if err := json.Unmarshal(v, &j); err != nil {
				return fmt.Errorf("decode parked queue job: %w", err)
			}
			if len(k) == 9 && j.Root == root {
				back = append(back, [2][]byte{bytes.Clone(k), bytes.Clone(v)})
			}
		}
		for _, kv := range back {
			order := orderOfParked(kv[0])
			if err := tx.Bucket(byPrio).Put(order, kv[1]); err != nil {
				return err
			}
			if err := tx.Bucket(fifo).Put(order[1:], order); err != nil {
				return err
			}
			if err := parked.Delete(kv[0]); err != nil {
				return err
			}
		}
		n = len(back)
		return nil
	})
	return n, last, err
}

// ParkedRoots returns the docroots with parked jobs in queue q.
func (r *Registry) ParkedRoots(q QueueKind) ([]uint16, error) {
	seen := map[uint16]bool{}
	var roots []uint16
	err := r.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(parkedBucket(q)).ForEach(func(_, v []byte) error {
			var j QueuedJob
			if err := json.Unmarshal(v, &j); err != nil {
				return fmt.Errorf("decode parked queue job: %w", err)
			}
			if !seen[j.Root] {
				seen[j.Root] = true
				roots = append(roots, j.Root)
			}
			return nil
		})
	})
	return roots, err
}
