package registry

import (
	"encoding/binary"

	bolt "go.etcd.io/bbolt"
)

// Positions are named numbers kept in the registry file: how far a
// stream of events has been applied (the source time of the staging
// events, of the image updates). A change is applied in the same
// transaction as its stream's position (Tx.SetPosition), so it takes
// effect exactly once across crashes; SetPosition stores one on its own,
// for a stream whose effects live elsewhere (the image store).

func positionKey(name string) []byte { return []byte("position:" + name) }

// Position returns the stored position name, 0 if none.
func (r *Registry) Position(name string) (int64, error) {
	var v int64
	err := r.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketMeta).Get(positionKey(name)); len(b) == 8 {
			v = int64(binary.BigEndian.Uint64(b))
		}
		return nil
	})
	return v, err
}

// SetPosition stores the position name.
func (r *Registry) SetPosition(name string, v int64) error {
	return r.Update(func(tx *Tx) error { return tx.SetPosition(name, v) })
}

// SetPosition stores the position name in the transaction.
func (tx *Tx) SetPosition(name string, v int64) error {
	return tx.tx.Bucket(bucketMeta).Put(positionKey(name), binary.BigEndian.AppendUint64(nil, uint64(v)))
}
