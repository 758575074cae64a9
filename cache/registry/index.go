package registry

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// The reverse index: one key per dependency (and cache key) of every
// entry, kind + name + 0 + file id, so that the files of a document, node,
// resource or key are one prefix scan away.

func indexPrefix(kind DepKind, name string) []byte {
	p := make([]byte, 0, 2+len(name))
	p = append(p, byte(kind))
	p = append(p, name...)
	return append(p, 0)
}

// indexValue is the value of a reverse-index key: a flags byte (bit 0:
// forced pre-generation), the file's creation time (varint, Unix ms), then
// the properties (space separated) or, for a resource, its hash.
func indexValue(d Dependency, e *Entry) []byte {
	payload := d.Hash
	if d.Kind != DepResource {
		payload = strings.Join(d.Props, " ")
	}
	v := make([]byte, 1, 1+binary.MaxVarintLen64+len(payload))
	if e.Force {
		v[0] = 1
	}
	v = binary.AppendVarint(v, e.Created)
	return append(v, payload...)
}

func dependencyFromIndex(kind DepKind, name string, v []byte) (Dependency, Meta) {
	d := Dependency{Kind: kind, Name: name}
	var meta Meta
	if len(v) > 0 {
		meta.Force = v[0]&1 != 0
		created, n := binary.Varint(v[1:])
		if n > 0 {
			meta.Created = created
			v = v[1+n:]
		} else {
			v = nil
		}
	}
	switch {
	case kind == DepResource:
		d.Hash = string(v)
	case len(v) > 0:
		d.Props = strings.Fields(string(v))
	}
	return d, meta
}

// indexCreated is the creation time an index value records.
func indexCreated(v []byte) int64 {
	if len(v) < 2 {
		return 0
	}
	c, n := binary.Varint(v[1:])
	if n <= 0 {
		return 0
	}
	return c
}

func expiryKey(ms int64, fileKey []byte) []byte {
	k := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(fileKey)), uint64(ms))
	return append(k, fileKey...)
}

// applyRecords writes journal records into the database: per file the
// last record wins; the old reverse-index keys are removed and the new
// ones added in sorted order, so each B+tree page is visited once per
// batch however the files' dependencies are spread. Records moved aside
// are left out.
func applyRecords(tx *bolt.Tx, recs []journalRecord) error {
	latest := make(map[FileID]*Entry, len(recs))
	for _, rec := range recs {
		if !rec.skip {
			latest[FileID{rec.Root, rec.File}] = rec.Entry
		}
	}
	return writeEntries(tx, latest)
}

// writeEntries replaces (nil: removes) the entries of the given files.
func writeEntries(tx *bolt.Tx, latest map[FileID]*Entry) error {
	entries := tx.Bucket(bucketEntries)
	var del, put sortedOps
	for id, e := range latest {
		key := id.key()
		var prev *Entry
		if old := entries.Get(key); old != nil {
			prev = &Entry{}
			if err := unmarshalEntry(old, prev); err != nil {
				return fmt.Errorf("decode entry %s: %w", id.File, err)
			}
		}
		if e == nil {
			if prev != nil {
				del.index(key, prev)
			}
			del.add(bucketEntries, key, nil)
			del.add(bucketAccess, key, nil)
			continue
		}
		put.add(bucketEntries, key, marshalEntry(e))
		indexChange(&del, &put, key, prev, e)
	}
	if err := del.apply(tx, true, nil); err != nil {
		return err
	}
	return put.apply(tx, false, nil)
}

// indexChange adds the index writes from prev (nil: none) to e: keys
// only prev has are deleted, keys e has are put, unless prev has them
// with the same value. A re-render keeps its dependencies, so its keys
// are overwritten in place rather than deleted and put again.
func indexChange(del, put *sortedOps, fileKey []byte, prev, e *Entry) {
	var was, now sortedOps
	if prev != nil {
		was.index(fileKey, prev)
	}
	now.index(fileKey, e)
	for bucket, olds := range was {
		news := now[bucket]
		for _, o := range olds {
			i := slices.IndexFunc(news, func(n kv) bool { return bytes.Equal(n.k, o.k) })
			switch {
			case i < 0:
				del.add([]byte(bucket), o.k, nil)
			case bytes.Equal(news[i].v, o.v):
				news = slices.Delete(news, i, i+1)
			}
		}
		now[bucket] = news
	}
	for bucket, news := range now {
		for _, n := range news {
			put.add([]byte(bucket), n.k, n.v)
		}
	}
}

// sortedOps collects writes per bucket to apply them in key order.
type sortedOps map[string][]kv

type kv struct{ k, v []byte }

func (o *sortedOps) add(bucket, k, v []byte) {
	if *o == nil {
		*o = sortedOps{}
	}
	(*o)[string(bucket)] = append((*o)[string(bucket)], kv{k, v})
}

// index adds the reverse-index (and expiry) keys of an entry.
func (o *sortedOps) index(fileKey []byte, e *Entry) {
	for _, d := range e.indexDeps() {
		o.add(bucketIndex, append(indexPrefix(d.Kind, d.Name), fileKey...), indexValue(d, e))
		if d.Kind == DepResource {
			o.add(bucketResources, []byte(d.Name), []byte(d.Hash))
		}
	}
	if e.Expires > 0 {
		o.add(bucketExpiry, expiryKey(e.Expires, fileKey), nil)
	}
}

// apply writes (or deletes) the collected keys bucket by bucket in key
// order; between, if set, runs every applyPause operations.
func (o sortedOps) apply(tx *bolt.Tx, del bool, between func()) error {
	n := 0
	for bucket, ops := range o {
		if del && bucket == string(bucketResources) {
			continue // the newest hash of a resource outlives its files
		}
		slices.SortFunc(ops, func(a, b kv) int { return bytes.Compare(a.k, b.k) })
		b := tx.Bucket([]byte(bucket))
		for _, op := range ops {
			if n++; between != nil && n%applyPause == 0 {
				between()
			}
			var err error
			if del {
				err = b.Delete(op.k)
			} else {
				err = b.Put(op.k, op.v)
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

const applyPause = 128
