package registry

// OnCommit runs fn after the transaction has been committed; it never
// runs for a transaction that is rolled back. It is for what must become
// visible only together with the transaction's writes (an in-memory record
// of what was applied). fn runs after the write lock is released, so it
// must not rely on the transaction's order relative to others.
func (tx *Tx) OnCommit(fn func()) { tx.tx.OnCommit(fn) }
