package imaging

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Store is an object store for generated variants and state records. Keys
// are '/'-separated relative paths (see ValidKey). Implementations: the
// folder store (FolderStore) and the S3 store (S3Store).
//
// Every method returns an error wrapping ErrNotFound when the object does
// not exist, and other errors (connection refused, timeouts, access denied)
// wrapped with the operation and key; callers treat those as "store
// unavailable".
type Store interface {
	// Get returns the object with its bytes.
	Get(ctx context.Context, key string) (*Object, error)
	// Stat returns the object's attributes without its bytes.
	Stat(ctx context.Context, key string) (*ObjectInfo, error)
	// Put stores data under key atomically: a reader sees the old object
	// or the new one, never a part. meta keys are lower-cased.
	Put(ctx context.Context, key string, data []byte, contentType string, meta map[string]string) error
	// Delete removes the object; deleting a missing object is no error.
	Delete(ctx context.Context, key string) error
	// DeleteKeys removes the given objects (missing ones are no error),
	// sending at most 1000 keys per request.
	DeleteKeys(ctx context.Context, keys []string) error
	// DeletePrefix removes every object whose key starts with prefix, in
	// batches of bounded size, and returns how many it removed. prefix
	// must not be empty.
	DeletePrefix(ctx context.Context, prefix string) (int, error)
	// List calls fn for every object whose key starts with prefix, in
	// lexical key order, without loading all keys into memory. An error
	// returned by fn stops the listing and is returned.
	List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error
	// SetTags replaces the object's tags (state markers such as
	// state=deleted; at most 10 tags).
	SetTags(ctx context.Context, key string, tags map[string]string) error
	// GetTags returns the object's tags (empty map if none).
	GetTags(ctx context.Context, key string) (map[string]string, error)
	// Ping checks that the store is reachable and usable.
	Ping(ctx context.Context) error
}

// ObjectInfo holds the attributes of a stored object.
type ObjectInfo struct {
	// Key is the object's key.
	Key string
	// Size is the object's length in bytes.
	Size int64
	// ETag identifies the object's content, without quotes.
	ETag string
	// ModTime is when the object was last written.
	ModTime time.Time
	// ContentType is the media type given to Put (empty in List results of
	// stores that do not list it).
	ContentType string
	// Meta holds the metadata given to Put, keys lower-case (empty in List
	// results of stores that do not list it).
	Meta map[string]string
}

// Object is a stored object with its bytes. Variants are small (tens to
// hundreds of KB), so they are held in memory; stores refuse objects larger
// than MaxObjectSize.
type Object struct {
	ObjectInfo
	// Data is the object's content.
	Data []byte
}

// MaxObjectSize is the largest object a store reads into memory.
const MaxObjectSize = 256 << 20

// Limits of keys accepted by ValidKey.
const (
	maxKeyLen     = 900
	maxSegmentLen = 200
)

// ValidKey reports whether key is an acceptable store key: 1–900 bytes of
// '/'-separated segments, each 1–200 bytes of [A-Za-z0-9._=-], none
// starting with '.' (so no "." or ".." and no hidden files, which the folder
// store uses for its own temp and sidecar files).
func ValidKey(key string) bool {
	if key == "" || len(key) > maxKeyLen {
		return false
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || len(seg) > maxSegmentLen || seg[0] == '.' {
			return false
		}
		for i := 0; i < len(seg); i++ {
			if !keyByte(seg[i]) {
				return false
			}
		}
	}
	return true
}

// validPrefix reports whether prefix is a valid key or a valid key followed
// by '/'.
func validPrefix(prefix string) bool {
	return ValidKey(strings.TrimSuffix(prefix, "/"))
}

func keyByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == '='
}

func errInvalidKey(op, key string) error {
	return fmt.Errorf("%s %s: invalid key", op, quoteTrunc(key, 100))
}

// lowerMeta returns a copy of m with lower-cased keys.
func lowerMeta(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[strings.ToLower(k)] = v
	}
	return out
}

// deleteBatch is the number of keys deleted per request (S3's maximum for
// DeleteObjects is 1000). A variable so that tests can cross batch
// boundaries with fewer objects.
var deleteBatch = 1000

// checkMeta enforces what S3 accepts for user metadata, so that both
// stores behave alike: keys of [A-Za-z0-9-], values of printable ASCII, at
// most 2 KB in total.
func checkMeta(m map[string]string) error {
	total := 0
	for k, v := range m {
		total += len(k) + len(v)
		if k == "" || len(k) > 128 {
			return fmt.Errorf("metadata key %q: length", k)
		}
		for i := 0; i < len(k); i++ {
			if c := k[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("metadata key %q: character %q", k, c)
			}
		}
		for i := 0; i < len(v); i++ {
			if c := v[i]; c < 0x20 || c > 0x7e {
				return fmt.Errorf("metadata %q: value is not printable ASCII", k)
			}
		}
	}
	if total > 2048 {
		return fmt.Errorf("metadata of %d bytes exceeds 2 KB", total)
	}
	return nil
}

// checkTags enforces S3's object tag limits: at most 10 tags, keys of 1–128
// and values of 0–256 characters of [A-Za-z0-9 +-=._:/@].
func checkTags(tags map[string]string) error {
	if len(tags) > 10 {
		return fmt.Errorf("%d tags, at most 10 allowed", len(tags))
	}
	ok := func(s string) bool {
		for i := 0; i < len(s); i++ {
			c := s[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(" +-=._:/@", c) >= 0) {
				return false
			}
		}
		return true
	}
	for k, v := range tags {
		if k == "" || len(k) > 128 || len(v) > 256 || !ok(k) || !ok(v) {
			return fmt.Errorf("invalid tag %q=%q", k, v)
		}
	}
	return nil
}
