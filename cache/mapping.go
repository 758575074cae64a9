package cache

import (
	"errors"
	"net/url"
	"slices"
	"strings"
)

// Errors of the URL → file mapping. The HTTP layer answers ErrForbidden with
// 404, ErrBadPath with 400, and passes ErrNotCacheable requests on to the
// render backend without caching them.
var (
	ErrForbidden    = errors.New("internal file of the cache")
	ErrBadPath      = errors.New("malformed request path")
	ErrNotCacheable = errors.New("request is not cacheable")
)

// Names the cache reserves for itself inside a docroot.
const (
	// OldSuffix is appended to a file when it is invalidated by renaming.
	OldSuffix = ".old"
	// TempDir holds files while they are being written; its name and every
	// other segment starting with InternalPrefix are never served.
	TempDir        = ".delivery-tmp"
	InternalPrefix = ".delivery"
	// IndexName is the file that stands for a path ending in "/".
	IndexName = "index.html"
)

// Bounds of what is stored. A request path beyond them is passed on to the
// render backend uncached (ErrNotCacheable): every segment of a stored path
// is a folder on disk, so without a bound one request could make a
// thousand folders.
const (
	// MaxPathSegments is the most segments a stored path has ("/a/b/" and
	// "/a/b" have two).
	MaxPathSegments = 16
	// MaxPathBytes is the longest stored path in bytes, decoded, without
	// the query ("/a/b/" is five bytes).
	MaxPathBytes = 1024
)

const (
	maxSegmentBytes = 255  // NAME_MAX of common Linux file systems
	maxFileBytes    = 2048 // whole relative file name, well below PATH_MAX
	querySeparator  = '?'  // never appears unescaped in a path-derived name
)

// Mapper maps request URLs to files under a docroot. The mapping is
// injective and reversible (KeyForFile): every file name it produces stands
// for exactly one canonical URL, and no name can leave the docroot.
//
// Path segments are percent-decoded, then re-encoded for the disk so that
// only bytes of a conservative safe set stay as they are; everything else,
// including '%' itself, becomes %XX. Common URL paths therefore map to the
// same names a static file server would use. Allow-listed query parameters
// are appended after a '?' in a sorted, escaped form that contains no '.',
// so a query can never make a name end in a reserved suffix.
type Mapper struct {
	// QueryParams is the allow-list of query parameters that are part of
	// the cache key. A request with any other parameter is not cached.
	QueryParams []string
	// ReservedSuffixes are file name endings the cache uses for its own
	// files next to a page (besides ".old"); requests for them get 404.
	ReservedSuffixes []string
}

// Target is where a request lives in the cache.
type Target struct {
	// Key is the canonical URL: the decoded path ("/dir/" for a directory
	// index) plus "?" and the canonical query when there is one.
	Key string
	// File is the slash-separated file name relative to the docroot.
	File string
	// Ext is the extension of the URL path (for the Content-Type).
	Ext string
}

// Map maps a request URL to its file. u.Path must be the decoded path and
// u.RawPath, when set, its escaped form (as net/http provides them).
func (m *Mapper) Map(u *url.URL) (Target, error) {
	p := u.Path
	if p == "" || p[0] != '/' {
		return Target{}, ErrBadPath
	}
	if strings.IndexByte(p, 0) >= 0 {
		return Target{}, ErrBadPath
	}
	if u.RawPath != "" && strings.Contains(strings.ToLower(u.RawPath), "%2f") {
		// An encoded slash would make "/a%2Fb" and "/a/b" the same file.
		return Target{}, ErrNotCacheable
	}
	segs := strings.Split(p[1:], "/")
	dirIndex := segs[len(segs)-1] == ""
	if dirIndex {
		segs = segs[:len(segs)-1]
	}
	for i, s := range segs {
		switch {
		case s == "." || s == "..":
			return Target{}, ErrBadPath
		case s == "":
			return Target{}, ErrNotCacheable // "//" would alias "/"
		case m.reserved(s, i == len(segs)-1 && !dirIndex):
			return Target{}, ErrForbidden
		}
	}
	if !dirIndex && len(segs) > 0 && segs[len(segs)-1] == IndexName {
		// "/dir/index.html" is the same resource as "/dir/".
		segs = segs[:len(segs)-1]
		dirIndex = true
	}
	if len(segs) > MaxPathSegments || canonicalPathLen(segs, dirIndex) > MaxPathBytes {
		return Target{}, ErrNotCacheable
	}
	query, err := m.canonicalQuery(u.RawQuery)
	if err != nil {
		return Target{}, err
	}

	var file strings.Builder
	for i, s := range segs {
		if i > 0 {
			file.WriteByte('/')
		}
		start := file.Len()
		escapeSegment(&file, s)
		if file.Len()-start > maxSegmentBytes {
			return Target{}, ErrNotCacheable
		}
	}
	key := "/" + file.String()
	last := IndexName
	if dirIndex {
		if len(segs) > 0 {
			key += "/"
			file.WriteByte('/')
		}
		file.WriteString(IndexName)
	} else {
		last = segs[len(segs)-1]
	}
	if query != "" {
		key += "?" + query
		file.WriteByte(querySeparator)
		escapeQuery(&file, query)
	}
	name := file.String()
	if len(name) > maxFileBytes || len(name)-lastSegmentStart(name) > maxSegmentBytes {
		return Target{}, ErrNotCacheable
	}
	return Target{Key: key, File: name, Ext: extOf(last)}, nil
}

// canonicalPathLen is the length of the decoded key path of segs: "/" and
// the segments joined by "/", with a trailing "/" for a folder index.
func canonicalPathLen(segs []string, dirIndex bool) int {
	n := len(segs) // a "/" before each segment
	for _, s := range segs {
		n += len(s)
	}
	if dirIndex || n == 0 {
		n++
	}
	return n
}

func lastSegmentStart(s string) int { return strings.LastIndexByte(s, '/') + 1 }

// reserved reports whether a decoded path segment names an internal file.
func (m *Mapper) reserved(seg string, last bool) bool {
	return reservedSegment(seg, last, m.ReservedSuffixes)
}

// reservedSegment reports whether a path segment names an internal file:
// it starts with InternalPrefix or ends in OldSuffix, or (as the last
// segment) ends in one of the reserved suffixes, whatever the case. The
// rule holds for decoded segments and for names on disk alike, since the
// escaping keeps these bytes as they are.
func reservedSegment(seg string, last bool, reservedSuffixes []string) bool {
	lower := strings.ToLower(seg)
	if strings.HasPrefix(lower, InternalPrefix) || strings.HasSuffix(lower, OldSuffix) {
		return true
	}
	if last {
		for _, s := range reservedSuffixes {
			if strings.HasSuffix(lower, s) {
				return true
			}
		}
	}
	return false
}

// canonicalQuery keeps the allow-listed parameters in a deterministic order
// and refuses requests that carry any other parameter.
func (m *Mapper) canonicalQuery(raw string) (string, error) {
	if raw == "" {
		return "", nil
	}
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return "", ErrNotCacheable
	}
	if len(vals) == 0 {
		return "", nil
	}
	for k := range vals {
		if !slices.Contains(m.QueryParams, k) {
			return "", ErrNotCacheable
		}
	}
	// url.Values.Encode sorts by key and keeps the order of repeated values.
	return vals.Encode(), nil
}

// extOf returns the extension of a decoded file name, like path.Ext.
func extOf(name string) string {
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		return name[i:]
	}
	return ""
}

// safeByte reports whether b is kept as is in a path-derived file name.
func safeByte(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	switch b {
	case '-', '.', '_', '~', '!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=', ':', '@':
		return true
	}
	return false
}

const upperHex = "0123456789ABCDEF"

func escapeSegment(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if safeByte(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(upperHex[c>>4])
		b.WriteByte(upperHex[c&15])
	}
}

// escapeQuery writes an encoded query with every byte but [A-Za-z0-9_=&-]
// escaped, so the name part after '?' never contains '.' or '/'.
func escapeQuery(b *strings.Builder, q string) {
	for i := 0; i < len(q); i++ {
		c := q[i]
		if c == '=' || c == '&' || c == '_' || c == '-' ||
			'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(upperHex[c>>4])
		b.WriteByte(upperHex[c&15])
	}
}

// KeyForFile is the inverse of Map: the canonical URL of a file name that
// Map produced. ok is false for names Map never produces.
func KeyForFile(file string) (key string, ok bool) {
	pathPart, queryPart, hasQuery := strings.Cut(file, string(querySeparator))
	segs := strings.Split(pathPart, "/")
	for _, s := range segs {
		if !canonicalSegment(s) {
			return "", false
		}
	}
	if segs[len(segs)-1] == IndexName {
		key = "/" + strings.Join(segs[:len(segs)-1], "/")
		if len(segs) > 1 {
			key += "/"
		}
	} else {
		key = "/" + pathPart
	}
	if hasQuery {
		q, ok := unescapeQuery(queryPart)
		if !ok || q == "" {
			return "", false
		}
		key += "?" + q
	}
	return key, true
}

// canonicalSegment reports whether s is a name escapeSegment produces.
func canonicalSegment(s string) bool {
	if s == "" || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' {
			if i+2 >= len(s) || !isUpperHex(s[i+1]) || !isUpperHex(s[i+2]) ||
				safeByte(unhex(s[i+1])<<4|unhex(s[i+2])) {
				return false
			}
			i += 2
			continue
		}
		if !safeByte(c) {
			return false
		}
	}
	return true
}

func unescapeQuery(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) || !isUpperHex(s[i+1]) || !isUpperHex(s[i+2]) {
			return "", false
		}
		b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
		i += 2
	}
	return b.String(), true
}

func isUpperHex(c byte) bool { return '0' <= c && c <= '9' || 'A' <= c && c <= 'F' }

func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c - 'A' + 10
}
