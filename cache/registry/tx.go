package registry

import (
	"bytes"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Tx is one transaction on the registry file. Its methods read and write
// the registry's buckets, so that what must happen together — find the
// files a change touches, queue their jobs, store the stream's position —
// commits together or not at all.
type Tx struct {
	tx *bolt.Tx
	r  *Registry
}

// View runs fn in a read transaction.
func (r *Registry) View(fn func(*Tx) error) error {
	return r.db.View(func(tx *bolt.Tx) error { return fn(&Tx{tx: tx, r: r}) })
}

// Update runs fn in a write transaction, committed if fn returns nil.
func (r *Registry) Update(fn func(*Tx) error) error {
	return r.db.Update(func(tx *bolt.Tx) error { return fn(&Tx{tx: tx, r: r}) })
}

// Get returns the entry of a file; it sees pending writes.
func (tx *Tx) Get(id FileID) (Entry, bool, error) {
	if e, ok := tx.r.pendingEntry(id); ok {
		if e == nil {
			return Entry{}, false, nil
		}
		return *e, true, nil
	}
	v := tx.tx.Bucket(bucketEntries).Get(id.key())
	if v == nil {
		return Entry{}, false, nil
	}
	var e Entry
	if err := unmarshalEntry(v, &e); err != nil {
		return Entry{}, false, fmt.Errorf("read registry entry %s: %w", id.File, err)
	}
	if !tx.r.retired.visible(id, e.Created) {
		return Entry{}, false, nil // removed; the sweep deletes it
	}
	return e, true, nil
}

// Find is Registry.Find inside the transaction.
func (tx *Tx) Find(kind DepKind, name string, fn func(FileID, Dependency) bool) error {
	return tx.FindMeta(kind, name, func(id FileID, d Dependency, _ Meta) bool { return fn(id, d) })
}

// Meta is what the reverse index keeps of a file besides the dependency
// itself, so that matching and queueing need not read the (much larger,
// randomly placed) entries.
type Meta struct {
	Created int64 // the entry's creation time (Unix ms)
	Force   bool  // the render asked to be pre-generated
}

// FindMeta is Find that also yields the file's metadata.
func (tx *Tx) FindMeta(kind DepKind, name string, fn func(FileID, Dependency, Meta) bool) error {
	r := tx.r
	pending := r.pendingSnapshot()
	prefix := indexPrefix(kind, name)
	c := tx.tx.Bucket(bucketIndex).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		id := fileIDOf(k[len(prefix):])
		if _, overridden := pending[id]; overridden {
			continue
		}
		d, meta := dependencyFromIndex(kind, name, v)
		if !r.retired.visible(id, meta.Created) {
			continue // a removed file's key awaiting the sweep
		}
		if !fn(id, d, meta) {
			return nil
		}
	}
	for id, e := range pending {
		if e == nil {
			continue
		}
		for _, d := range e.indexDeps() {
			if d.Kind == kind && d.Name == name && !fn(id, d, Meta{Created: e.Created, Force: e.Force}) {
				return nil
			}
		}
	}
	return nil
}

// Roots calls fn with every docroot and its root id.
func (tx *Tx) Roots(fn func(docroot string, id uint16) error) error {
	return tx.tx.Bucket(bucketRoots).ForEach(func(k, v []byte) error {
		if len(v) != 2 {
			return nil
		}
		return fn(string(k), binary.BigEndian.Uint16(v))
	})
}
