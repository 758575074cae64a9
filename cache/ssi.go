package cache

import (
	"io/fs"
	"net/http"
	"os"
	"sync"
	"sync/atomic"

	"github.com/delivery-edge/edge/cache/ssi"
)

// Server-side includes: the assembly of pages from cached parts.
//
// With SSI on, `<!--#include virtual="/path" -->` in a cached HTML file is
// replaced, when the file is served, by the file /path names in the same
// cache: a hit is copied in, a miss is rendered through the ordinary
// coalesced miss path (and so stored and registered on its own), a file
// with only a ".old" copy is included from that copy while it is rendered
// in the background. Included files may include files, up to a depth
// limit. Every other directive is stripped and never executed.
//
// The language — parser, directive layout, include rules, comments,
// conditional requests, buffers — is package ssi. The assembly is here,
// in the ssi_*.go files, because every part is a cached file like any
// other: it is looked up in the hot set or on disk, served from its ".old"
// copy while it renders, and rendered through the coalesced miss path
// (flights, lead, miss, serveFile). An interface between the two would be
// most of serving.
//
// Files are marked at render time (ssi.MarkBit), so the hit path tells
// from the FileInfo it already has whether a file needs assembling. The
// directive offsets of a marked file are parsed once per file version and
// kept in memory (ssi_parts.go). An assembled page gets a strong ETag
// hashed from the identities of all its parts and Last-Modified of its
// newest part, so conditional requests see every fragment change; ranges
// are not offered (Accept-Ranges: none).

// DefaultSSIMaxDepth is how deep includes nest by default.
const DefaultSSIMaxDepth = 8

// ssiMaxParts bounds the includes resolved for one response.
const ssiMaxParts = 1000

// SSIConfig turns on server-side includes for a Site.
type SSIConfig struct {
	// MaxDepth bounds nesting: the includes of a page are at depth 1.
	// Zero means DefaultSSIMaxDepth.
	MaxDepth int

	bodies  ssiBodies // files too large for the hot set, or with it off
	targets ssiTargets

	uncacheable  sync.Map // file -> time.Time: not rendered ahead until then
	uncacheableN atomic.Int64
}

func (c *SSIConfig) maxDepth() int {
	if c.MaxDepth <= 0 {
		return DefaultSSIMaxDepth
	}
	return c.MaxDepth
}

// ssiMarked reports whether a served file must be assembled.
func (s *Site) ssiMarked(info fs.FileInfo) bool {
	return s.SSI != nil && ssi.Marked(info)
}

// ssiMarker follows the body of a cacheable render on its way into the
// temp file, to mark the file at its first directive.
type ssiMarker struct {
	checked, html, found bool
	m                    ssi.Marker
}

// first reports whether chunk p of an answer with header h holds the
// answer's first directive: an HTML answer, and no directive before.
func (m *ssiMarker) first(h http.Header, p []byte) bool {
	if m.found {
		return false
	}
	if !m.checked {
		m.checked, m.html = true, ssi.IsHTML(h)
	}
	if !m.html || !m.m.Find(p) {
		return false
	}
	m.found = true
	return true
}

// markSSI gives a file the mark of a page with directives.
func markSSI(f *os.File) error {
	info, err := f.Stat()
	if err == nil {
		err = f.Chmod(info.Mode().Perm() | ssi.MarkBit)
	}
	return err
}
