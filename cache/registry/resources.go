package registry

import bolt "go.etcd.io/bbolt"

// ResourceHashes returns the newest known hash of every resource (a
// template, say): the journal's writer records the hash of every entry's
// resource dependencies, and keeps it when the entries go.
func (r *Registry) ResourceHashes() (map[string]string, error) {
	hashes := map[string]string{}
	err := r.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketResources).ForEach(func(k, v []byte) error {
			hashes[string(k)] = string(v)
			return nil
		})
	})
	return hashes, err
}
