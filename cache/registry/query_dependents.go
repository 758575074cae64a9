package registry

import "bytes"

// Read-only queries of the admin API: the files that depend on something,
// page by page.

// DependentsPage calls fn for up to limit live files that have a
// dependency of kind on name, with that dependency and their index
// metadata, in the order of their file ids, starting after the file
// after (nil: from the first). more reports whether files follow the last
// one given. It reads the database only: records still in the journal are
// not seen (Registry.Sync first).
func (tx *Tx) DependentsPage(kind DepKind, name string, after *FileID, limit int,
	fn func(FileID, Dependency, Meta)) (more bool, err error) {
	prefix := indexPrefix(kind, name)
	c := tx.tx.Bucket(bucketIndex).Cursor()
	k, v := c.Seek(prefix)
	if after != nil {
		start := append(bytes.Clone(prefix), after.key()...)
		k, v = c.Seek(start)
		if k != nil && bytes.Equal(k, start) {
			k, v = c.Next()
		}
	}
	n := 0
	for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		fk := k[len(prefix):]
		if len(fk) < 2 {
			continue // malformed: the check reports it
		}
		d, meta := dependencyFromIndex(kind, name, v)
		if !tx.r.visible(fk, meta.Created) {
			continue // a removed file's key awaiting the sweep
		}
		if n == limit {
			return true, nil
		}
		fn(fileIDOf(fk), d, meta)
		n++
	}
	return false, nil
}
