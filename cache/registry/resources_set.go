package registry

// SetResourceHash records hash as the newest hash of a resource (a deploy
// announced through the admin API), in the transaction that queues the
// files rendered with another one.
func (tx *Tx) SetResourceHash(name, hash string) error {
	return tx.tx.Bucket(bucketResources).Put([]byte(name), []byte(hash))
}
