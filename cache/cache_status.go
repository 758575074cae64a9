package cache

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/dunglas/httpsfv"
)

// Cache-Status (RFC 9211): every answer of the cache says how it came
// about, as one member of the Cache-Status list named CacheName. A backend
// (or a cache in front of it) may have sent a Cache-Status of its own on
// an answer that is passed on; the edge's member is appended to it, as the
// RFC asks of a cache closer to the client.
//
// The outcomes and their values (as httpsfv writes them: RFC 9651's
// serialization has no space after ";"):
//
//	hit (memory or disk, 304, HEAD, ranges)      delivery;hit
//	rendered and stored                          delivery;fwd=uri-miss;stored
//	waited for another request's render          delivery;fwd=uri-miss;collapsed
//	render not stored (Set-Cookie, no-store, …)  delivery;fwd=uri-miss;detail=uncacheable
//	answer over max_file_size                    delivery;fwd=uri-miss;detail=too-large
//	404/410, 3xx, 5xx passed on                  delivery;fwd=uri-miss;fwd-status=404
//	render failed before an answer (timeout)     delivery;fwd=uri-miss;detail=render-timeout
//	".old" copy while the page renders           delivery;hit;fwd=stale;detail=rendering
//	".old" copy, the render failed               delivery;hit;fwd=stale;fwd-status=502;detail=render-failed
//	".old" copy, no render slot in time          delivery;hit;fwd=stale;detail=busy
//	503, no render slot in time and no copy      delivery;detail=busy
//	another method than GET/HEAD                 delivery;fwd=method
//	URL that cannot be a file of the cache       delivery;fwd=bypass
//	path refused (400, internal file 404)        delivery;detail=refused
//
// A waiter that got its own render after the render it waited for could
// not be stored says collapsed=?0 (it tried to collapse and could not).
// An assembled SSI page carries the status of its own file and, when not
// every part was a hit, the parts in its detail, counted when the answer
// starts: detail="parts: 3 hit, 1 stored, 1 stale, 2 miss" (stored: its
// render, started by this request, was stored in time; miss: rendered into
// the answer while it streams). The header of a render streamed to its
// client goes out before the body: "stored" then means the edge is storing
// it, and what OnCacheStatus reports is how it ended (e.g. too-large).

// HeaderCacheStatus is the RFC 9211 header every answer of the cache carries.
const HeaderCacheStatus = "Cache-Status"

// CacheName names this cache in Cache-Status.
const CacheName = "delivery"

// Reasons a request went to the backend (fwd).
const (
	fwdURIMiss = "uri-miss"
	fwdMethod  = "method"
	fwdBypass  = "bypass"
	fwdStale   = "stale"
)

// CacheStatus is how the cache answered one request. Its value is ready
// for a header and for a placeholder: the constant outcomes are marshalled
// once, so a hit costs no allocation.
type CacheStatus struct {
	hit       bool
	fwd       string
	fwdStatus int
	stored    bool
	collapsed int8 // 1: collapsed; -1: tried and could not (?0); 0: absent
	detail    string
	// stale is set when the answer, or a part of it, came from a ".old"
	// copy: it carries Delivery-Stale.
	stale bool
	pre   *presetStatus
}

type presetStatus struct {
	header []string // cap == len: an append copies
	value  any      // the string, boxed once
}

// String is the member of the Cache-Status list, e.g. `delivery; hit`.
func (c CacheStatus) String() string {
	if c.pre != nil {
		return c.pre.value.(string)
	}
	return c.marshal()
}

// Value is String as an interface value, allocated once for the constant
// outcomes (for Caddy's replacer, whose values are of type any).
func (c CacheStatus) Value() any {
	if c.pre != nil {
		return c.pre.value
	}
	return c.marshal()
}

// Stale reports whether the answer (or a part of it) came from a ".old" copy.
func (c CacheStatus) Stale() bool { return c.stale }

func (c CacheStatus) headerValue() []string {
	if c.pre != nil {
		return c.pre.header
	}
	return []string{c.marshal()}
}

func (c CacheStatus) marshal() string {
	item := httpsfv.NewItem(httpsfv.Token(CacheName))
	if c.hit {
		item.Params.Add("hit", true)
	}
	if c.fwd != "" {
		item.Params.Add("fwd", httpsfv.Token(c.fwd))
	}
	if c.fwdStatus != 0 {
		item.Params.Add("fwd-status", int64(c.fwdStatus))
	}
	if c.stored {
		item.Params.Add("stored", true)
	}
	switch c.collapsed {
	case 1:
		item.Params.Add("collapsed", true)
	case -1:
		item.Params.Add("collapsed", false)
	}
	if c.detail != "" {
		if isToken(c.detail) {
			item.Params.Add("detail", httpsfv.Token(c.detail))
		} else {
			item.Params.Add("detail", c.detail)
		}
	}
	s, err := httpsfv.Marshal(httpsfv.List{item})
	if err != nil {
		// Only a detail with bytes a string cannot hold gets here.
		item.Params.Del("detail")
		s, _ = httpsfv.Marshal(httpsfv.List{item})
	}
	return s
}

// isToken reports whether s can be written as an sf-token.
func isToken(s string) bool {
	if s == "" || !(s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z' || s[0] == '*') {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// preset marshals a constant outcome once.
func preset(c CacheStatus) CacheStatus {
	v := c.marshal()
	c.pre = &presetStatus{header: []string{v}[:1:1], value: v}
	return c
}

// The constant outcomes.
var (
	statusHit          = preset(CacheStatus{hit: true})
	statusStored       = preset(CacheStatus{fwd: fwdURIMiss, stored: true})
	statusCollapsed    = preset(CacheStatus{fwd: fwdURIMiss, collapsed: 1})
	statusUncacheable  = preset(CacheStatus{fwd: fwdURIMiss, detail: "uncacheable"})
	statusTooLarge     = preset(CacheStatus{fwd: fwdURIMiss, detail: "too-large"})
	statusOutdated     = preset(CacheStatus{fwd: fwdURIMiss, detail: "outdated"})
	statusMiss         = preset(CacheStatus{fwd: fwdURIMiss})
	statusMethod       = preset(CacheStatus{fwd: fwdMethod})
	statusBypass       = preset(CacheStatus{fwd: fwdBypass})
	statusBusy         = preset(CacheStatus{detail: "busy"})
	statusRefused      = preset(CacheStatus{detail: "refused"})
	statusStaleRender  = preset(CacheStatus{hit: true, fwd: fwdStale, detail: "rendering", stale: true})
	statusStaleBusy    = preset(CacheStatus{hit: true, fwd: fwdStale, detail: "busy", stale: true})
	statusStaleTimeout = preset(CacheStatus{hit: true, fwd: fwdStale, detail: "render-timeout", stale: true})
)

// collapsedNot is c for a request that waited for another's render and
// then had to make its own.
func collapsedNot(c CacheStatus) CacheStatus {
	c.collapsed, c.pre = -1, nil
	return c
}

// forwarded is the status of a backend answer that was passed on with
// status code (not 200).
func forwarded(code int, collapsed int8) CacheStatus {
	return CacheStatus{fwd: fwdURIMiss, fwdStatus: code, collapsed: collapsed}
}

// renderFailed is the status of an answer after a failed render: from the
// ".old" copy when stale, else the error. code is the backend's status, 0
// when it gave none (timeout, unreachable).
func renderFailed(code int, timeout, stale bool, collapsed int8) CacheStatus {
	detail := "render-failed"
	if timeout {
		detail, code = "render-timeout", 0 // the edge's 504, not the backend's
	}
	if stale {
		if timeout {
			return statusStaleTimeout
		}
		return CacheStatus{hit: true, fwd: fwdStale, fwdStatus: code, detail: detail, stale: true}
	}
	return CacheStatus{fwd: fwdURIMiss, fwdStatus: code, detail: detail, collapsed: collapsed}
}

// partCounts are the parts of an assembled page by how they were found.
type partCounts struct{ hit, stored, stale, miss int }

// withParts adds the parts of an assembled page to its status.
func (c CacheStatus) withParts(n partCounts, stale bool) CacheStatus {
	c.stale = c.stale || stale
	if n.stored+n.stale+n.miss == 0 {
		if stale && c.pre != nil {
			c.pre = nil // Delivery-Stale without a part: keep the value, drop the preset
		}
		return c
	}
	var b strings.Builder
	if c.detail != "" {
		b.WriteString(c.detail)
		b.WriteString("; ")
	}
	b.WriteString("parts:")
	sep := " "
	for _, p := range []struct {
		n    int
		name string
	}{{n.hit, "hit"}, {n.stored, "stored"}, {n.stale, "stale"}, {n.miss, "miss"}} {
		if p.n > 0 {
			b.WriteString(sep)
			b.WriteString(strconv.Itoa(p.n))
			b.WriteByte(' ')
			b.WriteString(p.name)
			sep = ", "
		}
	}
	c.detail, c.pre = b.String(), nil
	return c
}

// setStatus says how the answer about to be written on w came about. On
// the cache's own writer (every answer but a hit) it is recorded and
// applied when the header is written; a part of an SSI page has no header
// of its own; on the client's writer (a hit) it is set at once.
func (s *Site) setStatus(w http.ResponseWriter, r *http.Request, c CacheStatus) {
	for {
		switch x := w.(type) {
		case *answerWriter:
			x.cs = c
			return
		case *ssiCapture:
			return
		case *ssiStreamWriter:
			w = x.w
			continue
		case *ssiRenderWriter:
			w = x.w
			continue
		}
		break
	}
	h := w.Header()
	if c.stale {
		h[HeaderStale] = hdrStaleValue
	}
	if !s.HideCacheStatus {
		h[HeaderCacheStatus] = c.headerValue()
	}
	s.report(r, c)
}

// report hands the status of an answer to OnCacheStatus and counts it.
func (s *Site) report(r *http.Request, c CacheStatus) {
	if c.stale {
		s.Store.flights.stats.stale.Add(1)
	}
	if s.OnCacheStatus != nil {
		s.OnCacheStatus(r, c)
	}
}

// applyStatus prepares the header of an answer that may carry the
// backend's headers: every Delivery-* header goes (the backend's
// Delivery-Stale too), then the edge's own are set.
func (s *Site) applyStatus(h http.Header, c CacheStatus) {
	stripDeliveryHeaders(h)
	if c.stale {
		h[HeaderStale] = hdrStaleValue
	}
	if s.HideCacheStatus {
		return
	}
	if prev := h[HeaderCacheStatus]; len(prev) > 0 {
		// The backend's (or a cache's behind it) members come first.
		h[HeaderCacheStatus] = append(prev[:len(prev):len(prev)], c.String())
		return
	}
	h[HeaderCacheStatus] = c.headerValue()
}

// stripDeliveryHeaders removes every Delivery-* header.
func stripDeliveryHeaders(h http.Header) {
	const prefix = "delivery-"
	for k := range h {
		if len(k) >= len(prefix) && strings.EqualFold(k[:len(prefix)], prefix) {
			delete(h, k)
		}
	}
}
