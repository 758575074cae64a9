package registry

import "bytes"

// FilesWithPrefix returns up to limit live files of the docroot root
// whose names start with prefix, in the order of their names, starting
// after the name after ("": from the first), with their index metadata
// (creation time, forced pre-generation). more reports whether files
// follow. It reads the database only (Registry.Sync first).
func (tx *Tx) FilesWithPrefix(root uint16, prefix, after string, limit int) (files []FileID, meta map[FileID]Meta,
	more bool, err error) {
	start := FileID{Root: root, File: prefix}.key()
	c := tx.tx.Bucket(bucketEntries).Cursor()
	k, v := c.Seek(start)
	if after != "" {
		ak := FileID{Root: root, File: after}.key()
		k, v = c.Seek(ak)
		if k != nil && bytes.Equal(k, ak) {
			k, v = c.Next()
		}
	}
	meta = map[FileID]Meta{}
	for ; k != nil && bytes.HasPrefix(k, start); k, v = c.Next() {
		m, ok := entryMeta(v)
		if !ok || !tx.r.visible(k, m.Created) {
			continue // undecodable (the check reports it) or retired
		}
		if len(files) == limit {
			return files, meta, true, nil
		}
		id := fileIDOf(k)
		files = append(files, id)
		meta[id] = m
	}
	return files, meta, false, nil
}

// CountWithPrefix counts the live files of the docroot root whose names
// start with prefix.
func (tx *Tx) CountWithPrefix(root uint16, prefix string) int {
	start := FileID{Root: root, File: prefix}.key()
	c := tx.tx.Bucket(bucketEntries).Cursor()
	n := 0
	for k, v := c.Seek(start); k != nil && bytes.HasPrefix(k, start); k, v = c.Next() {
		if m, ok := entryMeta(v); ok && tx.r.visible(k, m.Created) {
			n++
		}
	}
	return n
}

// entryMeta reads the creation time and the forced pre-generation flag of
// an encoded entry without decoding the rest.
func entryMeta(b []byte) (Meta, bool) {
	r := entryReader{b: b}
	if r.byte() != entryCodecVersion {
		return Meta{}, false
	}
	r.field() // key
	r.field() // host
	created := r.varint()
	r.varint() // expires
	flags := r.byte()
	return Meta{Created: created, Force: flags&1 != 0}, r.err == nil
}
