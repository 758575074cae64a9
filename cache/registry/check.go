package registry

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// The registry's side of the consistency check (cache.Engine.Check): the
// entries against their reverse-index keys, and a cursor over the entries
// of one docroot for the walk of its files.

// CheckStep is a unit of work of CheckIndex, for progress reports.
type CheckStep uint8

// Steps of CheckIndex.
const (
	StepEntry    CheckStep = iota // an entry checked
	StepIndexKey                  // an index key counted
	StepRecheck                   // an index key looked up to name a bad one
)

// IndexReport is what CheckIndex found.
type IndexReport struct {
	// Entries are the live entries; RetiredEntries and RetiredKeys the
	// entries and index keys of removed files that wait for the sweep.
	Entries, RetiredEntries, RetiredKeys int
	// BadIndex are reverse-index keys that do not match their entry, and
	// entries whose dependencies are missing from the index.
	BadIndex []string
}

// visible reports whether the entry with key k created at created is live
// (not retired by a removal). Without tombstones it needs no file id.
func (r *Registry) visible(k []byte, created int64) bool {
	return r.Retired() == 0 || r.retired.visible(fileIDOf(k), created)
}

// CheckIndex checks every entry's reverse-index keys, and every index
// key's entry; step is called for every unit of work. Looking up the entry
// of each index key (a random read and a decode per key, and there are ten
// or so keys per entry) is needed only to name the bad keys: every index
// key an entry confirms is counted, and if the visible keys are as many,
// each of them is confirmed.
func (tx *Tx) CheckIndex(step func(CheckStep)) (IndexReport, error) {
	var rep IndexReport
	r := tx.r
	entries := tx.tx.Bucket(bucketEntries)
	idx := tx.tx.Bucket(bucketIndex)
	var key []byte // reused: index keys are looked up, never kept
	confirmed := 0 // distinct visible index keys of visible entries
	err := entries.ForEach(func(k, v []byte) error {
		step(StepEntry)
		rep.Entries++
		var entry Entry
		if err := unmarshalEntry(v, &entry); err != nil {
			rep.BadIndex = append(rep.BadIndex, fmt.Sprintf("%s: undecodable entry: %v", fileIDOf(k).File, err))
			return nil
		}
		if !r.visible(k, entry.Created) {
			rep.Entries--
			rep.RetiredEntries++
			return nil
		}
		deps := entry.indexDeps()
		for i, d := range deps {
			if slices.ContainsFunc(deps[:i], func(o Dependency) bool { return o.Kind == d.Kind && o.Name == d.Name }) {
				continue // one key for both
			}
			key = append(append(append(key[:0], byte(d.Kind)), d.Name...), 0)
			key = append(key, k...)
			iv := idx.Get(key)
			switch {
			case iv == nil:
				rep.BadIndex = append(rep.BadIndex, fmt.Sprintf("%s: %s %q not indexed", fileIDOf(k).File, d.Kind, d.Name))
			case r.visible(k, indexCreated(iv)):
				confirmed++
			}
		}
		return nil
	})
	if err != nil {
		return rep, err
	}
	visible := 0
	cur := idx.Cursor()
	for k, iv := cur.First(); k != nil; k, iv = cur.Next() {
		step(StepIndexKey)
		i := bytes.IndexByte(k, 0)
		if i < 1 || len(k) < i+3 {
			rep.BadIndex = append(rep.BadIndex, fmt.Sprintf("malformed index key %q", k))
			continue
		}
		if !r.visible(k[i+1:], indexCreated(iv)) {
			rep.RetiredKeys++
			continue
		}
		visible++
	}
	if visible != confirmed {
		rep.BadIndex = tx.findBadIndexKeys(idx, entries, step, rep.BadIndex)
	}
	return rep, nil
}

// findBadIndexKeys adds the visible index keys whose entry is missing or
// does not have the key's dependency to bad.
func (tx *Tx) findBadIndexKeys(idx, entries *bolt.Bucket, step func(CheckStep), bad []string) []string {
	cur := idx.Cursor()
	for k, iv := cur.First(); k != nil; k, iv = cur.Next() {
		step(StepRecheck)
		i := bytes.IndexByte(k, 0)
		if i < 1 || len(k) < i+3 {
			continue // reported
		}
		fk := k[i+1:]
		if !tx.r.visible(fk, indexCreated(iv)) {
			continue
		}
		v := entries.Get(fk)
		if v == nil {
			bad = append(bad, fmt.Sprintf("index %c %q points to missing entry %s", k[0], k[1:i], fileIDOf(fk).File))
			continue
		}
		var entry Entry
		_ = unmarshalEntry(v, &entry)
		found := false
		for _, d := range entry.indexDeps() {
			if byte(d.Kind) == k[0] && d.Name == string(k[1:i]) {
				found = true
			}
		}
		if !found {
			bad = append(bad, fmt.Sprintf("index %c %q not in entry %s", k[0], k[1:i], fileIDOf(fk).File))
		}
	}
	return bad
}

// EntryCursor walks the entries of one docroot in the byte order of their
// file names, which is the order of the entries' keys; it allocates
// nothing per entry.
type EntryCursor struct {
	tx     *Tx
	c      *bolt.Cursor
	queued *bolt.Bucket
	prefix []byte // the root id: the start of every key of the docroot
	k, v   []byte // the current entry; k is nil past the docroot's last
}

// Entries returns a cursor at the first entry of the docroot root.
func (tx *Tx) Entries(root uint16) *EntryCursor {
	c := &EntryCursor{tx: tx, c: tx.tx.Bucket(bucketEntries).Cursor(), queued: tx.tx.Bucket(bucketQueueFiles),
		prefix: binary.BigEndian.AppendUint16(nil, root)}
	c.k, c.v = c.c.Seek(c.prefix)
	c.clip()
	return c
}

// clip ends the walk at the first key of another docroot.
func (c *EntryCursor) clip() {
	if c.k != nil && !bytes.HasPrefix(c.k, c.prefix) {
		c.k, c.v = nil, nil
	}
}

// File is the file name of the current entry (valid until Next), nil
// past the docroot's last entry.
func (c *EntryCursor) File() []byte {
	if c.k == nil {
		return nil
	}
	return c.k[len(c.prefix):]
}

// Next moves to the next entry of the docroot.
func (c *EntryCursor) Next() {
	c.k, c.v = c.c.Next()
	c.clip()
}

// Live reports whether the current entry can be decoded and is not
// retired.
func (c *EntryCursor) Live() bool {
	created, _, err := entryTimes(c.v)
	return err == nil && c.tx.r.visible(c.k, created)
}

// Retired reports whether the current entry is one a removal retired (an
// entry that cannot be decoded is not: CheckIndex reports it).
func (c *EntryCursor) Retired() bool {
	created, _, err := entryTimes(c.v)
	return err == nil && !c.tx.r.visible(c.k, created)
}

// Queued reports whether a queued job waits for the current entry's file.
func (c *EntryCursor) Queued() bool { return c.queued.Get(c.k) != nil }
