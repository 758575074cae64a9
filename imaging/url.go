package imaging

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"
)

// Limits of the URL grammar.
const (
	// MaxWidth is the largest width a variant name or ?width= may ask for.
	MaxWidth = 10000
	// MaxAspectTerm is the largest number on either side of an aspect ratio.
	MaxAspectTerm = 999
	// MaxSlugLen is the longest slug accepted, in bytes, decoded.
	MaxSlugLen = 200
	// maxPathLen bounds the whole path, prefix included.
	maxPathLen = 2048
)

// VariantOriginal is the name of the variant that is the source image at
// its own size.
const VariantOriginal = "original"

// URLParts is a parsed image URL (docs/image-urls.md).
type URLParts struct {
	// UUID is the image document's UUID in canonical lower-case form.
	UUID string
	// ImageModified is the image document's modification time (Unix ms)
	// the page that made the URL had seen: the minimum version wanted.
	ImageModified int64
	// VariantModified is the variant definition's modification time
	// (Unix ms) the page had seen.
	VariantModified int64
	// Variant is the variant name as written in the URL: "16x9-768",
	// "16x9" (aspect only, width from ?width=) or "original".
	Variant string
	// Width is the output width: the one in the variant name, the ?width=
	// value for aspect-only variants, 0 for "original".
	Width int
	// Slug is the optional, free SEO slug ("" = none): any text of up to
	// MaxSlugLen bytes, percent-encoded in the URL. It never changes which
	// image or variant is served.
	Slug string
	// Format is the requested format as written: jpg, jpeg, png, webp, gif
	// or svg.
	Format string
}

// Aspect returns the aspect ratio of the variant (zero for "original").
func (p URLParts) Aspect() Aspect {
	a, _, _ := ParseVariantName(p.Variant)
	return a
}

// Ext returns the canonical file extension of the format ("jpeg" → "jpg").
func (p URLParts) Ext() string { return canonicalFormat(p.Format) }

// ContentType returns the media type of the requested format.
func (p URLParts) ContentType() string { return ContentType(p.Format) }

// Aspect is an aspect ratio X:Y such as 16:9. The zero value means "the
// source's own aspect ratio".
type Aspect struct {
	// X is the horizontal term.
	X int
	// Y is the vertical term.
	Y int
}

// IsZero reports whether a is the zero aspect (keep the source's ratio).
func (a Aspect) IsZero() bool { return a.X == 0 || a.Y == 0 }

// String formats a as "16x9" ("" for the zero aspect).
func (a Aspect) String() string {
	if a.IsZero() {
		return ""
	}
	return strconv.Itoa(a.X) + "x" + strconv.Itoa(a.Y)
}

// ParseAspect parses "16x9". The empty string is the zero aspect.
func ParseAspect(s string) (Aspect, bool) {
	if s == "" {
		return Aspect{}, true
	}
	xs, ys, ok := strings.Cut(s, "x")
	if !ok {
		return Aspect{}, false
	}
	x, okx := parseBoundedInt(xs, MaxAspectTerm)
	y, oky := parseBoundedInt(ys, MaxAspectTerm)
	if !okx || !oky {
		return Aspect{}, false
	}
	return Aspect{X: x, Y: y}, true
}

// ParseVariantName splits a variant name into its aspect ratio and fixed
// width: "16x9-768" → 16:9, 768; "16x9" → 16:9, 0 (width from ?width=);
// "original" → zero aspect, 0.
func ParseVariantName(name string) (Aspect, int, bool) {
	if name == VariantOriginal {
		return Aspect{}, 0, true
	}
	as, ws, hasWidth := strings.Cut(name, "-")
	a, ok := ParseAspect(as)
	if !ok || a.IsZero() {
		return Aspect{}, 0, false
	}
	if !hasWidth {
		return a, 0, true
	}
	w, ok := parseBoundedInt(ws, MaxWidth)
	if !ok {
		return Aspect{}, 0, false
	}
	return a, w, true
}

// Formats lists the accepted formats.
var Formats = []string{"jpg", "jpeg", "png", "webp", "gif", "svg"}

// ContentType returns the media type for a URL format ("" if unknown).
func ContentType(format string) string {
	switch format {
	case "jpg", "jpeg":
		return "image/jpeg"
	case "png":
		return "image/png"
	case "webp":
		return "image/webp"
	case "gif":
		return "image/gif"
	case "svg":
		return "image/svg+xml"
	}
	return ""
}

func canonicalFormat(f string) string {
	if f == "jpeg" {
		return "jpg"
	}
	return f
}

// Parse parses an image URL path as sent, percent-encoded
// (url.URL.EscapedPath), and its query. The slug is percent-decoded; every
// other segment must be written literally, so that one image has one URL
// per slug. The segments before the UUID form the prefix, which Parse does
// not check: a caller mounted under a fixed prefix strips or compares it.
// allowedWidths lists the ?width= values accepted for aspect-only
// variants; an empty list refuses them all.
//
// Every error is a *URLError (errors.Is(err, ErrBadURL)).
func Parse(path string, query url.Values, allowedWidths []int) (URLParts, error) {
	var p URLParts
	bad := func(reason string) (URLParts, error) {
		return URLParts{}, &URLError{Path: path, Reason: reason}
	}
	if len(path) > maxPathLen {
		return bad("path too long")
	}
	if !strings.HasPrefix(path, "/") {
		return bad("path must start with /")
	}
	segs := strings.Split(path[1:], "/")
	n := len(segs)
	var file, variantSeg string
	var i int // index of the UUID segment
	switch {
	case n >= 5 && len(segs[n-4]) == StampLen && len(segs[n-5]) == 36:
		i, variantSeg, file = n-5, segs[n-2], segs[n-1]
	case n >= 4 && len(segs[n-4]) == 36:
		i, file = n-4, segs[n-1]
	default:
		return bad("want /<prefix>/<uuid>/<imageStamp>/<variantStamp>/<variant>[/<slug>].<format>")
	}
	for _, s := range segs[:i] {
		if s == "" {
			return bad("empty path segment in prefix")
		}
	}
	id, err := uuid.Parse(segs[i])
	if err != nil || len(segs[i]) != 36 {
		return bad("invalid uuid")
	}
	p.UUID = id.String()
	if p.ImageModified, err = DecodeStamp(segs[i+1]); err != nil {
		return bad("image stamp: " + err.Error())
	}
	if p.VariantModified, err = DecodeStamp(segs[i+2]); err != nil {
		return bad("variant stamp: " + err.Error())
	}
	dot := strings.LastIndexByte(file, '.')
	if dot < 0 {
		return bad("missing .<format>")
	}
	name, format := file[:dot], file[dot+1:]
	if variantSeg != "" {
		slug, err := url.PathUnescape(name)
		if err != nil {
			return bad("invalid percent-encoding in the slug")
		}
		p.Variant, p.Slug = variantSeg, slug
		if !validSlug(p.Slug) {
			return bad("invalid slug (1–200 bytes)")
		}
	} else {
		p.Variant = name
	}
	if ContentType(format) == "" {
		return bad("unsupported format " + strconv.Quote(format))
	}
	p.Format = format
	_, width, ok := ParseVariantName(p.Variant)
	if !ok {
		return bad("invalid variant name (want <x>x<y>, <x>x<y>-<width> or original)")
	}
	if format == "svg" && p.Variant != VariantOriginal {
		return bad("svg is only available for variant original")
	}
	qw, hasQW := query["width"]
	switch {
	case p.Variant == VariantOriginal || width > 0:
		if hasQW {
			return bad("?width= is only allowed for aspect-only variants")
		}
		p.Width = width
	default:
		if len(qw) != 1 {
			return bad("aspect-only variant needs exactly one ?width=")
		}
		w, ok := parseBoundedInt(qw[0], MaxWidth)
		if !ok || !slices.Contains(allowedWidths, w) {
			return bad("?width= not in the list of allowed widths")
		}
		p.Width = w
	}
	return p, nil
}

// BuildURL builds the URL (path and, for aspect-only variants, the ?width=
// query) for u under prefix ("/image", "image" and "/image/" are the same;
// "" means none). The slug is percent-encoded into one path segment. It
// does not validate u: use Validate for values that do not come from
// Parse. Parse(BuildURL(prefix, u)) returns u for every valid u.
func BuildURL(prefix string, u URLParts) string {
	var b strings.Builder
	prefix = strings.Trim(prefix, "/")
	b.Grow(len(prefix) + 100 + 3*len(u.Slug))
	if prefix != "" {
		b.WriteByte('/')
		b.WriteString(prefix)
	}
	b.WriteByte('/')
	b.WriteString(u.UUID)
	b.WriteByte('/')
	b.WriteString(EncodeStamp(u.ImageModified))
	b.WriteByte('/')
	b.WriteString(EncodeStamp(u.VariantModified))
	b.WriteByte('/')
	b.WriteString(u.Variant)
	if u.Slug != "" {
		b.WriteByte('/')
		b.WriteString(escapeSlug(u.Slug))
	}
	b.WriteByte('.')
	b.WriteString(u.Format)
	if _, w, ok := ParseVariantName(u.Variant); ok && w == 0 && u.Variant != VariantOriginal {
		b.WriteString("?width=")
		b.WriteString(strconv.Itoa(u.Width))
	}
	return b.String()
}

// URLFor validates u (see Validate) and builds its URL under prefix: the
// checked variant of BuildURL for templates and placeholders.
func URLFor(prefix string, u URLParts, allowedWidths []int) (string, error) {
	if err := u.Validate(allowedWidths); err != nil {
		return "", err
	}
	return BuildURL(prefix, u), nil
}

// BuildAbsoluteURL is BuildURL(prefix, u) after base, the scheme, host and
// optional path of the image service as clients reach it
// ("https://img.example.com", "https://cdn.example.com/edge"), as
// ParseBaseURL returns it. An empty base gives the path alone.
func BuildAbsoluteURL(base, prefix string, u URLParts) string {
	return base + BuildURL(prefix, u)
}

// ParseBaseURL checks the base of absolute image URLs: http or https, a
// host with an optional port, and an optional path (where a proxy mounts
// the edge); no user info, query or fragment. It returns the base in the
// form BuildAbsoluteURL expects: scheme in lower case, path
// percent-encoded, no trailing slash.
func ParseBaseURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("base URL %q: %w", s, err)
	}
	scheme := strings.ToLower(u.Scheme)
	switch {
	case scheme != "http" && scheme != "https":
		return "", fmt.Errorf("base URL %q: want http:// or https://", s)
	case u.Host == "" || u.Opaque != "":
		return "", fmt.Errorf("base URL %q: no host", s)
	case u.User != nil:
		return "", fmt.Errorf("base URL %q: must not carry user info", s)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.ContainsAny(s, "?#"):
		return "", fmt.Errorf("base URL %q: must not have a query or fragment", s)
	}
	if u.Port() != "" {
		if p, err := strconv.Atoi(u.Port()); err != nil || p < 1 || p > 65535 {
			return "", fmt.Errorf("base URL %q: bad port", s)
		}
	}
	path := strings.TrimRight(u.EscapedPath(), "/")
	if strings.Contains(path, "//") {
		return "", fmt.Errorf("base URL %q: empty path segment", s)
	}
	return scheme + "://" + u.Host + path, nil
}

// Validate checks u as Parse would check the URL BuildURL makes of it.
func (u URLParts) Validate(allowedWidths []int) error {
	s := BuildURL("", u)
	path, rawQuery, _ := strings.Cut(s, "?")
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return &URLError{Path: s, Reason: "bad query"}
	}
	got, err := Parse(path, q, allowedWidths)
	if err != nil {
		return err
	}
	if got != u {
		return &URLError{Path: s, Reason: "fields not in canonical form"}
	}
	return nil
}

// escapeSlug percent-encodes a slug into one path segment. Beyond what
// url.PathEscape encodes, '&' is encoded too: URLs are written into HTML
// by templates that do not escape them, and "&amp;" in a slug would
// otherwise be read as an entity.
func escapeSlug(s string) string {
	return strings.ReplaceAll(url.PathEscape(s), "&", "%26")
}

// validSlug reports whether s is a slug: 1–MaxSlugLen bytes of anything.
// A slug is only ever percent-encoded into its own path segment and never
// used to find the image, so its content needs no check; UTF-8 text is
// expected, but other bytes are taken as they come.
func validSlug(s string) bool {
	return s != "" && len(s) <= MaxSlugLen
}

// parseBoundedInt parses a canonical decimal in 1..max (no sign, no leading
// zero).
func parseBoundedInt(s string, max int) (int, bool) {
	if s == "" || len(s) > 6 || s[0] == '0' {
		return 0, false
	}
	v := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	if v > max {
		return 0, false
	}
	return v, true
}
