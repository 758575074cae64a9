package cache

import (
	"net/http"
	"strings"
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
