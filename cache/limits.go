package cache

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"
)

// Limits on what a render backend may report about one answer. An answer
// beyond any of them is passed to the client and not cached: every item
// becomes a reverse-index key in the registry, whose keys bbolt bounds
// (32 KiB, with the file name in it), and a page with thousands of
// dependencies would cost more to register and invalidate than to render.
// The cache servlet takes keys up to MaxNameBytes too, so every key the
// registry holds can be flushed and every key a flush names can be stored.
const (
	MaxDependencies = 1000 // items of Delivery-Dependencies
	MaxCacheKeys    = 1000 // items of Delivery-Cache-Keys
	// MaxNameBytes bounds each ID, node path, resource name, key,
	// property and hash.
	MaxNameBytes = 1024
	// MaxRenderHeaderBytes bounds the names and values of all Delivery-*
	// headers of one answer together.
	MaxRenderHeaderBytes = 64 << 10
)

// LimitError says that a render answer, or the registry record made of
// it, is beyond a limit; such an answer is not cached.
type LimitError struct {
	What  string // what was counted, e.g. "Delivery-Cache-Keys items"
	Got   int
	Limit int
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%s: %d, more than the limit of %d", e.What, e.Got, e.Limit)
}

func checkLimit(what string, got, limit int) error {
	if got > limit {
		return &LimitError{What: what, Got: got, Limit: limit}
	}
	return nil
}

// renderHeaderBytes is the size of the Delivery-* headers of an answer.
func renderHeaderBytes(h http.Header) int {
	const prefix = "Delivery-"
	n := 0
	for k, vs := range h {
		if len(k) < len(prefix) || !strings.EqualFold(k[:len(prefix)], prefix) {
			continue
		}
		for _, v := range vs {
			n += len(k) + len(v)
		}
	}
	return n
}

// logOnceCap bounds the URLs remembered as already logged, so a backend
// (or a crawler) producing endless distinct URLs cannot grow it; past the
// cap, further URLs are logged at debug level.
const logOnceCap = 4096

// logOnce remembers which URLs were logged.
type logOnce struct {
	mu   sync.Mutex
	seen map[string]struct{}
}

// first reports whether url is logged for the first time, and whether
// there was room to remember it.
func (l *logOnce) first(url string) (first, remembered bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.seen[url]; ok {
		return false, true
	}
	if len(l.seen) >= logOnceCap {
		return true, false
	}
	if l.seen == nil {
		l.seen = map[string]struct{}{}
	}
	l.seen[url] = struct{}{}
	return true, true
}

// overLimits counts render answers not cached because their record is
// beyond a limit, and logs each URL once.
type overLimits struct {
	n    atomic.Int64
	once logOnce
}

func (o *overLimits) note(log *zap.Logger, url string, err error) {
	o.n.Add(1)
	first, remembered := o.once.first(url)
	switch {
	case first && remembered:
		log.Warn("render record over limits; not cached", zap.String("url", url), zap.Error(err))
	case first:
		log.Debug("render record over limits; not cached", zap.String("url", url), zap.Error(err))
	}
}
