package registry

import (
	"encoding/json"

	bolt "go.etcd.io/bbolt"
)

// OldestQueued returns when the job that has waited longest in a queue
// was queued (Unix ms); ok is false when the queue is empty.
func (r *Registry) OldestQueued(q QueueKind) (enqueued int64, ok bool) {
	byPrio, fifo := queueBuckets(q)
	_ = r.db.View(func(tx *bolt.Tx) error {
		_, order := tx.Bucket(fifo).Cursor().First()
		if order == nil {
			return nil
		}
		var j QueuedJob
		if v := tx.Bucket(byPrio).Get(order); v != nil && json.Unmarshal(v, &j) == nil {
			enqueued, ok = j.Enqueued, true
		}
		return nil
	})
	return enqueued, ok
}
