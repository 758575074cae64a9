package imaging

import (
	"container/list"
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"
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
//
// A state record that expired is read again once for every request
// waiting for it. When the store cannot be reached, the expired record is
// served for up to StaleIfError more (the update service cannot write a
// newer one meanwhile either), so hits from memory outlast a store
// outage; "not found" is never papered over.
type MemoryCache struct {
	Store
	maxBytes int64
	stateTTL time.Duration
	now      func() time.Time

	mu    sync.Mutex
	lru   *list.List // of *memEntry, most recent first
	byKey map[string]*list.Element
	bytes int64

	refresh     singleflight.Group
	writes      atomic.Uint64 // bumped around every write through this store
	staleServed atomic.Int64
	failing     atomic.Bool // the store failed the last refresh (logged once)
	log         *zap.Logger
	metrics     *Metrics // counts variants read from memory and from the store (CountIn)
}

// StaleIfError is how long past its time an expired state record is
// served while the store cannot be reached.
const StaleIfError = 5 * time.Minute

type memEntry struct {
	key     string
	obj     *Object
	expires time.Time // zero: until evicted
}

// NewMemoryCache returns a memory cache of up to maxBytes in front of
// inner; state records are trusted for stateTTL (0: never kept).
func NewMemoryCache(inner Store, maxBytes int64, stateTTL time.Duration, log *zap.Logger) *MemoryCache {
	if log == nil {
		log = zap.NewNop()
	}
	return &MemoryCache{Store: inner, maxBytes: maxBytes, stateTTL: stateTTL, now: time.Now,
		lru: list.New(), byKey: map[string]*list.Element{}, log: log}
}

// CountIn makes the cache count the variants it answers from memory and
// those it reads from the store in m (Metrics' FromMemory, FromStore).
func (s *MemoryCache) CountIn(m *Metrics) *MemoryCache {
	s.metrics = m
	return s
}

// countVariant counts a variant answered from memory or read from the
// store; state records are not variants.
func (s *MemoryCache) countVariant(ttl time.Duration, fromMemory bool) {
	if s.metrics == nil || ttl != 0 {
		return
	}
	if fromMemory {
		s.metrics.fromMemory.Add(1)
	} else {
		s.metrics.fromStore.Add(1)
	}
}

// StaleServed is how many reads were answered with an expired state
// record because the store failed.
func (s *MemoryCache) StaleServed() int64 { return s.staleServed.Load() }

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
	obj, expired := s.lookup(key)
	if obj != nil && !expired {
		s.countVariant(ttl, true)
		return obj, nil
	}
	// One read of the store for every request waiting for this key; it
	// keeps the first caller's deadline but not its cancellation.
	rctx := context.WithoutCancel(ctx)
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		rctx, cancel = context.WithDeadline(rctx, dl)
		defer cancel()
	}
	v, err, _ := s.refresh.Do(key, func() (any, error) {
		w := s.writes.Load()
		o, err := s.Store.Get(rctx, key)
		if err == nil && s.writes.Load() == w { // no write since: what was read is current
			s.add(key, o, ttl)
		}
		return o, err
	})
	switch {
	case err == nil:
		if s.failing.CompareAndSwap(true, false) {
			s.log.Info("image store reachable again; state records are read from it")
		}
		s.countVariant(ttl, false)
		return copyObject(v.(*Object)), nil
	case errors.Is(err, ErrNotFound):
		s.forget(key)
		return nil, err
	case obj != nil:
		s.staleServed.Add(1)
		if s.failing.CompareAndSwap(false, true) {
			s.log.Warn("image store unreachable; serving expired state records for up to "+StaleIfError.String(),
				zap.String("key", key), zap.Error(err))
		}
		return obj, nil
	}
	return nil, err
}

// copyObject returns a copy of the object's header; the bytes and the
// metadata are shared and must not be changed (no user of the store
// changes them).
func copyObject(obj *Object) *Object {
	c := *obj
	return &c
}

// lookup returns the entry of key; expired says its time is up (it is
// kept for StaleIfError past it, for when the store fails).
func (s *MemoryCache) lookup(key string) (obj *Object, expired bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	el, ok := s.byKey[key]
	if !ok {
		return nil, false
	}
	e := el.Value.(*memEntry)
	if !e.expires.IsZero() {
		now := s.now()
		if now.After(e.expires.Add(StaleIfError)) {
			s.removeLocked(el)
			return nil, false
		}
		expired = now.After(e.expires)
	}
	s.lru.MoveToFront(el)
	return copyObject(e.obj), expired
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

// mutate runs a write of the store with the entries it touches dropped
// before and after (a Get racing with the write may have re-added the old
// object); writes also stops a Get under way from keeping what it read.
func (s *MemoryCache) mutate(drop func(), write func() error) error {
	s.writes.Add(1)
	drop()
	err := write()
	s.writes.Add(1)
	drop()
	return err
}

// Put implements Store. A variant or state record written is kept at once
// (write through), so the hits of a variant just generated do not depend
// on the store answering again.
func (s *MemoryCache) Put(ctx context.Context, key string, data []byte, contentType string, meta map[string]string) error {
	err := s.mutate(func() { s.forget(key) }, func() error { return s.Store.Put(ctx, key, data, contentType, meta) })
	if ok, ttl := s.cacheable(key); err == nil && ok {
		s.add(key, &Object{ObjectInfo: ObjectInfo{Key: key, Size: int64(len(data)), ModTime: s.now(),
			ContentType: contentType, Meta: meta}, Data: data}, ttl)
	}
	return err
}

// Delete implements Store.
func (s *MemoryCache) Delete(ctx context.Context, key string) error {
	return s.mutate(func() { s.forget(key) }, func() error { return s.Store.Delete(ctx, key) })
}

// DeleteKeys implements Store.
func (s *MemoryCache) DeleteKeys(ctx context.Context, keys []string) error {
	return s.mutate(func() { s.forget(keys...) }, func() error { return s.Store.DeleteKeys(ctx, keys) })
}

// DeletePrefix implements Store.
func (s *MemoryCache) DeletePrefix(ctx context.Context, prefix string) (int, error) {
	var n int
	err := s.mutate(func() { s.forgetPrefix(prefix) }, func() error {
		var err error
		n, err = s.Store.DeletePrefix(ctx, prefix)
		return err
	})
	return n, err
}

// SetTags implements Store.
func (s *MemoryCache) SetTags(ctx context.Context, key string, tags map[string]string) error {
	return s.mutate(func() { s.forget(key) }, func() error { return s.Store.SetTags(ctx, key, tags) })
}

var _ Store = (*MemoryCache)(nil)
