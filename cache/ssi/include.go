package ssi

import (
	"errors"
	"net/url"
	"strings"
)

// ErrRefused is the error of an include path that is not a local path of
// the site.
var ErrRefused = errors.New("not a local path of this site")

// IncludeURL is the URL an include names, relative to the key (canonical
// URL) of the including document: virtual= an absolute local path, file=
// (Apache's) a path relative to the including document's folder, never
// absolute and never upwards. Anything else is ErrRefused.
func IncludeURL(key string, ref Ref) (*url.URL, error) {
	p := ref.Path
	if ref.File {
		if p == "" || p[0] == '/' || strings.ContainsAny(p, "\\?#") || strings.IndexByte(p, 0) >= 0 {
			return nil, ErrRefused
		}
		for _, seg := range strings.Split(p, "/") {
			if seg == ".." || seg == "." {
				return nil, ErrRefused
			}
		}
		return &url.URL{Path: Folder(key) + p}, nil
	}
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") {
		return nil, ErrRefused
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" || u.Opaque != "" || u.User != nil {
		return nil, ErrRefused
	}
	u.Fragment, u.RawFragment = "", ""
	return u, nil
}

// Folder is the folder of a document key, ending in "/", that file=
// paths are relative to.
func Folder(key string) string {
	base, _, _ := strings.Cut(key, "?")
	return base[:strings.LastIndexByte(base, '/')+1]
}

// Comments that stand for directives that are not made.
const (
	MalformedComment = "<!-- ssi: malformed include -->"
	TooLongComment   = "<!-- ssi: directive too long -->"
)

// DirectiveComment is what a directive other than an include becomes in
// an assembled page: a comment for a malformed or over-long one, nothing
// for any other (stripped, never executed).
func DirectiveComment(k Kind) string {
	switch k {
	case Malformed:
		return MalformedComment
	case TooLong:
		return TooLongComment
	}
	return ""
}

const upperHex = "0123456789ABCDEF"

// Comment is the HTML comment that stands for an include that was not
// made. The path is escaped so that it cannot end the comment.
func Comment(path, why string) string {
	var b strings.Builder
	b.WriteString(`<!-- ssi: include "`)
	prev := byte(0)
	for i := 0; i < len(path) && i < 256; i++ {
		c := path[i]
		switch {
		case c == '-' && prev == '-',
			c == '>' || c == '<' || c == '"' || c == '%' || c < 0x21 || c > 0x7e:
			prev = '%'
			b.WriteByte('%')
			b.WriteByte(upperHex[c>>4])
			b.WriteByte(upperHex[c&15])
		default:
			prev = c
			b.WriteByte(c)
		}
	}
	b.WriteString(`" `)
	b.WriteString(why)
	b.WriteString(" -->")
	return b.String()
}
