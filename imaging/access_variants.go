package imaging

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// variantCache holds the variant definitions for the access side: fetched
// from the CMS, refreshed after a TTL or when a URL names a variant newer
// or unknown to it (at most once per second), and mirrored in the store
// (VariantsKey) so that a restarted edge can serve while the CMS is down.
type variantCache struct {
	cms   CMS
	store Store
	ttl   time.Duration
	log   *zap.Logger

	mu          sync.Mutex
	defs        map[string]VariantDef
	fetched     time.Time
	lastAttempt time.Time
	refresh     sync.Mutex  // one refresh at a time
	failing     atomic.Bool // the last refresh failed (logged once until one works)
}

// errRefreshBusy: another request is refreshing the definitions; the
// cached ones serve meanwhile.
var errRefreshBusy = errors.New("variant definitions: a refresh is under way")

// minVariantRefresh is the least time between two CMS fetches of the
// definitions triggered by URLs (protects the CMS from crafted stamps).
const minVariantRefresh = time.Second

// get returns the definition of name, which must be at least as new as
// minModified for the caller to consider it current. "original" is always
// defined (version 0 unless the CMS defines it; see variantCurrent).
func (c *variantCache) get(ctx context.Context, name string, minModified int64) (VariantDef, error) {
	c.mu.Lock()
	defs, fetched, last := c.defs, c.fetched, c.lastAttempt
	c.mu.Unlock()
	d, ok := defs[name]
	stale := defs == nil || time.Since(fetched) > c.ttl
	// "original" needs no definition: its absence is no reason to ask.
	wanted := (!ok && name != VariantOriginal) || (ok && d.Modified < minModified)
	// With definitions cached, the CMS is asked at most once per
	// minVariantRefresh, by one request at a time, and nobody waits for
	// it: while it is down (or slow) the cached ones serve.
	if defs == nil || ((stale || wanted) && time.Since(last) >= minVariantRefresh) {
		fresh, err := c.load(ctx, defs != nil)
		switch {
		case err == nil:
			defs = fresh
		case defs == nil:
			return VariantDef{}, err
		case errors.Is(err, errRefreshBusy):
		default:
			if c.failing.CompareAndSwap(false, true) {
				c.log.Warn("variant definitions: refresh failed, using cached ones; logged again when a refresh works",
					zap.Error(err))
			}
		}
		d, ok = defs[name]
	}
	if !ok && name == VariantOriginal {
		return VariantDef{Name: VariantOriginal}, nil
	}
	if !ok {
		return VariantDef{}, fmt.Errorf("variant %q is not defined: %w", name, ErrNotFound)
	}
	return d, nil
}

// load fetches the definitions from the CMS (mirroring them into the
// store), or, if the CMS fails and nothing is cached yet, from the store.
// With cached ones (haveCached) it does not wait for a refresh under way:
// errRefreshBusy.
func (c *variantCache) load(ctx context.Context, haveCached bool) (map[string]VariantDef, error) {
	if haveCached {
		if !c.refresh.TryLock() {
			return nil, errRefreshBusy
		}
	} else {
		c.refresh.Lock()
	}
	defer c.refresh.Unlock()
	c.mu.Lock()
	if c.defs != nil && time.Since(c.lastAttempt) < minVariantRefresh/10 {
		defs := c.defs // a concurrent caller just refreshed
		c.mu.Unlock()
		return defs, nil
	}
	c.lastAttempt = time.Now()
	c.mu.Unlock()

	list, err := c.cms.Variants(ctx)
	if err == nil {
		defs := indexVariants(list)
		c.mu.Lock()
		c.defs, c.fetched = defs, time.Now()
		c.mu.Unlock()
		if c.failing.CompareAndSwap(true, false) {
			c.log.Info("variant definitions refreshed again")
		}
		if b, err := json.Marshal(list); err == nil {
			if err := c.store.Put(ctx, VariantsKey, b, "application/json", nil); err != nil {
				c.log.Warn("variant definitions: cannot mirror into the store", zap.Error(err))
			}
		}
		return defs, nil
	}
	cmsErr := fmt.Errorf("%w: variant definitions: %w", ErrCMSUnavailable, err)
	c.mu.Lock()
	cached := c.defs
	c.mu.Unlock()
	if cached != nil {
		return nil, cmsErr
	}
	obj, serr := c.store.Get(ctx, VariantsKey)
	if serr != nil {
		if errors.Is(serr, ErrNotFound) {
			return nil, cmsErr
		}
		return nil, fmt.Errorf("%w (and the store: %w)", cmsErr, serr)
	}
	var stored []VariantDef
	if err := json.Unmarshal(obj.Data, &stored); err != nil {
		return nil, fmt.Errorf("%w (stored copy unreadable: %v)", cmsErr, err)
	}
	c.log.Warn("variant definitions: CMS unreachable, using the copy in the store", zap.Error(err))
	defs := indexVariants(stored)
	c.mu.Lock()
	// Cached, but marked as fetched long ago so the next request retries.
	c.defs, c.fetched = defs, time.Time{}
	c.mu.Unlock()
	return defs, nil
}

func indexVariants(list []VariantDef) map[string]VariantDef {
	defs := make(map[string]VariantDef, len(list))
	for _, d := range list {
		defs[d.Name] = d
	}
	return defs
}

// recheckLimiter remembers when the CMS was last asked about a uuid, so
// that URLs with stamps newer than what the CMS has (a replica behind, or
// crafted URLs) ask the CMS at most once per interval per uuid. It holds
// at most max entries.
type recheckLimiter struct {
	interval time.Duration
	max      int
	mu       sync.Mutex
	last     map[string]time.Time
}

// allow reports whether the CMS may be asked about key now, and if so
// records the time.
func (l *recheckLimiter) allow(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.recentLocked(key) {
		return false
	}
	l.noteLocked(key)
	return true
}

func (l *recheckLimiter) recentLocked(key string) bool {
	t, ok := l.last[key]
	return ok && time.Since(t) < l.interval
}

func (l *recheckLimiter) noteLocked(key string) {
	now := time.Now()
	if len(l.last) >= l.max {
		for k, t := range l.last {
			if now.Sub(t) >= l.interval {
				delete(l.last, k)
			}
		}
		if len(l.last) >= l.max {
			clear(l.last)
		}
	}
	l.last[key] = now
}

// variantCurrent reports whether def is at least as new as the URL's
// variant stamp. An "original" the CMS does not define has no version, so
// its stamp cannot be newer.
func variantCurrent(def VariantDef, stamp int64) bool {
	return def.Modified >= stamp || (def.Name == VariantOriginal && def.Modified == 0)
}
