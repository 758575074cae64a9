package imaging

import (
	"container/list"
	"context"
	"strings"
	"sync"
	"time"
)

// MemoryCache is a Store that keeps recently read objects of another in
// memory, so that a stored-variant hit costs no store round trips:
//
//   - variant objects (img/<uuid>/<variant>/<versions>/<width>.<ext>) are
//     immutable, since their key carries the versions they were made
//     from; they are kept, LRU, up to maxBytes;
//   - state records (img/<uuid>/_state) change: they are kept for
//     stateTTL only, so an offline/deleted marker or a new version written
//     by the update service (on any edge) is seen within stateTTL.
//
// Everything else (variant definitions, index markers, listings, tags)
// goes to the store. Writes and deletes through this store drop the
// entries they touch at once.
type MemoryCache struct {
	Store
	maxBytes int64
	stateTTL time.Duration
	now      func() time.Time

	mu    sync.Mutex
	lru   *list.List // of *memEntry, most recent first
	byKey map[string]*list.Element
	bytes int64
}

type memEntry struct {
	key     string
	obj     *Object
	expires time.Time // zero: until evicted
}

// NewMemoryCache returns a memory cache of up to maxBytes in front of
// inner; state records are trusted for stateTTL (0: never kept).
func NewMemoryCache(inner Store, maxBytes int64, stateTTL time.Duration) *MemoryCache {
	return &MemoryCache{Store: inner, maxBytes: maxBytes, stateTTL: stateTTL, now: time.Now,
		lru: list.New(), byKey: map[string]*list.Element{}}
}

// cacheable says whether key may be kept, and for how long (0 = until
// evicted).
func (s *MemoryCache) cacheable(key string) (bool, time.Duration) {
	if !strings.HasPrefix(key, imgRoot) {
		return false, 0
	}
	if strings.HasSuffix(key, "/"+stateName) {
		return s.stateTTL > 0, s.stateTTL
	}
	return strings.Count(key, "/") == 4, 0 // a VariantKey
}

// Get implements Store.
func (s *MemoryCache) Get(ctx context.Context, key string) (*Object, error) {
	ok, ttl := s.cacheable(key)
	if !ok {
		return s.Store.Get(ctx, key)
	}
	if obj := s.lookup(key); obj != nil {
		return obj, nil
	}
	obj, err := s.Store.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	s.add(key, obj, ttl)
	return copyObject(obj), nil
}

// copyObject returns a copy of the object's header; the bytes and the
// metadata are shared and must not be changed (no user of the store
// changes them).
func copyObject(obj *Object) *Object {
	c := *obj
	return &c
}

func (s *MemoryCache) lookup(key string) *Object {
	s.mu.Lock()
	defer s.mu.Unlock()
	el, ok := s.byKey[key]
	if !ok {
		return nil
	}
	e := el.Value.(*memEntry)
	if !e.expires.IsZero() && s.now().After(e.expires) {
		s.removeLocked(el)
		return nil
	}
	s.lru.MoveToFront(el)
	return copyObject(e.obj)
}

func (s *MemoryCache) add(key string, obj *Object, ttl time.Duration) {
	size := int64(len(obj.Data)) + int64(len(key)) + 256
	if size > s.maxBytes/8 {
		return // one object must not push out most of the others
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.byKey[key]; ok {
		s.removeLocked(el)
	}
	e := &memEntry{key: key, obj: obj}
	if ttl > 0 {
		e.expires = s.now().Add(ttl)
	}
	s.byKey[key] = s.lru.PushFront(e)
	s.bytes += size
	for s.bytes > s.maxBytes {
		s.removeLocked(s.lru.Back())
	}
}

func (s *MemoryCache) removeLocked(el *list.Element) {
	e := s.lru.Remove(el).(*memEntry)
	delete(s.byKey, e.key)
	s.bytes -= int64(len(e.obj.Data)) + int64(len(e.key)) + 256
}

func (s *MemoryCache) forget(keys ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		if el, ok := s.byKey[k]; ok {
			s.removeLocked(el)
		}
	}
}

func (s *MemoryCache) forgetPrefix(prefix string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, el := range s.byKey {
		if strings.HasPrefix(k, prefix) {
			s.removeLocked(el)
		}
	}
}

// Put implements Store.
func (s *MemoryCache) Put(ctx context.Context, key string, data []byte, contentType string, meta map[string]string) error {
	s.forget(key)
	defer s.forget(key) // a Get racing with the write may have re-added the old object
	return s.Store.Put(ctx, key, data, contentType, meta)
}

// Delete implements Store.
func (s *MemoryCache) Delete(ctx context.Context, key string) error {
	s.forget(key)
	defer s.forget(key)
	return s.Store.Delete(ctx, key)
}

// DeleteKeys implements Store.
func (s *MemoryCache) DeleteKeys(ctx context.Context, keys []string) error {
	s.forget(keys...)
	defer s.forget(keys...)
	return s.Store.DeleteKeys(ctx, keys)
}

// DeletePrefix implements Store.
func (s *MemoryCache) DeletePrefix(ctx context.Context, prefix string) (int, error) {
	s.forgetPrefix(prefix)
	defer s.forgetPrefix(prefix)
	return s.Store.DeletePrefix(ctx, prefix)
}

// SetTags implements Store.
func (s *MemoryCache) SetTags(ctx context.Context, key string, tags map[string]string) error {
	s.forget(key)
	defer s.forget(key)
	return s.Store.SetTags(ctx, key, tags)
}

var _ Store = (*MemoryCache)(nil)
