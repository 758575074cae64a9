package registry

import (
	"encoding/binary"
	"encoding/json"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The queues' lengths are counted in the queue-meta bucket, in the
// transactions that queue and take off jobs, so a scrape of the metrics
// reads two keys instead of walking the queues. Every start counts them
// once from the buckets (createQueueBuckets).

func queueLengthKey(q QueueKind) []byte { return []byte("len-" + q.String()) }

func queueLength(tx *bolt.Tx, q QueueKind) int64 {
	if v := tx.Bucket(bucketQueueMeta).Get(queueLengthKey(q)); len(v) == 8 {
		return int64(binary.BigEndian.Uint64(v))
	}
	return 0
}

func setQueueLength(tx *bolt.Tx, q QueueKind, n int64) error {
	return tx.Bucket(bucketQueueMeta).Put(queueLengthKey(q), binary.BigEndian.AppendUint64(nil, uint64(max(n, 0))))
}

func addQueueLength(tx *bolt.Tx, q QueueKind, delta int64) error {
	return setQueueLength(tx, q, queueLength(tx, q)+delta)
}

// recountQueues counts the jobs of both queues, waiting and parked.
func recountQueues(tx *bolt.Tx) error {
	for _, q := range []QueueKind{QueueRemoval, QueuePregen} {
		byPrio, _ := queueBuckets(q)
		n := tx.Bucket(byPrio).Stats().KeyN + tx.Bucket(parkedBucket(q)).Stats().KeyN
		if err := setQueueLength(tx, q, int64(n)); err != nil {
			return err
		}
	}
	return nil
}

// QueueLengths returns how many jobs wait in each queue, parked ones
// included (committed ones).
func (r *Registry) QueueLengths() (removal, pregen int) {
	_ = r.db.View(func(tx *bolt.Tx) error {
		removal, pregen = int(queueLength(tx, QueueRemoval)), int(queueLength(tx, QueuePregen))
		return nil
	})
	return removal, pregen
}

// OldestJob returns when the oldest job of a queue, waiting or parked,
// was queued (zero time: the queue is empty). It reads the head of the
// queue's FIFO and of its parked jobs, not the queue.
func (r *Registry) OldestJob(q QueueKind) time.Time {
	var oldest int64
	_ = r.db.View(func(tx *bolt.Tx) error {
		byPrio, fifo := queueBuckets(q)
		consider := func(v []byte) {
			var j QueuedJob
			if v != nil && json.Unmarshal(v, &j) == nil && j.Enqueued > 0 && (oldest == 0 || j.Enqueued < oldest) {
				oldest = j.Enqueued
			}
		}
		if _, order := tx.Bucket(fifo).Cursor().First(); order != nil {
			consider(tx.Bucket(byPrio).Get(order))
		}
		_, v := tx.Bucket(parkedBucket(q)).Cursor().First()
		consider(v)
		return nil
	})
	if oldest == 0 {
		return time.Time{}
	}
	return time.UnixMilli(oldest)
}
