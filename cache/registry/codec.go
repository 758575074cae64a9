package registry

import (
	"encoding/binary"
	"errors"
	"fmt"
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
