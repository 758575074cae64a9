package cache

import (
	"encoding/binary"

	bolt "go.etcd.io/bbolt"
)

// Positions are named numbers kept in the registry file: how far a
// stream of events has been applied (the source time of the staging
// events, of the image updates). ApplyChanges stores a position in the
// same transaction as the changes it applies, so each change takes effect
// exactly once across crashes; SetPosition stores one on its own, for a
// stream whose effects live elsewhere (the image store).

func positionKey(name string) []byte { return []byte("position:" + name) }

// Position returns the stored position name, 0 if none.
func (e *Engine) Position(name string) (int64, error) {
	var v int64
	err := e.reg.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketMeta).Get(positionKey(name)); len(b) == 8 {
			v = int64(binary.BigEndian.Uint64(b))
		}
		return nil
	})
	return v, err
}

// SetPosition stores the position name.
func (e *Engine) SetPosition(name string, v int64) error {
	return e.reg.db.Update(func(tx *bolt.Tx) error { return setPositionTx(tx, name, v) })
}

func setPositionTx(tx *bolt.Tx, name string, v int64) error {
	return tx.Bucket(bucketMeta).Put(positionKey(name), binary.BigEndian.AppendUint64(nil, uint64(v)))
}
