package registry

import (
	"encoding/binary"
	"fmt"
)

// FileID names a cached file: the docroot it lives in and its slash-
// separated name relative to that docroot.
type FileID struct {
	Root uint16
	File string
}

// key is the file's key in the entries, access and queue buckets, and the
// tail of its index and expiry keys.
func (id FileID) key() []byte {
	k := make([]byte, 2+len(id.File))
	binary.BigEndian.PutUint16(k, id.Root)
	copy(k[2:], id.File)
	return k
}

func fileIDOf(k []byte) FileID {
	return FileID{Root: binary.BigEndian.Uint16(k), File: string(k[2:])}
}

// Entry is what the registry knows about one cached file. It is stored in
// the binary codec (codec.go); the JSON names are those of the journal's
// records.
type Entry struct {
	// Key is the canonical URL of the file (see cache.Mapper).
	Key string `json:"k"`
	// Host is the Host header of the request that rendered it; pre-
	// generation renders with the same host.
	Host string `json:"h,omitempty"`
	// Created is when the file was written (Unix ms).
	Created int64        `json:"c"`
	Deps    []Dependency `json:"d,omitempty"`
	Keys    []string     `json:"y,omitempty"`
	// Expires is the scheduled invalidation time (Unix ms, 0 = none).
	Expires int64 `json:"e,omitempty"`
	// Force is set when the render asked to always be pre-generated.
	Force bool `json:"f,omitempty"`
}

// indexDeps is every reverse-index item of an entry, keys included.
func (e *Entry) indexDeps() []Dependency {
	deps := e.Deps
	if len(e.Keys) > 0 {
		deps = make([]Dependency, 0, len(e.Deps)+len(e.Keys))
		deps = append(deps, e.Deps...)
		for _, k := range e.Keys {
			deps = append(deps, Dependency{Kind: DepKey, Name: k})
		}
	}
	return deps
}

// DepKind says what a dependency points at.
type DepKind byte

// Kinds of dependencies. The values are stable: they are stored in the
// registry's reverse indexes.
const (
	DepDocument DepKind = 'd' // a document by Sophora ID or UUID
	DepNode     DepKind = 'n' // a structure node, e.g. "/politik"
	DepYellow   DepKind = 'y' // the yellow data of a document
	DepResource DepKind = 'r' // a template or other resource, with a hash
	DepKey      DepKind = 'k' // an explicit cache key
)

func (k DepKind) String() string {
	switch k {
	case DepDocument:
		return "document"
	case DepNode:
		return "node"
	case DepYellow:
		return "yellow"
	case DepResource:
		return "resource"
	case DepKey:
		return "key"
	}
	return fmt.Sprintf("DepKind(%q)", byte(k))
}

// Dependency is one thing a cached file was rendered from.
type Dependency struct {
	Kind DepKind `json:"t"`
	Name string  `json:"n"`
	// Props are the properties read; nil means a full dependency.
	Props []string `json:"p,omitempty"`
	// Hash is the content hash of a resource.
	Hash string `json:"h,omitempty"`
}

// Full reports whether any change of the target invalidates the file.
func (d Dependency) Full() bool { return d.Props == nil }
