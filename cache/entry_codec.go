package cache

import (
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Registry entries are stored in a compact binary form: with a million
// files of ten dependencies each, every byte saved is a megabyte of
// registry to read, page in and keep in memory.
//
//	version(1) key host created expires flags deps keys
//
// strings are uvarint length + bytes, times are varints (Unix ms), deps
// are uvarint count + (kind byte, name, uvarint prop count, props…, and
// for resources the hash). A property count of 0 means a full dependency.
const entryCodecVersion = 1

var errBadEntry = errors.New("malformed registry entry")

// maxEntryBytes bounds the encoded entry of one file. Within the render
// limits an entry takes about MaxRenderHeaderBytes plus its URL and host;
// the bound keeps a journal line (JSON, at most six bytes per byte) far
// below what the journal reader takes (maxJournalLine).
const maxEntryBytes = 256 << 10

// checkEntry reports whether the registry can store the entry of id: every
// key and value it writes (entry, reverse-index, resource and expiry keys)
// within bbolt's limits, and the encoded entry within maxEntryBytes. The
// render path runs it before a file is written, Put before a record enters
// the journal, and the journal's writer on every record it applies, so a
// record that fails here is refused or moved aside, never retried.
func checkEntry(id FileID, e *Entry) error {
	fileKey := 2 + len(id.File)
	if err := checkLimit("bytes of a registry key (file name)", fileKey+8, bolt.MaxKeySize); err != nil {
		return err // +8: the expiry key puts the time in front
	}
	check := func(d Dependency) error {
		what := "bytes of a registry index key (" + d.Kind.String() + ")"
		if err := checkLimit(what, 1+len(d.Name)+1+fileKey, bolt.MaxKeySize); err != nil {
			return err
		}
		if d.Kind == DepResource && d.Name == "" {
			return &LimitError{What: "bytes of a resource name (empty)", Got: 0, Limit: 1}
		}
		return nil
	}
	for _, d := range e.Deps {
		if err := check(d); err != nil {
			return err
		}
	}
	for _, k := range e.Keys {
		if err := check(Dependency{Kind: DepKey, Name: k}); err != nil {
			return err
		}
	}
	return checkLimit("bytes of an encoded registry entry", encodedEntrySize(e), min(maxEntryBytes, bolt.MaxValueSize))
}

// encodedEntrySize is len(marshalEntry(e)) without encoding it.
func encodedEntrySize(e *Entry) int {
	str := func(s string) int { return uvarintLen(uint64(len(s))) + len(s) }
	n := 1 + str(e.Key) + str(e.Host) + varintLen(e.Created) + varintLen(e.Expires) + 1
	n += uvarintLen(uint64(len(e.Deps)))
	for _, d := range e.Deps {
		n += 1 + str(d.Name) + uvarintLen(uint64(len(d.Props)))
		for _, p := range d.Props {
			n += str(p)
		}
		if d.Kind == DepResource {
			n += str(d.Hash)
		}
	}
	n += uvarintLen(uint64(len(e.Keys)))
	for _, k := range e.Keys {
		n += str(k)
	}
	return n
}

func uvarintLen(v uint64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], v)
}

func varintLen(v int64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutVarint(b[:], v)
}

// isRecordError reports whether applying a record failed because of the
// record itself (it would fail again however often it is retried) rather
// than because of the disk or the database.
func isRecordError(err error) bool {
	var le *LimitError
	return errors.As(err, &le) || errors.Is(err, berrors.ErrKeyTooLarge) || errors.Is(err, berrors.ErrValueTooLarge) ||
		errors.Is(err, berrors.ErrKeyRequired) || errors.Is(err, errBadEntry)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// marshalEntry encodes an entry.
func marshalEntry(e *Entry) []byte {
	n := 32 + len(e.Key) + len(e.Host)
	for _, d := range e.Deps {
		n += 8 + len(d.Name) + len(d.Hash)
		for _, p := range d.Props {
			n += 2 + len(p)
		}
	}
	b := make([]byte, 0, n)
	b = append(b, entryCodecVersion)
	b = appendString(b, e.Key)
	b = appendString(b, e.Host)
	b = binary.AppendVarint(b, e.Created)
	b = binary.AppendVarint(b, e.Expires)
	var flags byte
	if e.Force {
		flags |= 1
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, uint64(len(e.Deps)))
	for _, d := range e.Deps {
		b = append(b, byte(d.Kind))
		b = appendString(b, d.Name)
		b = binary.AppendUvarint(b, uint64(len(d.Props)))
		for _, p := range d.Props {
			b = appendString(b, p)
		}
		if d.Kind == DepResource {
			b = appendString(b, d.Hash)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(e.Keys)))
	for _, k := range e.Keys {
		b = appendString(b, k)
	}
	return b
}

// entryReader reads the encoding back, remembering the first error.
type entryReader struct {
	b   []byte
	err error
}

func (r *entryReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errBadEntry
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *entryReader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errBadEntry
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *entryReader) byte() byte {
	if r.err != nil || len(r.b) == 0 {
		r.err = errBadEntry
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *entryReader) string() string { return string(r.field()) }

// field reads a length-prefixed string without copying it.
func (r *entryReader) field() []byte {
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)) {
		r.err = errBadEntry
		return nil
	}
	f := r.b[:n]
	r.b = r.b[n:]
	return f
}

// count reads a length that must fit the remaining bytes (each element
// takes at least one byte), so corrupt data cannot allocate wildly.
func (r *entryReader) count() int {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.err = errBadEntry
		return 0
	}
	return int(n)
}

// unmarshalEntry decodes an entry.
func unmarshalEntry(b []byte, e *Entry) error {
	r := entryReader{b: b}
	if v := r.byte(); v != entryCodecVersion {
		return fmt.Errorf("%w: version %d", errBadEntry, v)
	}
	e.Key = r.string()
	e.Host = r.string()
	e.Created = r.varint()
	e.Expires = r.varint()
	e.Force = r.byte()&1 != 0
	if n := r.count(); n > 0 {
		e.Deps = make([]Dependency, n)
		for i := range e.Deps {
			d := &e.Deps[i]
			d.Kind = DepKind(r.byte())
			d.Name = r.string()
			if np := r.count(); np > 0 {
				d.Props = make([]string, np)
				for j := range d.Props {
					d.Props[j] = r.string()
				}
			}
			if d.Kind == DepResource {
				d.Hash = r.string()
			}
		}
	} else {
		e.Deps = nil
	}
	if n := r.count(); n > 0 {
		e.Keys = make([]string, n)
		for i := range e.Keys {
			e.Keys[i] = r.string()
		}
	} else {
		e.Keys = nil
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = errBadEntry
	}
	return r.err
}

// entryTimes reads only the creation and expiry times of an encoded entry.
func entryTimes(b []byte) (created, expires int64, err error) {
	r := entryReader{b: b}
	if v := r.byte(); v != entryCodecVersion {
		return 0, 0, fmt.Errorf("%w: version %d", errBadEntry, v)
	}
	r.field() // key
	r.field() // host
	created = r.varint()
	expires = r.varint()
	return created, expires, r.err
}
