package imaging

import (
	"container/list"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultNegativeMax is the number of images a NegativeCache remembers
// unless told otherwise. An entry costs about 250 bytes, so a full cache
// holds some 25 MB.
const DefaultNegativeMax = 100_000

// NegativeCache remembers, for a while, answers that cannot become an
// image: images the CMS does not know, and originals the generator
// refused (more pixels or bytes than allowed, or not decodable). Without
// it every request for such an image asks the CMS again, and for a
// refused original fetches and reads all its bytes again.
//
// The access side notes and consults it (each Access with its own
// NegativeTTL); the update service forgets an image's entry when an event
// for the image arrives (Updater.OnImageChange), so the edge that runs it
// sees a change at once. Elsewhere an entry lives for the TTL it was
// noted with.
//
// It holds at most max entries; when it is full, the oldest entry is
// dropped (counted in Stats). It is safe for concurrent use and may be
// shared by several Access values (WithNegativeCache) and an Updater.
type NegativeCache struct {
	max int
	now func() time.Time

	mu     sync.Mutex
	byUUID map[string]*list.Element // values are *negEntry
	order  *list.List               // oldest first
	full   bool                     // has been full at least once

	hits, evicted atomic.Uint64
}

// negKind says what an entry remembers.
type negKind uint8

const (
	// negUnknown: the CMS did not know the image.
	negUnknown negKind = iota + 1
	// negRefused: the original of one version of the image was refused.
	negRefused
)

type negEntry struct {
	uuid string
	kind negKind
	// version is the image version (state record's Modified) whose
	// original was refused; a newer version is tried again.
	version int64
	// scope names the generator limits that refused it: an Access with
	// other limits does not take the answer over.
	scope string
	// reason is the refusal, for the answer and the log.
	reason  error
	expires time.Time
}

// NewNegativeCache returns an empty cache of at most max entries
// (max <= 0: DefaultNegativeMax).
func NewNegativeCache(max int) *NegativeCache {
	if max <= 0 {
		max = DefaultNegativeMax
	}
	return &NegativeCache{max: max, now: time.Now, byUUID: map[string]*list.Element{}, order: list.New()}
}

// NegativeStats are a NegativeCache's figures.
type NegativeStats struct {
	// Entries is the number of images remembered now (expired ones may
	// be among them until they are looked up or pushed out).
	Entries int
	// Hits counts requests answered from the cache without asking the CMS.
	Hits uint64
	// Evicted counts entries dropped before their time because the cache
	// was full.
	Evicted uint64
}

// Stats returns the cache's figures.
func (c *NegativeCache) Stats() NegativeStats {
	c.mu.Lock()
	n := len(c.byUUID)
	c.mu.Unlock()
	return NegativeStats{Entries: n, Hits: c.hits.Load(), Evicted: c.evicted.Load()}
}

// Forget drops what the cache remembers of image uuid (in canonical
// lower-case form), so the next request asks the CMS.
func (c *NegativeCache) Forget(uuid string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byUUID[uuid]; ok {
		c.removeLocked(el)
	}
}

// get returns the live entry of uuid; an expired one is dropped.
func (c *NegativeCache) get(uuid string) (negEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byUUID[uuid]
	if !ok {
		return negEntry{}, false
	}
	e := el.Value.(*negEntry)
	if !c.now().Before(e.expires) {
		c.removeLocked(el)
		return negEntry{}, false
	}
	return *e, true
}

// hit counts an answer given from the cache.
func (c *NegativeCache) hit() { c.hits.Add(1) }

// note remembers e for ttl, replacing what was remembered of its image.
// It reports whether this was the first time the cache was full, so that
// the caller logs that once.
func (c *NegativeCache) note(e negEntry, ttl time.Duration) (firstFull bool) {
	now := c.now()
	e.expires = now.Add(ttl)
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byUUID[e.uuid]; ok {
		c.removeLocked(el)
	}
	// Expired entries at the old end go first: a few per note keeps the
	// cache near its live size without a sweeper.
	for range 2 {
		front := c.order.Front()
		if front == nil || now.Before(front.Value.(*negEntry).expires) {
			break
		}
		c.removeLocked(front)
	}
	for len(c.byUUID) >= c.max {
		c.removeLocked(c.order.Front())
		c.evicted.Add(1)
		if !c.full {
			c.full, firstFull = true, true
		}
	}
	c.byUUID[e.uuid] = c.order.PushBack(&e)
	return firstFull
}

func (c *NegativeCache) removeLocked(el *list.Element) {
	delete(c.byUUID, el.Value.(*negEntry).uuid)
	c.order.Remove(el)
}
